"""Who we are to each API: a token a pipeline already holds, else azure-identity's chain.

`ENTRA_SIGMA_ARM_TOKEN`, `ENTRA_SIGMA_GRAPH_TOKEN` and `ENTRA_SIGMA_LOGS_TOKEN` are sent as
they are (a CI job that fetched them itself). Without one, `DefaultAzureCredential` tries the
environment's service principal, workload identity (OIDC in GitHub Actions), managed
identity and the Azure CLI, in that order. Every token either way is registered with
`redaction.SECRETS` before it is used.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Mapping

from azure.core.credentials import AccessToken

from .redaction import SECRETS

TOKEN_VARIABLES = {"arm": "ENTRA_SIGMA_ARM_TOKEN", "graph": "ENTRA_SIGMA_GRAPH_TOKEN", "logs": "ENTRA_SIGMA_LOGS_TOKEN"}
UNKNOWN_LIFETIME = 3600


def jwt_expiry(token: str) -> int | None:
    """The `exp` claim of a JWT, read without verifying it (only to know when it runs out)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return int(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return None


class StaticTokenCredential:
    """An azure-core TokenCredential that hands out one token it was given."""

    def __init__(self, token: str) -> None:
        SECRETS.add(token)
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, jwt_expiry(self._token) or int(time.time()) + UNKNOWN_LIFETIME)

    def __repr__(self) -> str:
        return "StaticTokenCredential([REDACTED])"


class RegisteringCredential:
    """Wraps a credential so that every token it issues is known to the redactor."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        token = self._inner.get_token(*scopes, **kwargs)
        SECRETS.add(token.token)
        return token

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close:
            close()


def credential_for(api: str, environ: Mapping[str, str]):
    token = (environ.get(TOKEN_VARIABLES[api]) or "").strip()
    if token:
        return StaticTokenCredential(token)
    from azure.identity import DefaultAzureCredential  # imported late: it pulls in msal and cryptography

    return RegisteringCredential(DefaultAzureCredential(exclude_interactive_browser_credential=True))

"""Who we are to each API: a token a pipeline already holds, else azure-identity's chain.

`ENTRA_SIGMA_ARM_TOKEN`, `ENTRA_SIGMA_GRAPH_TOKEN` and `ENTRA_SIGMA_LOGS_TOKEN` are sent as
they are (a CI job that fetched them itself). Without one, `DefaultAzureCredential` tries the
environment's service principal, workload identity (OIDC in GitHub Actions), managed
identity and the Azure CLI, in that order (the others it knows are left out: they only
lengthen the message). Every token either way is registered with `redaction.SECRETS` before
it is used.

When no credential gives a token, the chain's own message is one long paragraph per
credential, links included. `SignInFailed` says instead, one short line each, what was tried
and why it gave nothing, then what to do.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any, Mapping

from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError

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


# The chain's credentials, by class: what each one is, in words a user acts on.
CHAIN = {
    "EnvironmentCredential": "a service principal in the environment (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET)",
    "WorkloadIdentityCredential": "workload identity (AZURE_FEDERATED_TOKEN_FILE)",
    "ManagedIdentityCredential": "a managed identity of this machine",
    "AzureCliCredential": "the Azure CLI",
}
UNAVAILABLE = {  # what it means when a credential of the chain has nothing to offer
    "EnvironmentCredential": "not set",
    "WorkloadIdentityCredential": "not set up",
    "ManagedIdentityCredential": "none here",
    "AzureCliCredential": "not signed in (`az login`), or `az` is not installed",
}
API_NAMES = {"arm": "Azure Resource Manager", "graph": "Microsoft Graph", "logs": "the Log Analytics query API"}
LONGEST_REASON = 160


def short_reason(text: str) -> str:
    """The first sentence of a credential's message, cut at a word (never mid-word), with no URL."""
    sentence = " ".join(str(text).split()).split(". ")[0].rstrip(".")
    words = [w for w in sentence.split(" ") if not w.startswith(("http://", "https://"))]
    out = ""
    for word in words:
        if len(out) + len(word) + 1 > LONGEST_REASON:
            return out + " …"
        out = f"{out} {word}" if out else word
    return out


class SignInFailed(ClientAuthenticationError):
    """No credential gave a token for `api`: `tried` holds (what, why) per credential."""

    def __init__(self, api: str, tried: list[tuple[str, str]]) -> None:
        self.api, self.tried = api, tried
        super().__init__(message=self.summary())

    def summary(self) -> str:
        return f"cannot sign in to {API_NAMES.get(self.api, self.api)}: no credential gave a token"

    def lines(self) -> list[str]:
        """What was tried, one line each, then what to do."""
        variable = TOKEN_VARIABLES[self.api]
        out = [f"tried {variable}: not set"]
        out += [f"tried {what}: {why}" for what, why in self.tried]
        out.append(f"to sign in: `az login` on your machine; in GitHub Actions the azure/login action (OIDC); or set "
                   f"{variable} to a token you fetched (docs/deploy.md#signing-in)")
        return out


class _Recorded:
    """One credential of the chain, with what it raised written down (the chain keeps it to itself)."""

    def __init__(self, inner: Any, tried: list[tuple[str, BaseException]]) -> None:
        self._inner, self._tried = inner, tried

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            return self._inner.get_token(*scopes, **kwargs)
        except BaseException as error:
            name = getattr(self._inner, "_credential_name", None) or type(self._inner).__name__  # FailedDACCredential's
            self._tried.append((name, error))
            raise

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close:
            close()


class RegisteringCredential:
    """Wraps a credential chain so that every token it issues is known to the redactor, and a
    chain that gives none raises SignInFailed."""

    def __init__(self, inner: Any, api: str = "arm") -> None:
        self._inner, self.api = inner, api
        self._tried: list[tuple[str, BaseException]] = []
        if hasattr(inner, "credentials"):
            inner.credentials = tuple(_Recorded(c, self._tried) for c in inner.credentials)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        del self._tried[:]
        try:
            token = self._inner.get_token(*scopes, **kwargs)
        except ClientAuthenticationError:
            raise self.failure() from None
        SECRETS.add(token.token)
        return token

    def failure(self) -> SignInFailed:
        from azure.identity import CredentialUnavailableError

        tried = []
        for name, error in self._tried:
            unavailable = isinstance(error, CredentialUnavailableError)
            reason = UNAVAILABLE.get(name) if unavailable else None
            tried.append((CHAIN.get(name, name), reason or short_reason(getattr(error, "message", None) or error)))
        return SignInFailed(self.api, tried)

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close:
            close()


def credential_for(api: str, environ: Mapping[str, str]):
    token = (environ.get(TOKEN_VARIABLES[api]) or "").strip()
    if token:
        return StaticTokenCredential(token)
    from azure.identity import DefaultAzureCredential  # imported late: it pulls in msal and cryptography

    chain = DefaultAzureCredential(
        exclude_interactive_browser_credential=True, exclude_shared_token_cache_credential=True,
        exclude_visual_studio_code_credential=True, exclude_powershell_credential=True,
        exclude_developer_cli_credential=True, exclude_broker_credential=True,
    )
    return RegisteringCredential(chain, api)

"""Where each API lives: the public cloud by default, a sovereign cloud (or a test server) on request.

An endpoint comes from its option, else its environment variable, else the public cloud. A
bearer token must never travel in the clear, so `http://` is refused unless the host is a
loopback address (a local test server).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlsplit

PUBLIC_CLOUD = {
    "arm": "https://management.azure.com",
    "graph": "https://graph.microsoft.com",
    "logs": "https://api.loganalytics.io",
}
ENVIRONMENT = {
    "arm": "ENTRA_SIGMA_ARM_ENDPOINT",
    "graph": "ENTRA_SIGMA_GRAPH_ENDPOINT",
    "logs": "ENTRA_SIGMA_LOGS_ENDPOINT",
}
OPTIONS = {"arm": "--arm-endpoint", "graph": "--graph-endpoint", "logs": "--logs-endpoint"}


class EndpointError(ValueError):
    """An endpoint that cannot be used (a usage error: exit 2)."""


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoint:
    api: str  # arm, graph or logs
    url: str  # scheme://host[:port], no trailing slash

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def insecure_loopback(self) -> bool:
        """Plain HTTP to this machine: azure-core refuses bearer tokens over HTTP unless told."""
        return self.url.startswith("http://")

    @property
    def scope(self) -> str:
        """The token scope Entra ID issues for this API: the endpoint's origin + `/.default`
        (https://management.usgovcloudapi.net/.default in Azure Government, and so on)."""
        return self.url + "/.default"

    def same_origin(self, url: str) -> bool:
        """A `nextLink` must point back at this endpoint, or the token would follow it elsewhere."""
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}".lower() == self.url.lower()


def resolve(api: str, option: str | None, environ: Mapping[str, str]) -> Endpoint:
    source = OPTIONS[api] if option else ENVIRONMENT[api] if environ.get(ENVIRONMENT[api]) else None
    value = (option or environ.get(ENVIRONMENT[api]) or PUBLIC_CLOUD[api]).strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise EndpointError(f"{source} {value!r}: not a URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise EndpointError(f"{source} {value!r}: expected https://host")
    if parts.username or parts.password or parts.query or parts.fragment or parts.path.strip("/"):
        raise EndpointError(f"{source} {value!r}: give only scheme://host[:port], with no path, query or user name")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise EndpointError(
            f"{source} {value!r}: refusing plain http:// to a host other than this machine's loopback address "
            "(a token would travel in the clear); use https://"
        )
    return Endpoint(api, f"{parts.scheme}://{parts.netloc}".lower())

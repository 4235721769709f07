"""One HTTP pipeline per API, built from the Azure SDK's own policies.

azure-core's RetryPolicy retries 408, 429 and 5xx answers, timeouts and dropped connections
with exponential backoff, honouring `Retry-After`; ARMPipelineClient adds ARM's resource
provider registration and logging policies, and ARMErrorFormat reads ARM's error bodies.
What is ours: the bounds (how many tries, the longest wait), retrying POST and PATCH too (our
POST carries a client-chosen id and our PATCH the whole body, so a repeat cannot duplicate
anything), and errors as `RequestFailed` values with redacted messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from azure.core import PipelineClient
from azure.core.configuration import Configuration
from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError, ODataV4Format
from azure.core.pipeline import policies
from azure.core.rest import HttpRequest
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.exceptions import ARMErrorFormat
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

from ... import __version__
from .answers import MAX_ANSWER_DEPTH, AnswerTooLarge, BoundedTransport, depth
from .endpoints import Endpoint
from .redaction import redact


@dataclass(frozen=True)
class HttpSettings:
    """How hard to try. The defaults suit a CI job; tests shrink the waits."""

    retries: int = 5  # tries after the first, per request
    max_wait: float = 60.0  # the longest pause between two tries, whatever Retry-After asks
    backoff: float = 0.8  # exponential backoff factor (0.8 s, 1.6 s, 3.2 s, ...)
    timeout: float = 60.0  # seconds to wait for an answer before the try counts as failed
    connect_timeout: float = 10.0
    concurrency: int = 4  # requests in flight at once


class BoundedRetryPolicy(policies.RetryPolicy):
    """azure-core's retries, with Retry-After capped at `max_wait`, and POST/PATCH retried too."""

    def __init__(self, settings: HttpSettings) -> None:
        super().__init__(
            retry_total=settings.retries, retry_connect=settings.retries, retry_read=settings.retries,
            retry_status=settings.retries, retry_backoff_factor=settings.backoff, retry_backoff_max=settings.max_wait,
        )
        self._method_whitelist = frozenset(self._method_whitelist | {"POST", "PATCH"})
        self.max_wait = settings.max_wait

    def get_retry_after(self, response) -> float | None:
        wait = super().get_retry_after(response)
        return None if wait is None else min(wait, self.max_wait)


class RequestFailed(Exception):
    """A request that still failed after its retries: HTTP status (None: no answer), the
    service's error code and message, all redacted."""

    def __init__(self, method: str, url: str, status: int | None, code: str | None, message: str) -> None:
        self.method, self.url, self.status, self.code = method, redact(url), status, code
        self.message = redact(message)
        super().__init__(self.describe())

    def describe(self) -> str:
        return f"{self.method} {self.url}: {self.answer()}"

    def answer(self) -> str:
        """What came back, without the URL (when the rule it was about is named already)."""
        answer = f"HTTP {self.status}" if self.status else "no answer"
        code = f" {self.code}" if self.code else ""
        return f"{answer}{code}: {self.message}"


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: Any  # parsed JSON, or None


def configuration(credential, endpoint: Endpoint, settings: HttpSettings, arm: bool) -> Configuration:
    config = Configuration()
    config.headers_policy = policies.HeadersPolicy()
    config.user_agent_policy = policies.UserAgentPolicy(sdk_moniker=f"entra-sigma/{__version__}")
    config.proxy_policy = policies.ProxyPolicy()
    config.redirect_policy = policies.RedirectPolicy()
    config.retry_policy = BoundedRetryPolicy(settings)
    config.custom_hook_policy = policies.CustomHookPolicy()
    config.logging_policy = policies.NetworkTraceLoggingPolicy(logging_enable=False)  # never on: it logs tokens
    config.http_logging_policy = ARMHttpLoggingPolicy() if arm else policies.HttpLoggingPolicy()
    auth = ARMChallengeAuthenticationPolicy if arm else policies.BearerTokenCredentialPolicy
    config.authentication_policy = auth(credential, endpoint.scope)
    return config


class ApiClient:
    """Sends JSON requests to one endpoint through the SDK pipeline."""

    def __init__(self, endpoint: Endpoint, credential, settings: HttpSettings, *, arm: bool) -> None:
        self.endpoint = endpoint
        self.error_format = ARMErrorFormat if arm else ODataV4Format
        transport = BoundedTransport(connection_timeout=settings.connect_timeout, read_timeout=settings.timeout)
        client_class = ARMPipelineClient if arm else PipelineClient
        self._client = client_class(
            endpoint.url, config=configuration(credential, endpoint, settings, arm), transport=transport,
        )
        self._options = {"enforce_https": False} if endpoint.insecure_loopback else {}

    def close(self) -> None:
        self._client.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("https://", "http://")) else self.endpoint.url + path

    def send(
        self, method: str, path: str, *, params: dict | None = None, body: Any = None,
        headers: dict[str, str] | None = None, ok: tuple[int, ...] = (),
    ) -> Response:
        """The answer to one request; a status >= 400 not listed in `ok` raises RequestFailed."""
        url = self.url(path)
        request = HttpRequest(method, url, params=params, json=body, headers={"Accept": "application/json", **(headers or {})})
        try:
            response = self._client.send_request(request, **self._options)
            response.read()
        except AnswerTooLarge as error:
            raise RequestFailed(method, url, None, "AnswerTooLarge", str(error)) from None
        except ClientAuthenticationError as error:  # no credential worked: its message lists what each one said
            raise RequestFailed(method, url, None, "AuthenticationFailed", " ".join(str(error.message).split())[:1000]) from None
        except AzureError as error:
            raise RequestFailed(method, url, None, type(error).__name__, first_line(error.message)) from None
        if response.status_code >= 400 and response.status_code not in ok:
            try:
                failure = HttpResponseError(response=response, error_format=self.error_format)
                code = failure.error.code if failure.error else None
                message = failure.error.message if failure.error and failure.error.message else response.reason or ""
            except (RecursionError, ValueError, TypeError, AttributeError):  # an error body of no known shape
                code, message = None, response.reason or ""
            raise RequestFailed(method, url, response.status_code, code if isinstance(code, str) else None, first_line(message))
        try:
            body = json.loads(response.content) if response.content else None
        except (ValueError, RecursionError):
            raise RequestFailed(method, url, response.status_code, "InvalidResponse", "the answer is not JSON") from None
        if depth(body) > MAX_ANSWER_DEPTH:
            raise RequestFailed(method, url, response.status_code, "InvalidResponse", f"the answer nests deeper than {MAX_ANSWER_DEPTH} levels")
        return Response(response.status_code, dict(response.headers), body)


def first_line(text: Any) -> str:
    lines = str(text or "").strip().splitlines()
    return lines[0] if lines else ""

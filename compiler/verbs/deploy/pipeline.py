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
from .credentials import SignInFailed
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
    """azure-core's retries, with Retry-After capped at `max_wait`, and POST/PATCH retried too.
    Each retry is said on stderr, with why and when (a run must not sit silent for a minute);
    a host name that does not exist is not retried."""

    def __init__(self, settings: HttpSettings) -> None:
        super().__init__(
            retry_total=settings.retries, retry_connect=settings.retries, retry_read=settings.retries,
            retry_status=settings.retries, retry_backoff_factor=settings.backoff, retry_backoff_max=settings.max_wait,
        )
        self._method_whitelist = frozenset(self._method_whitelist | {"POST", "PATCH"})
        self.max_wait = settings.max_wait
        self.tries = settings.retries + 1

    def get_retry_after(self, response) -> float | None:
        wait = super().get_retry_after(response)
        return None if wait is None else min(wait, self.max_wait)

    def increment(self, settings, response=None, error=None) -> bool:
        if error is not None and unknown_host(error):
            return False  # a name the DNS does not know will not be known in a minute
        return super().increment(settings, response=response, error=error)

    def sleep(self, settings, transport, response=None) -> None:
        wait = (self.get_retry_after(response) if response is not None else None) or self.get_backoff_time(settings)
        history = settings["history"][-1] if settings["history"] else None
        if history is not None:
            request = history.http_request
            why = f"HTTP {history.http_response.status_code}" if history.http_response is not None else \
                f"no answer ({no_answer_reason(history.error)})"
            say(f"entra-sigma: {request.method} {redact(request.url)}: {why}; retrying in {wait:.1f} s "
                f"(try {len(settings['history']) + 1} of {self.tries})")
        super().sleep(settings, transport, response=response)


def say(line: str) -> None:
    """One line on stderr, for a person watching the run (never for a program: stdout is the report)."""
    import sys

    from ...console import one_line

    sys.stderr.write(one_line(line) + "\n")
    sys.stderr.flush()


def _causes(error: BaseException | None):
    """The error and every error it wraps (azure-core → requests → urllib3 → socket)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        inner = getattr(error, "inner_exception", None) or getattr(error, "reason", None)
        error = inner if isinstance(inner, BaseException) else (error.__cause__ or error.__context__ or
                                                                 next((a for a in getattr(error, "args", ()) if isinstance(a, BaseException)), None))


def unknown_host(error: BaseException) -> bool:
    """A host name the resolver says does not exist (not a resolver that timed out)."""
    import socket

    return any(isinstance(e, socket.gaierror) and e.errno == socket.EAI_NONAME for e in _causes(error)) or \
        any("Name or service not known" in str(e) or "nodename nor servname" in str(e) for e in _causes(error))


def no_answer_reason(error: BaseException | None) -> str:
    """Why a request got no answer, in a few words."""
    text = " ".join(str(error).split()) if error is not None else ""
    for marks, words in ((("Failed to resolve", "name resolution"), "the host name could not be resolved"),
                         (("Connection refused",), "connection refused"),
                         (("timed out", "Timeout"), "timed out"),
                         (("Connection aborted", "RemoteDisconnected", "reset by peer"), "the connection was dropped")):
        if any(mark in text for mark in marks):
            return words
    return type(error).__name__ if error is not None else "no answer"


class RequestFailed(Exception):
    """A request that still failed after its retries: HTTP status (None: no answer), the
    service's error code and message, all redacted; `details`: further short lines (what a
    failed sign-in tried, and what to do)."""

    def __init__(self, method: str, url: str, status: int | None, code: str | None, message: str,
                 details: tuple[str, ...] = ()) -> None:
        self.method, self.url, self.status, self.code = method, redact(url), status, code
        self.message = redact(message)
        self.details = tuple(redact(line) for line in details)
        super().__init__(self.describe())

    def describe(self) -> str:
        return f"{self.method} {self.url}: {self.answer()}"

    def answer(self) -> str:
        """What came back, without the URL (when the rule it was about is named already)."""
        if self.code == SIGN_IN_FAILED:
            return self.message
        if not self.status:
            return f"{self.code}: {self.message}" if self.code else f"no answer: {self.message}"
        code = f" {self.code}" if self.code else ""
        return f"HTTP {self.status}{code}: {self.message}"


SIGN_IN_FAILED = "SignInFailed"


def sign_in_failed(method: str, url: str, error) -> RequestFailed:
    """A RequestFailed for a credential chain that gave no token (credentials.SignInFailed)."""
    return RequestFailed(method, url, None, SIGN_IN_FAILED, error.summary(), tuple(error.lines()))


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
        except SignInFailed as error:  # no credential worked: what each said, in short lines
            raise sign_in_failed(method, url, error) from None
        except ClientAuthenticationError as error:  # no credential worked: its message lists what each one said
            raise RequestFailed(method, url, None, "AuthenticationFailed", " ".join(str(error.message).split())[:1000]) from None
        except AzureError as error:
            raise RequestFailed(method, url, None, None, f"{no_answer_reason(error)} ({first_line(error.message)})") from None
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

"""Tokens never reach output, logs, error messages or files.

Every token the verbs obtain is registered here, and everything they print passes through
`redact`: the registered tokens, and anything shaped like a bearer token or a JWT, become
`[REDACTED]`. The same filter sits on the log handler that `--debug` adds for azure-core's
HTTP logging (which already hides the Authorization header; this is the second lock).
"""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "[REDACTED]"
BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/]+=*")
JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
MINIMUM = 8  # shorter "secrets" would redact ordinary words


class Secrets:
    """The tokens of this process (thread-safe: requests run in a pool)."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str | None) -> None:
        if value and len(value) >= MINIMUM:
            with self._lock:
                self._values.add(value)

    def redact(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        for value in values:
            text = text.replace(value, REDACTED)
        text = BEARER.sub(lambda m: m.group(1) + REDACTED, text)
        return JWT.sub(REDACTED, text)


SECRETS = Secrets()


def redact(text: object) -> str:
    return SECRETS.redact(str(text))


class RedactingFilter(logging.Filter):
    """Formats each record once, redacted, so no argument can bring a token back in."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ...console import lines

        # a header or error text from the service is printed as it came: each line a console line
        record.msg = lines(redact(record.getMessage()))
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = lines(redact(logging.Formatter().formatException(record.exc_info)))
            record.exc_info = None
        return True


def quiet_logging() -> logging.Handler:
    """Without --debug the Azure SDK's log records go nowhere (rather than to Python's
    last-resort handler, which would print its warnings unredacted on stderr)."""
    handler = logging.NullHandler()
    logging.getLogger("azure").addHandler(handler)
    return handler


def enable_debug_logging(stream) -> logging.Handler:
    """azure-core's and azure-identity's logs on `stream`, every record redacted. HTTP requests
    and responses are logged by azure-core's HttpLoggingPolicy (headers it does not know are
    shown as REDACTED); the network trace policy, which prints every header verbatim, stays off."""
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    logger = logging.getLogger("azure")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    return handler


def restore_logging(handler: logging.Handler) -> None:
    logger = logging.getLogger("azure")
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)

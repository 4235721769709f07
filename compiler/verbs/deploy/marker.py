"""The marker on every rule entra-sigma deploys, and the content hash it carries.

The marker is a line of the rule's description (the last, as written), a field that both APIs document as
writable and return as written (Sentinel: `properties.description`; Graph: the detection
rule's own `description`, not the alert's), and that a portal edit of any other field leaves
alone:

    Deployed by entra-sigma: id=<rule id> env=<environment> sha256=<16 hex digits>

`id` ties the marker to the rule it was written on, so a copy of the rule made in the portal
(which copies the description) is not taken for ours. `env` (absent when no environment was
chosen) names the environment of entra-sigma.toml that deployed it: a deploy in another
environment never updates or prunes it, even when two environments share a workspace. `sha256` is the hash of the content
last written (`content_hash`): when the content deployed no longer hashes to it, someone
changed the rule since the last deploy (drift); when the content the rules give now differs
from it, the rules changed.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

PREFIX = "Deployed by entra-sigma:"
MARKER = re.compile(
    r"^Deployed by entra-sigma: id=(?P<id>\S+)(?: env=(?P<env>[A-Za-z0-9][A-Za-z0-9_-]*))? sha256=(?P<digest>[0-9a-f]{16})[ \t]*$",
    re.MULTILINE,
)


@dataclass(frozen=True)
class Marker:
    rule_id: str
    digest: str
    environment: str | None = None

    def line(self) -> str:
        env = f" env={self.environment}" if self.environment else ""
        return f"{PREFIX} id={self.rule_id}{env} sha256={self.digest}"


def content_hash(content: dict) -> str:
    """16 hex digits of SHA-256 over the canonical JSON of normalised content: enough to tell
    versions of one rule apart, short enough to sit in a description."""
    text = json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def add_marker(description: str | None, marker: Marker) -> str:
    return f"{description}\n\n{marker.line()}" if description else marker.line()


def split_marker(description: str | None) -> tuple[str | None, Marker | None]:
    """The description without its marker, and the marker (None when there is none)."""
    if not description:
        return description, None
    match = MARKER.search(description)
    if match is None:
        return description, None
    before, after = description[: match.start()], description[match.end():]
    # the exact inverse of add_marker; text someone added after the marker stays (and shows as drift)
    rest = before.removesuffix("\n\n") if not after.strip() else before + after.lstrip("\n")
    return (rest or None), Marker(match.group("id"), match.group("digest"), match.group("env"))

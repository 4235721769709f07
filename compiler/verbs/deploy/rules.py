"""The two sides a plan compares: a rule as `build` renders it, and a rule as a service holds it."""

from __future__ import annotations

from dataclasses import dataclass

from .marker import Marker


@dataclass(frozen=True)
class DesiredRule:
    """A rule from RULES, as the build's deployable file gives it."""

    id: str
    title: str
    source: str  # the rule file, as diagnostics name it
    body: dict  # the request body (without the marker)
    content: dict  # normalised body: what the marker's hash covers
    digest: str  # content_hash(content)
    environment: str | None = None  # what the marker's `env` says (entra-sigma.toml's environment)

    @property
    def marker(self) -> Marker:
        return Marker(self.id, self.digest, self.environment)


@dataclass(frozen=True)
class DeployedRule:
    """A rule a service holds."""

    id: str
    title: str
    body: dict  # as read
    content: dict  # normalised, marker removed from the description
    marker: Marker | None
    version: str | None  # what a write must match: the ARM ETag, or Graph's lastModifiedDateTime

    @property
    def ours(self) -> bool:
        """Written by entra-sigma, for this very rule (not a portal copy of one of ours)."""
        return self.marker is not None and self.marker.rule_id.lower() == self.id.lower()


class Conflict(Exception):
    """The rule changed on the service since it was read (an ETag or precondition mismatch)."""

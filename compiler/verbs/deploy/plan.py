"""The plan: rule by rule, what deploying RULES would do to what is deployed.

Three hashes decide each rule that entra-sigma deployed before: the marker's (what the last
deploy wrote), the deployed content's, and the content the rules give now.

- deployed = rules now (and the marker is current): *unchanged*;
- deployed = marker, rules differ: *update* (the rules changed);
- deployed ≠ marker: someone changed the rule since the last deploy, *drift*; apply restores
  the rules' version (an *update* when the rules changed too), or keeps it with
  `--keep-drifted`.

A rule the service holds under one of our ids without our marker is *foreign* and never
touched; one of ours that left RULES is *delete* with `--prune`, else *keep*. With an
environment (`--env`), "ours" is narrower: a rule whose marker names another environment is
never updated (*foreign*) or deleted (*keep*); one deployed without an environment is taken
over when RULES has it, and kept otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .content import FieldChange, comment_changes, comment_only, field_changes
from .desired import DesiredSet
from .marker import content_hash
from .rules import DeployedRule, DesiredRule

CREATE, UPDATE, DRIFT, UNCHANGED, DELETE = "create", "update", "drift", "unchanged", "delete"
KEEP, FOREIGN, SKIPPED = "keep", "foreign", "skipped"
WRITES = (CREATE, UPDATE, DRIFT, DELETE)


@dataclass
class Outcome:
    """What apply did with one change: `code` None when it succeeded."""

    done: str  # created, updated, restored, deleted, failed, conflict
    code: str | None = None
    message: str = ""
    warnings: list[tuple[str, str]] = field(default_factory=list)  # (code, message)

    @property
    def ok(self) -> bool:
        return self.code is None


@dataclass
class Change:
    action: str
    id: str
    title: str
    source: str | None
    desired: DesiredRule | None = None
    deployed: DeployedRule | None = None
    fields: list[FieldChange] = field(default_factory=list)  # deployed → rules
    drifted: bool = False  # changed on the service since the last deploy
    kept: bool = False  # --keep-drifted: leave it as it is
    reason: str = ""
    outcome: Outcome | None = None

    @property
    def writes(self) -> bool:
        return self.action in WRITES and not self.kept

    @property
    def error(self) -> tuple[str, str] | None:
        """(code, message) when this rule cannot be, or was not, deployed."""
        if self.action == FOREIGN:
            return "E603", self.reason
        if self.outcome is not None and not self.outcome.ok:
            return self.outcome.code, self.outcome.message
        return None


@dataclass
class Plan:
    target: str  # sentinel or defender
    scope: str  # the workspace or tenant, for people
    changes: list[Change]
    prune: bool = False
    applied: bool = False
    others: int = 0  # rules on the service that entra-sigma did not create (left alone)
    environment: str | None = None  # entra-sigma.toml's environment deployed (--env)

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    @property
    def has_changes(self) -> bool:
        return any(c.writes for c in self.changes)

    @property
    def errors(self) -> list[Change]:
        return [c for c in self.changes if c.error]


def make_plan(
    target: str, scope: str, desired: DesiredSet, deployed: dict[str, DeployedRule], *, prune: bool, keep_drifted: bool,
    environment: str | None = None,
) -> Plan:
    changes: list[Change] = []
    for key, rule in sorted(desired.rules.items()):
        changes.append(_rule_change(rule, deployed.get(key), keep_drifted, environment))
    for key, (title, source, reason) in sorted(desired.skipped.items()):
        remote = deployed.get(key)
        note = " (the deployed version stays)" if remote is not None and remote.ours else ""
        changes.append(Change(SKIPPED, key, title, source, deployed=remote, reason=reason + note))
    others = 0
    for key, remote in sorted(deployed.items()):
        if key in desired.rules or key in desired.skipped:
            continue
        if not remote.ours:
            others += 1
            continue
        if remote.marker.environment != environment:
            changes.append(Change(KEEP, remote.id, remote.title, None, deployed=remote, reason=_belongs(remote)))
        elif prune:
            changes.append(Change(DELETE, remote.id, remote.title, None, deployed=remote, reason="no longer in RULES"))
        else:
            changes.append(Change(KEEP, remote.id, remote.title, None, deployed=remote,
                                  reason="no longer in RULES; --prune deletes it"))
    return Plan(target, scope, changes, prune=prune, others=others, environment=environment)


def _belongs(remote: DeployedRule) -> str:
    owner = remote.marker.environment
    return (f"deployed by entra-sigma for environment '{owner}': this environment leaves it alone" if owner
            else "deployed by entra-sigma without an environment: an environment's --prune leaves it alone")


def _rule_change(rule: DesiredRule, remote: DeployedRule | None, keep_drifted: bool, environment: str | None = None) -> Change:
    change = Change(CREATE, rule.id, rule.title, rule.source, desired=rule, deployed=remote)
    if remote is None:
        return change
    if not remote.ours:
        change.action = FOREIGN
        owner = "a copy of another rule" if remote.marker is not None else "not created by entra-sigma"
        change.reason = f"the service holds a rule with this id, {owner} ({remote.title!r}): left alone"
        return change
    if remote.marker.environment not in (None, environment):
        change.action = FOREIGN
        change.reason = f"the service holds this rule for environment '{remote.marker.environment}' ({remote.title!r}): left alone"
        return change
    change.fields = field_changes(remote.content, rule.content)
    change.drifted = content_hash(remote.content) != remote.marker.digest
    if not change.fields and remote.marker.digest == rule.digest and remote.marker.environment == environment:
        change.action = UNCHANGED
    elif change.fields and not change.drifted and all(comment_only(f) for f in change.fields):
        # a moved rule file, a level that maps to the same severity: nothing runs or shows differently
        change.action = UNCHANGED
        severity = rule.content.get("properties", {}).get("severity") or \
            rule.content.get("detectionAction", {}).get("alertTemplate", {}).get("severity")
        lines = "; ".join(line for f in change.fields for line in comment_changes(f, severity))
        change.reason = f"only the query's comments differ ({lines}): nothing to deploy; they go with the next real change"
    elif change.drifted and remote.marker.digest == rule.digest:
        change.action = DRIFT
    else:
        change.action = UPDATE
        if not change.fields and remote.marker.environment != environment:
            change.reason = f"deployed without an environment: the marker is written for environment '{environment}'"
        elif not change.fields:
            change.reason = "the content is already as the rules say; only the marker's hash is refreshed"
    if change.drifted and change.action != UNCHANGED:
        change.kept = keep_drifted
    return change

"""Per-environment overrides of a rule's settings, written into the rule before it is checked.

`[environments.prod.rules."<id or name>"]` sets the rule's `level`, and keys of its `sentinel:`
section (`queryFrequency`, `queryPeriod`, `triggerOperator`, `triggerThreshold`,
`suppression`); `enabled` sets both `sentinel.enabled` and Defender's `status`. The rule with
its overrides then goes through every check a rule's own settings go through (the rule schema,
the deployment planner's limits), and a problem with an overridden value is located at its line
in the project file.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..load.loader import RuleDocument
from .environment import Override


def names(override: Override, data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    reference = override.reference.strip().lower()
    return any(isinstance(data.get(k), str) and data[k].strip().lower() == reference for k in ("id", "name"))


def apply_override(document: RuleDocument, override: Override) -> RuleDocument:
    data = dict(document.data)
    positions = dict(document.positions)
    sentinel = dict(data.get("sentinel") or {}) if isinstance(data.get("sentinel"), (dict, type(None))) else data.get("sentinel")
    defender = dict(data.get("defender") or {}) if isinstance(data.get("defender"), (dict, type(None))) else data.get("defender")
    for key, value in override.settings.items():
        where = override.positions[(key,)]
        if key == "level":
            data["level"] = value
            positions[("level",)] = where
        elif key == "enabled" and isinstance(sentinel, dict) and isinstance(defender, dict):
            sentinel["enabled"] = value
            defender["status"] = "enabled" if value else "disabled"
            positions[("sentinel", "enabled")] = positions[("defender", "status")] = where
        elif key == "suppression" and isinstance(sentinel, dict):
            earlier = sentinel.get("suppression") if isinstance(sentinel.get("suppression"), dict) else {}
            sentinel["suppression"] = {**earlier, **value}
            positions[("sentinel", "suppression")] = where
            for inner in value:
                positions[("sentinel", "suppression", inner)] = override.positions[(key, inner)]
        elif isinstance(sentinel, dict):
            sentinel[key] = value
            positions[("sentinel", key)] = where
    if sentinel:
        data["sentinel"] = sentinel
    if defender:
        data["defender"] = defender
    return replace(document, data=data, positions=positions)

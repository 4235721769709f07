"""Sigma filters (Sigma Filters specification 2.1.0), applied exactly as pySigma 2 applies them.

A filter's selections join the detection of each rule it names (by id or name, or `any`) whose
logsource it matches, and the rule's condition becomes `(<rule condition>) and (<filter
condition>)` (`SigmaFilter.apply_on_rule`): a filter that removes matches therefore writes
`condition: not selection`. Correlation rules are left alone (their rules are filtered). The
selections are renamed with a prefix, and so is every name in the filter's condition (`them`
becomes `<prefix>_*`), so they never meet the rule's own; pySigma's prefix is random, ours is
the filter's place in the environment, so the output is the same on every run.

Before any rule sees it, a filter is checked on its own: its shape (schemas/filter.schema.json,
E708), and its selections and condition as a rule's would be (fields against the catalog,
modifiers, values), located in the filter's file.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from ..diagnostics import Diagnostic
from ..load.loader import RuleDocument
from .environment import Environment, Filter

CONDITION_KEYWORDS = frozenset({"not", "and", "or", "all", "any", "of", "1"})  # pySigma's _CONDITION_KEYWORDS
CONDITION_TOKEN = re.compile(r"[a-zA-Z*][a-zA-Z0-9*_-]*")
LOGSOURCE_KEYS = ("category", "product", "service")
NOT_SELECTIONS = ("condition", "rules")
CHECK_ID = "00000000-0000-4000-8000-000000000000"  # the id of the stand-in rule a filter is checked as


def selections(filter: Filter) -> dict[str, Any]:
    return {k: v for k, v in (filter.data.get("filter") or {}).items() if k not in NOT_SELECTIONS}


def logsource_matches(filter_logsource: Any, rule_logsource: Any) -> bool:
    """pySigma's `rule.logsource in filter.logsource`: every key the filter writes is the rule's."""
    theirs = filter_logsource if isinstance(filter_logsource, dict) else {}
    ours = rule_logsource if isinstance(rule_logsource, dict) else {}
    return all(theirs.get(key) is None or theirs.get(key) == ours.get(key) for key in LOGSOURCE_KEYS)


def names_rule(filter: Filter, data: dict) -> bool:
    rules = filter.rules
    if rules is None:
        return True
    own = {str(data[k]).strip().lower() for k in ("id", "name") if isinstance(data.get(k), str)}
    return any(reference.strip().lower() in own for reference in rules)


def applies(filter: Filter, data: Any) -> bool:
    """Whether pySigma would apply `filter` to the rule `data`."""
    if not isinstance(data, dict) or "correlation" in data:
        return False
    return logsource_matches(filter.data.get("logsource"), data.get("logsource")) and names_rule(filter, data)


def rename_condition(condition: str, prefix: str) -> str:
    """The filter's condition with every selection name (and pattern) prefixed, as pySigma does."""

    def token(found: re.Match) -> str:
        text = found.group(0)
        if text.lower() in CONDITION_KEYWORDS:
            return text
        return prefix + "_*" if text == "them" else f"{prefix}_{text}"

    return CONDITION_TOKEN.sub(token, condition)


def merge(document: RuleDocument, filter: Filter, number: int) -> RuleDocument:
    """The rule with the filter's selections and condition added (`number`: its place among the
    filters applied to this rule, for the prefix)."""
    data = document.data
    detection = data["detection"]
    prefix = f"_filt{number}"
    while any(str(name).startswith(prefix + "_") for name in detection):
        prefix = "_" + prefix
    positions = dict(document.positions)
    source = filter.document
    added = {}
    for name, body in selections(filter).items():
        added[f"{prefix}_{name}"] = body
        for path, position in source.positions.items():
            if path[:2] == ("filter", name):
                positions[("detection", f"{prefix}_{name}") + path[2:]] = (*position[:2], filter.display)
    condition = rename_condition(str(filter.data["filter"]["condition"]), prefix)
    written = detection["condition"]
    combined = [f"({c}) and ({condition})" for c in written] if isinstance(written, list) else f"({written}) and ({condition})"
    new_detection = {**{k: v for k, v in detection.items() if k != "condition"}, **added, "condition": combined}
    return replace(document, data={**data, "detection": new_detection}, positions=positions,
                   filters=document.filters + (filter.label,))


def apply_filters(document: RuleDocument, filters: tuple[Filter, ...]) -> RuleDocument:
    """Every filter that applies, in the environment's order."""
    number = 0
    for filter in filters:
        if applies(filter, document.data) and isinstance(document.data.get("detection"), dict):
            number += 1
            document = merge(document, filter, number)
    return document


# -- checking a filter on its own ------------------------------------------------------------------
def check_filter(filter: Filter, environment: Environment, catalog) -> list[Diagnostic]:
    """Why the filter cannot be applied (empty: it can): its selections and condition, built as a
    rule of its logsource would be (its shape was checked when it was read)."""
    return _check_as_rule(filter, environment, catalog)


def _check_as_rule(filter: Filter, environment: Environment, catalog) -> list[Diagnostic]:
    """The filter's selections and condition, built as a rule of its logsource would be."""
    from ..model.rule import build_rule
    from .placeholders import expand_placeholders

    logsource = filter.data.get("logsource") or {}
    if logsource.get("product") == "azure":
        stand_in = {"product": "azure", "service": "signinlogs"}
    else:
        service = logsource.get("service") if logsource.get("service") in ("interactive", "noninteractive", "serviceprincipal", "managedidentity") else "signins"
        stand_in = {"product": "entra", "service": service}
    source = filter.document
    detection = {**selections(filter), "condition": filter.data["filter"]["condition"]}
    positions = {("detection",) + path[1:]: position for path, position in source.positions.items() if path[:1] == ("filter",)}
    positions[()] = source.positions.get((), (1, 1))
    positions[("logsource",)] = source.location("logsource").line, source.location("logsource").column
    document = RuleDocument(source.path, source.display_path, {
        "title": filter.title, "id": CHECK_ID, "logsource": stand_in, "detection": detection,
    }, positions, source.index)
    expanded, problems = expand_placeholders(document, environment)
    if expanded is None:
        return problems
    _, found = build_rule(expanded, catalog)
    return problems + [d for d in found if d.severity == "error"]

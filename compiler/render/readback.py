"""The deployable files read back the way their readers read them, before a build writes them.

The templates put every value through a filter that escapes it for where it lands (`yaml_str`,
`yaml_text`, `arm_json`); this module is the second lock, and the one that holds when a user's
own template (`--templates`) forgets a filter:

- ARM evaluates a string that starts with `[` and ends with `]` as a template expression,
  unless it starts with `[[`, which stands for the literal text without its first `[`
  (Azure's ExpressionParser.IsLanguageExpression and ParseLanguageExpression). A string that
  does not end with `]` is literal as it is. `arm_escape` writes rule text so, and `check_arm`
  reads a rendered template the same way: no expression may appear that the template's own
  source does not hold, and the rule's text must read back exactly where the template puts it.
- The Sentinel YAML must load (duplicate keys refused: YAML keeps the last, which is how an
  injected second `query:` would win) into exactly the settings and query it was built from.
  With a user's template, every key ours writes must read back as built where it appears.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from .settings import Deployment


# -- ARM -------------------------------------------------------------------------------------
def arm_escape(text: str) -> str:
    """Literal text as an ARM template string: `[…]` becomes `[[…]`; anything else is literal already."""
    return "[" + text if text.startswith("[") and text.endswith("]") else text


def arm_literal(text: str) -> str | None:
    """What ARM makes of a string: the literal text, or None for an expression it would evaluate."""
    if text.startswith("[") and text.endswith("]") and len(text) >= 2:
        return text[1:] if text[1] == "[" else None
    return text


def arm_value(value: Any) -> Any:
    """A JSON value with every string in it (object keys too) escaped for ARM."""
    if isinstance(value, str):
        return arm_escape(value)
    if isinstance(value, dict):
        return {arm_escape(str(k)): arm_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [arm_value(v) for v in value]
    return value


def arm_strings(value: Any, path: str = "") -> list[tuple[str, str]]:
    """(path, string) for every string of a parsed template, object keys included."""
    if isinstance(value, str):
        return [(path, value)]
    found: list[tuple[str, str]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += [(f"{path}/{key} (key)", key)] + arm_strings(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += arm_strings(item, f"{path}/{index}")
    return found


def arm_read(value: Any) -> Any:
    """The parsed template's values as ARM reads them (an expression stays as written)."""
    if isinstance(value, str):
        literal = arm_literal(value)
        return value if literal is None else literal
    if isinstance(value, dict):
        return {arm_read(k): arm_read(v) for k, v in value.items()}
    if isinstance(value, list):
        return [arm_read(v) for v in value]
    return value


def arm_expected(deployment: Deployment, query: str) -> dict[str, Any]:
    """Path in the bundled template's alert rule resource → the rule text ARM must read there."""
    rule = deployment.rule
    return {
        "displayName": rule.title,
        "description": rule.description or rule.title,
        "query": query,
        "tactics": list(deployment.tactics),
        "techniques": list(deployment.parent_techniques),
        **({"customDetails": dict(deployment.custom_details)} if deployment.custom_details else {}),
        "entityMappings": [
            {"entityType": m.entity_type, "fieldMappings": [{"identifier": i, "columnName": c} for i, c in m.fields]}
            for m in deployment.entity_mappings
        ],
    }


def check_arm(text: str, deployment: Deployment, query: str, template_source: str) -> str | None:
    """Why this rendered ARM template is unsafe or wrong (None: it reads back as built)."""
    try:
        document = json.loads(text)
    except ValueError as error:
        return f"it is not JSON ({error})"
    allowed = set(re.findall(r'"(\[[^"\\]*\])"', template_source))  # the template's own expressions
    for path, value in arm_strings(document):
        if arm_literal(value) is None and value not in allowed:
            return f"ARM would evaluate {_short(value)} at {path} as an expression"
    resources = document.get("resources") if isinstance(document, dict) else None
    rules = [r for r in resources or [] if isinstance(r, dict) and r.get("type") == "Microsoft.SecurityInsights/alertRules"]
    for resource in rules:
        properties = arm_read(resource.get("properties") or {})
        for key, expected in arm_expected(deployment, query).items():
            if key in properties and properties[key] != expected:
                return f"'properties.{key}' reads back as {_short(properties[key])}, not as built"
    return None


# -- Sentinel YAML ---------------------------------------------------------------------------
def block_scalar_holds(text: str) -> bool:
    """Whether a literal block (`|`) gives back `text` plus the one line break it ends with:
    no hidden characters, no line break other than LF, no trailing spaces (finish() strips
    them), no leading or trailing blank lines, and a first line not indented."""
    lines = text.split("\n")
    return (
        text.strip("\n") == text
        and all(line.isprintable() and line == line.rstrip() for line in lines)
        and not lines[0].startswith(" ")
    )


class StrictLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser where PyYAML has it
    """Safe loading that refuses a key written twice in one mapping."""


def _no_duplicates(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"key {key!r} written twice", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 90 else text[:88] + "…"


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


def block_text(text: str) -> str:
    """What free text (a description, the query) loads as: written as a block, it gains the
    block's final line break; else it is quoted, and exact."""
    return text + "\n" if block_scalar_holds(text) else text


def sentinel_expected(deployment: Deployment, query: str) -> dict[str, Any]:
    """The analytics rule's settings and query, as the YAML file must load (empty lists are
    written as a bare key, which loads as null)."""
    d, rule = deployment, deployment.rule
    data: dict[str, Any] = {
        "id": rule.id, "name": rule.title, "description": block_text(rule.description or rule.title), "severity": d.severity,
        "requiredDataConnectors": [{"connectorId": "AzureActiveDirectory", "dataTypes": list(d.required_tables) or None}],
        "queryFrequency": d.query_frequency, "queryPeriod": d.query_period,
        "triggerOperator": d.trigger_operator, "triggerThreshold": d.trigger_threshold,
        "tactics": list(d.tactics) or None, "relevantTechniques": list(d.techniques) or None,
        "query": block_text(query.strip()),
        "entityMappings": [
            {"entityType": m.entity_type, "fieldMappings": [{"identifier": i, "columnName": c} for i, c in m.fields] or None}
            for m in d.entity_mappings
        ] or None,
    }
    if d.custom_details:
        data["customDetails"] = dict(d.custom_details)
    data["eventGroupingSettings"] = {"aggregationKind": d.event_grouping}
    if d.suppression_enabled:
        data.update(suppressionEnabled=True, suppressionDuration=d.suppression_duration)
    grouping = {
        "enabled": d.grouping["enabled"], "reopenClosedIncident": d.grouping["reopenClosedIncident"],
        "lookbackDuration": d.grouping["lookback"], "matchingMethod": d.grouping["matchingMethod"],
    }
    if d.grouping.get("groupByEntities"):
        grouping["groupByEntities"] = list(d.grouping["groupByEntities"])
    data["incidentConfiguration"] = {"createIncident": d.create_incident, "groupingConfiguration": grouping}
    data.update(version="1.0.0", kind="Scheduled")
    return data


def check_sentinel_yaml(text: str, deployment: Deployment, query: str, bundled: bool) -> str | None:
    """Why this rendered analytics rule does not load as built (None: it does). With the
    bundled template the whole file must equal the settings; with a user's, each key ours
    writes must, where it appears."""
    try:
        loaded = yaml.load(text, Loader=StrictLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        return f"it is not valid YAML ({getattr(error, 'problem', None) or error}{f' at line {mark.line + 1}' if mark else ''})"
    if not isinstance(loaded, dict):
        return "it is not a YAML mapping"
    expected = sentinel_expected(deployment, query)
    for key, value in expected.items():
        if (bundled or key in loaded) and loaded.get(key) != value:
            return f"'{key}' reads back as {_short(loaded.get(key))}, not as built"
    extra = sorted(set(loaded) - set(expected))
    if bundled and extra:
        return f"it holds a key the rule did not set: {extra[0]!r}"
    return None

"""The published contracts the fake services check every request body against.

Sentinel: the Scheduled alert rule definitions of the 2025-09-01 OpenAPI document
(tests/reference/securityinsights-alertrules.openapi.json), turned into a JSON Schema here —
`#/definitions/...` refs resolved in the document, the two `common/AlertTypes.json` enums
taken from tests/reference/sentinel-scheduled-alert-rule.schema.json (which copied them from
that file), ARM's `ResourceWithEtag` envelope written out (id, name, type and systemData
read-only; etag writable), `format: duration` given the ISO 8601 pattern and `int32` its
range, and `readOnly` properties refused in a request. The flattened reference schema
(additionalProperties false) is checked as well, so a misspelt property is caught too.

Defender: tests/reference/defender-detection-rule.schema.json, read-only fields refused; a PATCH is a partial body, so
it is checked without the schema's `required` lists at the top level.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path

from jsonschema import Draft202012Validator

REFERENCE = Path(__file__).parent / "reference"
OPENAPI = REFERENCE / "securityinsights-alertrules.openapi.json"
SENTINEL_SCHEMA = REFERENCE / "sentinel-scheduled-alert-rule.schema.json"
DEFENDER_SCHEMA = REFERENCE / "defender-detection-rule.schema.json"
MAX_QUERY_LENGTH = 10_000  # Sentinel's service limit; this spec version states no maxLength
ISO_DURATION = r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$"
RESOURCE_WITH_ETAG = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "readOnly": True},
        "name": {"type": "string", "readOnly": True},
        "type": {"type": "string", "readOnly": True},
        "systemData": {"type": "object", "readOnly": True},
        "etag": {"type": "string"},
    },
}


def _load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def _convert(node, external: dict[str, dict]):
    """An OpenAPI 2.0 schema node → JSON Schema 2020-12 (refs into $defs, formats as patterns)."""
    if isinstance(node, list):
        return [_convert(item, external) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$ref":
            out[key] = "#/$defs/" + value.rsplit("/", 1)[1] if value.startswith("#/definitions/") else external[value]
        elif key.startswith("x-ms-") or key in ("discriminator", "example"):
            continue
        elif key == "properties":
            out[key] = {name: _convert(schema, external) for name, schema in value.items()}
        else:
            out[key] = _convert(value, external)
    if out.get("format") == "duration":
        out["pattern"] = ISO_DURATION
    if out.get("format") == "int32":
        out.update(minimum=-(2 ** 31), maximum=2 ** 31 - 1)
    if out.pop("readOnly", False):
        out = {"not": {}, "description": "read-only: never sent in a request"}
    return out


def _reachable(definitions: dict, start: str) -> set[str]:
    """The definitions `start` refers to, directly or not (the document also defines other rule kinds)."""
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [ref.rsplit("/", 1)[1] for ref in _refs(definitions[name]) if ref.startswith("#/definitions/")]
    return seen


def _refs(node) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


@lru_cache(maxsize=1)
def openapi_scheduled_rule_schema() -> dict:
    """ScheduledAlertRule from the OpenAPI document, as a JSON Schema for a PUT body."""
    document = _load(OPENAPI)
    reference = _load(SENTINEL_SCHEMA)["$defs"]
    external = {
        "./common/AlertTypes.json#/definitions/AlertSeverityEnum": "#/$defs/AlertSeverityEnum",
        "./common/AlertTypes.json#/definitions/AttackTactic": "#/$defs/AttackTactic",
        "../../common/2.0/types.json#/definitions/ResourceWithEtag": "#/$defs/ResourceWithEtag",
    }
    needed = _reachable(document["definitions"], "ScheduledAlertRule")
    definitions = {name: _convert(document["definitions"][name], external) for name in sorted(needed)}
    definitions["AlertSeverityEnum"] = reference["AlertSeverity"]
    definitions["AttackTactic"] = reference["AttackTactic"]
    definitions["ResourceWithEtag"] = _convert(RESOURCE_WITH_ETAG, external)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$defs": definitions,
        "allOf": [{"$ref": "#/$defs/ScheduledAlertRule"}],
        "properties": {"kind": {"const": "Scheduled"}},
        "required": ["kind", "properties"],
    }


@lru_cache(maxsize=1)
def sentinel_validators() -> tuple[Draft202012Validator, Draft202012Validator]:
    strict = _load(SENTINEL_SCHEMA)  # validates the `properties` object
    checker = Draft202012Validator.FORMAT_CHECKER
    return (
        Draft202012Validator(openapi_scheduled_rule_schema(), format_checker=checker),
        Draft202012Validator(strict, format_checker=checker),
    )


def sentinel_body_errors(body) -> list[str]:
    openapi, strict = sentinel_validators()
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}" for e in openapi.iter_errors(body)]
    if isinstance(body, dict):
        errors += [f"properties/{'/'.join(map(str, e.absolute_path))}: {e.message}"
                   for e in strict.iter_errors(body.get("properties"))]
        errors += [f"{key}: not part of a request body" for key in sorted(body.keys() - {"kind", "etag", "properties"})]
    query = body.get("properties", {}).get("query") if isinstance(body, dict) else None
    if isinstance(query, str) and len(query) > MAX_QUERY_LENGTH:
        errors.append(f"properties/query: {len(query)} characters, more than {MAX_QUERY_LENGTH}")
    return errors


def _refuse_read_only(node):
    """A read-only property (createdBy, lastRunDetails, ...) is never part of a request."""
    if isinstance(node, dict):
        for name, child in (node.get("properties") or {}).items():
            if isinstance(child, dict) and child.get("readOnly"):
                node["properties"][name] = {"not": {}, "description": "read-only: never sent in a request"}
        for value in node.values():
            _refuse_read_only(value)
    elif isinstance(node, list):
        for item in node:
            _refuse_read_only(item)


@lru_cache(maxsize=2)
def defender_validator(partial: bool) -> Draft202012Validator:
    schema = copy.deepcopy(_load(DEFENDER_SCHEMA))
    _refuse_read_only(schema)
    if partial:
        schema.pop("required", None)
        schema.pop("anyOf", None)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def defender_body_errors(body, partial: bool = False) -> list[str]:
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
              for e in defender_validator(partial).iter_errors(body)]
    if isinstance(body, dict):
        for deprecated in ("isEnabled",):
            if deprecated in body:
                errors.append(f"{deprecated}: deprecated (removal announced for 2026-10-01)")
        if isinstance(body.get("schedule"), dict) and "period" in body["schedule"]:
            errors.append("schedule/period: deprecated (removal announced for 2026-10-01)")
        if not partial and not {"id", "status"} <= body.keys():
            errors.append("(body): the current shape needs 'id' and 'status'")
    return errors

"""What deploy knows about the two APIs agrees with their published contracts, and the fake services enforce them."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from entra_sigma.verbs.deploy import defender, sentinel

from tests.api_contract import (
    DEFENDER_SCHEMA,
    MAX_QUERY_LENGTH,
    OPENAPI,
    defender_body_errors,
    openapi_scheduled_rule_schema,
    sentinel_body_errors,
)

REFERENCE = Path(__file__).parent / "reference"
SENTINEL_EXAMPLE = json.loads((REFERENCE / "samples" / "sentinel-create-scheduled-alert-rule.example.json").read_text(encoding="utf-8"))
DEFENDER_EXAMPLE = json.loads((REFERENCE / "samples" / "defender-create-detection-rule-current.example.json").read_text(encoding="utf-8"))


def schema_paths(schema: dict, defs: dict, keyword: str, value, path: str = "", seen: frozenset = frozenset()) -> set[str]:
    """Dotted paths of the properties whose schema has `keyword: value` (following $ref and allOf)."""
    found: set[str] = set()
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen or name not in defs:
            return found
        return schema_paths(defs[name], defs, keyword, value, path, seen | {name})
    if schema.get(keyword) == value and path:
        found.add(path)
    for part in schema.get("allOf", []):
        found |= schema_paths(part, defs, keyword, value, path, seen)
    for name, child in (schema.get("properties") or {}).items():
        found |= schema_paths(child, defs, keyword, value, f"{path}.{name}" if path else name, seen)
    return found


def openapi_paths(keyword: str, value) -> set[str]:
    document = json.loads(OPENAPI.read_text(encoding="utf-8"))
    return schema_paths(document["definitions"]["ScheduledAlertRule"], document["definitions"], keyword, value)


def test_the_api_version_is_the_documents():
    assert json.loads(OPENAPI.read_text(encoding="utf-8"))["info"]["version"] == sentinel.API_VERSION


def test_sentinel_ignores_exactly_the_read_only_fields():
    envelope = {"id", "name", "type", "etag", "systemData"}  # ARM's ResourceWithEtag (common types, not copied)
    assert openapi_paths("readOnly", True) == {"properties.lastModifiedUtc"}
    assert sentinel.IGNORED == envelope | openapi_paths("readOnly", True)


def test_sentinel_knows_every_duration_field():
    assert sentinel.DURATIONS == openapi_paths("format", "duration")


def test_defender_ignores_every_read_only_field_and_only_the_documented_aliases():
    schema = json.loads(DEFENDER_SCHEMA.read_text(encoding="utf-8"))
    read_only = schema_paths(schema, schema["$defs"], "readOnly", True)
    deprecated = schema_paths(schema, schema["$defs"], "deprecated", True)
    assert read_only and read_only <= defender.IGNORED
    assert defender.IGNORED - read_only == {"id"} | (deprecated & {"isEnabled", "schedule.period"})
    assert defender.DURATIONS == schema_paths(schema, schema["$defs"], "format", "duration")


def test_the_published_examples_pass_the_fake_services_checks():
    assert sentinel_body_errors(SENTINEL_EXAMPLE["parameters"]["alertRule"]) == []
    assert defender_body_errors(DEFENDER_EXAMPLE) == []


@pytest.fixture(scope="module")
def deployable(bundled) -> dict[str, str]:
    """The bundled rules' ARM templates and Defender detections (built once per session)."""
    assert bundled.outputs.ok
    return {p: t for p, t in bundled.outputs.files.items() if p.startswith(("arm/", "defender/detections/"))}


def test_every_bundled_rule_is_a_valid_request_with_its_marker(deployable):
    errors: dict[str, list[str]] = {}
    for path, text in sorted(deployable.items()):
        if path.startswith("arm/"):
            rule = sentinel.SentinelTarget.desired(text, path)
            problems = sentinel_body_errors(sentinel.SentinelTarget.marked(rule))
        else:
            rule = defender.DefenderTarget.desired(text, path)
            problems = defender_body_errors(defender.DefenderTarget.marked(rule))
        if problems:
            errors[path] = problems
    assert len(deployable) > 30
    assert errors == {}


GOOD = SENTINEL_EXAMPLE["parameters"]["alertRule"]


@pytest.mark.parametrize("change, expected", [
    (lambda b: b["properties"].pop("queryFrequency"), "'queryFrequency' is a required property"),
    (lambda b: b["properties"].update(severity="Critical"), "'Critical' is not one of"),
    (lambda b: b["properties"].update(queryPeriod="5h"), "'5h' does not match"),
    (lambda b: b["properties"].update(tactics=["Persistance"]), "'Persistance' is not one of"),
    (lambda b: b["properties"].update(lastModifiedUtc="2026-01-01T00:00:00Z"), "properties/lastModifiedUtc"),
    (lambda b: b["properties"].update(colour="red"), "'colour' was unexpected"),
    (lambda b: b["properties"].update(query="x" * (MAX_QUERY_LENGTH + 1)), "10001 characters, more than 10000"),
    (lambda b: b["properties"].update(triggerThreshold=2 ** 31), "is greater than the maximum"),
    (lambda b: b.update(kind="Fusion"), "'Scheduled' was expected"),
    (lambda b: b.update(name="x"), "name: not part of a request body"),
])
def test_the_fake_sentinel_refuses_what_the_contract_refuses(change, expected):
    body = copy.deepcopy(GOOD)
    change(body)
    assert any(expected in error for error in sentinel_body_errors(body)), sentinel_body_errors(body)


@pytest.mark.parametrize("change, expected, partial", [
    (lambda b: b.pop("queryCondition"), "'queryCondition' is a required property", False),
    (lambda b: b.update(isEnabled=True), "isEnabled: deprecated", False),
    (lambda b: b["schedule"].update(period="1H"), "schedule/period: deprecated", False),
    (lambda b: b["schedule"].update(frequency="1h"), "'1h' does not match", False),
    (lambda b: b["detectionAction"]["alertTemplate"].update(severity="critical"), "'critical' is not one of", False),
    (lambda b: b.update(createdBy="me"), "createdBy: 'me' should not be valid", False),
    (lambda b: b["schedule"].update(nextRunDateTime="2026-01-01T00:00:00Z"), "schedule/nextRunDateTime", True),
    (lambda b: b.pop("id"), "the current shape needs 'id' and 'status'", False),
])
def test_the_fake_defender_refuses_what_the_contract_refuses(change, expected, partial):
    body = copy.deepcopy(DEFENDER_EXAMPLE)
    change(body)
    errors = defender_body_errors(body, partial)
    assert errors and any(expected in error for error in errors), errors


def test_a_patch_may_leave_out_what_it_does_not_change():
    assert defender_body_errors({"displayName": "renamed"}, partial=True) == []
    assert defender_body_errors({"displayName": "renamed"}, partial=False) != []
    assert defender_body_errors({"status": "on"}, partial=True) != []


def test_the_openapi_schema_is_built_from_the_document():
    schema = openapi_scheduled_rule_schema()
    assert set(schema["$defs"]) >= {"ScheduledAlertRule", "ScheduledAlertRuleProperties", "IncidentConfiguration"}
    assert schema["$defs"]["GroupingConfiguration"]["properties"]["matchingMethod"]["enum"] == ["AllEntities", "AnyAlert", "Selected"]

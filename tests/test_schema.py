"""validate/schema.py: the rule document against rules.schema.json; every violation is one located E002."""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.diagnostics import Diagnostic, SourceLocation
from entra_sigma.load.loader import parse_yaml
from entra_sigma.validate.schema import rule_validator, validate_document

GOOD = """title: t
id: 0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c
logsource: {product: entra, service: signins}
detection:
  sel: {userPrincipalName: a}
  condition: sel
"""


def validate(text: str) -> list[str]:
    document, problems = parse_yaml(text, Path("r.yml"), "r.yml")
    assert problems == []
    return [str(d) for d in validate_document(document)]


def test_a_good_rule_has_no_findings():
    assert validate(GOOD) == []


def test_the_rule_schema_is_a_valid_draft_2020_12_schema():
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    Draft202012Validator.check_schema(rule_validator().schema)  # the compiler trusts it without checking
    with pytest.raises(SchemaError):
        Draft202012Validator.check_schema({**rule_validator().schema, "type": "no such type"})


def test_the_validator_is_built_once():
    assert rule_validator() is rule_validator()


def test_not_a_mapping():
    document, _ = parse_yaml("- a\n- b\n", Path("r.yml"), "r.yml")
    assert validate_document(document) == [
        Diagnostic("E002", "a rule must be a YAML mapping", SourceLocation("r.yml", 1, 1))
    ]


def test_missing_top_level_key_is_located_at_the_file_and_has_no_rule_name():
    assert validate(GOOD.replace("title: t\n", "")) == ["r.yml:1:1: error: missing required key 'title'"]


def test_missing_nested_key_names_its_parent_and_points_at_it():
    assert validate(GOOD.replace("  condition: sel\n", "")) == [
        "r.yml:4:1: error: missing required key 'condition' in 'detection' in rule 't'"
    ]
    assert validate(GOOD.replace("{product: entra, service: signins}", "{product: entra}")) == [
        "r.yml:3:1: error: missing required key 'service' in 'logsource' in rule 't'"
    ]


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c", "not-a-uuid",
         "r.yml:2:1: error: 'id' must be a UUID, not 'not-a-uuid' in rule 't'"),
        ("service: signins", "service: azure",
         "r.yml:3:29: error: 'logsource.service' must be one of signins, interactive, noninteractive, "
         "serviceprincipal, managedidentity, not 'azure' in rule 't'"),
        ("product: entra", "product: windows",
         "r.yml:3:13: error: 'logsource.product' must be entra (or azure, with service signinlogs as SigmaHQ writes it), not 'windows' in rule 't'"),
        ("  condition: sel\n", "  condition: sel\n  timeframe: 5m\n",
         "r.yml:7:3: error: Sigma v1 aggregation ('timeframe') is not supported: write a correlation rule (docs/correlations.md) in rule 't'"),
    ],
    ids=["id-pattern", "service-enum", "product-const", "timeframe"],
)
def test_each_violation_has_a_readable_message_at_the_offending_key(old, new, expected):
    assert validate(GOOD.replace(old, new)) == [expected]


def test_list_items_are_located_at_the_item():
    assert validate(GOOD + "tags:\n  - attack.t1078\n  - Attack.T1\n") == [
        "r.yml:9:5: error: 'tags.1': 'Attack.T1' does not match '^[a-z0-9_.-]+$' in rule 't'"
    ]


def test_every_violation_is_reported_not_just_the_first():
    text = GOOD.replace("title: t\n", "") + "level: severe\nstatus: done\n"
    assert validate(text) == [
        "r.yml:1:1: error: missing required key 'title'",
        "r.yml:6:1: error: 'level' must be one of informational, low, medium, high, critical, not 'severe'",
        "r.yml:7:1: error: 'status' must be one of stable, test, experimental, deprecated, unsupported, not 'done'",
    ]


def test_deployment_settings_are_checked_too():
    assert validate(GOOD + "sentinel: {queryFrequency: 0m}\n") == [
        "r.yml:7:12: error: 'sentinel.queryFrequency': '0m' does not match '^[1-9][0-9]*[mhd]$' in rule 't'"
    ]
    assert validate(GOOD + "defender: {table: DeviceEvents}\n") == [
        "r.yml:7:12: error: 'defender.table' must be one of EntraIdSignInEvents, AADSignInEventsBeta, "
        "EntraIdSpnSignInEvents, not 'DeviceEvents' in rule 't'"
    ]


def test_a_bad_key_in_a_selection_is_called_an_invalid_key():
    assert validate(GOOD.replace("{userPrincipalName: a}", "{'user name': a}")) == [
        "r.yml:5:3: error: invalid key 'user name' in 'detection.sel' in rule 't'"
    ]


def test_the_fast_check_agrees_with_jsonschema_on_every_rule_file_in_the_repository():
    """Big rule sets are first checked by fastjsonschema; it must never accept what jsonschema refuses."""
    from entra_sigma.load.loader import load_documents
    from entra_sigma.model import sigmahq
    from entra_sigma.validate.schema import is_valid_fast, rule_validator

    repo = Path(__file__).resolve().parents[1]
    documents, _ = load_documents([repo / "rules", repo / "tests"])
    checked = [d for d in documents if isinstance(d.data, dict)]
    assert len(checked) > 150
    invalid = 0
    for document in checked:
        data = sigmahq.schema_view(document.data)
        expected = rule_validator().is_valid(data)
        invalid += not expected
        assert is_valid_fast(data) == expected, document.display_path
    assert invalid > 5  # the bad cases are in the sample


# -- issue 20, item 11: messages that say what to write ------------------------------------------------
def test_an_unknown_key_is_reported_at_the_key_with_the_nearest_allowed_one():
    text = GOOD + "sentinel:\n  triggerThreshod: 5\n  severty: High\n"
    assert validate(text) == [
        "r.yml:9:3: error: unknown key 'severty' in 'sentinel' in rule 't' (sentinel takes customDetails, enabled, "
        "entityMappings, eventGrouping, incident, queryFrequency, queryPeriod, suppression, triggerOperator, "
        "triggerThreshold)",  # the severity comes from `level`
        "r.yml:8:3: error: unknown key 'triggerThreshod' in 'sentinel' in rule 't' (did you mean 'triggerThreshold'?)",
    ]


@pytest.mark.parametrize("empty", ["{}", "[]"])
def test_an_empty_selection_says_it_is_empty(empty):
    assert validate(GOOD.replace("sel: {userPrincipalName: a}", f"sel: {empty}")) == [
        "r.yml:5:3: error: 'detection.sel' is empty: a selection maps fields to values (or lists values or such maps) "
        "in rule 't'"]


def test_a_settings_typo_hides_no_error_of_the_detection_and_builds_nothing(tmp_path):
    from entra_sigma.build import Compiler, build_outputs

    (tmp_path / "r.yml").write_text(GOOD.replace("userPrincipalName", "userPrincipalNam") + "sentinel:\n  triggerThreshod: 5\n",
                                    encoding="utf-8")
    outputs = build_outputs(Compiler(), [tmp_path])
    assert sorted((d.code, d.location.line) for d in outputs.diagnostics if d.severity == "error") == [("E002", 8), ("E101", 5)]
    assert not outputs.ok and all(entry["files"] == {} or all(p.endswith(".kql") for p in entry["files"])
                                  for entry in outputs.manifest["rules"])
    assert not any(path.startswith(("arm/", "sentinel/", "defender/detections/")) for path in outputs.files)

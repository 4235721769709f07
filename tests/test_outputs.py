"""Deployable outputs of the bundled rules: every format checked the way its consumer checks it.

- Sentinel YAML: the template rules the Azure-Sentinel repository enforces.
- ARM: valid JSON; the alert rule's properties validate against the published
  Microsoft.SecurityInsights 2025-09-01 schema (copy in tests/reference/).
- Defender custom detection: validates against the Graph beta detectionRule schema, in the
  current shape (id + status, schedule.frequency; no isEnabled or schedule.period).
- Defender hunting queries: Kusto.Language, zero diagnostics.
- Golden snapshots of every format for a handful of rules; byte-identical rebuilds.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import timedelta

import pytest
import yaml
from entra_sigma.build import Compiler, build_outputs
from entra_sigma.render.settings import attack_data
from jsonschema import Draft202012Validator

from .helpers import PACK, REPO, SNAPSHOTS, check_kql

RULES = REPO / "rules"
RULE_FILES = [p for p in RULES.rglob("*.yml") if not p.name.endswith(".tests.yml")]
REFERENCE = REPO / "tests" / "reference"
SNAPSHOT_RULES = ("aadsts-failures", "federated-signin", "mfa-push-denied")
SEVERITIES = {"Informational", "Low", "Medium", "High"}
OPERATORS = {"gt", "lt", "eq", "ne"}
DURATION = re.compile(r"^([0-9]+)([mhd])$")


def duration(text: str) -> timedelta:
    number, unit = DURATION.match(str(text)).groups()
    return timedelta(**{{"m": "minutes", "h": "hours", "d": "days"}[unit]: int(number)})


def validator(name: str) -> Draft202012Validator:
    schema = json.loads((REFERENCE / name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@pytest.fixture(scope="module")
def outputs(bundled):
    """Every format of the bundled rules, built once per session (conftest.py)."""
    return bundled.outputs


def files_of(outputs, folder: str, suffix: str) -> dict[str, str]:
    return {p: t for p, t in outputs.files.items() if p.startswith(folder + "/") and p.endswith(suffix)}


def test_build_is_clean_and_complete(outputs):
    assert outputs.ok, [str(d) for d in outputs.diagnostics]
    rules = sorted(p.relative_to(RULES).with_suffix("").as_posix() for p in RULE_FILES)
    for folder, suffix in (("kql", ".kql"), ("sentinel", ".yaml"), ("arm", ".json")):
        assert sorted(p.removeprefix(folder + "/").removesuffix(suffix) for p in files_of(outputs, folder, suffix)) == rules
    assert files_of(outputs, "defender/hunting", ".kql"), "no rule reaches Defender"


def test_manifest_lists_every_file_with_its_hash(outputs):
    listed = {}
    for entry in outputs.manifest["rules"]:
        listed.update(entry["files"])
    assert set(listed) == set(outputs.files)
    for path, digest in listed.items():
        assert hashlib.sha256(outputs.files[path].encode("utf-8")).hexdigest() == digest


def test_two_builds_are_byte_identical(outputs):
    again = build_outputs(Compiler(environment=PACK), [RULES])
    assert again.files == outputs.files
    assert json.dumps(again.manifest) == json.dumps(outputs.manifest)


def test_a_rule_defender_cannot_express_is_skipped_with_the_fields_named(outputs):
    entry = next(e for e in outputs.manifest["rules"] if e["source"].endswith("prt-unmanaged-device.yml"))
    assert "incomingTokenType" in entry["skipped"]["defender-hunting"]
    assert "EntraIdSignInEvents" in entry["skipped"]["defender-detection"]
    assert {"kql/tokens/prt-unmanaged-device.kql", "sentinel/tokens/prt-unmanaged-device.yaml", "arm/tokens/prt-unmanaged-device.json"} <= set(entry["files"])
    warnings = [d for d in outputs.diagnostics if d.location.path.endswith("prt-unmanaged-device.yml")]
    assert warnings and all(d.severity == "warning" and d.target == "defender" for d in warnings)


def test_sentinel_yaml_meets_azure_sentinel_template_rules(outputs):
    techniques = attack_data()["techniques"]
    tactic_names = {t["shortname"]: t["name"] for t in attack_data()["tactics"]}
    for path, text in files_of(outputs, "sentinel", ".yaml").items():
        template = yaml.safe_load(text)
        where = f"{path}: "
        for key in ("id", "name", "description", "severity", "requiredDataConnectors", "queryFrequency",
                    "queryPeriod", "triggerOperator", "triggerThreshold", "tactics", "relevantTechniques",
                    "query", "entityMappings", "version", "kind"):
            assert key in template, where + f"missing {key}"
        assert template["kind"] == "Scheduled"
        assert re.match(r"^[0-9a-f-]{36}$", template["id"])
        assert template["severity"] in SEVERITIES, where
        assert template["triggerOperator"] in OPERATORS, where
        assert 0 <= template["triggerThreshold"] <= 10_000, where
        assert len(template["query"]) <= 10_000, where
        frequency, period = duration(template["queryFrequency"]), duration(template["queryPeriod"])
        assert timedelta(minutes=5) <= frequency <= timedelta(days=14), where
        assert timedelta(minutes=5) <= period <= timedelta(days=14), where
        assert period >= frequency, where
        assert 1 <= len(template["entityMappings"]) <= 5, where
        for mapping in template["entityMappings"]:
            assert 1 <= len(mapping["fieldMappings"]) <= 3, where
        tactics = set(template["tactics"])
        for technique in template["relevantTechniques"]:
            own = {tactic_names[t] for t in techniques[technique]["tactics"]}
            assert own & tactics, where + f"{technique} without one of its tactics {sorted(own)}"
        assert template["requiredDataConnectors"][0]["dataTypes"], where
        assert "\n\n" not in template["query"].strip(), where + "a blank line splits a query in Log Analytics"


def test_arm_templates_validate_against_the_alert_rule_api_schema(outputs):
    schema = validator("sentinel-scheduled-alert-rule.schema.json")
    arm = files_of(outputs, "arm", ".json")
    for path, text in arm.items():
        document = json.loads(text)
        (resource,) = document["resources"]
        errors = [e.message for e in schema.iter_errors(resource["properties"])]
        assert errors == [], f"{path}: {errors}"
        assert resource["kind"] == "Scheduled"
        assert resource["type"] == "Microsoft.SecurityInsights/alertRules"
        assert "workspace" in document["parameters"]
        rule_id = yaml.safe_load(outputs.files[path.replace("arm/", "sentinel/").replace(".json", ".yaml")])["id"]
        assert resource["name"] == rule_id, "a stable name keeps redeployments from duplicating rules"
        assert resource["properties"]["queryFrequency"].startswith("P")


def test_defender_detections_validate_in_the_current_shape(outputs):
    schema = validator("defender-detection-rule.schema.json")
    detections = files_of(outputs, "defender/detections", ".json")
    assert detections
    for path, text in detections.items():
        body = json.loads(text)
        errors = [e.message for e in schema.iter_errors(body)]
        assert errors == [], f"{path}: {errors}"
        assert {"id", "status", "displayName", "queryCondition", "schedule", "detectionAction"} <= set(body)
        assert "isEnabled" not in body and "period" not in body["schedule"]
        query = body["queryCondition"]["queryText"]
        for column in ("Timestamp", "ReportId"):
            assert re.search(rf"\| project {column}\b|, {column}\b", query), f"{path}: custom detections need {column}"


def test_every_query_passes_kusto_language(outputs, kusto):
    queries = {p: t for p, t in outputs.files.items() if p.endswith(".kql")}
    for path, text in outputs.files.items():
        if path.startswith("defender/detections/"):
            queries[path] = json.loads(text)["queryCondition"]["queryText"]
        if path.startswith("arm/"):
            queries[path] = json.loads(text)["resources"][0]["properties"]["query"]
    results = check_kql(kusto, queries)
    assert {p: d for p, d in results.items() if d} == {}


@pytest.mark.parametrize("name", SNAPSHOT_RULES)
def test_golden_outputs(name, outputs, snapshot):
    snapshot.snapshot_dir = SNAPSHOTS / "outputs" / name
    produced = {p: t for p, t in outputs.files.items() if p.rsplit("/", 1)[-1].rsplit(".", 1)[0] == name}
    assert produced
    for path, text in sorted(produced.items()):
        snapshot.assert_match(text, path.replace("/", "__"))


def test_templates_override_lays_an_organisation_template_over_ours(outputs, kusto):
    custom = build_outputs(Compiler(templates=REPO / "docs" / "examples" / "templates", environment=PACK), [RULES])
    assert custom.ok
    kql = custom.files["kql/tokens/prt-unmanaged-device.kql"]
    assert kql.startswith("// Contoso SOC: generated by entra-sigma")
    assert kql.rstrip().endswith('| where not(userPrincipalName in~ ("breakglass1@contoso.com", "breakglass2@contoso.com"))')
    assert "breakglass1@contoso.com" in custom.files["sentinel/tokens/prt-unmanaged-device.yaml"]
    assert outputs.files["kql/tokens/prt-unmanaged-device.kql"] in kql  # the bundled query is wrapped, not copied
    assert check_kql(kusto, {"override": kql}) == {"override": []}


def test_the_override_example_also_works_for_a_rule_without_fields(kusto):
    from .helpers import compile_text

    rule = (RULES / "tokens" / "prt-unmanaged-device.yml").read_text(encoding="utf-8").split("\nfields:")[0] + "\n"
    text, diagnostics = compile_text(rule, compiler=Compiler(templates=REPO / "docs" / "examples" / "templates"))
    assert [d for d in diagnostics if d.severity == "error"] == []
    assert text.rstrip().endswith('| where not(UserPrincipalName in~ ("breakglass1@contoso.com", "breakglass2@contoso.com"))')
    assert check_kql(kusto, {"no-fields": text}) == {"no-fields": []}


def test_one_list_of_output_formats_gives_every_other_list():
    from entra_sigma.paths import TEMPLATES_DIR
    from entra_sigma.render.formats import ALL_FORMATS, BY_NAME, FORMATS, KQL_FORMATS, QUERY_TEMPLATES

    assert ALL_FORMATS == tuple(f.name for f in FORMATS) and set(BY_NAME) == set(ALL_FORMATS)
    assert KQL_FORMATS == ("kql", "defender-hunting")
    assert QUERY_TEMPLATES == {"sentinel": "kql/query.kql.j2", "defender": "defender/hunting-query.kql.j2"}
    assert len({f.layout for f in FORMATS}) == len(FORMATS)
    for spec in FORMATS:
        assert (TEMPLATES_DIR / spec.template).is_file(), spec.template
        assert spec.platform in ("sentinel", "defender") and "{name}" in spec.layout

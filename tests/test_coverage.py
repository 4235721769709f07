"""verbs/coverage/views.py and verbs/coverage/svg.py: what a rule pack covers, and its three views (the catalog
page, the ATT&CK Navigator layer, the field × rule grid), on small fixture packs; plus the
check that the committed docs/catalog.md and docs/coverage.svg are current."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from entra_sigma.build import Compiler
from entra_sigma.cli import app
from entra_sigma.render.settings import attack_data
from entra_sigma.verbs.coverage.svg import render_svg
from entra_sigma.verbs.coverage.views import Attack, collect, coverage_files, navigator_json, navigator_layer, render_markdown
from typer.testing import CliRunner

from .helpers import PACK, REPO

HINT = "run `.venv/bin/entra-sigma coverage rules --env prod --markdown docs/catalog.md --svg docs/coverage.svg`"

PASSWORD = """title: Wrong password | or expired
id: 5b7e1c3a-0d2f-4e6a-9b8c-1a2b3c4d5e01
tags: [attack.credential_access, attack.t1110.003, attack.initial_access, attack.t1078.004]
logsource: {product: entra, service: signins}
detection:
  sel:
    status.errorCode: [50126, 50055]
  same:
    userPrincipalName|fieldref: userDisplayName
  condition: sel and not same
fields: [userPrincipalName]
level: low
"""
UNMANAGED = """title: Token from an unmanaged device
id: 5b7e1c3a-0d2f-4e6a-9b8c-1a2b3c4d5e02
tags: [attack.defense_evasion, attack.t1550.001, attack.credential_access, attack.t1528]
logsource: {product: entra, service: interactive}
detection:
  sel:
    deviceDetail.isManaged: false
  condition: sel
level: high
"""
SPRAY = """title: Wrong password, to be counted
id: 5b7e1c3a-0d2f-4e6a-9b8c-1a2b3c4d5e03
name: wrong_password
tags: [attack.credential_access, attack.t1110.003]
logsource: {product: entra, service: signins}
detection:
  sel:
    status.errorCode: 50126
  condition: sel
---
title: Password spray from one address
id: 5b7e1c3a-0d2f-4e6a-9b8c-1a2b3c4d5e04
tags: [attack.credential_access, attack.t1110.003]
correlation:
  type: value_count
  rules: [wrong_password]
  group-by: [ipAddress]
  timespan: 1h
  condition:
    gte: 10
    field: userPrincipalName
level: high
"""


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    for relative, text in (("a/password.yml", PASSWORD), ("b/unmanaged.yml", UNMANAGED), ("spray.yml", SPRAY)):
        (rules / relative).parent.mkdir(parents=True, exist_ok=True)
        (rules / relative).write_text(text, encoding="utf-8")
    return rules


@pytest.fixture
def coverage(pack):
    result, diagnostics = collect(Compiler(), [pack])
    assert diagnostics == []
    return result


# -- the model -------------------------------------------------------------------------------
def test_rules_are_keyed_by_output_name_and_sigma_name(coverage):
    assert [r.key for r in coverage.rules] == ["a/password", "b/unmanaged", "spray", "spray/wrong_password"]
    assert coverage.files == 3


def test_fields_come_from_the_condition_including_fieldref_targets(coverage):
    rules = {r.key: r for r in coverage.rules}
    assert rules["a/password"].fields == ("status.errorCode", "userDisplayName", "userPrincipalName")
    assert rules["b/unmanaged"].fields == ("deviceDetail.isManaged",)
    assert rules["spray/wrong_password"].fields == ("status.errorCode",)


def test_correlation_lists_group_by_and_counted_fields_and_its_rules(coverage):
    rules = {r.key: r for r in coverage.rules}
    spray = rules["spray"]
    assert (spray.kind, spray.fields, spray.correlates) == ("value_count", ("ipAddress", "userPrincipalName"), ("spray/wrong_password",))
    assert spray.sentinel == ("SigninLogs", "AADNonInteractiveUserSignInLogs")
    assert spray.standalone and not rules["spray/wrong_password"].standalone


def test_tables_come_from_the_compiled_queries(coverage):
    rules = {r.key: r for r in coverage.rules}
    assert rules["a/password"].sentinel == ("SigninLogs", "AADNonInteractiveUserSignInLogs")
    assert rules["a/password"].defender == ("EntraIdSignInEvents",)
    assert rules["a/password"].defender_gap == ""
    assert rules["b/unmanaged"].sentinel == ("SigninLogs",)
    assert rules["b/unmanaged"].defender == ()
    assert rules["b/unmanaged"].defender_gap == "service 'interactive' has no defender sign-in table"


def test_tactics_in_attack_order_and_techniques_under_their_listed_tactics(coverage):
    rules = {r.key: r for r in coverage.rules}
    assert rules["a/password"].tactics == ("initial-access", "credential-access")
    assert rules["a/password"].pairs == (("T1078.004", "initial-access"), ("T1110.003", "credential-access"))
    assert rules["b/unmanaged"].pairs == (("T1528", "credential-access"), ("T1550.001", "defense-evasion"))


def test_summaries_count_rules_per_field_and_per_technique(coverage):
    fields = {f: [r.key for r in rs] for f, rs in coverage.by_field().items()}
    assert list(fields) == sorted(fields)
    assert fields["status.errorCode"] == ["a/password", "spray/wrong_password"]
    assert fields["ipAddress"] == ["spray"]
    techniques = {k: [r.key for r in rs] for k, rs in coverage.by_technique().items()}
    assert list(techniques) == [
        ("initial-access", "T1078.004"), ("defense-evasion", "T1550.001"),
        ("credential-access", "T1110.003"), ("credential-access", "T1528"),
    ]
    assert techniques[("credential-access", "T1110.003")] == ["a/password", "spray"]  # not the building block
    assert coverage.counts() == {
        "rules": 4, "correlations": 1, "fields": 5, "catalog": len(Compiler().catalog.fields),
        "techniques": 4, "tactics": 3, "sentinel": 4, "defender": 3,
    }


def test_attack_classify_keeps_a_technique_whose_tactic_is_not_listed():
    attack = Attack.bundled()
    assert attack.classify(("attack.t1110.003", "attack.credential-access", "attack.t9999", "other")) == (
        ("credential-access",), (("T1110.003", "credential-access"), ("T9999", None)),
    )
    assert attack.tactic_name("command-and-control") == "Command and Control"
    assert attack.technique_name("T1110.003") == "Brute Force: Password Spraying"
    assert attack.technique_name("T9999") == ""


def test_rule_errors_are_returned_not_raised(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(PASSWORD.replace("status.errorCode", "status.errorCod"), encoding="utf-8")
    result, diagnostics = collect(Compiler(), [bad])
    assert {d.code for d in diagnostics} == {"E101"}
    assert result.rules == ()


# -- the catalog page ------------------------------------------------------------------------
def page_links(text: str) -> list[str]:
    return re.findall(r"\]\(([^)\s]+)\)", text)


def test_markdown_lists_every_rule_with_working_links(coverage, tmp_path):
    page = tmp_path / "docs" / "catalog.md"
    text = render_markdown(coverage, page, tmp_path / "docs" / "img" / "grid.svg")
    assert text == render_markdown(coverage, page, tmp_path / "docs" / "img" / "grid.svg")
    assert text.endswith("\n") and not text.endswith("\n\n") and "\r" not in text
    rows = [line for line in text.splitlines() if line.startswith("| [")]
    assert [row.split("]")[0] for row in rows] == ["| [a/password", "| [b/unmanaged", "| [spray", "| [spray/wrong\\_password"]
    assert "| [a/password](../rules/a/password.yml) | Wrong password \\| or expired | low | Initial Access, Credential Access |" in text
    assert "(correlation: value\\_count of `spray/wrong_password`)" in text
    assert "Wrong password, to be counted (only inside correlations)" in text
    assert "- `b/unmanaged`: service 'interactive' has no defender sign-in table" in text
    assert "| `status.errorCode` | 2 | `a/password`, `spray/wrong_password` |" in text
    assert ("| Credential Access | [T1110.003](https://attack.mitre.org/techniques/T1110/003/) | "
            "Brute Force: Password Spraying | 2 | `a/password`, `spray` |") in text
    assert "![Beta fields (rows) used by each rule (columns)](img/grid.svg)" in text
    for link in page_links(text):
        if not link.startswith("https://"):
            assert (page.parent / link).resolve().is_file() or link == "img/grid.svg", link


def test_markdown_without_svg_shows_no_image(coverage, tmp_path):
    assert "![" not in render_markdown(coverage, tmp_path / "catalog.md", None)


# -- the Navigator layer ---------------------------------------------------------------------
OPTIONAL_TECHNIQUE_KEYS = {"tactic": str, "comment": str, "enabled": bool, "score": (int, float), "color": str,
                           "metadata": list, "links": list, "showSubtechniques": bool}


def assert_layer_shape(layer: dict) -> None:
    """The required keys and types of a layer, per the Navigator's layer format 4.5."""
    assert isinstance(layer["name"], str) and layer["name"]
    assert layer["domain"] in ("enterprise-attack", "mobile-attack", "ics-attack")
    versions = layer["versions"]
    assert versions["layer"] == "4.5"
    assert tuple(int(p) for p in versions["navigator"].split(".")) >= (4, 9, 0)
    assert isinstance(versions["attack"], str) and versions["attack"].isdigit()
    assert isinstance(layer["description"], str) and isinstance(layer["sorting"], int)
    assert isinstance(layer["hideDisabled"], bool)
    gradient = layer["gradient"]
    assert len(gradient["colors"]) >= 2 and all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in gradient["colors"])
    assert gradient["maxValue"] > gradient["minValue"]
    assert layer["layout"]["expandedSubtechniques"] in ("none", "all", "annotated")
    assert all(set(item) == {"name", "value"} for item in layer["metadata"])
    for technique in layer["techniques"]:
        assert re.fullmatch(r"T\d{4}(\.\d{3})?", technique["techniqueID"])
        for key, value in technique.items():
            if key != "techniqueID":
                assert isinstance(value, OPTIONAL_TECHNIQUE_KEYS[key]), (key, value)
        assert technique.get("tactic") is None or re.fullmatch(r"[a-z]+(-[a-z]+)*", technique["tactic"])


def test_navigator_layer_has_the_layer_shape_and_one_entry_per_technique_and_tactic(coverage):
    layer = json.loads(navigator_json(coverage))
    assert layer == navigator_layer(coverage)
    assert_layer_shape(layer)
    version = attack_data()["source"]["attackVersion"]
    assert version.startswith(f"enterprise-attack-{layer['versions']['attack']}.")
    assert [(t["techniqueID"], t["tactic"], t["score"]) for t in layer["techniques"]] == [
        ("T1078.004", "initial-access", 1), ("T1110.003", "credential-access", 2),
        ("T1528", "credential-access", 1), ("T1550.001", "defense-evasion", 1),
    ]
    spray = layer["techniques"][1]["comment"]
    assert spray == "Wrong password | or expired; Password spray from one address"
    techniques = attack_data()["techniques"]
    assert all(t["tactic"] in techniques[t["techniqueID"]]["tactics"] for t in layer["techniques"])
    assert layer["gradient"]["maxValue"] == 2


def test_navigator_skips_techniques_the_attack_data_lacks(pack):
    (pack / "a" / "password.yml").write_text(PASSWORD.replace("attack.t1078.004", "attack.t9999"), encoding="utf-8")
    coverage, _ = collect(Compiler(), [pack])
    assert "T9999" in {t for r in coverage.rules for t in r.techniques}
    assert "T9999" not in navigator_json(coverage)


def test_empty_pack_gives_valid_views(tmp_path):
    coverage, diagnostics = collect(Compiler(), [tmp_path])
    assert diagnostics == [] and coverage.rules == ()
    assert_layer_shape(navigator_layer(coverage))
    ET.fromstring(render_svg(coverage))
    assert "**0 rules** (0 of them correlations)" in render_markdown(coverage, tmp_path / "c.md", None)


# -- the SVG grid ----------------------------------------------------------------------------
SVG = "{http://www.w3.org/2000/svg}"


def test_svg_has_one_filled_cell_per_field_a_rule_uses(coverage):
    text = render_svg(coverage)
    assert text == render_svg(coverage)
    root = ET.fromstring(text)
    cells = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert sorted(r.find(f"{SVG}title").text for r in cells) == sorted(
        f"{f}: {r.key}" for r in coverage.rules for f in r.fields
    )
    spray = next(r for r in cells if r.find(f"{SVG}title").text == "ipAddress: spray")
    password = next(r for r in cells if r.find(f"{SVG}title").text == "status.errorCode: a/password")
    assert spray.get("fill") != password.get("fill")  # correlation cells look different
    labels = {t.text for t in root.iter(f"{SVG}text")}
    assert {r.key for r in coverage.rules} <= labels and set(coverage.by_field()) <= labels
    grid = [r for r in root.iter(f"{SVG}rect") if r.get("width") == r.get("height") == "16"]
    assert len(grid) == len(coverage.rules) * len(coverage.by_field()) + 2  # + the legend's two
    width = int(root.get("width"))
    assert all(int(r.get("x")) + 16 <= width for r in grid)


# -- the command -----------------------------------------------------------------------------
def test_command_writes_checks_and_reports(pack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    args = ["coverage", "rules", "--markdown", "docs/catalog.md", "--navigator", "layer.json", "--svg", "docs/grid.svg"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "4 rule(s), 1 of them correlation(s); 5 of "
        f"{len(Compiler().catalog.fields)} beta fields; 4 ATT&CK technique(s) in 3 tactic(s); "
        "4 with a Sentinel query, 3 with a Defender query\n"
    )
    assert "wrote docs/catalog.md" in result.stderr
    expected = coverage_files(collect(Compiler(environment=PACK), [Path("rules")])[0], Path("docs/catalog.md"), Path("layer.json"), Path("docs/grid.svg"))
    for path, text in expected.items():
        assert path.read_text(encoding="utf-8") == text
    assert "](grid.svg)" in Path("docs/catalog.md").read_text(encoding="utf-8")
    assert runner.invoke(app, [*args, "--check"]).exit_code == 0
    Path("layer.json").write_text("{}", encoding="utf-8")
    stale = runner.invoke(app, [*args, "--check"])
    assert stale.exit_code == 1 and "out of date: layer.json" in stale.stderr
    assert Path("layer.json").read_text(encoding="utf-8") == "{}"


def test_command_with_rule_errors_writes_nothing(pack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (pack / "bad.yml").write_text(UNMANAGED.replace("deviceDetail.isManaged", "deviceDetail.isManagd")
                                  .replace("5e02", "5e09").replace("Token from", "Bad token from"), encoding="utf-8")
    result = CliRunner().invoke(app, ["coverage", "rules", "--markdown", "catalog.md"])
    assert result.exit_code == 1
    assert "rules/bad.yml:7:5: error: unknown field 'deviceDetail.isManagd'" in result.stderr
    assert "nothing written" in result.stderr and not Path("catalog.md").exists()


@pytest.mark.parametrize("option", ["--markdown", "--navigator", "--svg"])
def test_an_output_named_dash_goes_to_standard_output(pack, tmp_path, monkeypatch, option):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["coverage", "rules", option, "-"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rules"], "no file named '-'"
    view = {"--markdown": "markdown", "--navigator": "navigator", "--svg": "svg"}[option]
    expected = coverage_files(collect(Compiler(environment=PACK), [Path("rules")])[0], **{view: Path("-")})
    assert result.stdout == expected[Path("-")]  # the file alone: the summary line goes to stderr
    assert result.stderr.startswith("4 rule(s), 1 of them correlation(s);") and "wrote" not in result.stderr


def test_a_page_on_standard_output_links_a_grid_written_to_a_file(pack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["coverage", "rules", "--markdown", "-", "--svg", "docs/grid.svg"])
    assert result.exit_code == 0, result.output
    assert "](docs/grid.svg)" in result.stdout and Path("docs/grid.svg").is_file()
    grid_on_stdout = CliRunner().invoke(app, ["coverage", "rules", "--markdown", "page.md", "--svg", "-"])
    assert grid_on_stdout.stdout.startswith("<svg") and "](-)" not in Path("page.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("args, message", [
    (["--markdown", "-", "--navigator", "-"], "--markdown and --navigator: only one output can go to standard output ('-')"),
    (["--svg", "-", "--check"], "--svg -: --check compares files, and standard output is not one"),
])
def test_dash_misuse_is_a_usage_error(pack, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["coverage", "rules", *args])
    assert result.exit_code == 2
    assert result.stderr == f"entra-sigma: error: {message}\n"


# -- the committed page ----------------------------------------------------------------------
def test_committed_catalog_and_grid_are_current():
    page, image = REPO / "docs" / "catalog.md", REPO / "docs" / "coverage.svg"
    coverage, diagnostics = collect(Compiler(environment=PACK), [REPO / "rules"])
    assert [d for d in diagnostics if d.severity == "error"] == [], diagnostics
    for path, text in coverage_files(coverage, markdown=page, svg=image).items():
        assert path.is_file(), f"{path.name} is missing: {HINT}"
        assert path.read_text(encoding="utf-8") == text, f"{path.name} is out of date: {HINT}"


ALIASED = """title: Tenant seen twice
id: 5b7e1c3a-0d2f-4e6a-9b8c-1a2b3c4d5e11
correlation:
  type: temporal
  rules: [home, resource]
  group-by: [tenant]
  timespan: 10m
  aliases:
    tenant:
      home: homeTenantId
      resource: resourceTenantId
    unused:
      home: userPrincipalName
      resource: userPrincipalName
---
title: Home tenant sign-in
id: 5b7e1c3a-0d2f-4e6a-9b8c-1a2b3c4d5e12
name: home
logsource: {product: entra, service: signins}
detection:
  sel: {appId: 1b730954-1685-4b74-9bfd-dac224a7b894}
  condition: sel
---
title: Resource tenant sign-in
id: 5b7e1c3a-0d2f-4e6a-9b8c-1a2b3c4d5e13
name: resource
logsource: {product: entra, service: signins}
detection:
  sel: {appId: 04b07795-8ddb-461a-bbee-02f9e1bf7b46}
  condition: sel
"""


def test_correlation_aliases_resolve_to_each_rules_field(tmp_path):
    (tmp_path / "tenant.yml").write_text(ALIASED, encoding="utf-8")
    coverage, diagnostics = collect(Compiler(), [tmp_path])
    assert diagnostics == []
    rules = {r.key: r for r in coverage.rules}
    assert list(rules) == ["tenant", "tenant/home", "tenant/resource"]
    assert rules["tenant"].kind == "temporal"
    assert rules["tenant"].fields == ("homeTenantId", "resourceTenantId")
    assert rules["tenant"].correlates == ("tenant/home", "tenant/resource")


def test_rules_of_one_name_given_as_files_keep_distinct_keys(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        text = UNMANAGED.replace("5e02", f"5e2{folder == 'b':d}").replace("Token", f"Token {folder}")
        (tmp_path / folder / "x.yml").write_text(text, encoding="utf-8")
    coverage, diagnostics = collect(Compiler(), [tmp_path / "a" / "x.yml", tmp_path / "b" / "x.yml"])
    assert diagnostics == []
    assert [r.key for r in coverage.rules] == ["x.yml#1", "x.yml#1~2"]
    folders, _ = collect(Compiler(), [tmp_path / "a", tmp_path / "b"])
    assert [r.key for r in folders.rules] == ["a/x.yml#1", "b/x.yml#1"]

"""`entra-sigma test`: cases pass, fail or are not replayed for the right reasons, and the
query replayed is the one shipped.

The bundled rules' own cases are replayed once, by `make test`'s second step
(`entra-sigma test --strict rules`: it fails on a failed or not replayed case, and on a rule
without both a `match` and a `no match` case), not again here."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from entra_sigma.build import Compiler, build_outputs
from entra_sigma.verbs.ruletests.replay import LocalEngine, NotReplayed
from entra_sigma.verbs.ruletests.run import FAILED, NOT_REPLAYED, PASSED, run_tests

from .helpers import REPO

RULE = """title: device code
id: 0c9d7e4a-3f2b-4a6e-8d15-7b2c9e1f4a99
logsource: {product: entra, service: signins}
detection:
  sel:
    authenticationProtocol: deviceCode
  condition: sel
"""
ARRAY_RULE = """title: denied push
id: 0c9d7e4a-3f2b-4a6e-8d15-7b2c9e1f4a98
logsource: {product: entra, service: signins}
detection:
  sel:
    authenticationDetails.authenticationStepResultDetail|contains: denied
  condition: sel
"""


def write(folder: Path, name: str, rule: str, tests: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.yml").write_text(rule, encoding="utf-8")
    if tests is not None:
        (folder / f"{name}.tests.yml").write_text(tests, encoding="utf-8")


def outcomes(folder: Path) -> dict[str, tuple[str, str]]:
    run = run_tests(Compiler(), [folder])
    return {r.case.name: (r.outcome, r.detail) for report in run.reports for r in report.results}


@pytest.mark.replay
def test_pass_fail_and_vacuous_cases(tmp_path):
    write(tmp_path / "rules", "dc", RULE, """cases:
  - name: right
    expect: match
    rows: {SigninLogs: [{AuthenticationProtocol: deviceCode}]}
  - name: wrong expectation
    expect: no match
    rows: {SigninLogs: [{AuthenticationProtocol: deviceCode}]}
  - name: json text table
    expect: match
    rows: {AADNonInteractiveUserSignInLogs: [{AuthenticationProtocol: deviceCode}]}
  - name: rows the query never reads
    expect: no match
    rows: {AADServicePrincipalSignInLogs: [{ServicePrincipalName: x}]}
""")
    result = outcomes(tmp_path / "rules")
    assert result["right"] == (PASSED, "")
    assert result["json text table"] == (PASSED, "")
    assert result["wrong expectation"][0] == FAILED
    assert "expected no match; the query returned 1 row(s)" in result["wrong expectation"][1]
    assert result["rows the query never reads"] == (
        FAILED, "the sentinel query reads none of AADServicePrincipalSignInLogs (it reads SigninLogs, AADNonInteractiveUserSignInLogs)",
    )


@pytest.mark.replay
def test_an_array_condition_is_replayed(tmp_path):
    write(tmp_path / "rules", "push", ARRAY_RULE, """cases:
  - name: denied
    expect: match
    rows:
      SigninLogs: [{AuthenticationDetails: [{authenticationStepResultDetail: MFA denied}]}]
  - name: approved
    expect: match
    rows:
      SigninLogs: [{AuthenticationDetails: [{authenticationStepResultDetail: MFA completed}]}]
""")
    result = outcomes(tmp_path / "rules")
    assert result["denied"] == (PASSED, "")
    assert result["approved"] == (FAILED, "sentinel: expected a match; the query returned no rows")


@pytest.mark.replay
def test_a_query_the_engine_cannot_run_is_not_replayed_never_passed(tmp_path, monkeypatch):
    """Whatever the engine refuses (tests/test_engine_seams.py makes it refuse for real): the case
    is counted apart, keeps the construct, its line and the reason, and fails --strict."""
    write(tmp_path / "rules", "push", ARRAY_RULE, """cases:
  - name: denied
    expect: match
    rows:
      SigninLogs: [{AuthenticationDetails: [{authenticationStepResultDetail: MFA denied}]}]
""")
    refused = NotReplayed("mv-apply", 6, "not run here")
    monkeypatch.setattr(LocalEngine, "run", lambda self, query: refused)
    run = run_tests(Compiler(), [tmp_path / "rules"])
    (result,) = run.reports[0].results
    assert (result.outcome, result.detail, result.not_replayed) == (
        NOT_REPLAYED, "sentinel: line 6: mv-apply: not run here", (("sentinel", refused),))
    assert run.ok and not run.strict_ok()


@pytest.mark.replay
def test_defender_rows_replay_the_defender_query(tmp_path):
    rule = RULE.replace("authenticationProtocol: deviceCode", "status.errorCode: 50126")
    write(tmp_path / "rules", "wrong", rule, """cases:
  - name: defender
    expect: match
    rows: {EntraIdSignInEvents: [{ErrorCode: 50126}]}
  - name: defender near miss
    expect: no match
    rows: {EntraIdSignInEvents: [{ErrorCode: 50053}]}
""")
    result = outcomes(tmp_path / "rules")
    assert result == {"defender": (PASSED, ""), "defender near miss": (PASSED, "")}


@pytest.mark.replay
def test_the_command_prints_per_rule_counts_and_fails_on_a_failure(tmp_path):
    write(tmp_path / "rules", "dc", RULE, """cases:
  - name: right
    expect: match
    rows: {SigninLogs: [{AuthenticationProtocol: deviceCode}]}
  - name: wrong
    expect: no match
    rows: {SigninLogs: [{AuthenticationProtocol: deviceCode}]}
""")
    write(tmp_path / "rules", "untested", RULE.replace("a99", "a97").replace("device code", "other"), None)
    done = run_cli(tmp_path, "test", "rules")
    assert done.returncode == 1
    assert "FAIL  rules/dc.yml: wrong" in done.stdout
    assert "rules/dc.yml       1       1             0" in done.stdout
    assert "2 case(s) in 1 rule file(s): 1 passed, 1 failed, 0 not replayed" in done.stdout
    assert "rules/untested.yml: warning: the rule has no test cases" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.replay
def test_strict_fails_on_a_rule_without_cases(tmp_path):
    write(tmp_path / "rules", "untested", RULE, None)
    plain = run_cli(tmp_path, "test", "rules")
    strict = run_cli(tmp_path, "test", "--strict", "rules")
    assert (plain.returncode, strict.returncode) == (0, 1)


def run_cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """The installed command, as a pipeline runs it."""
    command = shutil.which("entra-sigma", path=str(Path(sys.executable).parent)) or "entra-sigma"
    return subprocess.run([command, *args], cwd=cwd, capture_output=True, text=True)


def test_the_replayed_query_is_the_shipped_file_byte_for_byte(bundled):
    """What `test` runs is exactly what `build` writes to kql/ and defender/hunting/."""
    rules = REPO / "rules"
    outputs, result = bundled.outputs, bundled.build
    checked = 0
    for compiled in result.compiled:
        name = compiled.rule.document.path.resolve().relative_to(rules.resolve()).with_suffix("").as_posix()
        if compiled.rule.document.index or not compiled.rule.standalone:
            continue
        assert outputs.files[f"kql/{name}.kql"] == compiled.texts["sentinel"]
        if "defender" in compiled.texts:
            assert outputs.files[f"defender/hunting/{name}.kql"] == compiled.texts["defender"]
        checked += 1
    assert checked >= 10


@pytest.mark.replay
@pytest.mark.parametrize("table", ["SigninLogs", "AADNonInteractiveUserSignInLogs"])
def test_a_json_column_given_as_yaml_or_text_is_stored_alike(tmp_path, table):
    rule = RULE.replace("authenticationProtocol: deviceCode", "deviceDetail.isManaged: false")
    write(tmp_path / "rules", "unmanaged", rule, f"""cases:
  - name: yaml
    expect: match
    rows: {{{table}: [{{DeviceDetail: {{isManaged: false}}}}]}}
  - name: text
    expect: match
    rows: {{{table}: [{{DeviceDetail: '{{"isManaged": false}}'}}]}}
  - name: managed
    expect: no match
    rows: {{{table}: [{{DeviceDetail: '{{"isManaged": true}}'}}]}}
""")
    assert {k: v[0] for k, v in outcomes(tmp_path / "rules").items()} == {"yaml": PASSED, "text": PASSED, "managed": PASSED}


# -- a file with several rules: naming the one a case tests ---------------------------------------
PAIR = RULE + """---
title: ropc
name: ropc_signin
id: 0c9d7e4a-3f2b-4a6e-8d15-7b2c9e1f4a97
logsource: {product: entra, service: signins}
detection:
  sel:
    authenticationProtocol: ropc
  condition: sel
"""


@pytest.mark.replay
def test_a_case_naming_no_rule_of_the_file_lists_the_names_it_could_use(tmp_path):
    write(tmp_path / "rules", "pair", PAIR, """cases:
  - name: misspelt
    rule: ropc_sigin
    expect: match
    rows: {SigninLogs: [{AuthenticationProtocol: ropc}]}
  - name: unknown
    rule: something else
    expect: match
    rows: {SigninLogs: [{AuthenticationProtocol: ropc}]}
  - name: unnamed
    expect: match
    rows: {SigninLogs: [{AuthenticationProtocol: ropc}]}
  - name: by name
    rule: ropc_signin
    expect: match
    rows: {SigninLogs: [{AuthenticationProtocol: ropc}]}
""")
    result = outcomes(tmp_path / "rules")
    names = "'0c9d7e4a-3f2b-4a6e-8d15-7b2c9e1f4a99' ('device code'), 'ropc_signin' ('ropc')"
    assert result["misspelt"] == (
        FAILED, f"no rule 'ropc_sigin' is output from this file (did you mean 'ropc_signin'? rule: takes one of {names})")
    assert result["unknown"] == (FAILED, f"no rule 'something else' is output from this file (rule: takes one of {names})")
    assert result["unnamed"] == (FAILED, f"the file outputs several rules: say which with 'rule:' (one of {names})")
    assert result["by name"] == (PASSED, "")


def test_the_second_rule_of_a_file_is_named_by_its_name_in_output_files(tmp_path):
    write(tmp_path / "rules", "pair", PAIR, None)
    result = build_outputs(Compiler(), [tmp_path / "rules"])
    assert sorted(p for p in result.files if p.startswith("kql/")) == ["kql/pair.kql", "kql/pair.ropc_signin.kql"]


# -- a tests file is untrusted input too ----------------------------------------------------------------
CASES = """cases:
  - name: right
    expect: match
    rows: {SigninLogs: [{AuthenticationProtocol: deviceCode}]}
"""


def test_a_raw_control_character_in_a_tests_file_is_a_located_error(tmp_path):
    """It was an internal error (exit status 3), even in a comment."""
    write(tmp_path / "rules", "dc", RULE, CASES + "# a comment \x01\n")
    run = run_tests(Compiler(), [tmp_path / "rules"])
    assert [(d.code, str(d.location), d.message.split(",")[0]) for d in run.diagnostics] == [
        ("E001", "rules/dc.tests.yml:5:13", "invalid YAML: the character U+0001 cannot appear in a YAML file"),
    ]
    assert not run.ok


def test_a_tests_file_is_read_no_further_than_a_rule_file(tmp_path):
    write(tmp_path / "rules", "dc", RULE, CASES + "# " + "x" * (1 << 21) + "\n")
    run = run_tests(Compiler(), [tmp_path / "rules"])
    assert [(d.code, d.message) for d in run.diagnostics] == [
        ("E501", "cannot read test cases: the file is larger than 1 MiB, the most it may hold"),
    ]


def test_a_tests_file_that_links_out_of_the_folder_is_not_followed(tmp_path):
    (tmp_path / "outside.tests.yml").write_text(CASES, encoding="utf-8")
    write(tmp_path / "rules", "dc", RULE, None)
    (tmp_path / "rules" / "dc.tests.yml").symlink_to(tmp_path / "outside.tests.yml")
    run = run_tests(Compiler(), [tmp_path / "rules"])
    assert [(d.code, str(d.location), d.message) for d in run.diagnostics] == [
        ("E501", "rules/dc.tests.yml", "not followed: a symbolic link that leads outside the folder given"),
    ]
    assert not run.ok and run.reports == []

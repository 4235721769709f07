"""Tests files outside `test`'s replay (issue 20, item 10): `validate` checks them, a tests file
whose rule is gone is reported, a tests file given on the command line names its rule, one
schema error does not hide the other problems of the file, and `rule:` hints list titles.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.build import Compiler
from entra_sigma.cli import app
from entra_sigma.verbs.ruletests.cases import cases_from_text
from entra_sigma.verbs.ruletests.run import FAILED, run_tests
from typer.testing import CliRunner

from .helpers import REGISTRY
from .test_ruletests import PAIR, RULE, write

BROKEN = """cases:
  - name: right
    expect: matches
    rows: {SigninLogs: [{AuthenticationProtocol: deviceCode}]}
  - name: wrong table
    expect: no match
    rows: {SignInLogs: [{AuthenticationProtocol: deviceCode}]}
  - name: typed
    expect: no match
    rows: {SigninLogs: [{ResultType: 50126}]}
"""
EXPECTED = [
    ("E501", 3, "'expect' must be 'match', 'no match' or {groups: [...]}, not 'matches'"),
    ("E502", 7, "case 'wrong table': unknown table 'SignInLogs'"),
    ("E503", 10, "case 'typed': SigninLogs.ResultType is string; quote the value: '50126'"),
]


def run(*args: str, cwd: Path):
    import os

    old = os.getcwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(app, list(args))
    finally:
        os.chdir(old)


def test_one_schema_error_does_not_hide_the_other_problems_of_the_file():
    tests = cases_from_text(BROKEN, Path("dc.tests.yml"), "dc.tests.yml", REGISTRY)
    assert tests.cases == []
    assert [(d.code, d.location.line, d.message) for d in tests.diagnostics] == EXPECTED


def test_validate_checks_the_tests_files_and_reports_orphans(tmp_path: Path):
    write(tmp_path / "rules", "dc", RULE, BROKEN)
    (tmp_path / "rules" / "renamed.tests.yml").write_text(BROKEN, encoding="utf-8")
    result = run("validate", "rules", cwd=tmp_path)
    assert result.exit_code == 1
    for code, line, message in EXPECTED:
        assert f"rules/dc.tests.yml:{line}:" in result.stderr and message in result.stderr
    assert ("rules/renamed.tests.yml: warning: a tests file with no rule file beside it: its cases run for no rule "
            "(rename it after its rule (renamed.yml is missing), or delete it)") in result.stderr
    assert "rules/renamed.tests.yml:3:" not in result.stderr  # an orphan's cases are not checked against no rule


@pytest.mark.replay
def test_test_reports_orphans_and_takes_a_tests_file_as_naming_its_rule(tmp_path: Path):
    write(tmp_path / "rules", "dc", RULE, BROKEN.replace("matches", "match").replace("SignInLogs", "SigninLogs")
          .replace("{AuthenticationProtocol: deviceCode}]}\n  - name: typed", "{AuthenticationProtocol: ropc}]}\n  - name: typed")
          .replace("50126", '"50126"'))
    (tmp_path / "rules" / "gone.tests.yml").write_text(BROKEN, encoding="utf-8")
    whole = run("test", "rules", cwd=tmp_path)
    assert "rules/gone.tests.yml: warning: a tests file with no rule file beside it" in whole.stderr
    named = run("test", "rules/dc.tests.yml", cwd=tmp_path)
    assert named.exit_code == 0, named.output
    assert "3 case(s) in 1 rule file(s): 3 passed" in named.stdout
    assert "rules/dc.tests.yml:1:1: error" not in named.stderr  # not read as a rule
    alone = run("validate", "rules/gone.tests.yml", cwd=tmp_path)
    assert alone.exit_code == 1
    assert "rules/gone.tests.yml: error: a tests file, and no rule file beside it (gone.yml or gone.yaml)" in alone.stderr


@pytest.mark.replay
def test_the_rule_hint_lists_titles_as_well_as_names(tmp_path: Path):
    write(tmp_path / "rules", "pair", PAIR, """cases:
  - name: unnamed
    expect: match
    rows: {SigninLogs: [{AuthenticationProtocol: ropc}]}
""")
    (result,) = [r for report in run_tests(Compiler(), [tmp_path / "rules"]).reports for r in report.results]
    assert result.outcome == FAILED
    assert result.detail == ("the file outputs several rules: say which with 'rule:' "
                             "(one of '0c9d7e4a-3f2b-4a6e-8d15-7b2c9e1f4a99' ('device code'), 'ropc_signin' ('ropc'))")

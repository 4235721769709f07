"""`entra-sigma test` for pipelines (issue 20, item 4): every failed and not-replayed case is a
finding located at the case in its tests file (json, sarif, github), and `--format junit` writes
a JUnit XML report that CI tools read; the workflow `init` writes annotates failing cases.

The formats are checked on a run built by hand (a case not replayed does not depend on what the
local engine cannot run today), and end to end through the command and the init workflow's step.
"""

from __future__ import annotations

import json
from pathlib import Path

import junitparser
import pytest
from entra_sigma.diagnostics import Diagnostic, SourceLocation
from entra_sigma.verbs.ruletests.cases import Case
from entra_sigma.verbs.ruletests.results import render_github, render_json, render_junit, render_sarif
from entra_sigma.verbs.ruletests import run as ruletests_run
from entra_sigma.verbs.ruletests.run import FAILED, NOT_REPLAYED, PASSED, CaseResult, RuleReport
from entra_sigma.verbs.scaffold import EXAMPLE_RULE

from .helpers import command_env, shell
from .test_init import init, step_script, workflow
from .test_ruletests import RULE, run_cli, write

TESTS_FILE = "rules/dc.tests.yml"


def case(name: str, line: int) -> Case:
    return Case(name, "match", None, {}, None, SourceLocation(TESTS_FILE, line, 5))


def sample_run() -> ruletests_run.TestRun:
    report = RuleReport("rules/dc.yml", [
        CaseResult(case("passes", 2), PASSED),
        CaseResult(case("fails\n::error::forged", 6), FAILED, "sentinel: expected a match; the query returned no rows"),
        CaseResult(case("not run", 10), NOT_REPLAYED, "sentinel: the local engine cannot run mv-apply"),
    ])
    untested = Diagnostic("W501", "the rule has no test cases", SourceLocation("rules/other.yml"), "Other",
                          "add other.tests.yml beside it", severity="warning")
    broken = Diagnostic("E502", "case 'x': unknown table 'SignInLogs'", SourceLocation("rules/x.tests.yml", 5, 7))
    return ruletests_run.TestRun([report], [untested, broken], files=3)


def test_json_lists_each_case_and_a_finding_per_failed_or_not_replayed_case():
    document = json.loads(render_json(sample_run()))
    findings = {d["code"]: d for d in document["diagnostics"]}
    assert set(findings) == {"E504", "W504", "W501", "E502"}
    assert findings["E504"]["location"] == {"path": TESTS_FILE, "line": 6, "column": 5}
    assert findings["E504"]["severity"] == "error"
    assert findings["E504"]["message"].startswith("test case 'fails\\n::error::forged' failed: sentinel: expected a match")
    assert findings["W504"]["location"] == {"path": TESTS_FILE, "line": 10, "column": 5}
    assert findings["W504"]["severity"] == "warning"
    assert [(c["name"], c["outcome"]) for c in document["cases"]] == [
        ("passes", PASSED), ("fails\n::error::forged", FAILED), ("not run", NOT_REPLAYED)]
    assert document["summary"] == {"rule_files": 1, "cases": 3, "passed": 1, "failed": 1, "not_replayed": 1,
                                   "errors": 1, "warnings": 1}


def test_sarif_has_a_result_at_the_case_in_the_tests_file():
    results = json.loads(render_sarif(sample_run()))["runs"][0]["results"]
    located = {r["ruleId"]: (r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
                             r["locations"][0]["physicalLocation"].get("region", {}).get("startLine"), r["level"]) for r in results}
    assert located["E504"] == (TESTS_FILE, 6, "error")
    assert located["W504"] == (TESTS_FILE, 10, "warning")


def test_github_annotates_the_tests_file_and_no_case_name_forges_a_command():
    lines = render_github(sample_run()).splitlines()
    failed = next(line for line in lines if "E504" in line)
    assert failed.startswith(f"::error file={TESTS_FILE},line=6,col=5,title=entra-sigma E504::test case 'fails")
    assert not any(line.startswith("::error::forged") for line in lines)
    assert next(line for line in lines if "W504" in line).startswith(f"::warning file={TESTS_FILE},line=10,")


@pytest.mark.parametrize("strict", [False, True])
def test_junit_is_read_by_a_junit_reader(strict, tmp_path: Path):
    report = tmp_path / "report.xml"
    report.write_text(render_junit(sample_run(), strict), encoding="utf-8")
    suites = list(junitparser.JUnitXml.fromfile(str(report)))
    cases = {c.name: c for suite in suites for c in suite}
    assert suites[0].name == "rules/dc.yml" and suites[0].tests == 3
    assert cases["passes"].is_passed
    failure = cases["fails\\n::error::forged"].result[0]  # one line: no control character in XML
    assert isinstance(failure, junitparser.Failure) and failure.message.startswith("sentinel: expected a match")
    assert cases["fails\\n::error::forged"]._elem.get("file") == TESTS_FILE
    assert cases["fails\\n::error::forged"]._elem.get("line") == "6"
    not_run = cases["not run"].result[0]
    assert isinstance(not_run, junitparser.Failure if strict else junitparser.Skipped)  # --strict fails on it
    problems = [c for c in suites[-1]]
    assert suites[-1].name == "entra-sigma: rule and tests files"
    assert [c.result[0].type for c in problems] == (["W501", "E502"] if strict else ["E502"])
    assert all(isinstance(c.result[0], junitparser.Error) for c in problems)


def test_environments_are_named_in_the_findings_and_the_suites():
    from entra_sigma.project.environment import Environment
    from entra_sigma.verbs.ruletests.results import one_run

    run = sample_run()
    both = one_run([(Environment("dev", None), run), (Environment("prod", None), run)], run.diagnostics)
    failed = [d for d in json.loads(render_json(both))["diagnostics"] if d["code"] == "E504"]
    assert len(failed) == 1  # one finding, not one per environment
    assert "failed in environments dev, prod: sentinel" in failed[0]["message"]
    assert '<testsuite name="rules/dc.yml (dev)"' in render_junit(both) and '<testsuite name="rules/dc.yml (prod)"' in render_junit(both)


def test_the_same_run_gives_the_same_bytes():
    for render in (render_json, render_sarif, render_github, render_junit):
        assert render(sample_run()) == render(sample_run())


# -- through the command ---------------------------------------------------------------------------
FAILING = """cases:
  - name: right
    expect: match
    rows: {SigninLogs: [{AuthenticationProtocol: deviceCode}]}
  - name: wrong
    expect: no match
    rows: {SigninLogs: [{AuthenticationProtocol: deviceCode}]}
"""


@pytest.mark.replay
@pytest.mark.slow  # runs the command four times
def test_the_command_prints_each_format(tmp_path: Path):
    write(tmp_path / "rules", "dc", RULE, FAILING)
    done = {fmt: run_cli(tmp_path, "test", "rules", "--format", fmt) for fmt in ("json", "sarif", "github", "junit")}
    assert all(d.returncode == 1 for d in done.values())
    document = json.loads(done["json"].stdout)
    assert [(d["code"], d["location"]) for d in document["diagnostics"]] == [
        ("E504", {"path": "rules/dc.tests.yml", "line": 5, "column": 5})]
    assert done["json"].stderr == ""
    assert json.loads(done["sarif"].stdout)["runs"][0]["results"][0]["ruleId"] == "E504"
    assert done["github"].stderr.startswith("::error file=rules/dc.tests.yml,line=5,col=5,title=entra-sigma E504::")
    assert "FAIL  rules/dc.yml: wrong" in done["github"].stdout  # the log still reads as a report
    (tmp_path / "junit.xml").write_text(done["junit"].stdout, encoding="utf-8")
    suite = next(iter(junitparser.JUnitXml.fromfile(str(tmp_path / "junit.xml"))))
    assert (suite.tests, suite.failures) == (2, 1)


@pytest.mark.replay
@pytest.mark.slow  # runs the workflow's step in bash
def test_the_init_workflow_annotates_a_failing_case_on_its_tests_file(tmp_path: Path):
    """The issue's "done when": the Test step of the workflow `init` writes, run as the runner runs it
    (in both environments of the entra-sigma.toml it writes: one annotation names them)."""
    root = tmp_path / "repo"
    assert init(str(root)).exit_code == 0
    tests = root / EXAMPLE_RULE.replace(".yml", ".tests.yml")
    text = tests.read_text(encoding="utf-8")
    tests.write_text(text.replace("  - name: a browser signed in\n    expect: no match",
                                  "  - name: a browser signed in\n    expect: match"), encoding="utf-8")
    line = 1 + tests.read_text(encoding="utf-8").splitlines().index("  - name: a browser signed in")
    env = {**command_env(tmp_path), "RULES": workflow(root)["env"]["RULES"]}
    result = shell(step_script(root, "check", "Test"), root, env)
    assert result.returncode == 1
    annotations = [a for a in result.stderr.splitlines() if a.startswith("::")]
    assert annotations == [
        f"::error file=rules/scripting-client-signin.tests.yml,line={line},col=5,title=entra-sigma E504::"
        "test case 'a browser signed in' failed in environments dev, prod: sentinel: expected a match; the query returned no rows "
        "(the rule is rules/scripting-client-signin.yml)"]

"""`entra-sigma test` for machines: each failed or not-replayed case as a finding, and JUnit XML.

A pipeline reads the run in the format it asks for. Each failed case (E504) and each case not
replayed (W504) becomes a finding located at the case in its tests file, where the fix
belongs, next to the problems found in the rule and tests files themselves:

- `json`: one document with those findings (`diagnostics`), every case with its outcome
  (`cases`) and the counts (`summary`);
- `sarif`: SARIF 2.1.0, one result per finding;
- `github`: one workflow command (annotation) per finding, on the tests file's line;
- `junit`: a JUnit XML report (a test suite per rule file, a test case per case; a case not
  replayed is skipped, or a failure under `--strict`; problems in the files are errors of a
  suite of their own), which CI systems display as test results.

Everything is sorted and carries no time, so the same run gives the same bytes.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import asdict, replace

from ... import __version__
from ...console import json_for_console, one_line
from ...diagnostics import Diagnostic, format_github, format_sarif, sort_key
from .run import FAILED, NOT_REPLAYED, PASSED, CaseResult, RuleReport, TestRun

FAILED_CASE, NOT_REPLAYED_CASE = "E504", "W504"


def one_run(runs: list, diagnostics: list[Diagnostic]) -> TestRun:
    """The runs of several environments (`--all-envs`) as one, each report marked with its
    environment, for a format that holds one report."""
    reports = [replace(report, environment=environment.name) for environment, run in runs for report in run.reports]
    return TestRun(reports, diagnostics, max((run.files for _, run in runs), default=0))


def case_finding(report: RuleReport, result: CaseResult, environments: tuple[str, ...] = ()) -> Diagnostic | None:
    """The finding for one case (in `environments`, when it fails alike in each): None for a pass."""
    name = result.case.name
    where = f" in environment{'s' if len(environments) > 1 else ''} {', '.join(environments)}" if environments else ""
    if result.outcome == FAILED:
        return Diagnostic(FAILED_CASE, f"test case {name!r} failed{where}: {result.detail}", result.case.location,
                          hint=f"the rule is {report.source}")
    if result.outcome == NOT_REPLAYED:
        return Diagnostic(NOT_REPLAYED_CASE, f"test case {name!r} was not replayed{where}: {result.detail}",
                          result.case.location, hint="see docs/testing-rules.md", severity="warning")
    return None


def findings(run: TestRun) -> list[Diagnostic]:
    """The run's diagnostics and a finding per failed or not-replayed case, sorted; a case that
    fails alike in several environments is one finding naming them."""
    alike: dict[tuple, list[str]] = {}
    first: dict[tuple, tuple[RuleReport, CaseResult]] = {}
    for report in run.reports:
        for result in report.results:
            if result.outcome == PASSED:
                continue
            key = (report.source, result.case.location, result.case.name, result.outcome, result.detail)
            first.setdefault(key, (report, result))
            alike.setdefault(key, []).extend([report.environment] if report.environment else [])
    cases = [case_finding(*first[key], tuple(alike[key])) for key in first]
    return sorted([*run.diagnostics, *cases], key=sort_key)


def summary(run: TestRun) -> dict[str, int]:
    return {
        "rule_files": len(run.reports), "cases": sum(len(r.results) for r in run.reports),
        "passed": run.count(PASSED), "failed": run.count(FAILED), "not_replayed": run.count(NOT_REPLAYED),
        "errors": sum(1 for d in run.diagnostics if d.severity == "error"),
        "warnings": sum(1 for d in run.diagnostics if d.severity == "warning"),
    }


def render_json(run: TestRun, strict: bool = False) -> str:
    cases = [
        {"rule_file": report.source, "name": result.case.name, "outcome": result.outcome,
         "detail": result.detail or None, "location": asdict(result.case.location),
         **({"environment": report.environment} if report.environment else {})}
        for report in run.reports for result in report.results
    ]
    cases.sort(key=lambda c: (c["location"]["path"], c["location"]["line"], c["location"]["column"], c["name"],
                              c.get("environment") or ""))
    document = {"diagnostics": [d.to_json() for d in findings(run)], "cases": cases, "summary": summary(run)}
    return json_for_console(json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)) + "\n"


def render_sarif(run: TestRun, strict: bool = False) -> str:
    return format_sarif(findings(run), __version__)


def render_github(run: TestRun) -> str:
    return format_github(findings(run))


# -- JUnit XML ---------------------------------------------------------------------------------
def _text(value: object) -> str:
    """Text from rule and tests files, as one line XML 1.0 can hold (no control characters)."""
    return one_line(value)


def _case_element(report: RuleReport, result: CaseResult, strict: bool) -> ET.Element:
    location = result.case.location
    element = ET.Element("testcase", {
        "classname": _text(_suite_name(report)), "name": _text(result.case.name),
        "file": _text(location.path), "line": str(location.line),
    })
    if result.outcome == FAILED:
        ET.SubElement(element, "failure", {"message": _text(result.detail), "type": FAILED_CASE}).text = _text(
            f"{location}: {result.detail}")
    elif result.outcome == NOT_REPLAYED:
        kind = "failure" if strict else "skipped"
        reason = f"not replayed: {result.detail}"
        child = ET.SubElement(element, kind, {"message": _text(reason)} | ({"type": NOT_REPLAYED_CASE} if strict else {}))
        child.text = _text(f"{location}: {reason}")
    return element


def _suite_name(report: RuleReport) -> str:
    return f"{report.source} ({report.environment})" if report.environment else report.source


def _suite(name: str, cases: list[ET.Element]) -> ET.Element:
    suite = ET.Element("testsuite", {
        "name": _text(name), "tests": str(len(cases)),
        "failures": str(sum(1 for c in cases if c.find("failure") is not None)),
        "errors": str(sum(1 for c in cases if c.find("error") is not None)),
        "skipped": str(sum(1 for c in cases if c.find("skipped") is not None)),
    })
    suite.extend(cases)
    return suite


def _diagnostic_case(diagnostic: Diagnostic) -> ET.Element:
    """A problem in a rule or tests file that fails the run: an error of the `files` suite."""
    location = diagnostic.location
    element = ET.Element("testcase", {
        "classname": "entra-sigma", "name": _text(f"{location} {diagnostic.code}"),
        "file": _text(location.path), "line": str(location.line),
    })
    ET.SubElement(element, "error", {"message": _text(diagnostic.message), "type": diagnostic.code}).text = str(diagnostic)
    return element


def render_junit(run: TestRun, strict: bool = False) -> str:
    """The run as JUnit XML: a suite per rule file, and one for the problems that fail the run
    without being a case (errors; with `strict`, warnings too)."""
    suites = [
        _suite(_suite_name(report), [_case_element(report, r, strict) for r in sorted(report.results, key=lambda r: r.case.location)])
        for report in sorted(run.reports, key=lambda r: (r.source, r.environment or ""))
    ]
    failing = [d for d in sorted(run.diagnostics, key=sort_key) if d.severity == "error" or strict]
    if failing:
        suites.append(_suite("entra-sigma: rule and tests files", [_diagnostic_case(d) for d in failing]))
    root = ET.Element("testsuites", {
        "name": "entra-sigma test", "tests": str(sum(int(s.get("tests")) for s in suites)),
        "failures": str(sum(int(s.get("failures")) for s in suites)),
        "errors": str(sum(int(s.get("errors")) for s in suites)),
        "skipped": str(sum(int(s.get("skipped")) for s in suites)),
    })
    root.extend(suites)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


RENDERERS = {"json": render_json, "sarif": render_sarif, "junit": render_junit}

"""`entra-sigma test`: compile the rules, then replay each rule's cases through its shipped queries.

A case passes only when the engine ran the exact shipped query and the result is the one
expected. A case the engine cannot run is "not replayed" (with the construct, its line in the
query and the reason) — counted on its own, never as passed, and a failure under `--strict`. A
case whose rows fill no table the query reads is a failure: it would pass whatever the rule said.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from ...build import CompiledRule, Compiler
from ...convert.query import output_name
from ...diagnostics import Diagnostic, SourceLocation
from ...load.loader import discover, inside
from ...model import ir
from ...model.ir import Watchlist
from ...project.environment import NO_ENVIRONMENT, WatchlistValues
from .cases import Case, TestsFile, load_tests, tests_file_for
from .files import orphans
from .replay import LocalEngine, NotReplayed, Replayed

PASSED, FAILED, NOT_REPLAYED = "passed", "failed", "not replayed"


@dataclass
class CaseResult:
    case: Case
    outcome: str
    detail: str = ""
    # for a case not replayed: per platform, what the engine could not run (construct, line, reason)
    not_replayed: tuple[tuple[str, NotReplayed], ...] = ()


@dataclass
class RuleReport:
    source: str  # the rule file, as displayed
    results: list[CaseResult] = field(default_factory=list)
    environment: str | None = None  # replayed in this environment of entra-sigma.toml (--env)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)


@dataclass
class TestRun:
    reports: list[RuleReport]
    diagnostics: list[Diagnostic]
    files: int = 0  # rule files read

    def count(self, outcome: str) -> int:
        return sum(r.count(outcome) for r in self.reports)

    @property
    def ok(self) -> bool:
        return self.count(FAILED) == 0 and not any(d.severity == "error" for d in self.diagnostics)

    def strict_ok(self) -> bool:
        """`--strict`: also no warning, and every case replayed (a case the engine could not run
        proves nothing about the rule)."""
        return self.ok and self.count(NOT_REPLAYED) == 0 and not any(d.severity == "warning" for d in self.diagnostics)


def run_tests(compiler: Compiler, paths: list[Path]) -> TestRun:
    files, _ = discover(paths)
    # a tests file is read only where its rule could be: inside a folder given, or beside a file given
    boundaries = [os.path.realpath(p if p.is_dir() else p.parent) for p in paths]
    loaded = {file: _load(file, display, compiler, boundaries) for file, display in files}
    placeholders = {file: tests.placeholders for file, tests in loaded.items() if isinstance(tests, TestsFile) and tests.placeholders}
    if placeholders:  # a tests file's values for the placeholders of its rule
        environment = (compiler.environment or NO_ENVIRONMENT).with_file_placeholders(placeholders)
        compiler = replace(compiler, environment=environment)
    build = compiler.compile_paths(paths, ("sentinel", "defender"))
    diagnostics = [d for d in build.diagnostics if d.target != "defender"]
    defender_reasons = {d.location.path: d.message for d in build.diagnostics if d.target == "defender"}
    by_file: dict[Path, list[CompiledRule]] = {}
    for compiled in build.compiled:
        by_file.setdefault(compiled.rule.document.path.resolve(), []).append(compiled)
    failed_files = {d.location.path for d in diagnostics if d.severity == "error"}
    engine: LocalEngine | None = None
    reports = []
    for file, display in files:
        compiled = by_file.get(file, [])
        tests = loaded[file]
        if tests is None:
            if compiled:
                diagnostics.append(Diagnostic(
                    "W501", "the rule has no test cases", SourceLocation(display), compiled[0].rule.title,
                    f"add {file.name.rsplit('.', 1)[0]}.tests.yml beside it; see docs/testing-rules.md", severity="warning",
                ))
            continue
        if isinstance(tests, Diagnostic):
            diagnostics.append(tests)
            continue
        cases = tests.cases
        diagnostics += tests.diagnostics
        report = RuleReport(display)
        reports.append(report)
        for case in cases:
            if display in failed_files:
                report.results.append(CaseResult(case, FAILED, "the rule did not compile"))
                continue
            target, problem = tested_rule(compiled, case)
            if target is None:
                report.results.append(CaseResult(case, FAILED, problem))
                continue
            engine = engine or LocalEngine(compiler.registry)
            report.results.append(replay_case(engine, compiler, target, case, defender_reasons.get(display), tests.placeholders))
        diagnostics += coverage_warnings(cases, display)
    diagnostics += orphans(paths)
    return TestRun(reports, diagnostics, build.files)


def _load(file: Path, display: str, compiler: Compiler, boundaries: list[str]) -> TestsFile | Diagnostic | None:
    """The tests file beside a rule file, loaded (None: it has none); one reached through a
    link that leaves the folders given is not read (why, as a diagnostic)."""
    tests = tests_file_for(file)
    if tests is None:
        return None
    tests_display = display.rsplit("/", 1)[0] + "/" + tests.name if "/" in display else tests.name
    if not any(inside(os.path.realpath(tests), boundary) for boundary in boundaries):
        return Diagnostic("E501", "not followed: a symbolic link that leads outside the folder given", SourceLocation(tests_display))
    return load_tests(tests, tests_display, compiler.registry)


def _watchlists(rule) -> set[Watchlist]:
    """The watchlists a rule's query reads (a correlation's: its rules')."""
    found = {m.value for m in ir.walk_matches(rule.condition) if isinstance(m.value, Watchlist)} if rule.condition else set()
    for other in rule.correlation.rules if rule.correlation is not None else ():
        found |= _watchlists(other)
    return found


def _seeds(compiled: CompiledRule, placeholders) -> tuple[dict[str, tuple[str, tuple[str, ...]]], str | None]:
    """The rows of each watchlist the query reads, from the tests file: alias → (column,
    values); or why the case cannot be replayed (a watchlist without values here)."""
    given = {p.watchlist: p.values for p in placeholders.values() if isinstance(p, WatchlistValues) and p.values is not None}
    seeds = {}
    for watchlist in sorted(_watchlists(compiled.rule), key=lambda w: (w.alias, w.column)):
        if watchlist not in given:
            return {}, (f"the query reads the watchlist '{watchlist.alias}', and the tests file gives it no values: "
                        f"set them under 'placeholders' ({{watchlist: {watchlist.alias}, values: [...]}})")
        seeds[watchlist.alias] = (watchlist.column, given[watchlist])
    return seeds, None


def tested_rule(compiled: list[CompiledRule], case: Case) -> tuple[CompiledRule | None, str]:
    if case.rule is not None:
        for item in compiled:
            rule = item.rule
            if case.rule in (rule.id, rule.title, rule.data.get("name")):
                return item, ""
        if not compiled:
            return None, f"no rule '{case.rule}' is output from this file: it outputs none"
        names = [_rule_name(item) for item in compiled]
        spellings = {s: _rule_name(i) for i in compiled for s in (i.rule.id, i.rule.title, i.rule.data.get("name")) if s}
        close = difflib.get_close_matches(case.rule, list(spellings), n=1, cutoff=0.6)
        guess = f"did you mean '{spellings[close[0]]}'? " if close else ""
        return None, f"no rule '{case.rule}' is output from this file ({guess}rule: takes one of {_listing(names, compiled)})"
    if len(compiled) == 1:
        return compiled[0], ""
    if not compiled:
        return None, "this file outputs no rule (its rules are only correlated by others)"
    return None, f"the file outputs several rules: say which with 'rule:' (one of {_listing([_rule_name(i) for i in compiled], compiled)})"


def _rule_name(compiled: CompiledRule) -> str:
    """How a case names a rule best: its `name`, else its id."""
    name = compiled.rule.data.get("name")
    return name if isinstance(name, str) else compiled.rule.id


def _listing(names: list[str], compiled: list[CompiledRule] | None = None) -> str:
    """The names a case may give, each with its rule's title when that is another spelling."""
    titles = {_rule_name(item): item.rule.title for item in compiled or []}
    return ", ".join(f"'{name}'" + (f" ({titles[name]!r})" if titles.get(name) not in (None, name) else "") for name in names)


def replay_case(
    engine: LocalEngine, compiler: Compiler, compiled: CompiledRule, case: Case, defender_reason: str | None, placeholders,
) -> CaseResult:
    """Replay one case on every platform whose tables it fills; the worst outcome counts."""
    platforms = sorted({compiler.registry.tables[t].platform for t in case.rows})
    seeds, unseeded = _seeds(compiled, placeholders)
    if unseeded:
        return CaseResult(case, NOT_REPLAYED, unseeded)
    outcomes = []
    for platform in platforms:
        rows = {t: r for t, r in case.rows.items() if compiler.registry.tables[t].platform == platform}
        text = compiled.texts.get(platform)
        if text is None:
            reason = defender_reason or "the rule has no query there"
            outcomes.append(CaseResult(case, FAILED, f"rows for {', '.join(rows)}, but no {platform} query: {reason}"))
            continue
        read = compiled.queries[platform].tables
        if not set(rows) & set(read):
            outcomes.append(CaseResult(case, FAILED, f"the {platform} query reads none of {', '.join(rows)} (it reads {', '.join(read)})"))
            continue
        engine.load(rows, seeds)
        result = engine.run(text)
        if isinstance(result, NotReplayed):
            outcomes.append(CaseResult(case, NOT_REPLAYED, f"{platform}: {result}", ((platform, result),)))
        else:
            outcomes.append(_judge(case, result, platform))
    for outcome in (FAILED, NOT_REPLAYED, PASSED):
        chosen = [o for o in outcomes if o.outcome == outcome]
        if chosen:
            return CaseResult(case, outcome, "; ".join(o.detail for o in chosen if o.detail),
                              tuple(item for o in chosen for item in o.not_replayed))
    return CaseResult(case, FAILED, "nothing to replay")


def _judge(case: Case, result: Replayed, platform: str) -> CaseResult:
    count = len(result.rows)
    if case.expect == "match":
        return CaseResult(case, PASSED if count else FAILED, "" if count else f"{platform}: expected a match; the query returned no rows")
    if case.expect == "no match":
        if not count:
            return CaseResult(case, PASSED)
        return CaseResult(case, FAILED, f"{platform}: expected no match; the query returned {count} row(s), the first: {_row(result, 0)}")
    return _judge_groups(case, result, platform)


def _judge_groups(case: Case, result: Replayed, platform: str) -> CaseResult:
    names = sorted({name for group in case.groups for name, _ in group})
    columns = [output_name(name) for name in names]
    missing = [c for c in columns if c not in result.columns]
    if missing:
        return CaseResult(case, FAILED, f"{platform}: the result has no column {', '.join(missing)} (it has {', '.join(result.columns)})")
    positions = [result.columns.index(c) for c in columns]
    actual = {tuple(_plain(row[p]) for p in positions) for row in result.rows}
    expected = {tuple(_plain(dict(group).get(n)) for n in names) for group in case.groups}
    if actual == expected:
        return CaseResult(case, PASSED)
    problems = []
    if expected - actual:
        problems.append("missing " + "; ".join(_group(names, g) for g in sorted(expected - actual)))
    if actual - expected:
        problems.append("unexpected " + "; ".join(_group(names, g) for g in sorted(actual - expected)))
    return CaseResult(case, FAILED, f"{platform}: groups differ: " + ", ".join(problems))


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    return "" if value is None else str(value)


def _group(names: list[str], values: tuple) -> str:
    return ", ".join(f"{n}={v}" for n, v in zip(names, values))


def _row(result: Replayed, index: int) -> str:
    pairs = [f"{c}={_plain(v)}" for c, v in zip(result.columns, result.rows[index]) if v not in (None, "")]
    text = ", ".join(pairs)
    return text if len(text) <= 160 else text[:157] + "..."


def coverage_warnings(cases: list[Case], display: str) -> list[Diagnostic]:
    """A rule needs a case that matches and one that does not: either alone proves little."""
    if not cases:
        return []
    kinds = {case.kind for case in cases}
    return [
        Diagnostic("W502", f"the rule has no '{kind}' case", SourceLocation(display), None,
                   "near misses make the best 'no match' cases; see docs/testing-rules.md", severity="warning")
        for kind in ("match", "no match") if kind not in kinds
    ]

"""The findings for one file, made by the compiler's own checks, never by a copy of them.

A rule file gets what `validate` reports for it when its rules folder is validated
(`build.validate_documents` over the file and the files correlations join it to, plus the
duplicate ids and titles across the folder). A tests file gets what `entra-sigma test` checks
before and while replaying: its schema, tables, columns and value types (E501–E503, W503),
a `match` and a `no match` case (W502), each case's `rule:`, and the replay of each case
through the shipped query when the rule compiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...build import CompiledRule, Compiler, validate_documents
from ...diagnostics import Diagnostic, SourceLocation, sort_key
from ...load.loader import TEST_SUFFIXES, rule_file_beside
from .project import Project, Source

TEST_SOURCE = "entra-sigma test"  # a failed case is not a coded diagnostic: `test` reports it as a result


@dataclass
class Findings:
    """What a check found for one file: the compiler's diagnostics (located in that file), the
    files it was checked with, and for a tests file the cases that failed."""

    display: str
    diagnostics: list[Diagnostic]
    checked_with: list[Path] = field(default_factory=list)
    failures: list[tuple[SourceLocation, str]] = field(default_factory=list)  # (where, why) of failed cases


def check_rule_file(project: Project, compiler: Compiler, path: Path) -> Findings:
    """Everything `validate` reports for this file when its rules folder is validated."""
    path = path.resolve()
    sources = project.sources_with(path)
    own = next(s for s in sources if s.path == path)
    joined = project.component(path, sources)
    documents = [d for s in joined for d in s.documents]
    problems = [d for s in joined for d in s.problems]
    outputs = validate_documents(compiler, documents, problems, project.roots_of(path))
    found = [d for d in outputs.diagnostics if d.location.path == own.display and d.code != "E005"]
    found += project.duplicates(sources, own.display)
    return Findings(own.display, sorted(dict.fromkeys(found), key=sort_key), [s.path for s in joined])


def compiled_rules(project: Project, compiler: Compiler, path: Path, platforms=("sentinel", "defender")) -> tuple[list[CompiledRule], list[Diagnostic], Source | None]:
    """The rules of `path` as compiled with the files correlations join it to, and the
    diagnostics of `path` (as `compile` makes them, for `platforms`)."""
    path = path.resolve()
    sources = project.sources_with(path)
    own = next((s for s in sources if s.path == path), None)
    if own is None:
        return [], [], None
    joined = project.component(path, sources)
    result = compiler.compile_documents([d for s in joined for d in s.documents], [d for s in joined for d in s.problems], platforms)
    compiled = [c for c in result.compiled if c.rule.source == own.display]
    return compiled, [d for d in result.diagnostics if d.location.path == own.display], own


def rule_file_of(tests: Path) -> Path | None:
    """The rule file a tests file belongs to (`x.tests.yml` → `x.yml` or `x.yaml`)."""
    return rule_file_beside(tests)


def check_tests_file(project: Project, compiler: Compiler, path: Path, text: str, replay: bool = True) -> Findings:
    """What `entra-sigma test` checks in a tests file: its cases, and (with `replay`) their replay."""
    from ..ruletests.cases import cases_from_text
    from ..ruletests.run import FAILED, coverage_warnings, tested_rule

    path = path.resolve()
    display = project.display_path(path)
    tests = cases_from_text(text, path, display, compiler.registry)
    cases = tests.cases
    diagnostics = sorted([*tests.diagnostics, *coverage_warnings(cases, display)], key=sort_key)
    findings = Findings(display, diagnostics)
    rule_file = rule_file_of(path)
    if rule_file is None or not cases:
        return findings
    compiled, rule_problems, _ = compiled_rules(project, compiler, rule_file)
    compiled = [c for c in compiled if c.rule.standalone]
    broken = any(d.severity == "error" and d.target != "defender" for d in rule_problems)
    reasons = [d.message for d in rule_problems if d.target == "defender"]
    defender_reason = reasons[-1] if reasons else None  # as `test` picks it
    engine = None
    for case in cases:
        if broken:
            findings.failures.append((case.location, "the rule did not compile"))
            continue
        target, problem = tested_rule(compiled, case)
        if target is None:
            findings.failures.append((case.location, problem))
            continue
        if not replay:
            continue
        from ..ruletests.replay import LocalEngine
        from ..ruletests.run import replay_case

        engine = engine or LocalEngine(compiler.registry)
        result = replay_case(engine, compiler, target, case, defender_reason, tests.placeholders)
        if result.outcome == FAILED:
            findings.failures.append((case.location, result.detail))
    return findings

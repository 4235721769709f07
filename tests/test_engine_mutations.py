"""Mutation checks: the rule cases notice when the local engine's extension is broken.

Each test breaks one part of the extension on purpose and replays the cases of every rule whose
shipped query uses it (the pack's, and the third-party rules in tests/cases/third-party/). Every
such rule file must then have a failing case. Unbroken, the same cases pass (`make test`'s
`entra-sigma test --strict rules`, and tests/test_third_party_replay.py), so these cases really
test what the extension computes, not only that it runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.build import Compiler
from entra_sigma.verbs.ruletests.engine import ip_ranges, mv_apply
from entra_sigma.verbs.ruletests.run import FAILED, NOT_REPLAYED, run_tests

from .helpers import CASES, REPO

THIRD_PARTY = CASES / "third-party"


def _files_using(bundled, words: tuple[str, ...]) -> list[Path]:
    """The pack's rule files whose shipped Sentinel query holds one of `words`, and the
    third-party ones."""
    used = {
        compiled.rule.document.path.resolve()
        for compiled in bundled.build.compiled
        if any(word in compiled.texts.get("sentinel", "") for word in words)
    }
    third_party = {path.resolve() for path in THIRD_PARTY.glob("*.yml") if not path.name.endswith(".tests.yml")}
    return sorted(used) + sorted(third_party)


def _failing_files(files: list[Path]) -> dict[str, tuple[int, int]]:
    run = run_tests(Compiler(), files)
    assert run.count(NOT_REPLAYED) == 0
    return {report.source: (report.count(FAILED), len(report.results)) for report in run.reports}


@pytest.mark.slow
@pytest.mark.replay
def test_the_cases_fail_when_mv_apply_sees_no_elements(bundled, monkeypatch):
    files = _files_using(bundled, ("mv-apply",))
    assert len(files) >= 10  # the pack's eight files on arrays, and the third-party ones
    monkeypatch.setattr(mv_apply, "subtable_rows", lambda table: f"SELECT * FROM {table} WHERE FALSE")
    counts = _failing_files(files)
    assert len(counts) == len(files)
    assert {source: c for source, c in counts.items() if c[0] == 0} == {}


@pytest.mark.slow
@pytest.mark.replay
def test_the_cases_fail_when_every_address_is_in_every_range(bundled, monkeypatch):
    files = [f for f in _files_using(bundled, ("_is_in_range(",)) if f.read_text(encoding="utf-8").count("cidr")]
    assert len(files) >= 4  # the pack's remote-desktop rule, and the third-party ones with cidr
    assert any(REPO / "rules" in f.parents for f in files)
    monkeypatch.setattr(ip_ranges, "decide", lambda test: "TRUE")
    counts = _failing_files(files)
    assert {source: c for source, c in counts.items() if c[0] == 0} == {}

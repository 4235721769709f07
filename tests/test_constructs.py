"""Every construct on every table: golden KQL (or the exact error), and Kusto.Language accepts it.

Cases are tiny rules in tests/cases/constructs/; snapshots live in
tests/snapshots/constructs/<case>/<table>.kql (or <table>.error.txt when the construct
cannot be expressed on that table).
"""

from __future__ import annotations

import pytest
from entra_sigma.diagnostics import format_text

from .helpers import ALL_TABLES, CASES, SNAPSHOTS, check_kql, compile_text, platform_of

CONSTRUCTS = sorted(p.stem for p in (CASES / "constructs").glob("*.yml"))


def compile_case(case: str, table: str) -> tuple[str | None, str]:
    """The KQL (or None) and every diagnostic, errors and warnings, as text."""
    path = CASES / "constructs" / f"{case}.yml"
    text, diagnostics = compile_text(path.read_text(encoding="utf-8"), platform_of(table), table, f"constructs/{case}.yml")
    return text, format_text(diagnostics)


@pytest.fixture(scope="module")
def outputs():
    """All cases on all tables, compiled once."""
    return {(case, table): compile_case(case, table) for case in CONSTRUCTS for table in ALL_TABLES}


def test_there_are_constructs():
    assert len(CONSTRUCTS) >= 40


@pytest.mark.parametrize("table", ALL_TABLES)
@pytest.mark.parametrize("case", CONSTRUCTS)
def test_construct(case, table, outputs, snapshot):
    text, errors = outputs[(case, table)]
    snapshot.snapshot_dir = SNAPSHOTS / "constructs" / case
    if text is None:
        assert errors, "no query and no error"
        snapshot.assert_match(errors, f"{table}.error.txt")
    else:
        assert ": error: " not in errors
        snapshot.assert_match(text, f"{table}.kql")
        if errors:  # warnings, such as a returned field this table lacks
            snapshot.assert_match(errors, f"{table}.warnings.txt")


def test_every_construct_query_passes_kusto_language(outputs, kusto):
    """Every query of every case on every table, checked in one batch."""
    texts = {f"{case}/{table}": text for (case, table), (text, _) in outputs.items() if text}
    assert len(texts) >= len(CONSTRUCTS) * len(ALL_TABLES) // 2
    failed = {key: diagnostics for key, diagnostics in check_kql(kusto, texts).items() if diagnostics}
    assert failed == {}, "\n\n".join(f"{key}: {'; '.join(found)}\n{texts[key]}" for key, found in failed.items())


def test_no_orphaned_snapshots(outputs):
    """--snapshot-update never deletes: a golden file no case produces any more is stale."""
    expected = set()
    for (case, table), (text, errors) in outputs.items():
        if text is None:
            expected.add(f"{case}/{table}.error.txt")
        else:
            expected.add(f"{case}/{table}.kql")
            if errors:
                expected.add(f"{case}/{table}.warnings.txt")
    root = SNAPSHOTS / "constructs"
    present = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert sorted(present - expected) == []

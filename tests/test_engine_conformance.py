"""The local engine's extension (mv-apply, the IP range functions) held to Kusto.

tests/cases/engine/*.yml hold the examples of Kusto's reference pages with the results the pages
give (`documented`), the rules the pages state applied to more inputs (`described`), and the edge
cases the pages leave open (`silent`, each saying what we chose and why). Every case runs on the
local engine, which must return exactly those rows; and every query goes through
Kusto.Language, which must accept it and whose typing must give the columns, in order, that the
local engine returns (and `bool` where it returns a boolean). A `refused` case is one the local
engine does not run: it must say so, naming the construct, and never answer.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import yaml
from entra_sigma.map.tables import bundled_registry
from entra_sigma.verbs.ruletests.replay import LocalEngine, NotReplayed

from .helpers import CASES

FILES = sorted((CASES / "engine").glob("*.yml"))
LABELS = ("documented", "described", "silent")


def _cases() -> list[dict]:
    found = []
    for path in FILES:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        for case in document["cases"]:
            found.append({"page": document.get("page"), **case, "file": path.name})
    return found


CASES_ = _cases()
IDS = [f"{c['file'].removesuffix('.yml')}: {c['name']}" for c in CASES_]


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine(bundled_registry())


def test_every_case_says_where_its_answer_comes_from():
    assert {c["file"] for c in CASES_} == {"mv-apply.yml", "ip-ranges.yml"}
    for case in CASES_:
        labels = [label for label in LABELS if label in case]
        assert len(labels) == 1, (case["name"], labels)
        assert case["page"].startswith("https://learn.microsoft.com/kusto/query/"), case["name"]
        if labels != ["silent"]:
            assert case[labels[0]].startswith("#"), case["name"]  # the example's or the rule's anchor
        if labels == ["described"]:
            assert case.get("note"), case["name"]  # the rule, quoted
        assert ("refused" in case) != ("rows" in case), case["name"]
    documented = Counter(c["file"] for c in CASES_ if "documented" in c)
    assert documented["mv-apply.yml"] >= 7 and documented["ip-ranges.yml"] >= 8  # every example of the pages


@pytest.mark.replay
@pytest.mark.parametrize("case", CASES_, ids=IDS)
def test_the_local_engine_answers_as_kusto(engine, case):
    if "refused" in case:
        result = engine.run(case["query"])
        assert isinstance(result, NotReplayed) and result.construct == case["refused"], result
        assert result.line is not None
        return
    columns, types, rows = _run(engine, case["query"])
    assert columns == case["columns"]
    assert Counter(map(_key, rows)) == Counter(map(_key, case["rows"])), rows


@pytest.fixture(scope="module")
def typed(kusto) -> dict[str, Any]:
    """Kusto.Language's reading of every case's query, in one request."""
    return kusto.analyze([(name, c["query"]) for name, c in zip(IDS, CASES_)], tables={})


@pytest.mark.replay
@pytest.mark.parametrize("case", CASES_, ids=IDS)
def test_kusto_language_accepts_the_query_and_types_the_same_columns(typed, engine, case):
    analysis = typed[IDS[CASES_.index(case)]]
    assert [str(d) for d in analysis.diagnostics] == []
    if "refused" in case:
        return
    assert [name for name, _ in analysis.columns] == case["columns"]
    columns, types, _ = _run(engine, case["query"])
    for (name, kusto_type), duck_type in zip(analysis.columns, types):
        if kusto_type == "bool":
            assert duck_type == "BOOLEAN", name


def _run(engine: LocalEngine, query: str) -> tuple[list[str], list[str], list[list[Any]]]:
    """Columns, DuckDB types and rows, dynamic values parsed from their JSON."""
    sql = engine.translate(query)
    assert not isinstance(sql, NotReplayed), str(sql)
    relation = engine.connection.sql(sql)
    types = [str(t) for t in relation.types]
    rows = [[_plain(value, kind) for value, kind in zip(row, types)] for row in relation.fetchall()]
    return list(relation.columns), types, rows


def _plain(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "JSON":
        return json.loads(value)
    if kind == "JSON[]":
        return [None if v is None else json.loads(v) for v in value]
    return value


def _key(row: list[Any]) -> str:
    return json.dumps(row, sort_keys=True, default=str)

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


# Addresses for holding our parsing (plain expressions, ip_ranges.v4/v6) equal to duckdb-kql's
# own parse_ipv4/parse_ipv6, whose rules its author measured on Kusto.
ADDRESSES = [
    "192.168.1.1", "192.168.1.1/24", "255.255.255.255/31", "0.0.0.0/0", "10.0.0.1/32", " 203.0.113.10 ",
    "01.02.03.04", "256.1.1.1", "10.0.0", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "1.2.3.4.5", "", "abc",
    "2001:db8::1", "2001:DB8::/32", "2001:db8::/127", "::", "::/0", "::1/128", "fe80::1%eth0", "fe80::1%eth0/10",
    "a5e:f127:8a9d:146d:e102:b5d3:c755:abcd", "a5e:f127:8a9d:146d:e102:b5d3:c755:0000/112",
    "0:0:0:0:0:ffff:c0a8:ac/60", "::ffff:10.1.2.3", "::ffff:1.2.3.4/24", "1.2.3.4/24", "::ffff:1.2.3.4/120",
    "::ffff:a00:0/104", "1::2::3", "1:2:3:4:5:6:7:8:9", "2001:db8::g", "12345::1", "2001:db8::/129",
    "::1.2.3.400", "1:2:3:4:5:6:1.2.3.4",
]
# where ours is meant to differ: duckdb-kql 1.1.2 reads a prefix that is not a number as no prefix
NOT_A_NUMBER = {"10.0.0.0/x", "10.0.0.0/"}


@pytest.mark.replay
@pytest.mark.parametrize("text", ADDRESSES)
def test_our_address_parsing_is_duckdb_kqls(engine, text):
    from entra_sigma.verbs.ruletests.engine import ip_ranges

    literal = "'" + text + "'"
    ours4, ours6 = engine.connection.sql(
        f"SELECT {ip_ranges.v4(literal, '_t4')}, {ip_ranges.v6(literal, '_t6')}").fetchall()[0]
    theirs = engine.run(f"print v4 = parse_ipv4('{text}'), v6 = parse_ipv6('{text}')")
    assert not isinstance(theirs, NotReplayed), str(theirs)
    (theirs4, theirs6), = theirs.rows
    assert (ours4 or {}).get("v") == theirs4
    if text in NOT_A_NUMBER:
        assert ours6 is None
    else:
        assert (ours6 or {}).get("v") == (int(theirs6.replace(":", ""), 16) if theirs6 else None)

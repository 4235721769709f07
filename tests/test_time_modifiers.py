"""Sigma 2.1's time modifiers (`createdDateTime|hour: 3`), replayed on the local engine.

Each rule is compiled as `build` writes it and run over sign-ins at the edges of every part
(the last second of a year, ISO week 53, a leap day, a date-time with no value), and over
random date-times (hypothesis, fixed seed; `TIME_EXAMPLES` sets how many per rule); the rows it returns must be exactly those Python's
reading of the same UTC date-times selects (`datetime.isocalendar()` for ISO 8601 weeks, which
Kusto's `week_of_year` and the local engine's `weekofyear` both count).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from functools import lru_cache

import pytest
from entra_sigma.build import Compiler
from entra_sigma.diagnostics import format_text
from entra_sigma.verbs.ruletests.replay import LocalEngine, Replayed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import compile_text

pytestmark = pytest.mark.replay

COMPILER = Compiler()
EXAMPLES = int(os.environ.get("TIME_EXAMPLES", "8"))  # each a replay; set TIME_EXAMPLES=500 for a thorough run
PARTS = {
    "minute": lambda d: d.minute, "hour": lambda d: d.hour, "day": lambda d: d.day,
    "week": lambda d: d.isocalendar()[1], "month": lambda d: d.month, "year": lambda d: d.year,
}
TESTS = {"": int.__eq__, "gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
EDGES = [
    datetime(2025, 12, 31, 23, 59, 59),  # day 31, month 12, but ISO week 1 (of 2026)
    datetime(2026, 1, 1, 0, 0, 0),
    datetime(2026, 12, 24, 9, 15, 0),  # ISO week 52
    datetime(2026, 12, 28, 3, 0, 0),  # ISO week 53 of 2026
    datetime(2027, 1, 3, 23, 59, 59),  # still week 53 of 2026
    datetime(2027, 1, 4, 0, 0, 0),  # week 1 of 2027
    datetime(2024, 2, 29, 12, 30, 0),
    datetime(2025, 6, 15, 7, 0, 0),
    datetime(2025, 6, 15, 18, 59, 59, 999000),
    None,  # a sign-in whose CreatedDateTime is empty
]
# (modifiers after the field, the rule's value or values)
RULES = [
    ("hour", 3), ("hour", [22, 23, 0]), ("hour|lt", 7), ("hour|gte", 19), ("minute|neq", 0), ("minute", 59),
    ("day", 31), ("day|lte", 7), ("week", 1), ("week", 52), ("week|gte", 52), ("month", 2), ("month|gt", 10),
    ("year", 2026), ("year|lte", 2025), ("hour|neq", [3, 12]),
]


def expected_match(modifiers: str, value, when: datetime | None) -> bool:
    """What the rule means: the part of `when` (UTC) compared with the value; `neq` negates
    the whole match, so a sign-in without a date-time matches it (Sigma: a missing value is
    not equal)."""
    part, *rest = modifiers.split("|")
    negated = "neq" in rest
    compare = TESTS[next((m for m in rest if m in TESTS), "")]
    values = value if isinstance(value, list) else [value]
    matched = when is not None and any(compare(PARTS[part](when), v) for v in values)
    return not matched if negated else matched


@lru_cache(maxsize=None)
def query(key: str, value: str) -> str:
    rule = (f"title: time\nid: 0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5\nlogsource: {{product: entra, service: signins}}\n"
            f"detection:\n  sel:\n    createdDateTime|{key}: {value}\n  condition: sel\n")
    text, diagnostics = compile_text(rule, compiler=COMPILER)
    assert text is not None, format_text(diagnostics)
    return text


@lru_cache(maxsize=1)
def local_engine() -> LocalEngine:
    return LocalEngine(COMPILER.registry)  # load() replaces the rows of the last run


def run(text: str, times: list[datetime | None], table: str = "SigninLogs") -> list[str]:
    """The UserPrincipalName of each returned row; row i is `u<i>`, signed in at times[i]."""
    columns = COMPILER.registry.tables[table].columns
    rows = []
    for index, when in enumerate(times):
        row = dict.fromkeys(columns)
        row.update(TimeGenerated=datetime(2026, 6, 1), CreatedDateTime=when, UserPrincipalName=f"u{index}", Type=table)
        rows.append(row)
    engine = local_engine()
    engine.load({table: rows})
    result = engine.run(text)
    assert isinstance(result, Replayed), result
    return sorted(row[result.columns.index("UserPrincipalName")] for row in result.rows)


def selected(modifiers: str, value, times) -> list[str]:
    return sorted(f"u{i}" for i, when in enumerate(times) if expected_match(modifiers, value, when))


@pytest.mark.parametrize("table", ["SigninLogs", "AADNonInteractiveUserSignInLogs"])
@pytest.mark.parametrize("modifiers, value", RULES, ids=[f"{m}={v}" for m, v in RULES])
def test_each_part_at_its_edges(modifiers, value, table):
    text = query(modifiers, str(value))
    assert run(text, EDGES, table) == selected(modifiers, value, EDGES)


def test_the_edges_tell_the_parts_apart():
    """The edge rows are not all selected or all left out by the rules above, so the test
    above can fail on a wrong part (week of the year against ISO week, day of month, ...)."""
    for modifiers, value in RULES:
        chosen = selected(modifiers, value, EDGES)
        assert 0 < len(chosen) < len(EDGES), (modifiers, value)
    assert selected("week", 1, EDGES) == ["u0", "u1", "u5"] and selected("week", 52, EDGES) == ["u2"]
    assert selected("week|gte", 52, EDGES) == ["u2", "u3", "u4"]  # week 53 is reached through gte


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(times=st.lists(st.one_of(st.none(), st.datetimes(min_value=datetime(1999, 12, 25), max_value=datetime(2031, 1, 8))),
                      min_size=1, max_size=12))
@pytest.mark.parametrize("modifiers, value", RULES, ids=[f"{m}={v}" for m, v in RULES])
def test_random_date_times(modifiers, value, times):
    assert run(query(modifiers, str(value)), times) == selected(modifiers, value, times)


def test_parts_are_read_in_utc():
    """A sign-in at 01:30 on 1 March in UTC+02:00 is at 23:30 UTC on 28 February."""
    local = datetime(2026, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert run(query("hour", "23"), [local]) == ["u0"]
    assert run(query("hour", "1"), [local]) == []
    assert run(query("day", "28"), [local]) == ["u0"]
    assert run(query("month", "2"), [local]) == ["u0"]


def test_not_a_selection_keeps_sign_ins_without_a_date_time():
    rule = ("title: not at three\nid: 0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d6\nlogsource: {product: entra, service: interactive}\n"
            "detection:\n  three:\n    createdDateTime|hour: 3\n  condition: not three\n")
    text, diagnostics = compile_text(rule, compiler=COMPILER)
    assert text is not None, format_text(diagnostics)
    assert run(text, [datetime(2026, 1, 1, 3, 0), datetime(2026, 1, 1, 4, 0), None]) == ["u1", "u2"]

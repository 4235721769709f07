"""The meaning of every correlation shape, checked against a plain reference.

Each correlation type is compiled, then replayed on the local engine over random sign-ins
(hypothesis, fixed seed), and its groups and reported windows are compared with
`reference()`, a direct reading of docs/correlations.md: a window is the timespan that
ends at an event, both ends included. The random times fall on half-minute marks over an
hour, so they often tie, land on bin edges and sit exactly one timespan apart.

Each example is a replay (about 0.1 s), so the suite tries 12 per shape; set
CORRELATION_EXAMPLES=500 for a thorough run.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import pytest
from entra_sigma.build import Compiler
from entra_sigma.diagnostics import format_text
from entra_sigma.verbs.ruletests.replay import LocalEngine, Replayed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.replay  # every test replays its correlation on the local engine

EXAMPLES = int(os.environ.get("CORRELATION_EXAMPLES", "12"))
T0 = datetime(2026, 3, 1, 9, 30)
SPAN = 600  # seconds: the correlations below use 10m
CODES = {"a": "50126", "b": "0", "c": "500121"}  # rule name → ResultType it matches
COMPILER = Compiler()
COLUMNS = COMPILER.registry.tables["SigninLogs"].columns


@dataclass(frozen=True)
class Event:
    second: int
    user: str
    rule: str
    ip: str
    country: str
    ms: int


events_strategy = st.lists(
    st.builds(
        Event,
        second=st.integers(0, 120).map(lambda n: n * 30),
        user=st.sampled_from(["u1", "u2"]),
        rule=st.sampled_from(list(CODES)),
        ip=st.sampled_from(["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]),
        country=st.sampled_from(["US", "US", "US", "FR", "BR"]),
        ms=st.sampled_from([0, 7, 95, 100, 950, 1200, 30000]),  # of different lengths: sorted as numbers, not text
    ),
    max_size=14,
)

RULES = "\n".join(
    f"---\ntitle: rule {name}\nid: 00000000-0000-4000-8000-00000000e{index:03d}\nname: {name}\n"
    f"logsource: {{product: entra, service: signins}}\ndetection:\n  sel:\n    status.errorCode: {code}\n  condition: sel\n"
    for index, (name, code) in enumerate(CODES.items())
)


@lru_cache(maxsize=None)
def compile_correlation(body: str) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yml"
        path.write_text(f"title: c\nid: 00000000-0000-4000-8000-00000000e100\ncorrelation:\n{body}{RULES}", encoding="utf-8")
        result = COMPILER.compile_paths([path])
    texts = [c.texts["sentinel"] for c in result.compiled if c.rule.correlation is not None]
    assert texts, format_text(result.diagnostics)
    return texts[0]


@pytest.fixture(scope="module")
def engine():
    return LocalEngine(COMPILER.registry)


def replay(engine, text: str, events: list[Event]) -> dict[tuple, tuple]:
    rows = []
    for e in events:
        row = dict.fromkeys(COLUMNS)
        row.update(
            TimeGenerated=T0 + timedelta(seconds=e.second), UserPrincipalName=e.user, ResultType=CODES[e.rule],
            IPAddress=e.ip, LocationDetails={"countryOrRegion": e.country}, ProcessingTimeInMilliseconds=str(e.ms),
            Type="SigninLogs",
        )
        rows.append(row)
    engine.load({"SigninLogs": rows})
    result = engine.run(text)
    assert isinstance(result, Replayed), result
    return {row[: result.columns.index(next(c for c in result.columns if c in MEASURES + ("window_start",)))]: row
            for row in result.rows}


MEASURES = ("event_count", "value_count", "rule_count", "value_sum", "value_avg", "value_median", "value_percentile")


def at(second: int) -> datetime:
    return T0 + timedelta(seconds=second)


def window(events: list[Event], end: int) -> list[Event]:
    return [e for e in events if end - SPAN <= e.second <= end]


def groups_of(events):
    found = {}
    for e in events:
        found.setdefault(e.user, []).append(e)
    return found


def counting(events, rules, measure, lower, upper):
    """event_count / value_count / temporal: per user, the first window meeting the lower
    bound (or, with an upper bound only, the window ending at the last event)."""
    expected = {}
    for user, mine in groups_of([e for e in events if e.rule in rules]).items():
        ends = sorted({e.second for e in mine})
        counts = {u: measure(window(mine, u)) for u in ends}
        if upper is not None and max(counts.values()) > upper:
            continue
        met = [u for u in ends if lower is None or counts[u] >= lower]
        if not met:
            continue
        end = met[0] if lower is not None else ends[-1]
        inside = window(mine, end)
        expected[(user,)] = (user, counts[end], at(min(e.second for e in inside)), at(end))
    return expected


def counting_neq(events, rules, measure, excluded):
    """`neq: k` of a counting type: per user whose densest window holds more or fewer than k,
    the first window holding more (met at a moment), or else the window ending at the last event."""
    expected = {}
    for user, mine in groups_of([e for e in events if e.rule in rules]).items():
        ends = sorted({e.second for e in mine})
        counts = {u: measure(window(mine, u)) for u in ends}
        densest = max(counts.values())
        if densest == excluded:
            continue
        end = next(u for u in ends if counts[u] > excluded) if densest > excluded else ends[-1]
        inside = window(mine, end)
        expected[(user,)] = (user, counts[end], at(min(e.second for e in inside)), at(end))
    return expected


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
@pytest.mark.parametrize("excluded", [1, 3])
def test_event_count_neq(engine, events, excluded):
    text = compile_correlation(f"  type: event_count\n  rules: [a, b]\n  group-by: userPrincipalName\n  timespan: 10m\n"
                               f"  condition: {{neq: {excluded}}}\n")
    assert replay(engine, text, events) == counting_neq(events, {"a", "b"}, len, excluded)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
def test_value_count_neq(engine, events):
    text = compile_correlation("  type: value_count\n  rules: a\n  group-by: userPrincipalName\n  timespan: 10m\n"
                               "  condition: {field: ipAddress, neq: 2}\n")
    assert replay(engine, text, events) == counting_neq(events, {"a"}, lambda w: len({e.ip for e in w}), 2)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
def test_temporal_neq(engine, events):
    text = compile_correlation("  type: temporal\n  rules: [a, b, c]\n  group-by: userPrincipalName\n  timespan: 10m\n"
                               "  condition: {neq: 2}\n")
    assert replay(engine, text, events) == counting_neq(events, {"a", "b", "c"}, lambda w: len({e.rule for e in w}), 2)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
def test_value_count_of_several_fields_counts_distinct_combinations(engine, events):
    text = compile_correlation("  type: value_count\n  rules: [a, b]\n  group-by: userPrincipalName\n  timespan: 10m\n"
                               "  condition: {field: [ipAddress, location.countryOrRegion], gte: 3}\n")
    assert replay(engine, text, events) == counting(events, {"a", "b"}, lambda w: len({(e.ip, e.country) for e in w}), 3, None)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
@pytest.mark.parametrize("condition, lower, upper", [("{gte: 3}", 3, None), ("{lt: 3}", None, 2), ("{gt: 1, lte: 3}", 2, 3)])
def test_event_count(engine, events, condition, lower, upper):
    text = compile_correlation(f"  type: event_count\n  rules: [a, b]\n  group-by: userPrincipalName\n  timespan: 10m\n  condition: {condition}\n")
    assert replay(engine, text, events) == counting(events, {"a", "b"}, len, lower, upper)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
def test_value_count(engine, events):
    text = compile_correlation("  type: value_count\n  rules: a\n  group-by: userPrincipalName\n  timespan: 10m\n"
                               "  condition: {field: ipAddress, gte: 2, lt: 4}\n")
    assert replay(engine, text, events) == counting(events, {"a"}, lambda w: len({e.ip for e in w}), 2, 3)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
def test_temporal(engine, events):
    text = compile_correlation("  type: temporal\n  rules: [a, b, c]\n  group-by: userPrincipalName\n  timespan: 10m\n")
    assert replay(engine, text, events) == counting(events, {"a", "b", "c"}, lambda w: len({e.rule for e in w}), 3, None)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
def test_temporal_with_a_boolean_condition(engine, events):
    text = compile_correlation("  type: temporal\n  rules: [a, b, c]\n  group-by: userPrincipalName\n  timespan: 10m\n"
                               "  condition: a and not (b or c)\n")
    expected = {}
    for user, mine in groups_of(events).items():
        met = [u for u in sorted({e.second for e in mine})
               if (lambda rules: "a" in rules and not ({"b", "c"} & rules))({e.rule for e in window(mine, u)})]
        if met:
            inside = window(mine, met[0])
            expected[(user,)] = (user, len({e.rule for e in inside}), at(min(e.second for e in inside)), at(met[0]))
    assert replay(engine, text, events) == expected


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
def test_temporal_ordered(engine, events):
    text = compile_correlation("  type: temporal_ordered\n  rules: [a, b, c]\n  group-by: userPrincipalName\n  timespan: 10m\n")
    expected = {}
    for user, mine in groups_of(events).items():
        for end in sorted({e.second for e in mine if e.rule == "c"}):
            t = end
            for rule in ("b", "a"):  # back from the end: the latest earlier event of each rule
                earlier = [e.second for e in mine if e.rule == rule and end - SPAN <= e.second < t]
                t = max(earlier) if earlier else None
                if t is None:
                    break
            if t is not None:
                expected[(user,)] = (user, at(t), at(end))
                break
    assert replay(engine, text, events) == expected


def nearest_rank(values: list[int], percentile: int) -> float:
    """The percentile the local engine computes exactly (DuckDB's quantile_disc) and Kusto estimates."""
    ordered = sorted(values)
    return float(ordered[max(math.ceil(percentile / 100 * len(ordered)) - 1, 0)])


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
@pytest.mark.parametrize("kind, extra, measure, op, bound", [
    ("value_sum", "", lambda w: float(sum(e.ms for e in w)), "gte", 1300),
    ("value_sum", "", lambda w: float(sum(e.ms for e in w)), "lt", 100),
    ("value_avg", "", lambda w: sum(e.ms for e in w) / len(w), "gte", 450),
    ("value_avg", "", lambda w: sum(e.ms for e in w) / len(w), "lte", 95),
    ("value_median", "", lambda w: nearest_rank([e.ms for e in w], 50), "gt", 95),
    ("value_percentile", "percentile: 90, ", lambda w: nearest_rank([e.ms for e in w], 90), "gte", 1000),
    ("value_sum", "", lambda w: float(sum(e.ms for e in w)), "neq", 0),
    ("value_avg", "", lambda w: sum(e.ms for e in w) / len(w), "neq", 95),
    ("value_median", "", lambda w: nearest_rank([e.ms for e in w], 50), "neq", 7),
])
def test_metrics(engine, events, kind, extra, measure, op, bound):
    text = compile_correlation(f"  type: {kind}\n  rules: [a, b]\n  group-by: userPrincipalName\n  timespan: 10m\n"
                               f"  condition: {{field: processingTimeInMilliseconds, {extra}{op}: {bound}}}\n")
    test = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__, "neq": float.__ne__}[op]
    expected = {}
    for user, mine in groups_of([e for e in events if e.rule in ("a", "b")]).items():
        met = [u for u in sorted({e.second for e in mine}) if test(float(measure(window(mine, u))), bound)]
        if met:
            inside = window(mine, met[0])
            expected[(user,)] = (user, pytest.approx(measure(inside)), at(min(e.second for e in inside)), at(met[0]))
    assert replay(engine, text, events) == expected


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
@pytest.mark.parametrize("op, bound", [("lt", 30), ("neq", 50)])
def test_share_of_a_text_value(engine, events, op, bound):
    text = compile_correlation("  type: value_percentile\n  rules: [a, b]\n  group-by: userPrincipalName\n  timespan: 10m\n"
                               f"  condition: {{field: location.countryOrRegion, {op}: {bound}}}\n")
    test = {"lt": float.__lt__, "neq": float.__ne__}[op]
    expected = {}
    for user, mine in groups_of([e for e in events if e.rule in ("a", "b")]).items():
        for country in {e.country for e in mine}:
            def share(u):
                inside = window(mine, u)
                return 100.0 * sum(e.country == country for e in inside) / len(inside)
            met = [u for u in sorted({e.second for e in mine if e.country == country}) if test(share(u), float(bound))]
            if met:
                inside = [e for e in window(mine, met[0]) if e.country == country]
                expected[(user, country)] = (user, country, pytest.approx(share(met[0])), at(min(e.second for e in inside)), at(met[0]))
    assert replay(engine, text, events) == expected


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=events_strategy)
def test_a_chain_follows_the_moment_the_inner_correlation_is_met(engine, events):
    body = ("  type: temporal_ordered\n  rules: [bursts, b]\n  group-by: userPrincipalName\n  timespan: 10m\n---\n"
            "title: bursts\nid: 00000000-0000-4000-8000-00000000e101\nname: bursts\ncorrelation:\n"
            "  type: event_count\n  rules: a\n  group-by: userPrincipalName\n  timespan: 10m\n  condition: {gte: 3}\n")
    text = compile_correlation(body)
    expected = {}
    for user, mine in groups_of(events).items():
        failures = [e for e in mine if e.rule == "a"]
        moments = sorted({u.second for u in failures if len(window(failures, u.second)) >= 3})
        for end in sorted({e.second for e in mine if e.rule == "b"}):
            earlier = [m for m in moments if end - SPAN <= m < end]
            if earlier:
                expected[(user,)] = (user, at(max(earlier)), at(end))
                break
    assert replay(engine, text, events) == expected

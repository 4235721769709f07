"""Correlation rules: golden KQL per type and platform (accepted by Kusto.Language), exact
errors for bad correlations, and the meaning of windows checked by replaying rows."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from entra_sigma.build import Compiler, build_outputs
from entra_sigma.diagnostics import format_text
from entra_sigma.verbs.ruletests.cases import convert_value
from entra_sigma.verbs.ruletests.replay import LocalEngine, Replayed

from .helpers import CASES, SNAPSHOTS, check_kql

GOOD = sorted(p.stem for p in (CASES / "correlations").glob("*.yml") if not p.name.endswith(".tests.yml"))
BAD = sorted(p.stem for p in (CASES / "bad-correlations").glob("*.yml"))
PLATFORMS = ("sentinel", "defender")


def compile_file(path):
    """The result, and the correlations output, the file's first document first."""
    result = Compiler().compile_paths([path], PLATFORMS)
    correlations = sorted((c for c in result.compiled if c.rule.correlation is not None), key=lambda c: c.rule.document.index)
    return result, correlations


@pytest.fixture(scope="module")
def outputs():
    return {case: compile_file(CASES / "correlations" / f"{case}.yml") for case in GOOD}


def test_every_correlation_query_passes_kusto_language(outputs, kusto):
    texts = {  # every correlation a file outputs (generate_chain has two), on each platform it reaches
        f"{case}/{index}/{platform}": correlation.texts[platform]
        for case, (_, correlations) in outputs.items() for index, correlation in enumerate(correlations)
        for platform in PLATFORMS if platform in correlation.texts
    }
    assert len(texts) > len(GOOD)
    failed = {key: diagnostics for key, diagnostics in check_kql(kusto, texts).items() if diagnostics}
    assert failed == {}, "\n\n".join(f"{key}: {'; '.join(found)}\n{texts[key]}" for key, found in failed.items())


def test_every_type_has_a_case():
    types = set()
    for case in GOOD:
        _, correlations = compile_file(CASES / "correlations" / f"{case}.yml")
        types |= {c.rule.correlation.type for c in correlations}
    assert types == {"event_count", "value_count", "temporal", "temporal_ordered",
                     "value_sum", "value_avg", "value_percentile", "value_median"}


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("case", GOOD)
def test_correlation_golden(case, platform, outputs, snapshot):
    result, correlations = outputs[case]
    assert not [d for d in result.diagnostics if d.severity == "error" and d.target != "defender"], format_text(result.diagnostics)
    assert len(correlations) == (2 if case == "generate_chain" else 1)  # generate_chain also outputs its inner correlation
    snapshot.snapshot_dir = SNAPSHOTS / "correlations" / case
    text = correlations[0].texts.get(platform)
    if text is None:
        problems = [d for d in result.diagnostics if d.target == platform]
        assert problems, "no query and no reason"
        snapshot.assert_match(format_text(problems), f"{platform}.error.txt")
    else:
        snapshot.assert_match(text, f"{platform}.kql")


def test_correlated_rules_are_not_output_unless_generated():
    result, _ = compile_file(CASES / "correlations" / "event_count.yml")
    assert [c.rule.title for c in result.compiled] == ["event count"]
    result, _ = compile_file(CASES / "correlations" / "generate.yml")
    assert sorted(c.rule.title for c in result.compiled) == ["generate keeps the correlated rule", "generated base rule"]
    result, _ = compile_file(CASES / "correlations" / "chained.yml")
    assert [c.rule.title for c in result.compiled] == ["Correlation - Multiple Failed Logins Followed by Successful Login"]


def test_generate_outputs_every_referenced_rule_in_every_format_and_no_deeper():
    """The outer correlation generates its two references (a correlation and a rule); the
    inner correlation does not generate its own rule, so that one stays a building block."""
    outputs = build_outputs(Compiler(), [CASES / "correlations" / "generate_chain.yml"])
    titles = {entry["title"]: entry for entry in outputs.manifest["rules"]}
    assert set(titles) == {"generate also outputs the correlated correlation", "generated burst", "generated success"}
    for title in ("generated burst", "generated success"):
        formats = {path.split("/")[0] for path in titles[title]["files"]}
        assert {"kql", "sentinel", "arm", "defender"} <= formats, (title, titles[title])
    assert "defender/detections/generate_chain.generated_success.json" in titles["generated success"]["files"]
    assert "a correlation returns groups" in titles["generated burst"]["skipped"]["defender-detection"]


def test_a_chain_is_one_query_that_reads_each_table_once():
    result, correlations = compile_file(CASES / "correlations" / "chained.yml")
    text = correlations[0].texts["sentinel"]
    assert text.count("SigninLogs\n") == 1 and text.count("AADNonInteractiveUserSignInLogs\n") == 1
    assert text.count("materialize(") == 1
    assert correlations[0].queries["sentinel"].tables == ["SigninLogs", "AADNonInteractiveUserSignInLogs"]


@pytest.mark.replay
def test_the_chained_example_replays_with_the_expected_groups():
    """tests/cases/correlations/chained.tests.yml: a burst across a bin edge, a success before
    the burst, a success inside it, and the window edges, through `entra-sigma test`."""
    from entra_sigma.verbs.ruletests.run import PASSED, run_tests

    run = run_tests(Compiler(), [CASES / "correlations" / "chained.yml"])
    results = [result for report in run.reports for result in report.results]
    assert len(results) >= 8 and {r.outcome for r in results} == {PASSED}, [(r.case.name, r.detail) for r in results]


def test_a_chain_deploys_with_a_period_covering_every_level():
    outputs = build_outputs(Compiler(), [CASES / "correlations" / "chained.yml"])
    assert "queryPeriod: 80m" in outputs.files["sentinel/chained.yaml"]  # 1h frequency + 10m burst + 10m follow-up


def test_a_file_with_two_output_rules_writes_two_files():
    outputs = build_outputs(Compiler(), [CASES / "correlations"], ("kql",))
    assert {"kql/generate.kql", "kql/generate.00000000-0000-4000-8000-000000000114.kql"} <= set(outputs.files)


def test_correlations_deploy_with_a_period_covering_a_window_and_no_defender_detection():
    outputs = build_outputs(Compiler(), [CASES / "correlations"])
    assert "queryPeriod: 75m" in outputs.files["sentinel/event_count.yaml"]  # 1h frequency + 15m window
    assert "queryPeriod: 8d" in outputs.files["sentinel/event_count_lt.yaml"]  # 1d + 1w
    entry = next(e for e in outputs.manifest["rules"] if e["title"] == "event count")
    assert "defender-detection" in entry["skipped"] and "defender/hunting/event_count.kql" in entry["files"]


@pytest.mark.parametrize("case", BAD)
def test_bad_correlation_gives_exactly_the_expected_message(case):
    path = CASES / "bad-correlations" / f"{case}.yml"
    outputs = build_outputs(Compiler(), [path], ("kql", "sentinel-yaml"))
    errors = [d for d in outputs.diagnostics if d.severity == "error"]
    assert len(errors) == 1
    assert format_text(errors) == (CASES / "bad-correlations" / f"{case}.expected").read_text(encoding="utf-8")


# -- meaning: windows replayed on the local engine ---------------------------------------------
T0 = datetime(2026, 3, 1, 9, 55, tzinfo=timezone.utc)


def rows(*events, table="SigninLogs"):
    """(minutes after T0, user, ResultType) → typed SigninLogs rows."""
    compiler = Compiler()
    columns = compiler.registry.tables[table].columns
    result = []
    for minutes, user, code, *rest in events:
        row = dict.fromkeys(columns)
        row.update(TimeGenerated=T0 + timedelta(minutes=minutes), UserPrincipalName=user, ResultType=code, Type=table)
        if rest:
            row["IPAddress"] = rest[0]
        result.append(row)
    return {table: result}


def replay(text: str, data) -> Replayed:
    engine = LocalEngine(Compiler().registry)
    engine.load(data)
    result = engine.run(text)
    assert isinstance(result, Replayed), result
    return result


def correlation_text(body: str, *bases: tuple[str, str]) -> str:
    """Compile a correlation given its `correlation:` body and (name, ResultType) base rules."""
    import tempfile
    from pathlib import Path

    docs = [f"title: c\nid: 00000000-0000-4000-8000-00000000a000\ncorrelation:\n{body}"]
    for index, (name, code) in enumerate(bases):
        docs.append(
            f"title: {name}\nid: 00000000-0000-4000-8000-00000000a{index + 1:03d}\nname: {name}\n"
            f"logsource: {{product: entra, service: signins}}\n"
            f"detection:\n  sel:\n    status.errorCode: {code}\n  condition: sel\n"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.yml"
        path.write_text("---\n".join(docs), encoding="utf-8")
        result, correlations = compile_file(path)
    assert correlations, format_text(result.diagnostics)
    return correlations[0].texts["sentinel"]


@pytest.mark.replay
def test_a_range_counts_the_densest_window():
    text = correlation_text(
        "  type: event_count\n  rules: f\n  group-by: userPrincipalName\n  timespan: 10m\n  condition: {gt: 2, lte: 3}\n",
        ("f", 50126),
    )
    three = rows((0, "a", "50126"), (5, "a", "50126"), (10, "a", "50126"))
    four = rows((0, "b", "50126"), (5, "b", "50126"), (9, "b", "50126"), (10, "b", "50126"))
    result = replay(text, {"SigninLogs": three["SigninLogs"] + four["SigninLogs"]})
    assert [row[0] for row in result.rows] == ["a"]  # b's densest window holds 4: outside the range
    assert result.columns == ("userPrincipalName", "event_count", "window_start", "window_end")
    assert result.rows[0][1] == 3 and result.rows[0][2] == T0.replace(tzinfo=None)


@pytest.mark.replay
def test_an_upper_bound_means_no_window_reaches_it():
    text = correlation_text(
        "  type: event_count\n  rules: s\n  group-by: userPrincipalName\n  timespan: 10m\n  condition: {lt: 3}\n",
        ("s", 0),
    )
    data = rows((0, "a", "0"), (11, "a", "0"), (22, "a", "0"), (0, "b", "0"), (1, "b", "0"), (2, "b", "0"))
    assert [row[0] for row in replay(text, data).rows] == ["a"]


@pytest.mark.replay
def test_temporal_needs_the_rules_within_the_window_in_any_order():
    text = correlation_text(
        "  type: temporal\n  rules: [x, y]\n  group-by: userPrincipalName\n  timespan: 10m\n",
        ("x", 50126), ("y", 0),
    )
    data = rows(
        (0, "reversed", "0"), (10, "reversed", "50126"),  # y then x, 10 minutes apart: matches
        (0, "too_far", "50126"), (11, "too_far", "0"),  # 11 minutes apart: no
        (0, "only_x", "50126"), (1, "only_x", "50126"),  # one rule twice: no
    )
    assert [row[0] for row in replay(text, data).rows] == ["reversed"]


@pytest.mark.replay
def test_temporal_ordered_wants_strictly_later_events():
    text = correlation_text(
        "  type: temporal_ordered\n  rules: [x, y]\n  group-by: userPrincipalName\n  timespan: 10m\n",
        ("x", 50126), ("y", 0),
    )
    data = rows((0, "in_order", "50126"), (10, "in_order", "0"), (0, "reversed", "0"), (5, "reversed", "50126"),
                (0, "same_time", "50126"), (0, "same_time", "0"))
    result = replay(text, data)
    assert [row[0] for row in result.rows] == ["in_order"]
    assert result.columns == ("userPrincipalName", "window_start", "window_end")


@pytest.mark.replay
def test_value_count_counts_distinct_values_not_events():
    text = correlation_text(
        "  type: value_count\n  rules: f\n  group-by: ipAddress\n  timespan: 10m\n  condition: {field: userPrincipalName, gte: 3}\n",
        ("f", 50126),
    )
    data = rows((0, "a", "50126", "1.1.1.1"), (1, "a", "50126", "1.1.1.1"), (2, "b", "50126", "1.1.1.1"),
                (0, "a", "50126", "2.2.2.2"), (1, "b", "50126", "2.2.2.2"), (2, "c", "50126", "2.2.2.2"))
    assert [row[0] for row in replay(text, data).rows] == ["2.2.2.2"]


def test_rows_are_typed_as_the_tables_store_them():
    assert convert_value({"a": 1}, "string") == ('{"a": 1}', None)
    assert convert_value(50126, "string")[1] == "quote the value: '50126'"
    assert convert_value("not json", "dynamic")[1] == "give a YAML mapping or list, or JSON text"
    assert convert_value(True, "long")[1] == "True is not a whole number"


def test_a_chain_across_files_is_the_same_query(tmp_path):
    """The outer correlation, the inner one and the two rules, each in a file of its own."""
    documents = (CASES / "correlations" / "chained.yml").read_text(encoding="utf-8").split("\n---\n")
    assert len(documents) == 4
    for name, text in zip(("outer", "inner", "failed", "success"), documents):
        (tmp_path / f"{name}.yml").write_text(text, encoding="utf-8")
    split = build_outputs(Compiler(), [tmp_path], ("kql",))
    whole = build_outputs(Compiler(), [CASES / "correlations" / "chained.yml"], ("kql",))
    assert split.ok and sorted(split.files) == ["kql/outer.kql"]

    def body(text):
        return [line for line in text.splitlines() if not line.startswith("// source:")]

    assert body(split.files["kql/outer.kql"]) == body(whole.files["kql/chained.kql"])


@pytest.mark.replay
def test_fields_of_a_correlation_list_the_values_seen_in_the_window():
    text = compile_file(CASES / "correlations" / "fields.yml")[1][0].texts["sentinel"]
    events = [(minute, f"user{minute}", "50126", "1.1.1.1") for minute in range(10)]
    data = rows(*events)
    for index, row in enumerate(data["SigninLogs"]):
        row.update(AppDisplayName="Azure Portal" if index % 2 else "Microsoft Teams",
                   LocationDetails={"countryOrRegion": "NL"})
    result = replay(text, data)
    assert result.columns == ("ipAddress", "value_count", "window_start", "window_end", "appDisplayName", "location_countryOrRegion")
    (row,) = result.rows
    assert row[:2] == ("1.1.1.1", 10)
    assert sorted(json.loads(row[4])) == ["Azure Portal", "Microsoft Teams"] and json.loads(row[5]) == ["NL"]


# -- generated names ------------------------------------------------------------------------------------
def test_generated_names_are_unique_and_the_same_every_time():
    """`x-y` and `x_y` are one identifier; a fallback (`_c2`, `_is_rule3`) may be some rule's own
    name: each gets a name of its own (names_colliding*.yml run them through Kusto.Language)."""
    import itertools

    from entra_sigma.convert.correlation_events import generated_name

    labels = ["x-y", "x_y", "x.y", "rule3", "9x", "c2", "_c2", "c2_2", "events", "é", "", "rule3_2", "X-Y"]
    for order in itertools.islice(itertools.permutations(labels, 6), 0, None, 97):
        names: list[str] = []
        for index, label in enumerate(order, start=1):
            names.append(generated_name(label, "_is_", f"_is_rule{index}", set(names)))
        assert len(set(names)) == len(names), (order, names)
        assert all(n.startswith("_is_") and n.replace("_", "a").isalnum() for n in names)
        again: list[str] = []
        for index, label in enumerate(order, start=1):
            again.append(generated_name(label, "_is_", f"_is_rule{index}", set(again)))
        assert again == names
    taken = {"_c2", "_c2_2"}
    assert generated_name("9x", "_", "_c2", taken) == "_c2_3"
    assert generated_name("x-y", "_", "_c3", {"_x_y"}) == "_c3"

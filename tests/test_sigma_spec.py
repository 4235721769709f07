"""The Sigma 2.1.0 specification's own examples, as written and rewritten onto sign-ins.

tests/cases/sigma-2.1/original/ holds the example files the specification's JSON schemas are
tested with (its tests/schema/) and the examples inside its texts, copied verbatim (a fragment
gets the title, id and logsource its comment names). Almost all are about other logs: each must
get located errors, the logsource first among them where it has one, exactly as in its
`.expected`, and never a crash. The global filters (`schema-filter-*`) are another issue's work
(issue 21): they must only be refused with located errors, nothing written.

tests/cases/sigma-2.1/signins/ holds each of them rewritten onto sign-in fields (each file's
comment says what changed and what the specification says it means). Each must compile without
an error, pass Kusto.Language, and its test cases, which check that meaning, must pass when
replayed; the one that needs `ipv4_is_in_range` may be "not replayed" (duckdb-kql 1.1.2 lacks
it), never failed. docs/sigma-2.1.md is the conformance table these examples stand behind.
"""

from __future__ import annotations

import re

import pytest
from entra_sigma.build import Compiler, build_outputs
from entra_sigma.diagnostics import format_text
from entra_sigma.verbs.ruletests.run import FAILED, NOT_REPLAYED, PASSED, run_tests

from .helpers import CASES, REPO, check_kql

SPEC = CASES / "sigma-2.1"
ORIGINALS = sorted((SPEC / "original").glob("*.yml"))
REWRITTEN = sorted(p for p in (SPEC / "signins").glob("*.yml") if not p.name.endswith(".tests.yml"))
FILTERS = [p for p in ORIGINALS if p.name.startswith("schema-filter-")]  # issue 21
# original → where its rewriting onto sign-ins is (a file of signins/ unless said otherwise)
REWRITING = {
    "schema-rules-rule_1": "rule_1", "schema-rules-rule_ecs": "rule_ecs",
    "schema-correlation-event_count": "event_count", "schema-correlation-event_count_ecs": "event_count_ecs",
    "schema-correlation-temporal": "temporal", "schema-correlation-temporal_ordered": "temporal_ordered",
    "schema-correlation-value_avg": "value_avg", "schema-correlation-value_count": "value_count",
    "schema-correlation-value_percentile": "value_percentile", "schema-correlation-value_sum": "value_sum",
    "rules-whoami": "rules_whoami", "rules-keywords": "rules_keywords", "rules-list-of-maps": "rules_list_of_maps",
    "rules-maps": "rules_maps", "rules-maps-and": "rules_maps_and", "rules-null": "rules_null",
    "rules-empty-and-null": "rules_empty_and_null", "rules-exists": "rules_exists",
    "rules-keywords-search": "rules_keywords_search", "rules-keywords-all": "rules_keywords_all",
    "rules-null-in-list": "../../bad/null_in_list",  # the specification's invalid example: refused
    "modifiers-cidr": "modifiers_cidr", "correlation-range": "correlation_range",
    "correlation-aliases": "correlation_aliases", "correlation-temporal-ordered": "correlation_temporal_ordered",
    "correlation-value-percentile": "value_percentile",  # the text's `image` is the schema test's `Image`
    "correlation-related-rules": "event_count",  # a rule named by id (event_count) and by name (every other file)
    "correlation-example": "../../correlations/chained",  # replayed by tests/test_correlation.py
}
LOGSOURCE = re.compile(r"'logsource(\.\w+)?'|in 'logsource'")


@pytest.mark.parametrize("path", [p for p in ORIGINALS if p not in FILTERS], ids=lambda p: p.stem)
def test_each_original_gets_exactly_its_located_errors(path):
    outputs = build_outputs(Compiler(), [path], ("kql",))
    errors = [d for d in outputs.diagnostics if d.severity == "error"]
    assert outputs.files == {}
    assert format_text(errors) == path.with_suffix(".expected").read_text(encoding="utf-8")
    logsource = "logsource:" in path.read_text(encoding="utf-8")
    assert not logsource or any(LOGSOURCE.search(d.message) for d in errors), "a rule of another log: its logsource is refused"


@pytest.mark.parametrize("path", FILTERS, ids=lambda p: p.stem)
def test_a_global_filter_is_refused_with_located_errors(path):
    outputs = build_outputs(Compiler(), [path], ("kql",))
    errors = [d for d in outputs.diagnostics if d.severity == "error"]
    assert errors and outputs.files == {}
    assert all(d.location.line >= 1 and d.location.path == path.name for d in errors)


def test_every_example_is_rewritten_onto_sign_ins():
    assert {p.stem for p in ORIGINALS} - {p.stem for p in FILTERS} == set(REWRITING)
    for original, rewritten in REWRITING.items():
        assert (SPEC / "signins" / f"{rewritten}.yml").resolve().exists(), original
    used = {r for r in REWRITING.values() if "/" not in r}
    added = {"correlation_neq", "correlation_value_count_fields", "modifiers_time"}  # 2.1 additions the texts give no example of
    assert {p.stem for p in REWRITTEN} == used | added


def test_every_rewriting_says_what_changed():
    for path in REWRITTEN:
        head = path.read_text(encoding="utf-8").split("\ntitle:", 1)[0]
        said = " ".join(line.removeprefix("#").strip() for line in head.splitlines())
        assert "Sigma specification 2.1.0 (public domain)" in said and "rewritten onto sign-ins" in said, path.name
        assert "It means:" in said, path.name


@pytest.fixture(scope="module")
def rewritten():
    return build_outputs(Compiler(), [SPEC / "signins"], ("kql",))


# A correlation grouped by a city, or by aliases, names no column a Sentinel entity mapping can
# use: it cannot be deployed as an analytics rule (E305, which their comments say). Nothing else.
UNDEPLOYABLE = {"event_count_ecs.yml", "correlation_aliases.yml"}


def test_the_rewritten_examples_compile_without_errors(rewritten):
    problems = [d for d in rewritten.diagnostics if d.severity == "error"]
    assert sorted((d.location.path.rsplit("/", 1)[-1], d.code) for d in problems) == sorted((name, "E305") for name in UNDEPLOYABLE), \
        format_text(problems)
    assert sorted(rewritten.files) == sorted(f"kql/{p.stem}.kql" for p in REWRITTEN)


def test_the_rewritten_examples_pass_kusto_language(rewritten, kusto):
    texts = dict(rewritten.files)
    failed = {key: found for key, found in check_kql(kusto, texts).items() if found}
    assert failed == {}


@pytest.mark.replay
def test_the_rewritten_examples_mean_what_the_specification_says():
    run = run_tests(Compiler(), [SPEC / "signins"])
    results = [(report, result) for report in run.reports for result in report.results]
    assert len(results) >= 70
    failed = [(r.case.name, r.detail) for _, r in results if r.outcome == FAILED]
    assert failed == []
    for report, result in results:
        if result.outcome == NOT_REPLAYED:  # duckdb-kql 1.1.2 has no ipv4_is_in_range
            assert report.source.endswith("modifiers_cidr.yml") and "ipv4_is_in_range" in result.detail
        else:
            assert result.outcome == PASSED


def test_the_conformance_page_names_every_section_of_the_specification():
    page = (REPO / "docs" / "sigma-2.1.md").read_text(encoding="utf-8")
    for section in ("Title", "Identification", "Taxonomy", "LogSource", "Detection", "Condition", "Fields", "Tags",
                    "Correlation type", "Related rules", "Aliases", "Grouping", "Time Selection", "Generate",
                    "Event Count", "Value Count", "Temporal Proximity", "Value Sum", "Value Average",
                    "Value Percentile", "Field Name Aliases", "Generic Modifiers", "Time Modifiers",
                    "IP (Internet Protocol) Modifiers", "Specific Modifiers", "Sigma Filters", "issue 21"):
        assert section in page, section

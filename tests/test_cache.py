"""Incremental and parallel builds (verbs/incremental/rebuild.py, verbs/incremental/cache.py, verbs/incremental/parallel.py) give the plain build's
output byte for byte, and a changed input is never served from the cache."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from entra_sigma.build import Compiler, build_outputs
from entra_sigma.diagnostics import format_text
from entra_sigma.verbs.incremental import rebuild as incremental
from entra_sigma.verbs.incremental.cache import Cache, FileResult, context_key
from entra_sigma.verbs.incremental.parallel import can_fork, map_chunks, workers_for

from .helpers import PACK, REPO

COMPILER = Compiler(environment=PACK)  # the bundled rules' placeholders take the example environment's values


def snapshot(outputs) -> tuple:
    """Everything a build writes or prints: files, manifest.json, diagnostics, the rule count."""
    manifest = json.dumps(outputs.manifest, indent=2, ensure_ascii=False) + "\n"
    return outputs.files, manifest, format_text(outputs.diagnostics), outputs.rules


def plain(folder: Path) -> tuple:
    return snapshot(build_outputs(Compiler(environment=PACK), [folder]))


def fast(folder: Path, cache: Cache | None = None, jobs: int | None = None):
    outputs = incremental.build(lambda: COMPILER, [folder], cache=cache, jobs=jobs, environment=PACK)
    return snapshot(outputs), outputs.stats


@pytest.fixture
def rules(tmp_path) -> Path:
    """A copy of the bundled rules (correlations included) that a test may change."""
    folder = tmp_path / "rules"
    shutil.copytree(REPO / "rules", folder)
    return folder


@pytest.fixture
def cache(tmp_path) -> Cache:
    return Cache(tmp_path / "cache", context_key({"test": 1}))


def many_rules(folder: Path, count: int) -> Path:
    """`count` single-event rules, one file each."""
    folder.mkdir()
    for index in range(count):
        (folder / f"r{index:03d}.yml").write_text(
            f"title: Rule {index}\n"
            f"id: 00000000-0000-4000-8000-{index:012d}\n"
            "logsource: {product: entra, service: signins}\n"
            f"detection:\n  sel:\n    status.errorCode: {50000 + index}\n    userAgent|contains: tool{index}\n"
            "  condition: sel\n"
            f"level: {('low', 'medium', 'high')[index % 3]}\n",
            encoding="utf-8",
        )
    return folder


def test_cached_build_is_the_plain_build(rules, cache):
    expected = plain(rules)
    first, stats = fast(rules, cache)
    assert first == expected
    assert stats["cached"] == 0
    second, stats = fast(rules, cache)
    assert second == expected
    correlated = sum(1 for p in rules.rglob("*.yml") if incremental.CORRELATION.search(p.read_bytes()))
    assert correlated > 0, "the bundled rules should exercise correlations"
    assert 0 < stats["cached"] < stats["files"]  # correlations and the rules they use are compiled again


@pytest.mark.skipif(not can_fork(), reason="parallel builds fork; elsewhere they run in one process")
def test_parallel_build_is_the_plain_build(tmp_path, cache):
    folder = many_rules(tmp_path / "many", 40)
    expected = plain(folder)
    result, stats = fast(folder, jobs=3)
    assert stats["workers"] == 3
    assert result == expected
    result, stats = fast(folder, cache, jobs=2)
    assert result == expected and stats["workers"] == 2


def test_changed_rule_is_compiled_again(rules, cache):
    fast(rules, cache)
    rule = rules / "protocols" / "ropc-signin.yml"
    rule.write_text(rule.read_text(encoding="utf-8").replace("level: medium", "level: high"), encoding="utf-8")
    expected = plain(rules)
    result, stats = fast(rules, cache)
    assert result == expected
    assert "severity: High" in result[0]["sentinel/protocols/ropc-signin.yaml"]
    assert stats["files"] - stats["cached"] >= 1
    unchanged, stats_again = fast(rules, cache)
    assert unchanged == expected and stats_again["cached"] == stats["cached"] + 1


def test_changed_rule_used_by_a_correlation_in_another_file(rules, cache):
    (rules / "counted.yml").write_text(
        "title: Counted failure\nid: 00000000-0000-4000-8000-000000000101\nname: counted_failure\n"
        "logsource: {product: entra, service: signins}\n"
        "detection:\n  sel:\n    status.errorCode: 50126\n  condition: sel\n",
        encoding="utf-8",
    )
    (rules / "count.yml").write_text(
        "title: Many counted failures\nid: 00000000-0000-4000-8000-000000000001\n"
        "correlation:\n  type: event_count\n  rules: counted_failure\n  group-by: userPrincipalName\n"
        "  timespan: 15m\n  condition: {gte: 10}\n",
        encoding="utf-8",
    )
    before, _ = fast(rules, cache)
    assert "50126" in before[0]["kql/count.kql"]
    counted = rules / "counted.yml"
    counted.write_text(counted.read_text(encoding="utf-8").replace("50126", "50053"), encoding="utf-8")
    after, stats = fast(rules, cache)
    assert after == plain(rules)
    assert "50053" in after[0]["kql/count.kql"] and "50126" not in after[0]["kql/count.kql"]
    assert stats["cached"] > 0


def test_new_correlation_takes_a_cached_rule_out_of_the_outputs(rules, cache):
    (rules / "counted.yml").write_text(
        "title: Counted failure\nid: 00000000-0000-4000-8000-000000000101\nname: counted_failure\n"
        "logsource: {product: entra, service: signins}\n"
        "detection:\n  sel:\n    status.errorCode: 50126\n  condition: sel\n",
        encoding="utf-8",
    )
    before, _ = fast(rules, cache)
    assert "kql/counted.kql" in before[0]
    (rules / "count.yml").write_text(
        "title: Many counted failures\nid: 00000000-0000-4000-8000-000000000001\n"
        "correlation:\n  type: event_count\n  rules: counted_failure\n  generate: false\n"
        "  group-by: userPrincipalName\n  timespan: 15m\n  condition: {gte: 10}\n",
        encoding="utf-8",
    )
    after, _ = fast(rules, cache)
    assert after == plain(rules)
    assert "kql/counted.kql" not in after[0] and "kql/count.kql" in after[0]


def test_error_builds_the_plain_way(rules, cache):
    fast(rules, cache)
    (rules / "broken.yml").write_text("title: Broken\nid: not-a-uuid\n", encoding="utf-8")
    result, stats = fast(rules, cache)
    assert result == plain(rules)
    assert "error" in result[2] and stats == {"plain": 1}


def test_duplicate_id_across_cached_and_new_file(rules, cache):
    fast(rules, cache)
    source = rules / "protocols" / "ropc-signin.yml"
    copy = source.read_text(encoding="utf-8").replace("title: ", "title: Copy of ", 1)
    (rules / "copy.yml").write_text(copy, encoding="utf-8")
    result, _ = fast(rules, cache)
    assert result == plain(rules)
    assert "duplicate id" in result[2]


def test_a_check_added_across_files_is_made_by_the_incremental_build_too(tmp_path, cache, monkeypatch):
    """The incremental build runs the plain build's own checks across files (across_files.py) over
    the facts of every file, the cached ones too: a check added there needs no copy in verbs/."""
    from entra_sigma import across_files, build
    from entra_sigma.diagnostics import Diagnostic

    rules = many_rules(tmp_path / "many", 12)  # no correlations: every file comes from the cache
    fast(rules, cache)
    assert fast(rules, cache)[1]["cached"] == 12
    real = across_files.across_documents

    def with_a_new_check(documents, environment=None):
        first: dict[str, str] = {}
        found = []
        for document in documents:
            for key, value, location in document.keys:
                if key == "id" and first.setdefault(value[0], document.display_path) != document.display_path:
                    found.append(Diagnostic("W999", f"id starts like the id in {first[value[0]]}", location, document.title))
        return real(documents, environment) + found

    monkeypatch.setattr(across_files, "across_documents", with_a_new_check)
    monkeypatch.setattr(build, "across_documents", with_a_new_check)
    expected = plain(rules)
    assert "id starts like the id in" in expected[2]
    result, _ = fast(rules, cache)
    assert result == expected


def test_output_name_taken_by_a_cached_file_and_a_new_one(rules, cache):
    fast(rules, cache)
    source = rules / "protocols" / "ropc-signin.yml"
    twin = source.read_text(encoding="utf-8").replace("title: ", "title: Twin of ", 1)
    twin = twin.replace(twin.split("id: ", 1)[1].split("\n", 1)[0], "00000000-0000-4000-8000-000000000777", 1)
    (rules / "protocols" / "ropc-signin.yaml").write_text(twin, encoding="utf-8")  # writes protocols/ropc-signin too
    result, _ = fast(rules, cache)
    assert result == plain(rules)
    assert "output name 'protocols/ropc-signin' is also the name of" in result[2]


def test_context_is_part_of_the_key(rules, tmp_path):
    first = Cache(tmp_path / "cache", context_key({"verb": "build"}))
    other = Cache(tmp_path / "cache", context_key({"verb": "build", "templates": "x"}))
    fast(rules, first)
    assert fast(rules, other)[1]["cached"] == 0
    assert first.key("rules/a.yml", b"x") != first.key("rules/b.yml", b"x")  # the display path is in the key
    assert first.key("rules/a.yml", b"x") != first.key("rules/a.yml", b"y")


def test_user_templates_are_part_of_the_context(tmp_path):
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "x.j2").write_text("one", encoding="utf-8")
    before = context_key({}, [templates])
    (templates / "x.j2").write_text("two", encoding="utf-8")
    assert context_key({}, [templates]) != before


def test_unreadable_entry_is_compiled_again(rules, cache):
    expected = plain(rules)
    fast(rules, cache)
    for entry in cache.folder.rglob("*.json"):
        entry.write_text("{not json", encoding="utf-8")
    result, stats = fast(rules, cache)
    assert result == expected and stats["cached"] == 0


def test_file_result_round_trips_through_json(rules):
    chunk = [
        (path, f"rules/{path.relative_to(rules).as_posix()}", path.read_bytes())
        for path in sorted((rules / "protocols").glob("*.yml")) if not path.name.endswith(".tests.yml")
    ]
    results = incremental.build_chunk(COMPILER, [rules], None, chunk)
    assert [r.display for r in results] == [display for _, display, _ in chunk]
    assert all(r.files and r.entries for r in results)
    for result in results:
        assert FileResult.from_json(result.to_json()) == result


def test_map_chunks_keeps_order():
    items = list(range(57))
    assert map_chunks(lambda chunk: [i * i for i in chunk], items, 3) == [i * i for i in items]


def test_workers_for_small_sets_is_one():
    assert workers_for(5) == 1
    assert workers_for(5, jobs=1) == 1


@pytest.mark.skipif(not can_fork(), reason="parallel compiles fork; elsewhere they run in one process")
@pytest.mark.parametrize("platform", ["sentinel", "defender"])
@pytest.mark.parametrize("named", [False, True])
def test_parallel_compile_is_the_plain_compile(tmp_path, platform, named):
    folder = many_rules(tmp_path / "many", 30)
    plain_queries = incremental.compile_queries(lambda: COMPILER, [folder], platform, named=named, jobs=1)
    parallel = incremental.compile_queries(lambda: COMPILER, [folder], platform, named=named, jobs=2)
    assert plain_queries.stats == {"plain": 1} and parallel.stats["workers"] == 2
    assert len(parallel.texts) == 30
    assert (parallel.texts, parallel.files, format_text(parallel.diagnostics), parallel.rules) == (
        plain_queries.texts, plain_queries.files, format_text(plain_queries.diagnostics), plain_queries.rules,
    )


def test_parallel_compile_with_an_error_is_the_plain_compile(tmp_path):
    folder = many_rules(tmp_path / "many", 10)
    (folder / "r005.yml").write_text("title: Broken\nid: 1\n", encoding="utf-8")
    plain_queries = incremental.compile_queries(lambda: COMPILER, [folder], "sentinel", named=False, jobs=1)
    parallel = incremental.compile_queries(lambda: COMPILER, [folder], "sentinel", named=False, jobs=2)
    assert not parallel.ok and parallel.stats == {"plain": 1}
    assert (parallel.texts, format_text(parallel.diagnostics)) == (plain_queries.texts, format_text(plain_queries.diagnostics))

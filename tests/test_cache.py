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


# -- a cache is untrusted input: keys are computable, folders can be written by others ------------
ONE_RULE = """title: Device code flow
id: 0d1f5a3e-7c2b-4e8d-9f1a-2b3c4d5e6f70
logsource: {product: entra, service: signins}
detection:
  sel:
    authenticationProtocol: deviceCode
  condition: sel
"""


def planted(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path]:
    """A rules folder of one rule, and a cache holding an entry for it that the build did not
    write: computed the way anyone can (the key hashes public facts), stored as the code reads."""
    from entra_sigma.cli import cache_context

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yml").write_text(ONE_RULE, encoding="utf-8")
    cache = Cache(tmp_path / "cache", cache_context("build", [rules], None, None))
    key = cache.key("rules/r.yml", (rules / "r.yml").read_bytes())
    entry = {"id": "0d1f5a3e-7c2b-4e8d-9f1a-2b3c4d5e6f70", "title": "Device code flow", "source": "rules/r.yml",
             "files": {path: "0" * 64 for path in files}, "skipped": {}}
    result = FileResult("rules/r.yml", files=files, entries=[entry], counted=1)
    path = cache.folder / key[:2] / f"{key}.json"
    path.parent.mkdir(parents=True)
    path.write_text(result.to_json(), encoding="utf-8")
    return rules, tmp_path / "cache"


def run_build(tmp_path: Path, *extra: str):
    from entra_sigma.cli import app
    from typer.testing import CliRunner

    return CliRunner().invoke(app, ["build", str(tmp_path / "rules"), "--out", str(tmp_path / "build"),
                                    "--cache", str(tmp_path / "cache"), *extra])


@pytest.fixture
def outside_the_checkout(tmp_path, monkeypatch):
    """The planted-entry tests build from a folder with no project file above it (this
    repository's entra-sigma.toml would be part of the key the build computes)."""
    monkeypatch.chdir(tmp_path)


@pytest.mark.usefixtures("outside_the_checkout")
@pytest.mark.parametrize("where", ["../../escaped.kql", "absolute"])
def test_a_planted_entry_cannot_write_outside_the_output_folder(tmp_path, where):
    outside = tmp_path / "escaped.kql"
    path = str(outside) if where == "absolute" else where
    planted(tmp_path, {"kql/r.kql": "SigninLogs\n", path: "planted\n"})
    result = run_build(tmp_path)
    assert not outside.exists() and not (tmp_path.parent / "escaped.kql").exists()
    assert result.exit_code == 0, result.output
    assert "1 cache entry not used (compiled again): 'rules/r.yml': its signature is not this user's" in result.stderr
    plain_build = build_outputs(Compiler(), [tmp_path / "rules"])
    assert {p.relative_to(tmp_path / "build").as_posix() for p in (tmp_path / "build").rglob("*") if p.is_file()} == {
        *plain_build.files, "manifest.json", ".entra-sigma-output",
    }


@pytest.mark.usefixtures("outside_the_checkout")
def test_a_planted_entry_cannot_replace_the_compiled_query(tmp_path):
    planted(tmp_path, {"kql/r.kql": "SigninLogs | take 0 // planted\n"})
    result = run_build(tmp_path)
    assert result.exit_code == 0, result.output
    kql = (tmp_path / "build" / "kql" / "r.kql").read_text(encoding="utf-8")
    assert "planted" not in kql and 'AuthenticationProtocol has "deviceCode"' in kql


def test_an_entry_is_used_only_for_the_file_it_was_signed_for(tmp_path, cache):
    """Copied under another file's key it fails its signature (the key is signed with it); signed
    for the other key (a stolen secret) it still names another file, or paths outside the layout."""
    from entra_sigma.verbs.incremental.cache import _signature

    good = FileResult("rules/a.yml", files={"kql/a.kql": "a\n"},
                      entries=[{"source": "rules/a.yml", "files": {"kql/a.kql": "0"}}], counted=1)
    cache.put(cache.key("rules/a.yml", b"a"), good)
    assert cache.get(cache.key("rules/a.yml", b"a"), "rules/a.yml") == good
    b_key = cache.key("rules/b.yml", b"b")
    path = cache.folder / b_key[:2] / f"{b_key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    a_key = cache.key("rules/a.yml", b"a")
    path.write_bytes((cache.folder / a_key[:2] / f"{a_key}.json").read_bytes())
    assert cache.get(b_key, "rules/b.yml") is None
    path.write_text("é — not a signature\n" + good.to_json(), encoding="utf-8")  # compare_digest refuses non-ASCII text
    assert cache.get(b_key, "rules/b.yml") is None
    cache.rejected.pop()
    for claim in (good, FileResult("rules/b.yml", files={"kql/../../x.kql": "x"}), FileResult("rules/b.yml", files={"notes.txt": "x"}),
                  FileResult("rules/b.yml", entries=[{"source": "rules/a.yml", "files": {}}])):
        text = claim.to_json()
        path.write_text(_signature(cache.secret, b_key, text) + "\n" + text, encoding="utf-8")
        assert cache.get(b_key, "rules/b.yml") is None
    assert [reason.split(": ", 1)[1] for reason in cache.rejected] == [
        "its signature is not this user's",
        "it is the entry of 'rules/a.yml', looked up for 'rules/b.yml'",
        "it names 'kql/../../x.kql', which is not an output file of the build's layout",
        "it names 'notes.txt', which is not an output file of the build's layout",
        "its manifest entries name another file, or files it does not hold",
    ]


def test_the_secret_is_made_once_outside_the_repository_readable_by_the_user_only(tmp_path, user_cache_folder):
    from entra_sigma.verbs.incremental.cache import SECRET_FILE, cache_secret, secret_folder

    assert secret_folder() == user_cache_folder / "entra-sigma"
    first = Cache(tmp_path / "one", "context").secret
    assert first == Cache(tmp_path / "two", "context").secret == cache_secret()
    secret = secret_folder() / SECRET_FILE
    assert secret.stat().st_mode & 0o077 == 0 and len(first) == 64
    elsewhere = tmp_path / "elsewhere"
    assert cache_secret(elsewhere) != first  # a machine of its own makes its own
    (elsewhere / SECRET_FILE).write_text("damaged\n", encoding="utf-8")
    damaged = Cache(tmp_path / "three", "context", cache_secret(elsewhere))
    damaged.put("k" * 64, FileResult("rules/x.yml"))  # no secret: nothing written, nothing read
    assert damaged.secret is None and not (tmp_path / "three").exists() and damaged.get("k" * 64, "rules/x.yml") is None


@pytest.mark.parametrize("layout", ["git", "no git"])
def test_a_cache_inside_the_repository_is_refused_unless_asked_for(tmp_path, layout):
    from entra_sigma.cli import app
    from typer.testing import CliRunner

    repository = tmp_path / "repo"
    (repository / "rules").mkdir(parents=True)
    (repository / "rules" / "r.yml").write_text(ONE_RULE, encoding="utf-8")
    if layout == "git":
        (repository / ".git").mkdir()
        inside, refused = repository / ".entra-sigma-cache", f"the repository {repository.resolve()}"
    else:
        inside, refused = repository / "rules" / ".cache", "the rules folder"
    build = ["build", str(repository / "rules"), "--out", str(tmp_path / "build"), "--cache", str(inside)]
    result = CliRunner().invoke(app, build)
    assert result.exit_code == 2 and not inside.exists()
    assert f"entra-sigma: error: --cache {inside} is inside {refused}, where a pull request can add entries" in result.stderr
    assert "--cache-in-repo" in result.stderr
    result = CliRunner().invoke(app, [*build, "--cache-in-repo"])
    assert result.exit_code == 0 and inside.is_dir()
    result = CliRunner().invoke(app, [*build[:-1], str(tmp_path / "cache")])  # beside the repository: fine
    assert result.exit_code == 0, result.output

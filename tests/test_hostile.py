"""Hostile input gets a clear, located error quickly, never a hang, a crash or a traceback.

Each crafted file below must produce its documented diagnostic within a generous time bound
(the real figures are a fraction of it) and, where memory could explode, within a memory
bound measured with tracemalloc. The bounds themselves live in compiler/load/limits.py and are
documented in docs/hardening.md. A failed or interrupted build must leave the previous
output folder exactly as it was.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest
from entra_sigma import write
from entra_sigma.build import Compiler, build_outputs
from entra_sigma.diagnostics import Diagnostic, SourceLocation
from entra_sigma.load.limits import MAX_CONDITION_DEPTH, MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, MAX_VALUES, condition_depth
from entra_sigma.load.loader import _FastRuleLoader, _parse, _RuleLoader, discover, load_documents, parse_documents
from entra_sigma.write import MARKER, OutputError, replace_folder

from .helpers import REPO, check_kql, compile_text

RULE = """title: {title}
id: {id}
logsource:
  product: entra
  service: interactive
detection:
  sel:
    userAgent|contains: curl
  condition: {condition}
"""
IDS = ["1b4e28ba-2fa1-4d2b-9a3e-0c1d2e3f4a5b", "2c5f39cb-3ab2-4e3c-8b4f-1d2e3f4a5b6c", "3d6a4adc-4bc3-4f4d-9c5a-2e3f4a5b6c7d"]
SECONDS = 5.0  # every hostile input is refused in well under a second; this bound only catches hangs


def rule(title: str = "Hostile", index: int = 0, condition: str = "sel") -> str:
    return RULE.format(title=title, id=IDS[index], condition=condition)


def parse(text: str, display: str = "r.yml"):
    return parse_documents(text, Path(display), display)


def timed(function, *args):
    """Run `function`, returning its result, seconds taken, and peak traced memory in bytes."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        result = function(*args)
    finally:
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, elapsed, peak


def only(diagnostics: list[Diagnostic]) -> Diagnostic:
    assert len(diagnostics) == 1, diagnostics
    return diagnostics[0]


# -- YAML bombs and nesting --------------------------------------------------------------------------
BILLION_LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(9)
)


@pytest.mark.parametrize("loader", [_FastRuleLoader, _RuleLoader], ids=["libyaml", "pure-python"])
def test_an_alias_bomb_stops_at_the_value_budget(loader):
    (documents, diagnostics), elapsed, peak = timed(_parse, BILLION_LAUGHS, Path("r.yml"), "r.yml", loader, False)
    assert documents == []
    problem = only(diagnostics)
    assert problem.code == "E001"
    assert problem.message == f"invalid YAML: more than {MAX_NODES} values (aliases count as often as they are used)"
    assert problem.location.line > 0
    assert elapsed < SECONDS and peak < 100 * 2**20


def test_aliases_within_the_budget_still_work():
    documents, diagnostics = parse("base: &b {x: 1}\n" + "".join(f"k{i}: *b\n" for i in range(1000)))
    assert diagnostics == [] and documents[0].data["k999"] == {"x": 1}


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a [[x, *a]]\n"], ids=["list", "map", "nested"])
def test_a_recursive_alias_is_too_deep_not_a_crash(text):
    (documents, diagnostics), elapsed, _ = timed(parse, text)
    assert (documents, [(d.code, d.message) for d in diagnostics]) == (
        [], [("E001", f"invalid YAML: nested more than {MAX_DEPTH} levels deep")],
    )
    assert elapsed < SECONDS


def flow(depth: int) -> str:
    return "a: " + "[" * depth + "]" * depth + "\n"


def block(depth: int) -> str:
    return "".join("  " * level + "k:\n" for level in range(depth)) + "  " * depth + "k: 1\n"


@pytest.mark.parametrize("loader", [_FastRuleLoader, _RuleLoader], ids=["libyaml", "pure-python"])
@pytest.mark.parametrize("make", [flow, block], ids=["flow", "block"])
def test_nesting_is_bounded_at_the_documented_depth(loader, make):
    def result(depth):
        return _parse(make(depth), Path("r.yml"), "r.yml", loader, False)

    # the root map holds `a`/`k`, so the deepest value sits one level below the brackets
    ok_depth = MAX_DEPTH - 1
    documents, diagnostics = result(ok_depth)
    assert diagnostics == [] and documents
    documents, diagnostics = result(ok_depth + 2)
    problem = only(diagnostics)
    assert (problem.code, problem.message) == ("E001", f"invalid YAML: nested more than {MAX_DEPTH} levels deep")
    assert problem.location.line >= 1


@pytest.mark.parametrize("depth", [500, 5_000, 200_000])
def test_very_deep_nesting_is_refused_fast(depth):
    (documents, diagnostics), elapsed, _ = timed(parse, flow(depth))
    problem = only(diagnostics)
    assert documents == [] and problem.code == "E001" and problem.location.line == 1
    assert "nest" in problem.message  # ours, or libyaml's "exceeded maximum nesting depth"
    assert elapsed < SECONDS


@pytest.mark.slow  # two YAML lists of 100,000 values parsed, over a second
def test_the_value_budget_is_exact():
    """Root map + list + items: MAX_NODES values in all is fine, one more is refused."""
    items = MAX_NODES - 2
    documents, diagnostics = parse("a: [" + ",".join(["1"] * items) + "]\n")
    assert diagnostics == [] and len(documents[0].data["a"]) == items
    documents, diagnostics = parse("a: [" + ",".join(["1"] * (items + 1)) + "]\n")
    assert only(diagnostics).message.startswith(f"invalid YAML: more than {MAX_NODES} values")


# -- size, encoding, odd characters --------------------------------------------------------------------
def test_a_10_mb_rule_file_is_refused_before_it_is_read(tmp_path):
    big = tmp_path / "big.yml"
    big.write_text(rule() + "description: |\n" + ("  " + "x" * 98 + "\n") * 100_000, encoding="utf-8")
    assert big.stat().st_size > 10_000_000
    (documents, diagnostics), elapsed, peak = timed(load_documents, [big])
    assert documents == []
    assert diagnostics == [Diagnostic("E001", "the file is larger than 1 MiB, the most a rule file may hold", SourceLocation("big.yml"))]
    assert elapsed < SECONDS and peak < 8 * MAX_FILE_BYTES  # it reads at most the limit, plus one byte


def test_the_size_limit_is_exact(tmp_path):
    filler = "# " + "x" * 97 + "\n"
    body = rule()
    text = body + filler * ((MAX_FILE_BYTES - len(body)) // len(filler))
    text += "#" * (MAX_FILE_BYTES - len(text) - 1) + "\n"
    assert len(text.encode("utf-8")) == MAX_FILE_BYTES
    (tmp_path / "at_limit.yml").write_text(text, encoding="utf-8")
    (tmp_path / "over_limit.yml").write_text(text + "\n", encoding="utf-8")
    documents, diagnostics = load_documents([tmp_path / "at_limit.yml", tmp_path / "over_limit.yml"])
    assert [d.display_path for d in documents] == ["at_limit.yml"]
    assert [(d.code, d.location.path) for d in diagnostics] == [("E001", "over_limit.yml")]
    documents, diagnostics = parse(text + "\n")  # the same bound on text handed over directly
    assert documents == [] and only(diagnostics).message.startswith("the file is larger than 1 MiB")


def test_bytes_that_are_not_utf8_are_a_read_error(tmp_path):
    (tmp_path / "latin1.yml").write_bytes(rule().encode("utf-8") + b"description: caf\xe9\n")
    (tmp_path / "utf16.yml").write_bytes(rule().encode("utf-16"))
    documents, diagnostics = load_documents([tmp_path / "latin1.yml", tmp_path / "utf16.yml"])
    assert documents == []
    assert [(d.code, d.location.path, d.message.split(":")[0]) for d in diagnostics] == [
        ("E001", "latin1.yml", "cannot read file"), ("E001", "utf16.yml", "cannot read file"),
    ]
    assert "can't decode byte 0xe9" in diagnostics[0].message


@pytest.mark.parametrize("escape", ["\\ud800", "\\udfff", "\\ud83d\\ude00"])
def test_lone_surrogates_are_refused_where_they_are_written(escape):
    """No file, JSON or YAML output can hold one; libyaml refuses them, pure Python would not."""
    documents, diagnostics = parse(rule().replace("userAgent|contains: curl", f'userAgent|contains: "a{escape}"'))
    problem = only(diagnostics)
    assert documents == [] and problem.code == "E001"
    assert (problem.location.line, problem.location.column) == (8, 25)


def test_nul_and_other_controls_are_values_not_errors():
    documents, diagnostics = parse(rule().replace("curl", '"a\\0b\\x01\\u2028"'))
    assert diagnostics == [] and documents[0].data["detection"]["sel"]["userAgent|contains"] == "a\x00b\x01\u2028"


@pytest.mark.parametrize("character", ["\x00", "\x01", "\x1b", "\x7f", "\x9b", "\ufffe", "\uffff"])
@pytest.mark.parametrize("where", ["comment", "plain value", "key"])
def test_a_raw_control_character_anywhere_is_a_located_error(character, where):
    """PyYAML refuses them before parsing, with an error that was not a marked one: an internal
    error (exit status 3) in validate, build and diff, even for a character in a comment."""
    text = {
        "comment": rule().replace("detection:\n", f"# a comment {character}\ndetection:\n"),
        "plain value": rule().replace("curl", f"cu{character}rl"),
        "key": rule().replace("userAgent|contains", f"user{character}Agent|contains"),
    }[where]
    documents, diagnostics = parse(text)
    problem = only(diagnostics)
    line, column = {"comment": (6, 13), "plain value": (8, 27), "key": (8, 9)}[where]
    assert documents == [] and (problem.code, str(problem.location)) == ("E001", f"r.yml:{line}:{column}")
    code = ord(character)
    assert problem.message == (f"invalid YAML: the character U+{code:04X} cannot appear in a YAML file, not even in a "
                               f"comment (in a double-quoted value, write it as \\u{code:04x})")


def test_characters_yaml_allows_raw_are_still_read():
    documents, diagnostics = parse(rule().replace("curl", "cé😀\u00a0\ue000l").replace("title: Hostile", "title: Hostile\r"))
    assert diagnostics == [] and documents[0].data["detection"]["sel"]["userAgent|contains"] == "cé😀\u00a0\ue000l"


def test_tabs_for_indentation_are_a_located_error():
    documents, diagnostics = parse(rule().replace("  product", "\tproduct"))
    problem = only(diagnostics)
    assert (problem.code, str(problem.location)) == ("E001", "r.yml:4:1")
    assert problem.message == "invalid YAML: a tab character: YAML indents with spaces only"


def test_duplicate_keys_in_any_document_are_refused():
    documents, diagnostics = parse(rule() + "---\n" + rule("Other", 1) + "title: again\n")
    assert documents == []
    assert [(d.code, str(d.location), d.message) for d in diagnostics] == [
        ("E001", "r.yml:20:1", "invalid YAML: duplicate key 'title'"),
    ]


# -- several documents in one file ---------------------------------------------------------------------
def test_several_rule_documents_are_read_with_their_own_positions():
    documents, diagnostics = parse(rule() + "---\n" + rule("Second", 1) + "...\n")
    assert diagnostics == []
    assert [d.data["title"] for d in documents] == ["Hostile", "Second"]
    assert documents[1].location("detection", "sel") == SourceLocation("r.yml", 17, 3)


@pytest.mark.parametrize("between", ["---\n---\n", "---\n# only a comment\n---\n", "---\n...\n---\n"])
def test_an_empty_document_between_rules_is_an_error(between):
    documents, diagnostics = parse(rule() + between + rule("Second", 1))
    problem = only(diagnostics)
    assert documents == [] and problem.code == "E001"
    assert problem.message == "an empty document between two rules (two '---' in a row?)"
    assert problem.location.line >= 10


def test_empty_documents_before_the_first_and_after_the_last_rule_are_fine():
    documents, diagnostics = parse("---\n---\n" + rule() + "---\n...\n---\n")
    assert diagnostics == [] and len(documents) == 1


@pytest.mark.parametrize("second", ["- a\n- b\n", "just text\n", "42\n", "null\n"])
def test_a_document_that_is_not_a_mapping_is_a_located_schema_error(second):
    documents, diagnostics = parse(rule() + "---\n" + second)
    assert diagnostics == [] and len(documents) == 2
    rules, diagnostics = Compiler().rules(documents)
    assert [r.title for r in rules] == ["Hostile"]
    assert [(d.code, str(d.location), d.message) for d in diagnostics] == [
        ("E002", "r.yml:11:1", "a rule must be a YAML mapping"),
    ]


def test_duplicate_ids_are_found_across_documents_and_files(tmp_path):
    (tmp_path / "a.yml").write_text(rule("A", 0) + "---\n" + rule("B", 0), encoding="utf-8")
    (tmp_path / "b.yml").write_text(rule("C", 0), encoding="utf-8")
    documents, diagnostics = load_documents([tmp_path])
    assert diagnostics == [] and len(documents) == 3
    _, diagnostics = Compiler().rules(documents)
    duplicates = sorted((str(d.location), d.message) for d in diagnostics if d.code == "E005")
    name = tmp_path.name
    assert duplicates == [
        (f"{name}/a.yml:12:1", f"duplicate id '{IDS[0]}': also used by {name}/a.yml"),
        (f"{name}/b.yml:2:1", f"duplicate id '{IDS[0]}': also used by {name}/a.yml"),
    ]

    outputs = build_outputs(Compiler(), [tmp_path], ("kql",))
    assert sorted({d.code for d in outputs.diagnostics if d.severity == "error"}) == ["E005"]  # no E007 echo


# -- conditions -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("condition", [
    "not " * 2000 + "sel",
    "(" * 400 + "sel" + ")" * 400,
    "sel" + "".join(f" {'and' if i % 2 else 'or'} not (sel" for i in range(300)) + ")" * 300,
])
def test_a_condition_nested_too_deeply_is_refused_before_pysigma(condition):
    documents, _ = parse(rule(condition=condition))
    (_, diagnostics), elapsed, _ = timed(Compiler().rules, documents)
    problem = only(diagnostics)
    assert (problem.code, str(problem.location)) == ("E003", "r.yml:9:3")
    assert problem.message.startswith("invalid condition: it nests ")
    assert problem.message.endswith(f"levels deep (parentheses and 'not'); at most {MAX_CONDITION_DEPTH}")
    assert elapsed < SECONDS


def test_a_condition_at_the_depth_limit_compiles():
    condition = "not (" * (MAX_CONDITION_DEPTH // 2) + "sel" + ")" * (MAX_CONDITION_DEPTH // 2)
    assert condition_depth(condition) == MAX_CONDITION_DEPTH
    documents, _ = parse(rule(condition=condition))
    rules, diagnostics = Compiler().rules(documents)
    assert diagnostics == [] and len(rules) == 1


@pytest.mark.parametrize("condition,depth", [
    ("sel", 0), ("not sel", 1), ("a and not b and not c", 1), ("not (a and not (b or c))", 4),
    ("((a))", 2), ("1 of sel_* and not filter", 1), ("not 1 of sel_*", 1), ("(a or b) and not (c)", 2),
])
def test_condition_depth_counts_parentheses_and_pending_nots(condition, depth):
    assert condition_depth(condition) == depth


def test_a_wide_condition_is_fine():
    selections = "".join(f"  s{i}:\n    userAgent|contains: v{i}\n" for i in range(300))
    text = rule(condition=" or ".join(f"s{i}" for i in range(300))).replace(
        "  sel:\n    userAgent|contains: curl\n", selections
    )
    documents, _ = parse(text)
    (rules, diagnostics), elapsed, _ = timed(Compiler().rules, documents)
    assert diagnostics == [] and len(rules) == 1 and elapsed < 30


# -- durations no clock can hold ------------------------------------------------------------------------
CORRELATION = """title: Window
id: 4e7b5bed-5cd4-4a5e-8d6b-3f4a5b6c7d8e
correlation:
  type: event_count
  rules: base
  group-by: [userPrincipalName]
  timespan: {timespan}
  condition: {{gte: 3}}
---
title: Base
id: 0d1f5a3e-7c2b-4e8d-9f1a-2b3c4d5e6f70
name: base
logsource: {{product: entra, service: signins}}
detection:
  sel:
    userAgent: x
  condition: sel
"""


@pytest.mark.parametrize("timespan", ["999999999w", "99999999999999999999d", "53w", "367d"])
def test_a_correlation_timespan_past_a_year_is_a_located_error(timespan):
    """999999999w overflowed Python's timedelta: an internal error in validate and build."""
    documents, _ = parse(CORRELATION.format(timespan=timespan))
    rules, diagnostics = Compiler().rules(documents)
    assert [r.title for r in rules] == ["Base"]
    assert [(d.code, str(d.location), d.message) for d in diagnostics] == [(
        "E407", "r.yml:7:3", f"the timespan {timespan} is longer than a year, the longest a correlation may span",
    )]
    documents, _ = parse(CORRELATION.format(timespan="52w"))  # a year is allowed; Sentinel then says why it cannot run it
    rules, diagnostics = Compiler().rules(documents)
    assert diagnostics == [] and len(rules) == 2


def test_durations_too_long_for_a_clock_are_out_of_range_not_a_crash(tmp_path):
    (tmp_path / "r.yml").write_text(rule() + "sentinel:\n  queryFrequency: 99999999999999999999d\n"
                                    "  suppression: {enabled: true, duration: 99999999999999999999h}\n", encoding="utf-8")
    outputs = build_outputs(Compiler(), [tmp_path])
    assert sorted((d.code, d.message) for d in outputs.diagnostics if d.severity == "error") == [
        ("E303", "'sentinel.queryFrequency' must be between 5m and 14d"),
        ("E303", "'sentinel.queryPeriod' must be at least 'sentinel.queryFrequency'"),
        ("E303", "'sentinel.suppression.duration' must be between 5m and 24h"),
    ]


# -- wide value lists ----------------------------------------------------------------------------------
def wide(shape: str, values: int, title: str = "Wide", index: int = 0) -> str:
    """A rule whose detection holds `values` values, laid out one of several ways."""
    if shape == "wildcards":  # one list of `*text*` values (8,000 took 37 s to validate)
        body = "  sel:\n    userAgent:\n" + "".join(f"      - '*v{i:05d}x*'\n" for i in range(values)) + "  condition: sel\n"
    elif shape == "middle wildcards":  # patterns: each becomes a regular expression
        body = "  sel:\n    userAgent:\n" + "".join(f"      - 'a{i:05d}*b?c'\n" for i in range(values)) + "  condition: sel\n"
    elif shape == "maps on an array":  # a list of maps, each bound to one array element
        body = "  sel:\n" + "".join(
            f"    - authenticationDetails.authenticationMethod: m{i}\n      authenticationDetails.succeeded: true\n"
            for i in range(values // 2)
        ) + "  condition: sel\n"
    elif shape == "maps":  # a list of maps on plain columns
        body = "  sel:\n" + "".join(
            f"    - userAgent|contains: v{i:05d}\n      appId: a{i}\n" for i in range(values // 2)
        ) + "  condition: sel\n"
    else:  # selections: one value each, `1 of`
        body = "".join(f"  sel{i}:\n    userAgent|contains: v{i:05d}\n" for i in range(values)) + "  condition: 1 of sel*\n"
    return (f"title: {title}\nid: {IDS[index]}\nname: wide{index}\nlogsource:\n  product: entra\n"
            f"  service: signins\ndetection:\n{body}")


WIDE_SHAPES = ["wildcards", "middle wildcards", "maps on an array", "maps", "selections"]


@pytest.mark.slow  # compiles 10,000 values, a second or two
@pytest.mark.parametrize("shape", WIDE_SHAPES)
def test_a_rule_at_the_value_bound_compiles_in_linear_time(shape):
    """Duplicate removal searched a list per value (quadratic); a list of maps looked up its
    position per value. At the bound a rule now takes a second or two; before, minutes."""
    documents, _ = parse(wide(shape, MAX_VALUES))
    started = time.perf_counter()  # not `timed`: tracemalloc would triple the time
    result = Compiler().compile_documents(documents, [], ("sentinel", "defender"))
    elapsed = time.perf_counter() - started
    assert [d.code for d in result.diagnostics if d.severity == "error" and d.target != "defender"] == []
    assert "sentinel" in result.compiled[0].texts  # Defender has no array of authentication details
    assert elapsed < 20  # linear: about 2 s on a busy 2-CPU machine; quadratic took over a minute


@pytest.mark.slow  # Kusto.Language takes seconds on each of these queries
def test_wide_lists_give_queries_kusto_language_accepts(kusto):
    """A chain of about 450 `or`s or `and`s, or as many pipe steps, was too deep for
    Kusto.Language (KS245): long chains are written in parenthesised groups, long pipelines
    merge their steps."""
    texts = {}
    cases = [("wildcards", "sentinel"), ("maps", "defender"), ("maps on an array", "sentinel"), ("contains all", "defender")]
    for shape, platform in cases:
        text = wide("wildcards" if shape == "contains all" else shape, 600)  # Kusto.Language refused from about 450
        if shape == "contains all":
            text = text.replace("userAgent:", "userAgent|contains|all:").replace("'*v", "'v").replace("x*'", "x'")
        kql, problems = compile_text(text, platform)
        assert kql is not None, [str(d) for d in problems]
        texts[f"{shape}/{platform}"] = kql
    assert {key: found for key, found in check_kql(kusto, texts).items() if found} == {}


@pytest.mark.replay
def test_chains_and_pipelines_written_in_groups_mean_what_they_meant():
    """Past 64 operands or steps the query is grouped (an `or` chain, `where` steps); replayed,
    it keeps exactly the rows it should. (`mv-apply` steps merged into one per array are
    checked by Kusto.Language only: the local engine has no `mv-apply`.)"""

    from entra_sigma.verbs.ruletests.replay import LocalEngine, Replayed

    any_of = wide("wildcards", 200).replace("service: signins", "service: interactive")
    all_of = any_of.replace("userAgent:", "userAgent|contains|all:").replace("'*v", "'v").replace("x*'", "x'")
    every = "".join(f"v{i:05d}x" for i in range(200))

    agents = {"first": "..v00000x..", "last": "v00199x", "middle": "a v00150x b", "none": "v00200x", "every": every,
              "all but one": every.replace("v00123x", "")}
    compiler = Compiler()
    engine = LocalEngine(compiler.registry)
    columns = compiler.registry.tables["SigninLogs"].columns
    engine.load({"SigninLogs": [
        {**dict.fromkeys(columns), "UserAgent": agent, "UserPrincipalName": name, "Type": "SigninLogs"}
        for name, agent in agents.items()
    ]})
    matched = {}
    for label, text, grouped in (("any", any_of, "or (UserAgent"), ("all", all_of, " and UserAgent")):
        kql, problems = compile_text(text)
        assert problems == [] and grouped in kql
        result = engine.run(kql)
        assert isinstance(result, Replayed), result
        user = result.columns.index("UserPrincipalName")
        matched[label] = sorted(row[user] for row in result.rows)
    assert matched == {"any": ["all but one", "every", "first", "last", "middle"], "all": ["every"]}


def test_one_value_more_than_the_bound_is_refused_before_pysigma_reads_it(monkeypatch):
    from entra_sigma.model import rule as rule_module

    def unread(*args, **kwargs):
        raise AssertionError("pySigma was asked to read the detection")

    monkeypatch.setattr(rule_module.SigmaRule, "from_dict", unread)
    text = wide("wildcards", MAX_VALUES + 1).replace("  condition: sel\n", "  other:\n    appId: [a, b]\n  condition: sel or other\n")
    documents, _ = parse(text)
    rules, diagnostics = Compiler().rules(documents)
    assert rules == []
    assert [(d.code, str(d.location), d.message, d.hint) for d in diagnostics] == [(
        "E008", "r.yml:8:3",
        f"the detection holds {MAX_VALUES + 3} values ({MAX_VALUES + 1} in 'sel'); a rule may hold at most {MAX_VALUES}",
        "split the rule, or keep a long list in a Sentinel watchlist",
    )]


@pytest.mark.slow  # five files of 10,000 values parsed
def test_the_value_bound_is_exact():
    from entra_sigma.model.rule import _value_count_diagnostics

    for shape in WIDE_SHAPES:
        documents, _ = parse(wide(shape, MAX_VALUES))
        assert _value_count_diagnostics(documents[0], "Wide") == [], shape
    documents, _ = parse(wide("selections", MAX_VALUES + 1))
    assert [d.code for d in _value_count_diagnostics(documents[0], "Wide")] == ["E008"]


@pytest.mark.slow  # pySigma reads 20,000 selections
def test_a_correlation_counts_the_values_of_every_rule_it_correlates():
    """Its query holds them all, down a chain of correlations; a rule met twice counts once."""
    half = MAX_VALUES // 2

    def correlation(title: str, uid: str, rules: str, name: str = "") -> str:
        return (f"title: {title}\nid: {uid}\n{name}correlation:\n  type: temporal\n  rules: [{rules}]\n"
                "  group-by: [userPrincipalName]\n  timespan: 1h\n")

    inner = correlation("Inner", "4e7b5bed-5cd4-4a5e-8d6b-3f4a5b6c7d8e", "wide0, wide1", "name: inner\n")
    outer = correlation("Outer", "5f8c6cfe-6de5-4b6f-9e7c-4a5b6c7d8e9f", "inner, wide0")

    def check(second: int) -> tuple[list, list]:
        documents, _ = parse("---\n".join([inner, outer, wide("selections", half, "A", 0), wide("selections", second, "B", 1)]))
        rules, diagnostics = Compiler().rules(documents)
        return sorted(r.title for r in rules), [(d.code, str(d.location), d.message) for d in diagnostics]

    assert check(half) == (["A", "B", "Inner", "Outer"], [])  # wide0 is under Outer twice, counted once
    message = f"the rules it correlates hold {MAX_VALUES + 1} values together; a rule may hold at most {MAX_VALUES}"
    assert check(half + 1) == (["A", "B"], [("E008", "r.yml:6:3", message)])  # Outer fails with Inner, silently


# -- folders: symbolic links, pipes ----------------------------------------------------------------------
def test_symbolic_link_loops_and_broken_links_end_with_clear_errors(tmp_path):
    rules = tmp_path / "rules"
    (rules / "sub").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (rules / "a.yml").write_text(rule("A", 0), encoding="utf-8")
    (rules / "sub" / "b.yml").write_text(rule("B", 2), encoding="utf-8")
    (tmp_path / "outside" / "o.yml").write_text(rule("O", 1), encoding="utf-8")
    (rules / "sub" / "loop").symlink_to(rules, target_is_directory=True)  # a folder loop
    (rules / "sub" / "up").symlink_to("..", target_is_directory=True)  # another, relative
    (rules / "inner").symlink_to("sub", target_is_directory=True)  # a folder inside: followed
    (rules / "b-again.yml").symlink_to("sub/b.yml")  # a file inside: followed, read once
    (rules / "ext").symlink_to(tmp_path / "outside", target_is_directory=True)  # a folder outside
    (rules / "o.yml").symlink_to(tmp_path / "outside" / "o.yml")  # a file outside
    (rules / "notes.txt").symlink_to(tmp_path / "outside" / "o.yml")  # not a rule file: never looked at
    (rules / "self.yml").symlink_to("self.yml")  # a file loop
    (rules / "dangling.yml").symlink_to("nowhere.yml")
    (files, diagnostics), elapsed, _ = timed(discover, [rules])
    assert elapsed < SECONDS
    assert [display for _, display in files] == ["rules/a.yml", "rules/b-again.yml", "rules/dangling.yml", "rules/self.yml"]
    assert sorted((d.code, str(d.location), d.message) for d in diagnostics) == [
        ("E001", "rules/ext", "not followed: a symbolic link that leads outside rules"),
        ("E001", "rules/o.yml", "not followed: a symbolic link that leads outside rules"),
    ]
    documents, diagnostics = load_documents([rules])
    assert [d.data["title"] for d in documents] == ["A", "B"]
    diagnostics.sort(key=lambda d: d.location.path)
    assert [(d.code, d.location.path) for d in diagnostics] == [
        ("E001", "rules/dangling.yml"), ("E001", "rules/ext"), ("E001", "rules/o.yml"), ("E001", "rules/self.yml"),
    ]
    assert "No such file" in diagnostics[0].message and "symbolic links" in diagnostics[3].message


@pytest.mark.parametrize("target", ["/", "/usr", "/etc/passwd", "/proc/self/root"])
def test_a_link_out_of_the_rules_folder_is_never_followed(tmp_path, target):
    """`rules/root -> /usr` walked 4,311 files and printed their titles; `-> /` ended with an
    internal error (a permission error deep in /proc)."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "a.yml").write_text(rule("A", 0), encoding="utf-8")
    (rules / ("root.yml" if target == "/etc/passwd" else "root")).symlink_to(target)
    (files, diagnostics), elapsed, _ = timed(discover, [rules])
    assert [display for _, display in files] == ["rules/a.yml"] and elapsed < SECONDS
    assert [(d.code, d.message) for d in diagnostics] == [("E001", "not followed: a symbolic link that leads outside rules")]


def test_a_folder_or_entry_that_cannot_be_read_is_a_located_diagnostic(tmp_path, monkeypatch):
    """Permission errors (root reads everything, so the refusals are planted)."""
    from entra_sigma.load import loader

    rules = tmp_path / "rules"
    (rules / "locked").mkdir(parents=True)
    (rules / "unsearchable").mkdir()
    (rules / "a.yml").write_text(rule("A", 0), encoding="utf-8")
    real_listdir, real_is_dir = os.listdir, Path.is_dir

    def listdir(folder):
        if Path(folder).name == "locked":
            raise PermissionError(13, "Permission denied", str(folder))
        return real_listdir(folder)

    def is_dir(path):
        if path.name == "unsearchable":
            raise PermissionError(13, "Permission denied", str(path))
        return real_is_dir(path)

    monkeypatch.setattr(loader.os, "listdir", listdir)
    monkeypatch.setattr(Path, "is_dir", is_dir)
    files, diagnostics = discover([rules])
    assert [display for _, display in files] == ["rules/a.yml"]
    assert sorted((d.code, str(d.location), d.message) for d in diagnostics) == [
        ("E001", "rules/locked", "cannot read folder: Permission denied"),
        ("E001", "rules/unsearchable", "cannot read: Permission denied"),
    ]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_in_a_rule_folder_is_skipped_not_read(tmp_path):
    os.mkfifo(tmp_path / "pipe.yml")  # reading it would block forever
    (tmp_path / "a.yml").write_text(rule(), encoding="utf-8")
    (files, _), elapsed, _ = timed(discover, [tmp_path])
    assert [display for _, display in files] == [f"{tmp_path.name}/a.yml"] and elapsed < SECONDS


# -- writing: nothing half-written, ever ------------------------------------------------------------------
def contents(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def previous(tmp_path):
    out = tmp_path / "build"
    replace_folder(out, {"kql/old.kql": "old\n", "manifest.json": "{}\n"})
    return out, contents(out)


def test_a_failure_mid_write_keeps_the_previous_output(previous, monkeypatch):
    out, before = previous
    real_open = open
    calls = []

    def failing_open(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(write, "open", failing_open, raising=False)
    with pytest.raises(OutputError, match="cannot write .*build: No space left on device"):
        replace_folder(out, {f"kql/{i}.kql": f"{i}\n" for i in range(5)})
    assert contents(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["build"]  # no staging folder left


def test_a_failure_while_swapping_folders_puts_the_previous_output_back(previous, monkeypatch):
    out, before = previous
    real_replace = os.replace

    def failing_replace(source, target):
        if Path(source).name.startswith(".build.") and ".old-" not in Path(source).name and Path(target) == out:
            raise OSError(5, "Input/output error")
        return real_replace(source, target)

    monkeypatch.setattr(write.os, "replace", failing_replace)
    with pytest.raises(OutputError, match="Input/output error"):
        replace_folder(out, {"kql/new.kql": "new\n"})
    assert contents(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["build"]


def test_an_interrupt_mid_write_keeps_the_previous_output(previous, monkeypatch):
    out, before = previous
    real_open = open

    def interrupted_open(path, *args, **kwargs):
        if str(path).endswith("2.kql"):
            raise KeyboardInterrupt
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(write, "open", interrupted_open, raising=False)
    with pytest.raises(KeyboardInterrupt):
        replace_folder(out, {f"kql/{i}.kql": f"{i}\n" for i in range(5)})
    assert contents(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["build"]


def test_an_interrupt_while_carrying_unchanged_files_over_keeps_the_previous_output(previous, monkeypatch):
    """Unchanged files are hard-linked from the previous folder; an interrupt then leaves that folder
    exactly as it was (same files, no second name left on any of them)."""
    out, before = previous
    real_link = os.link
    linked = []

    def interrupted_link(source, target, **kwargs):
        if linked:
            raise KeyboardInterrupt
        linked.append(target)
        return real_link(source, target, **kwargs)

    monkeypatch.setattr(write.os, "link", interrupted_link)
    with pytest.raises(KeyboardInterrupt):
        replace_folder(out, {"kql/old.kql": "old\n", "manifest.json": "{}\n", "kql/new.kql": "new\n"})
    assert linked  # one file was carried over before the interrupt
    assert contents(out) == before
    assert all(p.stat().st_nlink == 1 for p in out.rglob("*") if p.is_file())
    assert sorted(p.name for p in out.parent.iterdir()) == ["build"]


@pytest.mark.parametrize("path", ["../x.kql", "kql/../../x.kql", "/tmp/x.kql", "kql//x.kql", "./x.kql", "kql\\..\\..\\x.kql", "C:x.kql", ""])
def test_a_path_that_would_leave_the_output_folder_is_refused_before_anything_is_written(previous, path):
    """Paths come from rules and from build cache entries: the writer refuses any that is not
    inside the folder, on either separator."""
    out, before = previous
    with pytest.raises(OutputError, match="it is not a path inside"):
        replace_folder(out, {"kql/fine.kql": "fine\n", path: "escaped\n"})
    assert contents(out) == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["build"]


def test_an_unwritable_parent_folder_is_an_output_error(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(write.tempfile, "mkdtemp", denied)
    with pytest.raises(OutputError, match=r"cannot write .*build: Permission denied"):
        replace_folder(tmp_path / "build", {"q.kql": "q\n"})
    assert list(tmp_path.iterdir()) == []


# -- the command line: no traceback, whatever the input ---------------------------------------------------
ENTRA_SIGMA = [sys.executable, "-m", "compiler"] if (REPO / "compiler" / "__main__.py").exists() else [
    str(Path(sys.executable).parent / "entra-sigma")
]


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*ENTRA_SIGMA, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    rules = root / "rules"
    (rules / "sub").mkdir(parents=True)
    (rules / "bomb.yml").write_text(BILLION_LAUGHS, encoding="utf-8")
    (rules / "deep.yml").write_text(flow(100_000), encoding="utf-8")
    (rules / "recursive.yml").write_text("a: &a [*a]\n", encoding="utf-8")
    (rules / "big.yml").write_text("a: " + "x" * (MAX_FILE_BYTES + 10) + "\n", encoding="utf-8")
    (rules / "latin1.yml").write_bytes(b"title: caf\xe9\n")
    (rules / "surrogate.yml").write_text(rule("S", 0).replace("curl", '"\\ud800"'), encoding="utf-8")
    (rules / "tabs.yml").write_text(rule("T", 1).replace("  product", "\tproduct"), encoding="utf-8")
    (rules / "empty_between.yml").write_text(rule("E", 2) + "---\n---\n" + rule("F", 2), encoding="utf-8")
    (rules / "condition.yml").write_text(rule("C", 0, condition="not " * 3000 + "sel"), encoding="utf-8")
    (rules / "datetime.yml").write_text(rule("D", 1).replace("userAgent|contains: curl", "createdDateTime: '2025-01-31)00:00'"), encoding="utf-8")
    (rules / "wide.yml").write_text(wide("wildcards", MAX_VALUES + 1, "W", 2), encoding="utf-8")
    (rules / "control.yml").write_text(rule("K", 1).replace("detection:", "# \x01\ndetection:"), encoding="utf-8")
    (rules / "timespan.yml").write_text(CORRELATION.format(timespan="999999999w").replace("name: base", "name: base9")
                                        .replace("rules: base", "rules: base9").replace("0d1f5a3e", "0d1f5a3f")
                                        .replace("4e7b5bed", "4e7b5bee").replace("Window", "W9").replace("Base", "B9"),
                                        encoding="utf-8")
    (rules / "frequency.yml").write_text(rule("Q", 2).replace(IDS[2], "5f8c6cfe-6de5-4b6f-9e7c-4a5b6c7d8e9f")
                                         + "sentinel:\n  queryFrequency: 99999999999999999999d\n", encoding="utf-8")
    (rules / "sub" / "loop").symlink_to(rules, target_is_directory=True)
    (rules / "self.yml").symlink_to("self.yml")
    return root


HOSTILE_FILES = [
    "big", "bomb", "condition", "control", "datetime", "deep", "empty_between", "frequency", "latin1", "recursive", "self",
    "surrogate", "tabs", "timespan", "wide",
]


@pytest.mark.slow  # starts the installed command in a subprocess
@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_the_cli_reports_every_hostile_file_without_a_traceback(hostile_folder, fmt):
    started = time.perf_counter()
    result = run_cli("validate", "rules", "--format", fmt, cwd=hostile_folder)
    assert time.perf_counter() - started < 60
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    for name in HOSTILE_FILES:
        assert f"rules/{name}.yml" in result.stderr, name


@pytest.mark.slow  # starts the installed command in a subprocess
def test_a_build_of_hostile_rules_keeps_the_previous_output(hostile_folder):
    out = hostile_folder / "build"
    replace_folder(out, {"kql/old.kql": "old\n"})
    before = contents(out)
    result = run_cli("build", "rules", "--out", "build", cwd=hostile_folder)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "nothing written to build: fix the errors above" in result.stderr
    assert contents(out) == before


@pytest.mark.slow  # starts the installed command in a subprocess
def test_an_output_folder_that_cannot_be_created_is_a_usage_error(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yml").write_text(rule(), encoding="utf-8")
    (tmp_path / "file").write_text("in the way\n", encoding="utf-8")
    result = run_cli("build", "rules", "--out", "file/build", cwd=tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "entra-sigma: error: cannot write file/build: file is not a folder" in result.stderr
    assert (tmp_path / "file").read_text(encoding="utf-8") == "in the way\n"

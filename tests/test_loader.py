"""load/loader.py: YAML text → data plus the line:column of every key; problems become located E001/E000."""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.diagnostics import Diagnostic, SourceLocation
from entra_sigma.load.loader import discover, display_path_for, load_documents, parse_yaml


def parse(text: str, display: str = "r.yml"):
    return parse_yaml(text, Path(display), display)


def e001(message: str, line: int, column: int, path: str = "r.yml") -> Diagnostic:
    return Diagnostic("E001", message, SourceLocation(path, line, column))


# -- parse_yaml: data and positions ---------------------------------------------------------


def test_data_and_the_position_of_every_key_and_item():
    document, diagnostics = parse("a: 1\nb:\n  c: [x, y]\n  d:\n    - e: 2\n")
    assert diagnostics == []
    assert document.data == {"a": 1, "b": {"c": ["x", "y"], "d": [{"e": 2}]}}
    assert document.positions == {
        (): (1, 1),
        ("a",): (1, 1),
        ("b",): (2, 1),
        ("b", "c"): (3, 3),
        ("b", "c", 0): (3, 7),
        ("b", "c", 1): (3, 10),
        ("b", "d"): (4, 3),
        ("b", "d", 0): (5, 7),
        ("b", "d", 0, "e"): (5, 7),
    }
    assert document.path == Path("r.yml") and document.display_path == "r.yml"


def test_location_falls_back_to_the_deepest_known_prefix():
    document, _ = parse("a: 1\nb:\n  c: [x, y]\n")
    assert document.location("b", "c", 1) == SourceLocation("r.yml", 3, 10)
    assert document.location("b", "c", 7, "deeper") == SourceLocation("r.yml", 3, 3)
    assert document.location("nope") == SourceLocation("r.yml", 1, 1)
    assert str(document.location("b")) == "r.yml:2:1"


def test_title_only_when_it_is_a_string():
    assert parse("title: Hello\n")[0].title == "Hello"
    assert parse("title: 5\n")[0].title is None
    assert parse("- title: x\n")[0].title is None


def test_dates_stay_text_and_other_scalars_keep_their_type():
    document, _ = parse("date: 2024-01-31\nat: 2024-01-31T10:00:00Z\nn: 5\nf: 1.5\nb: false\nz: null\n")
    assert document.data == {
        "date": "2024-01-31", "at": "2024-01-31T10:00:00Z", "n": 5, "f": 1.5, "b": False, "z": None,
    }


def test_byte_order_mark_is_ignored_and_does_not_shift_columns():
    document, diagnostics = parse("\ufefftitle: x\n")
    assert diagnostics == []
    assert document.data == {"title": "x"}
    assert document.location("title") == SourceLocation("r.yml", 1, 1)


def test_anchors_and_aliases_resolve():
    document, _ = parse("a: &x {b: 1}\nc: *x\n")
    assert document.data == {"a": {"b": 1}, "c": {"b": 1}}


# -- parse_yaml: problems ---------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_an_empty_file_is_one_located_error(text):
    assert parse(text) == (None, [e001("the file is empty", 1, 1)])


def test_duplicate_key_points_at_the_second_key():
    assert parse("title: a\ndetection:\n  sel: {x: 1}\n  sel: {x: 2}\n") == (
        None, [e001("invalid YAML: duplicate key 'sel'", 4, 3)],
    )


def test_non_scalar_and_null_keys_are_refused():
    assert parse("? [a, b]\n: 1\n") == (None, [e001("invalid YAML: mapping keys must be plain scalars", 1, 3)])
    assert parse("a: 1\nnull: 2\n") == (None, [e001("invalid YAML: mapping keys must be plain scalars", 2, 1)])


def test_a_second_document_is_refused():
    assert parse("a: 1\n---\nb: 2\n") == (
        None, [e001("invalid YAML: expected a single document in the stream but found another document", 2, 1)],
    )


def test_syntax_error_is_located_at_the_problem():
    # worded by the pure-Python parser even when libyaml did the first pass
    assert parse("a: 1\nb: c: d\n") == (
        None, [e001("invalid YAML: ': ' inside the value of 'b': put the value in quotes, e.g. b: 'c: d'", 2, 5)],
    )


def test_python_tags_are_not_constructed():
    document, diagnostics = parse("a: !!python/name:os.system x\n")
    assert document is None
    assert diagnostics == [e001(
        "invalid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/name:os.system'",
        1, 4,
    )]


def test_keys_that_only_python_considers_equal_are_not_reported_as_duplicates():
    _, diagnostics = parse("1: a\ntrue: b\n")
    assert [d.message for d in diagnostics if "duplicate" in d.message] == []


# -- discover / load_documents -------------------------------------------------------------------


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "rules" / "sub").mkdir(parents=True)
    (tmp_path / "rules" / "b.yml").write_text("title: b\n", encoding="utf-8")
    (tmp_path / "rules" / "sub" / "a.yaml").write_text("title: a\n", encoding="utf-8")
    (tmp_path / "rules" / "notes.txt").write_text("not a rule\n", encoding="utf-8")
    (tmp_path / "rules" / "README.md").write_text("# no\n", encoding="utf-8")
    return tmp_path


def test_discover_recurses_keeps_rule_suffixes_sorts_and_dedupes(tree):
    rules = tree / "rules"
    files, diagnostics = discover([rules, rules / "b.yml"])
    assert files == [((rules / "b.yml").resolve(), "rules/b.yml"), ((rules / "sub" / "a.yaml").resolve(), "rules/sub/a.yaml")]
    assert diagnostics == []


def test_discover_reports_missing_paths_and_keeps_going(tree):
    missing = tree / "nope"
    files, diagnostics = discover([missing, tree / "rules" / "b.yml"])
    assert files == [((tree / "rules" / "b.yml").resolve(), "b.yml")]
    assert diagnostics == [Diagnostic("E000", "no such file or folder", SourceLocation(missing.as_posix()))]


def test_load_documents_uses_paths_relative_to_the_working_directory(tree, monkeypatch):
    monkeypatch.chdir(tree)
    documents, diagnostics = load_documents([Path("rules")])
    assert diagnostics == []
    assert [(d.display_path, d.data) for d in documents] == [
        ("rules/b.yml", {"title": "b"}),
        ("rules/sub/a.yaml", {"title": "a"}),
    ]


def test_unreadable_and_broken_files_become_diagnostics_beside_good_ones(tree, monkeypatch):
    monkeypatch.chdir(tree)
    (tree / "rules" / "latin1.yml").write_bytes(b"title: caf\xe9\n")
    (tree / "rules" / "broken.yml").write_text("title: [x\n", encoding="utf-8")
    documents, diagnostics = load_documents([Path("rules")])
    assert [d.display_path for d in documents] == ["rules/b.yml", "rules/sub/a.yaml"]
    assert [(d.code, str(d.location)) for d in diagnostics] == [
        ("E001", "rules/broken.yml:1:8"),  # the '[' that is never closed
        ("E001", "rules/latin1.yml"),
    ]
    assert diagnostics[1].message.startswith("cannot read file: 'utf-8' codec can't decode byte 0xe9")


def test_display_path_is_relative_when_possible_and_always_posix(tmp_path):
    assert display_path_for(tmp_path / "rules" / "x.yml", tmp_path) == "rules/x.yml"
    outside = Path("/somewhere/else/x.yml")
    assert display_path_for(outside, tmp_path) == "/somewhere/else/x.yml"


def test_a_file_may_hold_several_documents(tmp_path):
    """Sigma keeps a correlation rule and the rules it correlates in one file, `---` apart."""
    from entra_sigma.load.loader import parse_documents

    documents, diagnostics = parse_documents("---\na: 1\n---\nb:\n  c: 2\n---\n", Path("r.yml"), "r.yml")
    assert diagnostics == []
    assert [d.data for d in documents] == [{"a": 1}, {"b": {"c": 2}}]
    assert [d.index for d in documents] == [0, 1]
    assert documents[1].location("b", "c") == SourceLocation("r.yml", 5, 3)


def test_rule_test_cases_are_not_rules(tmp_path):
    (tmp_path / "r.yml").write_text("title: x\n")
    (tmp_path / "r.tests.yml").write_text("cases: []\n")
    files, _ = discover([tmp_path])
    assert [display for _, display in files] == [f"{tmp_path.name}/r.yml"]


@pytest.mark.slow  # every rule and case file parsed by both loaders, over a second
def test_libyaml_and_pure_python_read_every_rule_alike():
    """The fast loader (libyaml, when PyYAML has it) must give the same data and positions as
    the pure-Python one, or outputs would differ between machines."""
    from entra_sigma.load.loader import _FastRuleLoader, _parse, _RuleLoader

    repo = Path(__file__).resolve().parents[1]
    files = sorted((repo / "rules").rglob("*.yml")) + sorted((repo / "tests" / "cases").rglob("*.yml"))
    assert len(files) > 50
    for file in files:
        text = file.read_text(encoding="utf-8")
        fast, fast_problems = _parse(text, file, "x.yml", _FastRuleLoader, single=False)
        slow, slow_problems = _parse(text, file, "x.yml", _RuleLoader, single=False)
        if slow_problems:
            assert fast_problems, file.name
            continue
        assert [(d.data, d.positions) for d in fast] == [(d.data, d.positions) for d in slow], file.name

"""render/renderer.py: escaping filters, the sandboxed strict environment, user templates over ours, finish()."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from entra_sigma.build import Compiler
from entra_sigma.convert.kql import Leg
from entra_sigma.convert.query import Query
from entra_sigma.load.loader import parse_yaml
from entra_sigma.render.renderer import Renderer, TemplateFailure, finish, kql_comment, make_environment, to_json, yaml_str
from jinja2.exceptions import SecurityError, TemplateNotFound, UndefinedError

from .helpers import compile_text

RULE = """title: "Render: me"
id: 0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c
logsource: {product: entra, service: signins}
detection:
  sel: {appId: x}
  condition: sel
"""
QUERY_BODY = [
    "union",
    "    (SigninLogs",
    '    | where AppId =~ "x"),',
    "    (AADNonInteractiveUserSignInLogs",
    '    | where AppId =~ "x"',
]


def query(platform: str = "sentinel"):
    """A real Query for RULE (built by the normal pipeline)."""
    compiler = Compiler()
    document, _ = parse_yaml(RULE, Path("rules/render.yml"), "rules/render.yml")
    rules, _ = compiler.rules([document])
    compiled, diagnostics = compiler.compile_rule(rules[0], (platform,))
    assert [d for d in diagnostics if d.severity == "error"] == []
    return compiled.queries[platform]


# -- filters ----------------------------------------------------------------------------------------


def test_kql_comment_keeps_everything_on_one_line():
    assert kql_comment("a\n  b\r\n\tc   d\u2028e") == "a b c d e"
    assert kql_comment(42) == "42"


@pytest.mark.parametrize(
    "value",
    ["plain", "", "yes", "no", "null", "~", "1.0", "0x1F", "2024-01-31", ": x", "- a", "#c", "a: b", "a #b",
     " lead", "trail ", "multi\nline", "multi\nline\n", "quote ' \" ", "zürich € 😀", "\u2028", "...", "---",
     "@at", "`bt", "%p", "*star", "&amp", "!bang", "|pipe", ">gt", "{a}", "[a]", "a\\b", "\x07bell", None, True,
     3, 1.5],
)
def test_yaml_str_round_trips_at_top_level_and_nested(value):
    text = yaml_str(value)
    assert yaml.safe_load(f"key: {text}\n") == {"key": value}
    assert yaml.safe_load(f"top:\n  - key: {text}\n") == {"top": [{"key": value}]}


def test_yaml_str_round_trips_a_next_line_character():
    assert yaml.safe_load("key: " + yaml_str("a\x85b")) == {"key": "a\x85b"}


def test_yaml_str_quotes_only_when_needed():
    assert [yaml_str(v) for v in ("plain", "yes", "", "a: b", None, True)] == ["plain", "'yes'", "''", "'a: b'", "null", "true"]


def test_tojson_keeps_unicode_and_order():
    assert to_json({"b": "zürich", "a": [1, None]}) == '{"b": "zürich", "a": [1, null]}'
    assert to_json({"a": 1}, indent=2) == '{\n  "a": 1\n}'


def test_filters_are_registered():
    environment = make_environment()
    template = environment.from_string("{{ t | kql_comment }}|{{ t | yaml_str }}|{{ t | tojson }}")
    assert template.render(t="a\nb") == 'a b|"a\\nb"|"a\\nb"'


# -- finish ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, finished",
    [
        ("a\nb", "a\nb\n"),
        ("a\r\nb\r\n", "a\nb\n"),
        ("a  \nb\t\n", "a\nb\n"),
        ("\n\na\n\n\n", "a\n"),
        ("a\n\nb", "a\n\nb\n"),  # blank lines inside are the template's business
    ],
    ids=["adds-newline", "crlf", "trailing-space", "outer-blank-lines", "inner-blank-line"],
)
def test_finish(text, finished):
    assert finish(text) == finished


# -- strict and sandboxed ------------------------------------------------------------------------------------


def test_undefined_names_and_attributes_raise():
    environment = make_environment()
    with pytest.raises(UndefinedError, match="'nope' is undefined"):
        environment.from_string("{{ nope }}").render()
    with pytest.raises(UndefinedError):
        environment.from_string("{{ rule.nope }}").render(rule=query().rule)


def test_dunder_access_is_refused():
    environment = make_environment()
    with pytest.raises(SecurityError):
        environment.from_string("{{ rule.__class__.__mro__ }}").render(rule=query().rule)
    with pytest.raises(SecurityError):
        environment.from_string("{{ ''.__class__.__subclasses__() }}").render()


@pytest.mark.parametrize(
    "source",
    ["{{ rule.document.path.read_text() }}", "{{ rule.data.update({'title': 'changed'}) }}"],
    ids=["read-a-file", "mutate-the-rule"],
)
def test_a_template_cannot_reach_the_file_system_or_change_the_rule(source):
    q = query()
    q.rule.document.path = Path(__file__)  # a file that exists, so only the sandbox can stop the read
    with pytest.raises(SecurityError):
        make_environment().from_string(source).render(rule=q.rule)


# -- templates ------------------------------------------------------------------------------------------------


def test_the_bundled_query_template_for_one_table():
    q = query()
    one = Query(q.rule, "sentinel", [Leg("SigninLogs", ['where AppId =~ "x"', "project TimeGenerated"])])
    assert Renderer().query(one) == (
        "// Render: me\n// id: 0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c\n// level: medium\n// source: rules/render.yml\n"
        'SigninLogs\n| where AppId =~ "x"\n| project TimeGenerated\n'
    )


def test_the_bundled_query_template_for_a_union_with_a_tail():
    q = query()
    union = Query(q.rule, "sentinel", [Leg("A", ["where a"]), Leg("B", []), Leg("C", ["where c", "extend d"])], tail=["take 5"])
    assert Renderer().query(union).splitlines()[4:] == [
        "union", "    (A", "    | where a),", "    (B),", "    (C", "    | where c", "    | extend d)", "| take 5",
    ]


def test_a_compiled_query_has_no_blank_line_and_no_carriage_return():
    text = Renderer().query(query())
    assert text.splitlines()[4:9] == QUERY_BODY
    assert "\n\n" not in text and "\r" not in text and text.endswith(")\n")


def test_defender_hunting_template_is_the_query_template():
    q = query("defender")
    assert Renderer().query(q) == Renderer().render("kql/query.kql.j2", rule=q.rule, query=q)
    assert "\nEntraIdSignInEvents\n| where ApplicationId =~ \"x\"\n" in Renderer().query(q)


@pytest.fixture
def overrides(tmp_path) -> Path:
    (tmp_path / "kql").mkdir()
    (tmp_path / "kql" / "query.kql.j2").write_text(
        "// ours: {{ rule.title | kql_comment }}\n{% include 'bundled/kql/query.kql.j2' %}\n| take 10\n", encoding="utf-8",
    )
    return tmp_path


def test_a_user_template_is_laid_over_the_bundled_one_and_can_wrap_it(overrides):
    q = query()
    bundled = Renderer().query(q)
    custom = Renderer(overrides).query(q)
    assert custom == "// ours: Render: me\n" + bundled + "| take 10\n"


def test_templates_the_user_does_not_override_still_come_from_us(overrides):
    q = query("defender")
    custom = Renderer(overrides).query(q)  # defender/hunting-query includes kql/query: the override applies
    assert custom.startswith("// ours: Render: me\n// Render: me\n") and custom.endswith("| take 10\n")
    with pytest.raises(TemplateFailure, match="template kql/missing.kql.j2: TemplateNotFound") as caught:
        Renderer(overrides).render("kql/missing.kql.j2")
    assert isinstance(caught.value.__cause__, TemplateNotFound)


def test_a_user_template_with_an_undefined_name_fails_loudly(tmp_path):
    (tmp_path / "kql").mkdir()
    (tmp_path / "kql" / "query.kql.j2").write_text("{{ query.tables | join(', ') }} {{ severity }}\n", encoding="utf-8")
    with pytest.raises(TemplateFailure, match="template kql/query.kql.j2:1: UndefinedError: 'severity' is undefined"):
        Renderer(tmp_path).query(query())


def test_rendered_text_is_what_compile_returns():
    text, diagnostics = compile_text(RULE, path="rules/render.yml")
    assert diagnostics == []
    assert text == Renderer().query(query())


def test_templates_compiled_once_per_process_follow_edits_and_overrides(tmp_path):
    """Renderers share compiled templates (render/renderer.py: CompiledTemplates), keyed by file
    and checked against the source: an edited template, or another folder's template of the same
    name, is compiled anew, never served stale."""
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, text in ((first, "one {{ x }}"), (second, "two {{ x }}")):
        folder.mkdir()
        (folder / "t.j2").write_text(text, encoding="utf-8")
    assert Renderer(first).render("t.j2", x=1) == "one 1\n"
    assert Renderer(first).render("t.j2", x=2) == "one 2\n"
    assert Renderer(second).render("t.j2", x=3) == "two 3\n"
    (first / "t.j2").write_text("edited {{ x }}", encoding="utf-8")
    assert Renderer(first).render("t.j2", x=4) == "edited 4\n"

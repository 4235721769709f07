"""model/sigma_bridge.py: pySigma parses the rule; SigmaToIR records each field/value pair as ir.Match."""

from __future__ import annotations

import pytest
import yaml
from entra_sigma.model import ir
from entra_sigma.model.sigma_bridge import SigmaToIR, UnsupportedConstruct, string_match
from sigma.rule import SigmaRule
from sigma.types import SigmaString

MULTI, SINGLE = ir.Wildcard.MULTI, ir.Wildcard.SINGLE


@pytest.mark.parametrize(
    "text, classified",
    [
        ("abc", ("eq", "abc")),
        ("", ("eq", "")),
        ("*", ("any", None)),
        ("**", ("any", None)),
        ("*abc*", ("contains", "abc")),
        ("abc*", ("startswith", "abc")),
        ("*abc", ("endswith", "abc")),
        ("a*b", ("pattern", ("a", MULTI, "b"))),
        ("a?c", ("pattern", ("a", SINGLE, "c"))),
        ("?", ("pattern", (SINGLE,))),
        ("*a*b*", ("pattern", (MULTI, "a", MULTI, "b", MULTI))),
        ("*a?", ("pattern", (MULTI, "a", SINGLE))),
        (r"a\*b", ("eq", "a*b")),
        (r"\*abc\?", ("eq", "*abc?")),
    ],
)
def test_string_match(text, classified):
    assert string_match(SigmaString(text)) == classified


def to_ir(detection: str) -> ir.Node:
    rule = SigmaRule.from_dict({
        "title": "t", "id": "0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c",
        "logsource": {"product": "entra", "service": "signins"},
        "detection": yaml.safe_load(detection),
    })
    (tree,) = SigmaToIR().to_ir(rule)
    return tree


def origins(tree: ir.Node) -> list[ir.Origin]:
    return [match.origin for match in ir.walk_matches(tree)]


def test_a_selection_map_is_an_and_of_matches_in_its_group():
    tree = to_ir("sel:\n  a: x\n  b|contains|all: [p, q]\n  c: 5\n  d: true\ncondition: sel\n")
    assert tree == ir.And((
        ir.Match("a", "eq", "x", False, "sel"),
        ir.And((ir.Match("b", "contains", "p", False, "sel"), ir.Match("b", "contains", "q", False, "sel"))),
        ir.Match("c", "eq", 5, False, "sel"),
        ir.Match("d", "eq", True, False, "sel"),
    ))
    assert origins(tree) == [
        ir.Origin("sel", "a", op="eq"), ir.Origin("sel", "b", op="contains"), ir.Origin("sel", "b", op="contains"),
        ir.Origin("sel", "c", op="eq"), ir.Origin("sel", "d", op="eq"),
    ]


def test_a_list_of_maps_gives_each_map_its_own_group_and_index():
    tree = to_ir("sel:\n  - a: x\n    c: [1, 2]\n  - b: y\ncondition: sel\n")
    assert tree == ir.Or((
        ir.And((ir.Match("a", "eq", "x", False, "sel[0]"),
                ir.Or((ir.Match("c", "eq", 1, False, "sel[0]"), ir.Match("c", "eq", 2, False, "sel[0]"))))),
        ir.Match("b", "eq", "y", False, "sel[1]"),
    ))
    assert origins(tree) == [
        ir.Origin("sel", "a", 0, "eq"), ir.Origin("sel", "c", 0, "eq"), ir.Origin("sel", "c", 0, "eq"), ir.Origin("sel", "b", 1, "eq"),
    ]


def test_value_kinds():
    tree = to_ir("""sel:
  a|re|s|i: 'x.*'
  b|cidr: 10.0.0.0/8
  c|gte: 5
  c2|lt: 1.5
  d|fieldref: e
  f: null
  g|exists: false
  h|exists: true
  k|cased: Ab
  n|cased|endswith: Z
condition: sel
""")
    assert tree == ir.And((
        ir.Match("a", "regex", ("x.*", "is"), True, "sel"),
        ir.Match("b", "cidr", "10.0.0.0/8", False, "sel"),
        ir.Match("c", "compare", (">=", 5), False, "sel"),
        ir.Match("c2", "compare", ("<", 1.5), False, "sel"),
        ir.Match("d", "fieldref", "e", False, "sel"),
        ir.Match("f", "null", None, False, "sel"),
        ir.Match("g", "exists", False, False, "sel"),
        ir.Match("h", "exists", True, False, "sel"),
        ir.Match("k", "eq", "Ab", True, "sel"),
        ir.Match("n", "endswith", "Z", True, "sel"),
    ))


def test_not_in_the_condition_negates_a_selection_and_neq_negates_a_value_inside_it():
    tree = to_ir("s1: {a: 1}\ns2: {b|neq: 2, c: 3}\ncondition: s1 and not s2\n")
    assert tree == ir.And((
        ir.Match("a", "eq", 1, False, "s1"),
        ir.Not(ir.And((ir.Not(ir.Match("b", "eq", 2, False, "s2"), in_selection=True), ir.Match("c", "eq", 3, False, "s2")))),
    ))
    assert tree.args[1].in_selection is False


def test_time_modifiers_are_a_part_compared_with_a_number():
    tree = to_ir("sel:\n  a|hour: [1, 2]\n  b|week|gte: 50\n  c|minute|neq: 0\n  d|year|lt: 2026\ncondition: sel\n")
    assert tree == ir.And((
        ir.Or((ir.Match("a", "timepart", ("hour", "==", 1), False, "sel"), ir.Match("a", "timepart", ("hour", "==", 2), False, "sel"))),
        ir.Match("b", "timepart", ("week", ">=", 50), False, "sel"),
        ir.Not(ir.Match("c", "timepart", ("minute", "==", 0), False, "sel"), in_selection=True),
        ir.Match("d", "timepart", ("year", "<", 2026), False, "sel"),
    ))
    assert [o.op for o in origins(tree)] == ["timepart"] * 5


def test_one_of_expands_to_every_matching_selection():
    tree = to_ir("s1: {a: 1}\ns2: {b: 2}\nother: {c: 3}\ncondition: 1 of s* and other\n")
    assert tree == ir.And((
        ir.Or((ir.Match("a", "eq", 1, False, "s1"), ir.Match("b", "eq", 2, False, "s2"))),
        ir.Match("c", "eq", 3, False, "other"),
    ))


@pytest.mark.parametrize(
    "detection, message, origin",
    [
        ("k: [foo, bar]\ncondition: k\n",
         "keyword searches (values without a field) are not supported: name the field", None),
        ("sel: {a|fieldref|startswith: b}\ncondition: sel\n",
         "fieldref with startswith/endswith is not supported", ir.Origin("sel", "a")),
    ],
    ids=["keywords", "fieldref-startswith"],
)
def test_constructs_without_meaning_raise_with_their_origin(detection, message, origin):
    with pytest.raises(UnsupportedConstruct) as raised:
        to_ir(detection)
    assert str(raised.value) == message
    assert raised.value.origin == origin

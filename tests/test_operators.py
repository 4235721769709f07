"""model/operators.py: one table of what each match operator means, read by every step.

The table must cover every operator the pipeline produces, each must have a KQL printer, and
the Sigma modifiers it names must be modifiers pySigma knows.
"""

from __future__ import annotations

import pytest
from entra_sigma.convert.kql import DefenderGenerator, KqlGenerator
from entra_sigma.model import ir
from entra_sigma.model.operators import OPERATORS, VALUE_MODIFIERS, Op, named, operator
from entra_sigma.validate.catalog import default_catalog
from sigma.modifiers import modifier_mapping

CATALOG = default_catalog()


def test_every_operator_has_an_entry_and_a_printer_in_every_dialect():
    assert set(OPERATORS) == set(Op)
    for generator in (KqlGenerator, DefenderGenerator):
        assert set(generator._dispatch()) == {op.value for op in Op}


def test_the_modifiers_it_names_are_sigma_modifiers():
    assert VALUE_MODIFIERS <= set(modifier_mapping)
    assert operator("compare").modifiers == {"gt", "gte", "lt", "lte"}
    assert operator("timepart").modifiers == {"minute", "hour", "day", "week", "month", "year"}
    assert [named(op) for op in ("compare", "regex", "pattern", "cidr", "contains")] == [
        "gt/gte/lt/lte", "re", "wildcards", "cidr", "contains",
    ]


@pytest.mark.parametrize("op, field, applies", [
    ("contains", "userAgent", True), ("contains", "status.errorCode", False), ("contains", "riskState", False),
    ("compare", "status.errorCode", True), ("compare", "userAgent", False), ("compare", "createdDateTime", False),
    ("cidr", "ipAddress", True), ("cidr", "userAgent", False),
    ("any", "userAgent", True), ("any", "deviceDetail.isManaged", False),
    ("eq", "deviceDetail.isManaged", True), ("eq", "riskState", True),
    ("timepart", "createdDateTime", True), ("timepart", "userAgent", False), ("timepart", "status.errorCode", False),
])
def test_which_fields_an_operator_applies_to(op, field, applies):
    accepts = operator(op).accepts
    assert (accepts is None or accepts(CATALOG.get(field))) is applies


def test_missing_and_constant_fields_follow_sigma():
    match = lambda op, value=None, cased=False: ir.Match("f", op, value, cased)  # noqa: E731
    assert [operator(m.op).on_missing(m.value) for m in (match("eq", "x"), match("exists", True), match("exists", False), match("null"))] == [
        False, False, True, True,
    ]
    eq = operator("eq").on_constant
    assert eq("ABC", "abc", False) and not eq("ABC", "abc", True) and eq(True, True, False)
    assert operator("null").on_constant(None, None, False) and not operator("exists").on_constant(True, None, False)
    assert operator("contains").on_constant is None  # refused on a constant field (map step, E203)

"""map/lower.py: IR on beta paths → per-table trees on columns; constant folding; array elements.

The table here is a small made-up one, so each test reads as "this path lives there"; field
types come from the real catalog.
"""

from __future__ import annotations

import pytest
from entra_sigma.map.lower import (
    AnyElement,
    ElementAccess,
    MappingProblem,
    Predicate,
    TableMapper,
    constant_for,
    evaluate_constant,
    evaluate_missing,
    projection_access,
    simplify,
)
from entra_sigma.map.tables import ColumnAccess, Constant, Table, TableMapping
from entra_sigma.model import ir
from entra_sigma.validate.catalog import default_catalog

CATALOG = default_catalog()
TABLE = Table("T", "sentinel", "TimeGenerated", {
    "TimeGenerated": "datetime", "Upn": "string", "Device": "dynamic", "Auth": "string", "Risk": "real",
    "Home": "string", "Resource": "string",
})
MAPPING = TableMapping(TABLE, {
    "userPrincipalName": {"column": "Upn"},
    "deviceDetail": {"column": "Device"},
    "authenticationDetails": {"column": "Auth"},
    "riskLevelDuringSignIn": {"column": "Risk", "encoding": {"low": 10, "high": 100}},
    "isInteractive": {"constant": True},
    "homeTenantId": {"column": "Home"},
    "resourceTenantId": {"column": "Resource"},
})
AUTH = ColumnAccess("Auth", "string")


def m(field: str, op: str = "eq", value="x", group: str = "sel") -> ir.Match:
    return ir.Match(field, op, value, False, group)


def p(match: ir.Match, access) -> Predicate:
    return Predicate(match, CATALOG.get(match.field), access)


def lower(node: ir.Node) -> tuple[object, set[str]]:
    mapper = TableMapper(MAPPING, CATALOG)
    return mapper.lower(node), set(mapper.missing)


def element(path: str) -> ElementAccess:
    return ElementAccess("_authenticationDetails", tuple(path.split(".")) if path else ())


# -- folding ------------------------------------------------------------------------------------------

A, B = m("userPrincipalName", value="a"), m("userPrincipalName", value="b")
T, F = ir.Const(True), ir.Const(False)


@pytest.mark.parametrize(
    "tree, folded",
    [
        (ir.And((A, F)), F),
        (ir.Or((A, T)), T),
        (ir.And((A, T)), A),
        (ir.Or((F, A, F)), A),
        (ir.And(()), T),
        (ir.Or(()), F),
        (ir.And((A, ir.And((B, T)))), ir.And((A, B))),
        (ir.Or((A, A, B)), ir.Or((A, B))),
        (ir.Not(F), T),
        (ir.Not(ir.Not(A)), A),
        (ir.Not(ir.And((A, T)), True), ir.Not(A, True)),
        (AnyElement(AUTH, "_x", ir.And((A, F))), F),
        (AnyElement(AUTH, "_x", ir.Or((A, T))), AnyElement(AUTH, "_x", T)),
    ],
    ids=["and-false", "or-true", "and-drops-true", "or-drops-false", "empty-and", "empty-or", "flatten",
         "dedupe", "not-const", "double-not", "not-keeps-in-selection", "element-never", "element-any"],
)
def test_simplify(tree, folded):
    assert simplify(tree) == folded


@pytest.mark.parametrize(
    "match, value",
    [(m("ipAddress", "exists", True), False), (m("ipAddress", "exists", False), True),
     (m("ipAddress", "null", None), True), (m("ipAddress"), False), (m("ipAddress", "contains"), False)],
)
def test_a_missing_field_is_null(match, value):
    assert evaluate_missing(match) is value


def test_matches_on_a_constant_are_decided_at_compile_time():
    assert evaluate_constant(m("isInteractive", value=True), True) is True
    assert evaluate_constant(m("isInteractive", value=False), True) is False
    assert evaluate_constant(m("isInteractive", "exists", True), True) is True
    assert evaluate_constant(m("isInteractive", "null", None), True) is False
    assert evaluate_constant(m("appDisplayName", value="OFFICE"), "office") is True
    assert evaluate_constant(ir.Match("appDisplayName", "eq", "OFFICE", True), "office") is False
    with pytest.raises(MappingProblem, match=r"'contains' cannot be applied to 'appDisplayName', which is constant \('office'\) here"):
        evaluate_constant(m("appDisplayName", "contains", "o"), "office")


# -- lowering -----------------------------------------------------------------------------------------


def test_a_match_becomes_a_predicate_on_its_column():
    assert lower(m("deviceDetail.operatingSystem", value="Windows")) == (
        p(m("deviceDetail.operatingSystem", value="Windows"), ColumnAccess("Device", "dynamic", ("operatingSystem",))),
        set(),
    )


@pytest.mark.parametrize(
    "node, folded",
    [(m("ipAddress"), F), (ir.Not(m("ipAddress")), T), (m("ipAddress", "exists", False), T),
     (ir.And((m("ipAddress"), m("userPrincipalName"))), F),
     (ir.Or((m("ipAddress"), m("userPrincipalName"))), p(m("userPrincipalName"), ColumnAccess("Upn", "string")))],
    ids=["eq", "not-eq", "not-exists", "and", "or"],
)
def test_missing_fields_fold_away_and_are_recorded(node, folded):
    assert lower(node) == (folded, {"ipAddress"})


def test_constants_fold_away():
    assert lower(ir.And((m("isInteractive", value=True), m("userPrincipalName"))))[0] == p(m("userPrincipalName"), ColumnAccess("Upn", "string"))
    assert lower(m("isInteractive", value=False)) == (F, set())


def test_encoded_fields_take_equality_exists_and_null_only():
    risk = ColumnAccess("Risk", "real", (), (("high", 100), ("low", 10)))
    assert lower(m("riskLevelDuringSignIn", value="high"))[0] == p(m("riskLevelDuringSignIn", value="high"), risk)
    assert lower(m("riskLevelDuringSignIn", "exists", True))[0] == p(m("riskLevelDuringSignIn", "exists", True), risk)
    with pytest.raises(MappingProblem, match=r"^T has no number for 'riskLevelDuringSignIn' = 'medium' \(known: high, low\)$"):
        lower(m("riskLevelDuringSignIn", value="medium"))
    with pytest.raises(MappingProblem, match=r"^'riskLevelDuringSignIn' is stored as numbers in T; only equality, exists and null apply$"):
        lower(m("riskLevelDuringSignIn", "contains", "hi"))


def test_fields_of_one_array_in_one_selection_share_one_element():
    ok, mfa = m("authenticationDetails.succeeded", value=True), m("authenticationDetails.authenticationMethod", value="x")
    assert lower(ir.And((m("userPrincipalName"), ok, mfa)))[0] == ir.And((
        p(m("userPrincipalName"), ColumnAccess("Upn", "string")),
        AnyElement(AUTH, "_authenticationDetails", ir.And((p(ok, element("succeeded")), p(mfa, element("authenticationMethod"))))),
    ))


def test_fields_of_one_array_in_two_selections_are_two_elements():
    ok = m("authenticationDetails.succeeded", value=True, group="a")
    mfa = m("authenticationDetails.authenticationMethod", value="x", group="b")
    assert lower(ir.And((ok, mfa)))[0] == ir.And((
        AnyElement(AUTH, "_authenticationDetails", p(ok, element("succeeded"))),
        AnyElement(AUTH, "_authenticationDetails", p(mfa, element("authenticationMethod"))),
    ))


def test_not_selection_stays_outside_the_element_and_neq_stays_inside():
    ok = m("authenticationDetails.succeeded", value=True)
    mfa = m("authenticationDetails.authenticationMethod", value="x")
    assert lower(ir.Not(ir.And((ok, mfa))))[0] == ir.Not(
        AnyElement(AUTH, "_authenticationDetails", ir.And((p(ok, element("succeeded")), p(mfa, element("authenticationMethod")))))
    )
    assert lower(ir.And((ok, ir.Not(mfa, True))))[0] == AnyElement(
        AUTH, "_authenticationDetails", ir.And((p(ok, element("succeeded")), ir.Not(p(mfa, element("authenticationMethod")), True)))
    )


def test_exists_on_a_whole_array_asks_about_the_array_not_an_element():
    exists = m("authenticationDetails", "exists", True)
    assert lower(exists)[0] == p(exists, AUTH)


def test_an_array_the_table_lacks_never_matches():
    assert lower(m("authenticationMethodsUsed", value="Password")) == (F, {"authenticationMethodsUsed"})


def test_fieldref_carries_the_other_side():
    ref = m("homeTenantId", "fieldref", "resourceTenantId")
    assert lower(ref)[0] == Predicate(
        ref, CATALOG.get("homeTenantId"), ColumnAccess("Home", "string"),
        (CATALOG.get("resourceTenantId"), ColumnAccess("Resource", "string")),
    )
    assert lower(m("homeTenantId", "fieldref", "ipAddress")) == (F, {"ipAddress"})


def test_projection_access_and_constant_for():
    assert projection_access(MAPPING, "deviceDetail.browser") == ColumnAccess("Device", "dynamic", ("browser",))
    assert projection_access(MAPPING, "isInteractive") is None
    assert projection_access(MAPPING, "ipAddress") is None
    assert constant_for(MAPPING, "isInteractive") == Constant(True)
    assert constant_for(MAPPING, "userPrincipalName") is None

"""validate/fields.py: fields, operators and values against the catalog; values normalised to their type.

FieldChecker is fed hand-built IR, so each test shows one decision; locations come from the
`locate` callback, which here turns the origin's field into a line number.
"""

from __future__ import annotations

import pytest
from entra_sigma.diagnostics import Diagnostic, SourceLocation
from entra_sigma.model import ir
from entra_sigma.validate.catalog import default_catalog
from entra_sigma.validate.fields import FieldChecker, check_fields, never_filled_warning, regex_problem

CATALOG = default_catalog()


def locate(origin: ir.Origin | None) -> SourceLocation:
    return SourceLocation("r.yml", 0) if origin is None else SourceLocation("r.yml", 7, len(origin.field))


def m(field: str, op: str, value, cased: bool = False) -> ir.Match:
    return ir.Match(field, op, value, cased, "sel", ir.Origin("sel", field))


def check(node: ir.Node):
    checker = FieldChecker(CATALOG, locate, "R")
    return checker.check(node), checker.diagnostics


def diagnostic(code: str, message: str, field: str, hint: str | None = None) -> Diagnostic:
    return Diagnostic(code, message, SourceLocation("r.yml", 7, len(field)), "R", hint)


# -- regular expressions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pattern, problem",
    [
        (r"^[a-z]+\d{2,}$", None),
        (r"(?i)axios/\d+", None),
        ("[", "missing ]: ["),
        ("a(?=b)", "invalid perl operator: (?="),
        ("a(?!b)", "invalid perl operator: (?!"),
        ("(?<=a)b", "invalid perl operator: (?<="),
        ("(?<!a)b", "invalid perl operator: (?<!"),
        (r"(a)\1", "invalid escape sequence: \\1"),
        ("(?>ab)", "invalid perl operator: (?>"),
        ("a++", "bad repetition operator: ++"),
        ("a{2}+", "bad repetition operator: {2}+"),
    ],
)
def test_regex_problem(pattern, problem):
    assert regex_problem(pattern) == problem


@pytest.mark.parametrize(
    "pattern",
    [r"a\++", r"C:\\1", r"\d+\z", r"\p{Greek}+"],
    ids=["escaped-plus", "escaped-backslash-digit", "end-of-text", "unicode-class"],
)
def test_valid_re2_is_accepted(pattern):
    assert regex_problem(pattern) is None


@pytest.mark.parametrize("pattern", [r"abc\Z", r"(a)?(?(1)b|c)"], ids=["python-end-anchor", "conditional"])
def test_python_only_syntax_is_refused(pattern):
    assert regex_problem(pattern) is not None


# -- normalisation of values ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "match, value",
    [
        (m("incomingTokenType", "eq", "PRIMARYREFRESHTOKEN"), "primaryRefreshToken"),
        (m("status.errorCode", "eq", "50126"), 50126),
        (m("status.errorCode", "eq", 50126.0), 50126),
        (m("deviceDetail.isManaged", "eq", "True"), True),
        (m("deviceDetail.isManaged", "eq", False), False),
        (m("createdDateTime", "eq", "2025-01-31T08:00:00Z"), "2025-01-31T08:00:00Z"),
        (m("createdDateTime", "eq", "2025-01-31"), "2025-01-31"),
        (m("userPrincipalName", "eq", 5), "5"),
        (m("userPrincipalName", "eq", True), "true"),
    ],
    ids=["enum-case", "int-from-text", "int-from-float", "bool-word", "bool", "datetime-utc", "date-only",
         "number-on-string", "bool-on-string"],
)
def test_values_are_normalised_to_the_field_type(match, value):
    checked, diagnostics = check(match)
    assert diagnostics == []
    assert checked.value == value and type(checked.value) is type(value)


def test_structure_is_kept_while_matches_are_normalised():
    tree = ir.Not(ir.And((m("status.errorCode", "eq", "1"), ir.Or((m("ipAddress", "cidr", "10.0.0.0/8"), ir.Const(True))))), True)
    checked, diagnostics = check(tree)
    assert diagnostics == []
    assert checked == ir.Not(ir.And((m("status.errorCode", "eq", 1), ir.Or((m("ipAddress", "cidr", "10.0.0.0/8"), ir.Const(True))))), True)


@pytest.mark.parametrize("op, value", [("exists", True), ("null", None)])
def test_exists_and_null_apply_to_objects_and_arrays(op, value):
    for field in ("deviceDetail", "authenticationDetails", "authenticationDetails.succeeded"):
        assert check(m(field, op, value)) == (m(field, op, value), [])


def test_datetime_values_keep_their_precision():
    checked, diagnostics = check(m("createdDateTime", "eq", "2025-01-31T08:00:00.1234567Z"))
    assert (checked.value, diagnostics) == ("2025-01-31T08:00:00.1234567Z", [])


# -- findings ---------------------------------------------------------------------------------


PROBLEMS = [
    (m("incomingTokenTyp", "eq", "x"), "E101", "unknown field 'incomingTokenTyp'", "did you mean 'incomingTokenType'?"),
    (m("zzz", "eq", "x"), "E101", "unknown field 'zzz'", "see docs/reference/fields.md"),
    (m("appliedConditionalAccessPolicies.includeRulesSatisfied.ruleSatisfied", "eq", "x"), "E102",
     "field 'appliedConditionalAccessPolicies.includeRulesSatisfied.ruleSatisfied' lies inside nested arrays "
     "(appliedConditionalAccessPolicies > appliedConditionalAccessPolicies.includeRulesSatisfied), "
     "which cannot be matched", None),
    (m("status", "eq", "x"), "E103", "'status' is an object; match one of its properties, or use 'exists' or null",
     "properties: status.additionalDetails, status.errorCode, status.failureReason"),
    (m("userPrincipalName", "compare", (">", 1)), "E104",
     "'gt/gte/lt/lte' does not apply to 'userPrincipalName' (string); expected a number field (int, long or double)", None),
    (m("userPrincipalName", "cidr", "10.0.0.0/8"), "E104",
     "'cidr' does not apply to 'userPrincipalName' (string); expected an IP address field such as 'ipAddress'", None),
    (m("status.errorCode", "pattern", ("5", ir.Wildcard.MULTI, "6")), "E104",
     "'wildcards' does not apply to 'status.errorCode' (int); expected a number (or gt/gte/lt/lte)", None),
    (m("deviceDetail.isManaged", "contains", "t"), "E104",
     "'contains' does not apply to 'deviceDetail.isManaged' (bool); expected true or false", None),
    (m("createdDateTime", "regex", ("2025.*", "")), "E104",
     "'re' does not apply to 'createdDateTime' (dateTime); expected an ISO 8601 date-time value", None),
    (m("riskLevelDuringSignIn", "startswith", "hi"), "E104",
     "'startswith' does not apply to 'riskLevelDuringSignIn' (enum riskLevel); expected one of its members "
     "(low, medium, high, hidden, none, unknownFutureValue)", None),
    (m("incomingTokenType", "eq", "PRT"), "E106",
     "'PRT' is not a member of enum incomingTokenType for 'incomingTokenType'", "did you mean primaryRefreshToken?"),
    (m("status.errorCode", "eq", "x"), "E107", "'status.errorCode' is a number (int), not 'x'", None),
    (m("status.errorCode", "eq", 1.5), "E107", "'status.errorCode' is int, not 1.5", None),
    (m("status.errorCode", "eq", True), "E107", "'status.errorCode' is int, not True", None),
    (m("deviceDetail.isManaged", "eq", "yes"), "E107", "'deviceDetail.isManaged' is a boolean, not 'yes'", "use true or false"),
    (m("deviceDetail.isManaged", "eq", 1), "E107", "'deviceDetail.isManaged' is a boolean, not 1", "use true or false"),
    (m("createdDateTime", "eq", "yesterday"), "E107", "'createdDateTime' is a date-time, not 'yesterday'",
     "use ISO 8601, e.g. 2025-01-31T08:00:00Z"),
    (m("homeTenantId", "fieldref", "status.errorCode"), "E104",
     "fieldref compares 'homeTenantId' (string) with 'status.errorCode' (int)", None),
    (m("homeTenantId", "fieldref", "deviceDetail"), "E104",
     "fieldref compares 'homeTenantId' (string) with 'deviceDetail' (object)", None),
    (m("authenticationDetails.succeeded", "fieldref", "isInteractive"), "E104",
     "fieldref between fields inside arrays is not supported", None),
]


@pytest.mark.parametrize(
    "match, code, message, hint", PROBLEMS, ids=[f"{p[1]}-{p[0].field}-{p[0].op}" for p in PROBLEMS]
)
def test_each_problem_is_one_located_diagnostic(match, code, message, hint):
    checked, diagnostics = check(match)
    assert checked == match  # unchanged: the rule is refused, not rewritten
    assert diagnostics == [diagnostic(code, message, match.field, hint)]


def test_fieldref_to_an_unknown_field_is_reported_once():
    assert check(m("homeTenantId", "fieldref", "resourceTenantIdd"))[1] == [diagnostic(
        "E101", "unknown field 'resourceTenantIdd'", "homeTenantId", "did you mean 'resourceTenantId'?",
    )]


def test_every_problem_in_a_tree_is_collected():
    _, diagnostics = check(ir.Or((m("zzz", "eq", "x"), ir.Not(m("status.errorCode", "eq", "x")), m("userPrincipalName", "eq", "ok"))))
    assert [d.code for d in diagnostics] == ["E101", "E107"]


def test_a_match_without_origin_is_located_by_the_callback():
    checker = FieldChecker(CATALOG, locate, None)
    checker.check(ir.Match("zzz", "eq", "x"))
    assert checker.diagnostics == [Diagnostic("E101", "unknown field 'zzz'", SourceLocation("r.yml", 0), None, "see docs/reference/fields.md")]


# -- the rule's `fields` list ----------------------------------------------------------------------


def test_check_fields():
    paths = ["userPrincipalName", "authenticationDetails.succeeded", "authenticationDetails",
             "authenticationMethodsUsed", "zzz", "userPrincipalNam"]
    never_filled = CATALOG.get("authenticationMethodsUsed")
    assert check_fields(paths, CATALOG, lambda i: SourceLocation("r.yml", 20 + i, 5), "R") == [
        Diagnostic("E108", "'authenticationDetails.succeeded' is inside the array 'authenticationDetails'; "
                           "return the whole array instead", SourceLocation("r.yml", 21, 5), "R", "use 'authenticationDetails'"),
        never_filled_warning(never_filled, SourceLocation("r.yml", 23, 5), "R"),
        Diagnostic("E101", "unknown field 'zzz' in 'fields'", SourceLocation("r.yml", 24, 5), "R", None),
        Diagnostic("E101", "unknown field 'userPrincipalNam' in 'fields'", SourceLocation("r.yml", 25, 5), "R",
                   "did you mean 'userPrincipalName'?"),
    ]


# -- what real rows show -----------------------------------------------------------------------------


def test_a_field_the_tables_never_fill_is_a_warning_naming_what_to_read_instead():
    checked, diagnostics = check(m("authenticationMethodsUsed", "eq", "PTA"))
    assert checked == m("authenticationMethodsUsed", "eq", "PTA")  # still compiled
    (warning,) = diagnostics
    assert (warning.code, warning.severity, warning.hint) == ("W102", "warning", "read 'authenticationDetails.authenticationMethod' instead")
    assert warning.message.startswith("field 'authenticationMethodsUsed' is never filled in the sign-in tables: empty in all ")
    assert "real rows" in warning.message and "2020–2025" in warning.message


def test_a_key_the_logs_carry_but_graph_lacks_is_refused_with_the_reason():
    _, diagnostics = check(m("authenticationDetails.StatusSequence", "eq", "0"))
    (error,) = diagnostics
    assert (error.code, error.message) == ("E101", "field 'authenticationDetails.StatusSequence' is not supported")
    assert "Graph's authenticationDetail has no such property" in error.hint
    assert check_fields(["authenticationDetails.statusSequence"], CATALOG, lambda i: SourceLocation("r.yml", 3, 5), "R")[0].message == (
        "field 'authenticationDetails.statusSequence' in 'fields' is not supported")


# -- "did you mean" for a leaf name used alone, and for a misspelt modifier --------------------


@pytest.mark.parametrize("written, hint", [
    ("errorCode", "did you mean 'status.errorCode'?"),
    ("city", "did you mean 'location.city'?"),
    ("isManaged", "did you mean 'deviceDetail.isManaged'?"),
    ("ErrorCode", "did you mean 'status.errorCode'?"),
])
def test_a_leaf_name_alone_suggests_its_full_path(written, hint):
    _, diagnostics = check(m(written, "eq", "x"))
    assert diagnostics == [diagnostic("E101", f"unknown field '{written}'", written, hint)]


def test_a_leaf_shared_by_several_paths_lists_them_all():
    _, diagnostics = check(m("displayName", "eq", "x"))
    (problem,) = diagnostics
    assert problem.hint == (
        "did you mean 'appliedConditionalAccessPolicies.authenticationStrength.displayName' or "
        "'appliedConditionalAccessPolicies.displayName' or 'deviceDetail.displayName'?"
    )


def test_a_misspelt_modifier_gets_a_suggestion():
    from .helpers import compile_text

    rule = ("title: t\nid: 1a2b3c4d-0000-4000-8000-000000000009\nlogsource: {product: entra, service: signins}\n"
            "detection:\n  sel:\n    userAgent|endwith: x\n    appDisplayName|contain: y\n    ipAddress|cdr: 10.0.0.0/8\n"
            "  condition: sel\n")
    _, diagnostics = compile_text(rule)
    assert [(str(d.location), d.message, d.hint) for d in diagnostics] == [
        ("rule.yml:6:5", "unknown modifier 'endwith'", "did you mean 'endswith'?"),
        ("rule.yml:7:5", "unknown modifier 'contain'", "did you mean 'contains'?"),
        ("rule.yml:8:5", "unknown modifier 'cdr'", "did you mean 'cidr'?"),
    ]

"""convert/kql.py: the KQL generator, construct by construct, on hand-built predicates.

Each predicate uses a real column of a bundled table, so besides the exact text every
generated expression is also parsed and type-checked by Kusto.Language (one batch).
"""

from __future__ import annotations

import pytest
from entra_sigma.convert.kql import GENERATORS, DefenderGenerator, KqlGenerator, collect_elements
from entra_sigma.map.lower import AnyElement, ElementAccess, Predicate
from entra_sigma.map.tables import ColumnAccess
from entra_sigma.model import ir
from entra_sigma.validate.catalog import default_catalog

from .helpers import REGISTRY, check_kql

GEN = KqlGenerator()
CATALOG = default_catalog()


def col(table: str, column: str, *path: str) -> ColumnAccess:
    """A bundled table's column, typed as the bundled schema says."""
    return ColumnAccess(column, REGISTRY.tables[table].columns[column], tuple(path))


def encoded(table: str, field: str) -> ColumnAccess:
    return REGISTRY.mapping(table).resolve(field)


def pred(field: str, op: str, value, access, cased: bool = False, other: tuple[str, ColumnAccess] | None = None) -> Predicate:
    spec = CATALOG.get(field)
    assert spec is not None, field
    return Predicate(ir.Match(field, op, value, cased), spec, access,
                     (CATALOG.get(other[0]), other[1]) if other else None)


SIGNIN, NONINTERACTIVE, ENTRA, BETA = "SigninLogs", "AADNonInteractiveUserSignInLogs", "EntraIdSignInEvents", "AADSignInEventsBeta"
UPN = col(SIGNIN, "UserPrincipalName")
AGENT = col(SIGNIN, "UserAgent")
ELEMENT = ElementAccess("_authenticationDetails", ("succeeded",))
METHOD = ElementAccess("_authenticationDetails", ("authenticationMethod",))
AUTH_ARRAY = col(SIGNIN, "AuthenticationDetails")


# -- literals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, literal",
    [
        ("plain", '"plain"'),
        ("", '""'),
        ('say "hi"', r'"say \"hi\""'),
        ("C:\\temp\\", r'"C:\\temp\\"'),
        ("a\nb\r\tc", r'"a\nb\r\tc"'),
        ("O'Brien", '"O\'Brien"'),
        ("zürich €", '"zürich €"'),
    ],
    ids=["plain", "empty", "quotes", "backslashes", "newline-cr-tab", "apostrophe", "unicode"],
)
def test_string_literal(value, literal):
    assert GEN.string(value) == literal


@pytest.mark.parametrize(
    "pattern, literal",
    [
        (r"\d+\.exe$", r'@"\d+\.exe$"'),  # backslashes stay as written in a verbatim string
        ('say "x"', '@"say ""x"""'),  # a quote is doubled
        (r"\\server\share", r'@"\\server\share"'),
        ("line\nbreak\\d", r'"line\nbreak\\d"'),  # a verbatim string cannot hold a newline
        ("tab\there", r'"tab\there"'),
    ],
    ids=["backslashes", "quote", "unc", "newline", "tab"],
)
def test_regex_literal_is_verbatim_unless_it_holds_a_line_break_or_tab(pattern, literal):
    assert GEN.regex(pattern) == literal


def test_numbers_and_booleans():
    assert [GEN.number(v) for v in (1, -3, 50126, 1.5, 1.0, 10**12)] == ["1", "-3", "50126", "1.5", "1.0", "1000000000000"]
    assert (GEN.boolean(True), GEN.boolean(False)) == ("true", "false")


@pytest.mark.parametrize(
    "name, text",
    [("DeviceDetail", "DeviceDetail"), ("_x1", "_x1"), ("where", '["where"]'), ("Project", '["Project"]'),
     ("my col", '["my col"]'), ("1st", '["1st"]'), ('a"b', r'["a\"b"]')],
)
def test_member_quotes_what_is_not_a_plain_identifier(name, text):
    assert GEN.member(name) == text


@pytest.mark.parametrize(
    "access, raw",
    [
        (UPN, ("UserPrincipalName", "string")),
        (col(SIGNIN, "DeviceDetail", "isManaged"), ("DeviceDetail.isManaged", "dynamic")),
        (col(NONINTERACTIVE, "DeviceDetail", "isManaged"), ("todynamic(DeviceDetail).isManaged", "dynamic")),
        (col(SIGNIN, "LocationDetails", "geoCoordinates", "latitude"), ("LocationDetails.geoCoordinates.latitude", "dynamic")),
        (col(SIGNIN, "Status", "in", "two words"), ('Status["in"]["two words"]', "dynamic")),
        (ELEMENT, ("_authenticationDetails.succeeded", "dynamic")),
        (ElementAccess("_authenticationMethodsUsed", ()), ("_authenticationMethodsUsed", "dynamic")),
    ],
    ids=["column", "dynamic-path", "json-text-path", "deep-path", "quoted-path", "element", "whole-element"],
)
def test_raw_access(access, raw):
    assert GEN.raw(access) == raw


def test_typed_converts_dynamic_values_to_the_field_type_only():
    assert GEN.typed(CATALOG.get("deviceDetail.isManaged"), col(SIGNIN, "DeviceDetail", "isManaged")) == ("tobool(DeviceDetail.isManaged)", "bool")
    assert GEN.typed(CATALOG.get("status.errorCode"), col(SIGNIN, "ResultType")) == ("ResultType", "string")
    assert GEN.typed(CATALOG.get("location.geoCoordinates.latitude"), col(SIGNIN, "LocationDetails", "geoCoordinates", "latitude")) == (
        "todouble(LocationDetails.geoCoordinates.latitude)", "real")
    assert GEN.array(AUTH_ARRAY) == "todynamic(AuthenticationDetails)"
    assert GEN.array(col(SIGNIN, "ConditionalAccessPolicies")) == "ConditionalAccessPolicies"


def test_pattern_regex_anchors_and_escapes_literal_parts():
    assert GEN.pattern_regex(("a.b", ir.Wildcard.MULTI, "c", ir.Wildcard.SINGLE), cased=False) == r"(?is)^a\.b.*c.$"
    assert GEN.pattern_regex(("x+y",), cased=True) == r"(?s)^x\+y$"


# -- predicates -------------------------------------------------------------------------------------------

PREDICATES: dict[str, tuple[str, Predicate, str]] = {
    "eq": (SIGNIN, pred("userPrincipalName", "eq", "a@contoso.com", UPN), 'UserPrincipalName =~ "a@contoso.com"'),
    "eq-cased": (SIGNIN, pred("userPrincipalName", "eq", "A@contoso.com", UPN, cased=True), 'UserPrincipalName == "A@contoso.com"'),
    "eq-empty": (SIGNIN, pred("userAgent", "eq", "", AGENT), 'UserAgent =~ ""'),
    "enum": (SIGNIN, pred("riskLevelDuringSignIn", "eq", "high", col(SIGNIN, "RiskLevelDuringSignIn")), 'RiskLevelDuringSignIn =~ "high"'),
    "flags-enum": (NONINTERACTIVE, pred("incomingTokenType", "eq", "primaryRefreshToken", col(NONINTERACTIVE, "IncomingTokenType")),
                   'IncomingTokenType has "primaryRefreshToken"'),
    "number-on-text-column": (SIGNIN, pred("status.errorCode", "eq", 50126, col(SIGNIN, "ResultType")), 'ResultType == "50126"'),
    "number-on-int-column": (ENTRA, pred("status.errorCode", "eq", 50126, col(ENTRA, "ErrorCode")), "ErrorCode == 50126"),
    # Entra leaves isManaged out when it is false: `false` means "not true"
    "bool-in-dynamic": (SIGNIN, pred("deviceDetail.isManaged", "eq", False, col(SIGNIN, "DeviceDetail", "isManaged")),
                        "coalesce(tobool(DeviceDetail.isManaged), false) == false"),
    "bool-in-json-text": (NONINTERACTIVE, pred("deviceDetail.isManaged", "eq", True, col(NONINTERACTIVE, "DeviceDetail", "isManaged")),
                          "tobool(todynamic(DeviceDetail).isManaged) == true"),
    "bool-on-bool-column": (SIGNIN, pred("flaggedForReview", "eq", True, col(SIGNIN, "FlaggedForReview")), "FlaggedForReview == true"),
    "encoded-bool": (ENTRA, pred("deviceDetail.isManaged", "eq", True, encoded(ENTRA, "deviceDetail.isManaged")), "IsManaged == 1"),
    "encoded-bool-false": (ENTRA, pred("deviceDetail.isCompliant", "eq", False, encoded(ENTRA, "deviceDetail.isCompliant")),
                           "coalesce(IsCompliant == 1, false) == false"),
    "encoded-enum": (BETA, pred("tokenIssuerType", "eq", "ADFederationServices", encoded(BETA, "tokenIssuerType")), "TokenIssuerType == 1"),
    "datetime": (SIGNIN, pred("createdDateTime", "eq", "2025-01-31T08:00:00Z", col(SIGNIN, "CreatedDateTime")),
                 "CreatedDateTime == datetime(2025-01-31T08:00:00Z)"),
    "contains": (SIGNIN, pred("userAgent", "contains", 'say "hi"', AGENT), r'UserAgent contains "say \"hi\""'),
    "contains-cased": (SIGNIN, pred("userAgent", "contains", "Mozilla", AGENT, cased=True), 'UserAgent contains_cs "Mozilla"'),
    "startswith": (SIGNIN, pred("userAgent", "startswith", "python", AGENT), 'UserAgent startswith "python"'),
    "endswith-cased": (SIGNIN, pred("userPrincipalName", "endswith", "@Contoso.com", UPN, cased=True),
                       'UserPrincipalName endswith_cs "@Contoso.com"'),
    "contains-in-dynamic": (SIGNIN, pred("deviceDetail.browser", "contains", "Edge", col(SIGNIN, "DeviceDetail", "browser")),
                            'tostring(DeviceDetail.browser) contains "Edge"'),
    "any": (SIGNIN, pred("userAgent", "any", None, AGENT), "isnotempty(UserAgent)"),
    "pattern": (SIGNIN, pred("userAgent", "pattern", ("python", ir.Wildcard.MULTI, "/", ir.Wildcard.SINGLE), AGENT),
                'UserAgent matches regex @"(?is)^python.*/.$"'),
    "regex": (SIGNIN, pred("userAgent", "regex", (r"curl/\d+", ""), AGENT, cased=True), r'UserAgent matches regex @"curl/\d+"'),
    "regex-flags": (SIGNIN, pred("userAgent", "regex", ('say "x".*', "im"), AGENT, cased=True),
                    'UserAgent matches regex @"(?im)say ""x"".*"'),
    "cidr-v4": (SIGNIN, pred("ipAddress", "cidr", "10.0.0.0/8", col(SIGNIN, "IPAddress")),
                'coalesce(ipv4_is_in_range(IPAddress, "10.0.0.0/8"), false)'),
    "cidr-v6": (SIGNIN, pred("ipAddress", "cidr", "2001:db8::/32", col(SIGNIN, "IPAddress")),
                'coalesce(ipv6_is_in_range(IPAddress, "2001:db8::/32"), false)'),
    "compare-text-column": (SIGNIN, pred("processingTimeInMilliseconds", "compare", (">", 1000), col(SIGNIN, "ProcessingTimeInMilliseconds")),
                            "coalesce(toint(ProcessingTimeInMilliseconds) > 1000, false)"),
    "compare-int-column": (ENTRA, pred("status.errorCode", "compare", (">=", 50000), col(ENTRA, "ErrorCode")),
                           "coalesce(ErrorCode >= 50000, false)"),
    "fieldref-strings": (SIGNIN, pred("homeTenantId", "fieldref", "resourceTenantId", col(SIGNIN, "HomeTenantId"),
                                      other=("resourceTenantId", col(SIGNIN, "ResourceTenantId"))),
                         "isnotempty(HomeTenantId) and HomeTenantId =~ ResourceTenantId"),
    "fieldref-numbers": (SIGNIN, pred("processingTimeInMilliseconds", "fieldref", "autonomousSystemNumber", col(SIGNIN, "ProcessingTimeInMilliseconds"),
                                      other=("autonomousSystemNumber", col(SIGNIN, "AutonomousSystemNumber"))),
                         "coalesce(toint(ProcessingTimeInMilliseconds) == toint(AutonomousSystemNumber), false)"),
    "fieldref-bools-written-as-absence": (SIGNIN, pred("deviceDetail.isManaged", "fieldref", "deviceDetail.isCompliant", col(SIGNIN, "DeviceDetail", "isManaged"),
                                                       other=("deviceDetail.isCompliant", col(SIGNIN, "DeviceDetail", "isCompliant"))),
                                          "coalesce(coalesce(tobool(DeviceDetail.isManaged), false) == coalesce(tobool(DeviceDetail.isCompliant), false), false)"),
    "exists-string": (SIGNIN, pred("userAgent", "exists", True, AGENT), "isnotempty(UserAgent)"),
    "null-string": (SIGNIN, pred("userAgent", "null", None, AGENT), "isempty(UserAgent)"),
    "exists-in-dynamic": (SIGNIN, pred("deviceDetail.browser", "exists", True, col(SIGNIN, "DeviceDetail", "browser")),
                          "isnotempty(tostring(DeviceDetail.browser))"),
    "not-exists-bool": (SIGNIN, pred("deviceDetail.isManaged", "exists", False, col(SIGNIN, "DeviceDetail", "isManaged")),
                        "isnull(tobool(DeviceDetail.isManaged))"),
    "exists-object": (SIGNIN, pred("deviceDetail", "exists", True, col(SIGNIN, "DeviceDetail")), "isnotempty(tostring(DeviceDetail))"),
    "exists-datetime": (SIGNIN, pred("createdDateTime", "exists", True, col(SIGNIN, "CreatedDateTime")), "isnotnull(CreatedDateTime)"),
    "exists-array": (SIGNIN, pred("authenticationDetails", "exists", True, AUTH_ARRAY),
                     "coalesce(array_length(todynamic(AuthenticationDetails)) > 0, false)"),
    "null-array": (SIGNIN, pred("authenticationDetails", "null", None, AUTH_ARRAY),
                   "not(coalesce(array_length(todynamic(AuthenticationDetails)) > 0, false))"),
}


@pytest.mark.parametrize("case", list(PREDICATES))
def test_predicate(case):
    _table, predicate, text = PREDICATES[case]
    assert GEN.predicate(predicate) == text


CA_SATISFIED = ElementAccess("_appliedConditionalAccessPolicies", ("conditionsSatisfied",))
AUDIENCE = ElementAccess("_conditionalAccessAudiences", ())


def test_element_predicates_convert_from_dynamic():
    assert GEN.predicate(pred("authenticationDetails.succeeded", "eq", True, ELEMENT)) == "tobool(_authenticationDetails.succeeded) == true"
    # real steps write succeeded: false, so false stays a plain comparison there
    assert GEN.predicate(pred("authenticationDetails.succeeded", "eq", False, ELEMENT)) == "tobool(_authenticationDetails.succeeded) == false"
    assert GEN.predicate(pred("authenticationMethodsUsed", "eq", "Password", ElementAccess("_authenticationMethodsUsed", ()))) == (
        'tostring(_authenticationMethodsUsed) =~ "Password"')


def test_a_flags_enum_stored_as_a_number_tests_bits():
    bits = lambda value: pred("appliedConditionalAccessPolicies.conditionsSatisfied", "bits", value, CA_SATISFIED)
    value = "toint(_appliedConditionalAccessPolicies.conditionsSatisfied)"
    assert GEN.predicate(bits(1)) == f"binary_and({value}, 1) != 0"
    assert GEN.predicate(bits(0)) == f"{value} == 0"  # `none`: no bit set
    # a list of members (Sigma's any-of) is one mask; `none` in it adds the zero test
    assert GEN.condition(ir.Or((bits(1), bits(16))), {}) == f"binary_and({value}, 17) != 0"
    assert GEN.condition(ir.And((ir.Or((bits(0), bits(4))), A)), {}) == f'({value} == 0 or binary_and({value}, 4) != 0) and UserPrincipalName =~ "a"'
    # |all: every member's bit, one test each
    assert GEN.condition(ir.And((bits(1), bits(2))), {}) == f"binary_and({value}, 1) != 0 and binary_and({value}, 2) != 0"


def test_an_element_written_as_an_object_is_read_through_its_key():
    assert GEN.predicate(pred("conditionalAccessAudiences", "eq", "00000003-0000-0000-c000-000000000000", AUDIENCE)) == (
        'tostring(coalesce(_conditionalAccessAudiences.applicationId, _conditionalAccessAudiences)) =~ "00000003-0000-0000-c000-000000000000"')


# -- in-list folding ---------------------------------------------------------------------------------------


def either(*predicates: Predicate) -> ir.Or:
    return ir.Or(tuple(predicates))


RISK = col(SIGNIN, "RiskLevelDuringSignIn")
RESULT = col(SIGNIN, "ResultType")
TOKENS = col(NONINTERACTIVE, "IncomingTokenType")
IN_LISTS: dict[str, tuple[str, ir.Or, str]] = {
    "strings": (SIGNIN, either(pred("userPrincipalName", "eq", "a", UPN), pred("userPrincipalName", "eq", 'b"c', UPN)),
                r'UserPrincipalName in~ ("a", "b\"c")'),
    "strings-cased": (SIGNIN, either(pred("userPrincipalName", "eq", "a", UPN, True), pred("userPrincipalName", "eq", "B", UPN, True)),
                      'UserPrincipalName in ("a", "B")'),
    "enum": (SIGNIN, either(pred("riskLevelDuringSignIn", "eq", "high", RISK), pred("riskLevelDuringSignIn", "eq", "medium", RISK)),
             'RiskLevelDuringSignIn in~ ("high", "medium")'),
    "numbers-on-text-column": (SIGNIN, either(pred("status.errorCode", "eq", 50053, RESULT), pred("status.errorCode", "eq", 50126, RESULT)),
                               'ResultType in ("50053", "50126")'),
    "numbers-on-int-column": (ENTRA, either(pred("status.errorCode", "eq", 1, col(ENTRA, "ErrorCode")), pred("status.errorCode", "eq", 2, col(ENTRA, "ErrorCode"))),
                              "ErrorCode in (1, 2)"),
    "flags": (NONINTERACTIVE, either(pred("incomingTokenType", "eq", "primaryRefreshToken", TOKENS), pred("incomingTokenType", "eq", "refreshToken", TOKENS)),
              'IncomingTokenType has_any ("primaryRefreshToken", "refreshToken")'),
    "encoded": (BETA, either(pred("tokenIssuerType", "eq", "AzureAD", encoded(BETA, "tokenIssuerType")),
                             pred("tokenIssuerType", "eq", "ADFederationServices", encoded(BETA, "tokenIssuerType"))),
                "TokenIssuerType in (0, 1)"),
    # absent counts as false, so `false` is no plain list member
    "bools-written-as-absence-not-folded": (SIGNIN, either(pred("deviceDetail.isManaged", "eq", True, col(SIGNIN, "DeviceDetail", "isManaged")),
                                                           pred("deviceDetail.isManaged", "eq", False, col(SIGNIN, "DeviceDetail", "isManaged"))),
                                            "tobool(DeviceDetail.isManaged) == true or coalesce(tobool(DeviceDetail.isManaged), false) == false"),
    "two-fields-not-folded": (SIGNIN, either(pred("userPrincipalName", "eq", "a", UPN), pred("userAgent", "eq", "b", AGENT)),
                              'UserPrincipalName =~ "a" or UserAgent =~ "b"'),
    "mixed-case-not-folded": (SIGNIN, either(pred("userPrincipalName", "eq", "a", UPN), pred("userPrincipalName", "eq", "B", UPN, True)),
                              'UserPrincipalName =~ "a" or UserPrincipalName == "B"'),
    "contains-not-folded": (SIGNIN, either(pred("userAgent", "contains", "a", AGENT), pred("userAgent", "contains", "b", AGENT)),
                            'UserAgent contains "a" or UserAgent contains "b"'),
}


@pytest.mark.parametrize("case", list(IN_LISTS))
def test_in_list_folding(case):
    _table, node, text = IN_LISTS[case]
    assert GEN.condition(node, {}) == text


def test_a_single_equality_is_not_a_list():
    assert GEN.in_list(ir.Or((pred("userPrincipalName", "eq", "a", UPN),))) is None


# -- boolean structure and null safety -----------------------------------------------------------------------

A = pred("userPrincipalName", "eq", "a", UPN)
B = pred("userAgent", "contains", "b", AGENT)
C = pred("ipAddress", "cidr", "10.0.0.0/8", col(SIGNIN, "IPAddress"))
CONDITIONS: dict[str, tuple[ir.Node, str]] = {
    "or-inside-and": (ir.And((ir.Or((A, B)), C)),
                      '(UserPrincipalName =~ "a" or UserAgent contains "b") and coalesce(ipv4_is_in_range(IPAddress, "10.0.0.0/8"), false)'),
    "and-inside-or": (ir.Or((ir.And((A, B)), C)),
                      '(UserPrincipalName =~ "a" and UserAgent contains "b") or coalesce(ipv4_is_in_range(IPAddress, "10.0.0.0/8"), false)'),
    "top-level-or": (ir.Or((A, B)), 'UserPrincipalName =~ "a" or UserAgent contains "b"'),
    "not-or": (ir.Not(ir.Or((A, B))), 'not(UserPrincipalName =~ "a" or UserAgent contains "b")'),
    "not-null-safe": (ir.Not(C), 'not(coalesce(ipv4_is_in_range(IPAddress, "10.0.0.0/8"), false))'),
    "in-list-inside-and": (ir.And((ir.Or((A, pred("userPrincipalName", "eq", "z", UPN))), B)),
                           'UserPrincipalName in~ ("a", "z") and UserAgent contains "b"'),
    "fieldref-inside-or": (ir.Or((pred("homeTenantId", "fieldref", "resourceTenantId", col(SIGNIN, "HomeTenantId"),
                                       other=("resourceTenantId", col(SIGNIN, "ResourceTenantId"))), A)),
                           'isnotempty(HomeTenantId) and HomeTenantId =~ ResourceTenantId or UserPrincipalName =~ "a"'),
    "constants": (ir.Or((ir.Const(True), ir.Not(ir.Const(False)))), "true or not(false)"),
}


@pytest.mark.parametrize("case", list(CONDITIONS))
def test_condition(case):
    node, text = CONDITIONS[case]
    assert GEN.condition(node, {}) == text


# -- array elements -----------------------------------------------------------------------------------------

ELEMENT_TEST = AnyElement(AUTH_ARRAY, "_authenticationDetails", ir.And((
    pred("authenticationDetails.succeeded", "eq", True, ELEMENT),
    ir.Or((pred("authenticationDetails.authenticationMethod", "eq", "SMS", METHOD),
           pred("authenticationDetails.authenticationMethod", "eq", "Voice call", METHOD))),
)))


def test_an_array_test_is_one_mv_apply_that_keeps_rows_with_empty_arrays():
    assert GEN.mv_apply(ELEMENT_TEST, "_any1") == (
        "mv-apply _authenticationDetails = iff(array_length(todynamic(AuthenticationDetails)) > 0, todynamic(AuthenticationDetails), "
        "dynamic([null])) on (summarize _any1 = countif(isnotnull(_authenticationDetails) and "
        '(tobool(_authenticationDetails.succeeded) == true and tostring(_authenticationDetails.authenticationMethod) in~ ("SMS", "Voice call"))) > 0)'
    )


def test_elements_are_referred_to_by_their_flag_and_collected_once():
    other = AnyElement(AUTH_ARRAY, "_authenticationDetails", pred("authenticationDetails.succeeded", "eq", False, ELEMENT))
    tree = ir.And((ELEMENT_TEST, ir.Not(other), ELEMENT_TEST))
    assert GEN.condition(tree, {ELEMENT_TEST: "_any1", other: "_any2"}) == "_any1 and not(_any2) and _any1"
    found: list[AnyElement] = []
    collect_elements(tree, found)
    assert found == [ELEMENT_TEST, other]


# -- dialects -----------------------------------------------------------------------------------------------


def test_defender_prints_every_predicate_as_sentinel_does_and_differs_in_its_prefix():
    assert GENERATORS == {"sentinel": KqlGenerator, "defender": DefenderGenerator}
    defender = DefenderGenerator()
    assert [defender.predicate(p) for _, p, _ in PREDICATES.values()] == [text for _, _, text in PREDICATES.values()]
    assert KqlGenerator.projection_prefix == ("{time}", "Type")
    assert DefenderGenerator.projection_prefix[:2] == ("{time}", "ReportId")


# -- Kusto.Language accepts every generated expression ------------------------------------------------------


@pytest.fixture(scope="module")
def verdicts(kusto) -> dict[str, list[str]]:
    queries = {f"predicate/{k}": f"{t} | where {GEN.predicate(p)}" for k, (t, p, _) in PREDICATES.items()}
    queries |= {f"in-list/{k}": f"{t} | where {GEN.condition(n, {})}" for k, (t, n, _) in IN_LISTS.items()}
    queries |= {f"condition/{k}": f"SigninLogs | where {GEN.condition(n, {})}" for k, (n, _) in CONDITIONS.items()}
    queries["element"] = (
        "SigninLogs | " + GEN.mv_apply(ELEMENT_TEST, "_any1") + " | where _any1 | project-away _any1"
    )
    bits = [pred("appliedConditionalAccessPolicies.conditionsSatisfied", "bits", v, CA_SATISFIED) for v in (0, 1, 16)]
    ca_test = AnyElement(col(NONINTERACTIVE, "ConditionalAccessPolicies"), "_appliedConditionalAccessPolicies", ir.Or(tuple(bits)))
    queries["element-bits"] = (
        f"{NONINTERACTIVE} | " + GEN.mv_apply(ca_test, "_any1") + " | where _any1 | project-away _any1"
    )
    audience = AnyElement(col(SIGNIN, "ConditionalAccessAudiences"), "_conditionalAccessAudiences", pred("conditionalAccessAudiences", "eq", "x", AUDIENCE))
    queries["element-key"] = "SigninLogs | " + GEN.mv_apply(audience, "_any1") + " | where _any1"
    queries["literals"] = "print " + ", ".join(
        [GEN.string(v) for v in ("", 'say "hi"', "C:\\temp\\", "a\nb\r\tc", "zürich €")]
        + [GEN.regex(v) for v in (r"\d+\.exe$", 'say "x"', r"\\server\share", "line\nbreak\\d")]
        + [GEN.number(v) for v in (1, -3, 1.5, 10**12)]
    )
    return check_kql(kusto, queries)


@pytest.mark.parametrize(
    "key",
    [f"predicate/{k}" for k in PREDICATES] + [f"in-list/{k}" for k in IN_LISTS]
    + [f"condition/{k}" for k in CONDITIONS] + ["element", "element-bits", "element-key", "literals"],
)
def test_kusto_language_accepts(verdicts, key):
    assert verdicts[key] == []

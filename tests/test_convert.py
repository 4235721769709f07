"""convert/query.py: which tables a rule reads, what folds away, and each leg's pipe steps.

Queries are built with QueryBuilder on rules given inline; the union checks at the end also
run through Kusto.Language, which names a column `X_string`/`X_dynamic` when union legs
disagree on its type, so `| project X` after the union fails exactly when normalisation did.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.build import Compiler
from entra_sigma.convert.query import Query, QueryBuilder, conjuncts, output_name
from entra_sigma.diagnostics import Diagnostic, SourceLocation
from entra_sigma.load.loader import parse_yaml
from entra_sigma.map.tables import Absent
from entra_sigma.model import ir
from entra_sigma.validate.catalog import default_catalog

from .helpers import REGISTRY, check_kql

CATALOG = default_catalog()
COMPILER = Compiler()


def rule_text(detection: str, service: str = "signins", extra: str = "") -> str:
    return (
        "title: t\nid: 0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c\n"
        f"logsource: {{product: entra, service: {service}}}\n"
        f"detection:\n{detection}\n{extra}"
    )


def make_rule(text: str):
    document, problems = parse_yaml(text, Path("r.yml"), "r.yml")
    assert problems == []
    rules, problems = COMPILER.rules([document])
    assert problems == [], [str(p) for p in problems]
    return rules[0]


def build(text: str, platform: str = "sentinel", registry=REGISTRY) -> tuple[Query | None, list[Diagnostic]]:
    return QueryBuilder(registry, CATALOG, platform).build(make_rule(text))


def legs(query: Query) -> dict[str, list[str]]:
    return {leg.table: leg.steps for leg in query.legs}


APP = "  sel: {appId: '00000003-0000-0000-c000-000000000000'}\n  condition: sel"
WHERE_APP = 'where AppId =~ "00000003-0000-0000-c000-000000000000"'


# -- table choice ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "service, tables",
    [
        ("signins", ["SigninLogs", "AADNonInteractiveUserSignInLogs"]),
        ("interactive", ["SigninLogs"]),
        ("noninteractive", ["AADNonInteractiveUserSignInLogs"]),
        ("serviceprincipal", ["AADServicePrincipalSignInLogs"]),
        ("managedidentity", ["AADManagedIdentitySignInLogs"]),
    ],
)
def test_sentinel_tables_follow_the_logsource_service(service, tables):
    query, diagnostics = build(rule_text(APP, service))
    assert diagnostics == []
    assert query.tables == tables
    assert all(steps[0] == WHERE_APP for steps in legs(query).values())


def test_defender_reads_one_table_which_a_rule_may_choose():
    query, _ = build(rule_text(APP), "defender")
    assert legs(query) == {"EntraIdSignInEvents": ['where ApplicationId =~ "00000003-0000-0000-c000-000000000000"']}
    query, _ = build(rule_text(APP, extra="defender: {table: AADSignInEventsBeta}\n"), "defender")
    assert query.tables == ["AADSignInEventsBeta"]


def test_a_service_without_a_defender_table_is_located_at_the_service():
    assert build(rule_text(APP, "interactive"), "defender") == (None, [Diagnostic(
        "E204", "service 'interactive' has no defender sign-in table", SourceLocation("r.yml", 3, 29), "t",
        target="defender",
    )])


@pytest.mark.parametrize("service, managed", [("serviceprincipal", "false"), ("managedidentity", "true")])
def test_defender_keeps_the_services_rows_of_its_mixed_service_principal_table(service, managed):
    query, diagnostics = build(rule_text(APP, service), "defender")
    assert diagnostics == []
    assert legs(query) == {"EntraIdSpnSignInEvents": [
        f"where IsManagedIdentity == {managed}", 'where ApplicationId =~ "00000003-0000-0000-c000-000000000000"',
    ]}


def test_a_defender_table_of_another_service_is_refused_at_the_setting():
    assert build(rule_text(APP, extra="defender: {table: EntraIdSpnSignInEvents}\n"), "defender") == (None, [Diagnostic(
        "E206", "Defender table 'EntraIdSpnSignInEvents' does not hold the sign-ins of service 'signins'",
        SourceLocation("r.yml", 7, 12), "t", "choose EntraIdSignInEvents or AADSignInEventsBeta",
    )])


def test_forced_tables_override_the_service():
    rule = make_rule(rule_text(APP))
    query, _ = QueryBuilder(REGISTRY, CATALOG, "sentinel", ["AADServicePrincipalSignInLogs"]).build(rule)
    assert query.tables == ["AADServicePrincipalSignInLogs"]


# -- folding tables away ----------------------------------------------------------------------------------


def test_a_constant_folds_a_table_away_and_says_so():
    query, diagnostics = build(rule_text("  sel: {isInteractive: true, appId: x}\n  condition: sel"))
    assert legs(query) == {"SigninLogs": ["where IsInteractive == true", 'where AppId =~ "x"']}
    assert diagnostics == [Diagnostic(
        "W202", "AADNonInteractiveUserSignInLogs is left out: 'isInteractive' is always false there",
        SourceLocation("r.yml", 5, 9), "t",
        "choose a logsource service that reads only the tables the rule is about: see docs/rule-format.md#logsource",
        severity="warning", target="sentinel",
    )]


def test_a_missing_column_that_drops_a_table_is_a_warning_with_the_fix():
    query, diagnostics = build(rule_text("  sel: {signInEventTypes: interactiveUser}\n  condition: sel"))
    assert query.tables == ["AADNonInteractiveUserSignInLogs"]
    assert diagnostics == [Diagnostic(
        "W202", "SigninLogs is left out: 'signInEventTypes' has no column there", SourceLocation("r.yml", 5, 9), "t",
        "if your workspace has the column, pass its 'SigninLogs | getschema' export with --table-schema SigninLogs.json",
        severity="warning", target="sentinel",
    )]


def test_a_condition_that_is_always_true_leaves_a_bare_table():
    query, _ = build(rule_text("  sel: {isInteractive: false}\n  condition: sel", "noninteractive"))
    assert legs(query) == {"AADNonInteractiveUserSignInLogs": []}


def test_a_condition_that_can_never_match_is_one_located_error():
    assert build(rule_text("  sel: {isInteractive: true}\n  condition: sel", "noninteractive")) == (None, [Diagnostic(
        "E202", "the condition can never match in AADNonInteractiveUserSignInLogs", SourceLocation("r.yml", 6, 3), "t",
        hint="a field it requires has no column there, or is constant", target="sentinel",
    )])


def test_a_field_no_target_table_has_is_an_error_at_its_key():
    assert build(rule_text("  sel: {userPrincipalName: a, appId: x}\n  condition: sel", "managedidentity")) == (None, [Diagnostic(
        "E201", "field 'userPrincipalName' has no column in AADManagedIdentitySignInLogs", SourceLocation("r.yml", 5, 9), "t",
        target="sentinel",
    )])


def test_a_value_a_table_cannot_encode_is_an_error_at_its_key():
    assert build(rule_text("  sel:\n    riskLevelDuringSignIn: hidden\n  condition: sel"), "defender") == (None, [Diagnostic(
        "E203", "EntraIdSignInEvents has no number for 'riskLevelDuringSignIn' = 'hidden' (known: high, low, medium, none)",
        SourceLocation("r.yml", 6, 5), "t", target="defender",
    )])


# -- steps of one leg ------------------------------------------------------------------------------------------


def test_plain_conditions_come_before_element_tests_which_are_projected_away():
    query, _ = build(rule_text(
        "  sel:\n    userPrincipalName|endswith: '@contoso.com'\n    authenticationDetails.succeeded: false\n  condition: sel",
        "interactive",
    ))
    assert legs(query) == {"SigninLogs": [
        'where UserPrincipalName endswith "@contoso.com"',
        "mv-apply _authenticationDetails = iff(array_length(todynamic(AuthenticationDetails)) > 0, "
        "todynamic(AuthenticationDetails), dynamic([null])) on (summarize _any1 = countif(isnotnull(_authenticationDetails) "
        "and (tobool(_authenticationDetails.succeeded) == false)) > 0)",
        "where _any1",
        "project-away _any1",
    ]}


def test_each_conjunct_is_its_own_where():
    query, _ = build(rule_text("  a: {appId: x}\n  b: {userAgent|contains: [p, q]}\n  condition: a and b", "interactive"))
    assert legs(query) == {"SigninLogs": ['where AppId =~ "x"', 'where UserAgent contains "p" or UserAgent contains "q"']}


def test_conjuncts_and_output_name():
    a, b = ir.Match("a", "eq", 1), ir.Match("b", "eq", 2)
    assert conjuncts(ir.And((a, b))) == [a, b]
    assert conjuncts(ir.Or((a, b))) == [ir.Or((a, b))]
    assert conjuncts(ir.Const(True)) == []
    assert output_name("location.geoCoordinates.latitude") == "location_geoCoordinates_latitude"


# -- union normalisation --------------------------------------------------------------------------------------


def differing_columns(tables: list[str]) -> list[str]:
    """Columns every table has, with more than one type among them (from schemas/, not typed here)."""
    columns = [REGISTRY.tables[t].columns for t in tables]
    shared = set.intersection(*(set(c) for c in columns))
    return sorted(c for c in shared if len({cols[c] for cols in columns}) > 1)


SIGNINS = ["SigninLogs", "AADNonInteractiveUserSignInLogs"]


def test_union_legs_give_every_shared_column_one_type_in_one_extend():
    query, _ = build(rule_text(APP))
    differing = differing_columns(SIGNINS)
    assert {"DeviceDetail", "Status", "LocationDetails"} <= set(differing)
    assert legs(query) == {
        "SigninLogs": [WHERE_APP],
        "AADNonInteractiveUserSignInLogs": [WHERE_APP, "extend " + ", ".join(f"{c} = todynamic({c})" for c in differing)],
    }


def test_no_normalisation_for_one_table_or_when_fields_are_projected():
    query, _ = build(rule_text(APP, "noninteractive"))
    assert legs(query) == {"AADNonInteractiveUserSignInLogs": [WHERE_APP]}
    query, _ = build(rule_text(APP, extra="fields: [userPrincipalName]\n"))
    assert not any(step.startswith("extend") for steps in legs(query).values() for step in steps)


# -- projection -------------------------------------------------------------------------------------------------

FIELDS = ["userPrincipalName", "status.errorCode", "deviceDetail.isManaged", "isInteractive", "incomingTokenType",
          "authenticationDetails", "createdDateTime"]


def test_projection_gives_each_field_its_beta_name_and_one_type_in_every_table():
    query, diagnostics = build(rule_text(APP, extra=f"fields: [{', '.join(FIELDS)}]\n"))
    assert diagnostics == []
    assert {table: steps[-1] for table, steps in legs(query).items()} == {
        # isManaged is left out when false, so a missing key is returned as false
        "SigninLogs": "project TimeGenerated, Type, userPrincipalName = UserPrincipalName, status_errorCode = toint(ResultType), "
                      "deviceDetail_isManaged = coalesce(tobool(DeviceDetail.isManaged), false), isInteractive = IsInteractive, "
                      "incomingTokenType = IncomingTokenType, "
                      "authenticationDetails = todynamic(AuthenticationDetails), createdDateTime = CreatedDateTime",
        "AADNonInteractiveUserSignInLogs": "project TimeGenerated, Type, userPrincipalName = UserPrincipalName, "
                      "status_errorCode = toint(ResultType), deviceDetail_isManaged = coalesce(tobool(todynamic(DeviceDetail).isManaged), false), "
                      "isInteractive = false, incomingTokenType = IncomingTokenType, "
                      "authenticationDetails = todynamic(AuthenticationDetails), createdDateTime = CreatedDateTime",
    }
    assert query.returned == {path: output_name(path) for path in FIELDS}


def test_defender_projection_decodes_numbers_back_to_graph_values():
    rule = rule_text(APP, extra="fields: [tokenIssuerType, deviceDetail.isManaged, status.errorCode]\ndefender: {table: AADSignInEventsBeta}\n")
    query, diagnostics = build(rule, "defender")
    assert diagnostics == []
    (steps,) = legs(query).values()
    assert steps[-1].startswith("project Timestamp, ReportId, ")
    assert steps[-1].endswith(
        ', tokenIssuerType = case(TokenIssuerType == 1, "ADFederationServices", TokenIssuerType == 0, "AzureAD", ""), '
        "deviceDetail_isManaged = coalesce(IsManaged == 1, false), status_errorCode = ErrorCode"
    )


def test_defender_projection_keeps_the_prefix_columns_its_table_has():
    query, _ = build(rule_text(APP, "serviceprincipal", "fields: [servicePrincipalId]\n"), "defender")
    (steps,) = legs(query).values()
    assert steps[-1] == "project Timestamp, ReportId, servicePrincipalId = ServicePrincipalId"  # no AccountObjectId there


def test_a_returned_field_no_sentinel_table_has_is_an_error():
    query, diagnostics = build(rule_text(APP, "serviceprincipal", "fields: [appId, userPrincipalName]\n"))
    assert query is None
    assert diagnostics == [Diagnostic(
        "E205", "field 'userPrincipalName' in 'fields' has no column in AADServicePrincipalSignInLogs",
        SourceLocation("r.yml", 7, 17), "t", severity="error", target="sentinel",
    )]


def test_a_returned_field_defender_lacks_is_a_warning_and_left_out():
    query, diagnostics = build(rule_text(APP, extra="fields: [appId, homeTenantId]\n"), "defender")
    assert diagnostics == [Diagnostic(
        "W201", "field 'homeTenantId' in 'fields' has no column in EntraIdSignInEvents; it is left out of the output",
        SourceLocation("r.yml", 7, 17), "t", severity="warning", target="defender",
    )]
    assert legs(query)["EntraIdSignInEvents"][-1] == "project Timestamp, ReportId, AccountObjectId, appId = ApplicationId"
    assert query.returned == {"appId": "appId"}


def test_a_returned_field_only_a_folded_away_table_has_is_an_error():
    query, diagnostics = build(rule_text("  sel: {isInteractive: true, appId: x}\n  condition: sel", extra="fields: [appId, signInEventTypes]\n"))
    assert query is None
    assert [(d.code, d.message) for d in diagnostics] == [
        ("W202", "AADNonInteractiveUserSignInLogs is left out: 'isInteractive' is always false there"),
        ("E205", "field 'signInEventTypes' in 'fields' has no column in SigninLogs"),
    ]


# -- the union, as Kusto.Language types it ---------------------------------------------------------------------

# every returnable path (never-filled ones warn, W102, which test_validate covers)
PROJECTABLE = [p for p, f in sorted(CATALOG.fields.items()) if (not f.arrays or f.collection) and not f.never_filled]
CONDITION = "  sel: {appId: x}\n  condition: sel"


@pytest.fixture(scope="module")
def unions() -> dict[str, tuple[Query, list[str]]]:
    """Queries whose union must keep every column whole, with the names to read after the union."""
    cases = {}
    query, _ = build(rule_text(CONDITION))
    cases["normalised"] = (query, sorted(REGISTRY.tables["SigninLogs"].columns))
    for platform, service in (("sentinel", "signins"), ("sentinel", "serviceprincipal"), ("defender", "signins"), ("defender", "serviceprincipal")):
        tables = REGISTRY.tables_for(platform, service)
        # Sentinel refuses a returned field none of its tables has (E205); Defender leaves it out (W201)
        fields = PROJECTABLE if platform == "defender" else [
            p for p in PROJECTABLE if any(not isinstance(REGISTRY.mapping(t).resolve(p), Absent) for t in tables)
        ]
        query, diagnostics = build(rule_text(CONDITION, service, f"fields: [{', '.join(fields)}]\n"), platform)
        assert all(d.code == "W201" for d in diagnostics)
        assert len(query.returned) + len(diagnostics) == len(fields)  # every field: returned or warned about
        cases[f"every-field/{platform}/{service}"] = (query, sorted(query.returned.values()))
    return cases


@pytest.fixture(scope="module")
def verdicts(unions, kusto) -> dict[str, list[str]]:
    texts = {key: COMPILER.renderer.query(query).rstrip("\n") + f"\n| project {', '.join(names)}" for key, (query, names) in unions.items()}
    return check_kql(kusto, texts)


@pytest.mark.parametrize("key", ["normalised", "every-field/sentinel/signins", "every-field/sentinel/serviceprincipal",
                                 "every-field/defender/signins", "every-field/defender/serviceprincipal"])
def test_every_column_keeps_its_name_after_the_union(unions, verdicts, key):
    _query, names = unions[key]
    assert len(names) > 15, "nothing to check"
    assert verdicts[key] == []

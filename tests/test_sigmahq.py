"""SigmaHQ's Azure sign-in rules compile as written (compiler/model/sigmahq.py).

Every rule of the corpus in tests/sigmahq/ (copied unchanged from SigmaHQ) either compiles, with
Kusto.Language accepting the query and the meaning its author intended, or fails with exactly
the expected located diagnostics. Then the name resolution behind it, checked against the data
it is derived from, inline rules for constructs the corpus lacks, and docs/sigmahq.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from entra_sigma.build import Compiler
from entra_sigma.dev.sigmahq_report import PAGE, placeholder_environment, render_page
from entra_sigma.diagnostics import Diagnostic
from entra_sigma.load.loader import parse_yaml
from entra_sigma.map.tables import bundled_registry
from entra_sigma.model.sigmahq import GRAPH, Name, Vocabulary, aliases, vocabulary_for
from entra_sigma.validate.catalog import default_catalog

from .helpers import REPO, TESTS, check_kql

CORPUS = TESTS / "sigmahq"
FOLDERS = ("rules", "rules-placeholder", "rules-threat-hunting")
RULE_FILES = sorted(p for folder in FOLDERS for p in (CORPUS / folder).rglob("*.yml"))
USER_TABLES = ["SigninLogs", "AADNonInteractiveUserSignInLogs"]
D = "cloud/azure/signin_logs/"
HINTS = {name: entry["hint"] for name, entry in aliases()["hints"].items()}


@dataclass(frozen=True)
class Compiles:
    """A rule that compiles: text every query must contain, text it must not, exact warnings."""

    contains: tuple[str, ...] = ()
    lacks: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


W101_TRUSTTYPE = (
    "W101 field 'DeviceDetail.trusttype' matches 'DeviceDetail.trustType' only ignoring case; read as that"
    " (write 'DeviceDetail.trustType', the beta path 'deviceDetail.trustType')"
)
NO_VALUE = ("E705 placeholder '%{}%' has no value: no environment is chosen (give it a value in an environment of "
            "entra-sigma.toml and choose it with --env, see docs/environments.md; or in the rule's tests file)")

COMPILES = {
    f"rules-threat-hunting/{D}azure_ad_signin_axios_user_agent.yml": Compiles(('UserAgent contains "axios"',)),
    f"rules/{D}azure_account_lockout.yml": Compiles(('ResultType == "50053"',)),
    f"rules/{D}azure_ad_azurehound_discovery.yml": Compiles(
        ('UserAgent contains "azurehound"', 'ResultType == "0"'),
    ),
    f"rules/{D}azure_ad_device_registration_or_join_without_mfa.yml": Compiles((
        'ResourceDisplayName =~ "Device Registration Service"',
        'ConditionalAccessStatus =~ "success"',
        'not(AuthenticationRequirement =~ "multiFactorAuthentication")',
    )),
    # `Status: Success` is the outcome of the sign-in, not a text compared with the Status object
    f"rules/{D}azure_ad_only_single_factor_auth_required.yml": Compiles(
        ('ResultType == "0"', 'AuthenticationRequirement =~ "singleFactorAuthentication"'),
    ),
    f"rules/{D}azure_ad_risky_sign_ins_with_singlefactorauth_from_unknown_devices.yml": Compiles(
        (
            'ResultType == "0"', 'RiskState =~ "atRisk"',
            'tostring(DeviceDetail.trustType) =~ "" or isempty(tostring(DeviceDetail.trustType))',
            'isempty(tostring(todynamic(DeviceDetail).trustType))',
        ),
        lacks=("trusttype",),
        warnings=(f"25:9 {W101_TRUSTTYPE}", f"27:9 {W101_TRUSTTYPE}"),
    ),
    f"rules/{D}azure_ad_sign_ins_from_noncompliant_devices.yml": Compiles(
        # Entra leaves isCompliant out when it is false: absent counts as false
        ("coalesce(tobool(DeviceDetail.isCompliant), false) == false", "coalesce(tobool(todynamic(DeviceDetail).isCompliant), false) == false"),
    ),
    # '[]' is how Log Analytics shows an empty array: no named network location
    f"rules/{D}azure_ad_sign_ins_from_unknown_devices.yml": Compiles((
        'ResultType == "0"',
        "not(coalesce(array_length(todynamic(NetworkLocationDetails)) > 0, false))",
        'tostring(DeviceDetail.deviceId) =~ ""',
    ), lacks=('"[]"',)),
    f"rules/{D}azure_ad_suspicious_signin_bypassing_mfa.yml": Compiles((
        'ResultType == "0"',
        'UserAgent contains "BAV2ROPC" or UserAgent contains "CBAinPROD" or UserAgent contains "CBAinTAR"',
    )),
    f"rules/{D}azure_blocked_account_attempt.yml": Compiles(
        ('ResultType == "50057"', 'ResultDescription =~ "Failure"'),
    ),
    f"rules/{D}azure_conditional_access_failure.yml": Compiles(
        ('ResultType == "53003"', 'ResultDescription =~ "Blocked by Conditional Access"'),
        lacks=("Resultdescription",),
        warnings=(
            "23:9 W101 field 'Resultdescription' matches 'ResultDescription' only ignoring case; read as that"
            " (write 'ResultDescription', the beta path 'status.failureReason')",
        ),
    ),
    f"rules/{D}azure_login_to_disabled_account.yml": Compiles((
        'ResultType == "50057"',
        'ResultDescription =~ "User account is disabled. The account has been disabled by an administrator."',
    )),
    # `Status|contains` searches the text of the dynamic Status: its failure reason and details
    f"rules/{D}azure_mfa_denies.yml": Compiles((
        'AuthenticationRequirement =~ "multiFactorAuthentication"',
        'ResultDescription contains "MFA Denied" or tostring(Status.additionalDetails) contains "MFA Denied"',
        'tostring(todynamic(Status).additionalDetails) contains "MFA Denied"',
    )),
    f"rules/{D}azure_mfa_interrupted.yml": Compiles((
        '(ResultType == "50074" and ResultDescription contains "Strong Auth required") or '
        '(ResultType == "500121" and ResultDescription contains "Authentication failed during strong authentication request")',
    )),
    f"rules/{D}azure_unusual_authentication_interruption.yml": Compiles((
        '(ResultType == "50097" and ResultDescription =~ "Device authentication is required")',
        '(ResultType == "50155" and ResultDescription =~ "DeviceAuthenticationFailed")',
        '(ResultType == "50158" and ResultDescription =~ '
        '"ExternalSecurityChallenge - External security challenge was not satisfied")',
    )),
    f"rules/{D}azure_user_login_blocked_by_conditional_access.yml": Compiles(('ResultType == "53003"',)),
}

FAILS = {
    # without an environment, their placeholders have no value (with one, see PLACEHOLDER_RULES)
    f"rules-placeholder/{D}azure_ad_auth_to_important_apps_using_single_factor_auth.yml": [
        f"22:9 {NO_VALUE.format('Important_AppIds')}",
    ],
    f"rules-placeholder/{D}azure_ad_authentications_from_countries_you_do_not_operate_out_of.yml": [
        f"26:9 {NO_VALUE.format('Known_Location')}",
    ],
    f"rules-placeholder/{D}azure_ad_failed_auth_from_countries_you_do_not_operate_out_of.yml": [
        f"23:9 {NO_VALUE.format('KNOWN_LOCATION')}",
    ],
    f"rules-placeholder/{D}azure_privileged_account_sigin_expected_controls.yml": [
        f"23:9 {NO_VALUE.format('UnLegitCountries')}", f"24:9 {NO_VALUE.format('UnApprovedIp')}",
        f"26:9 {NO_VALUE.format('UnApprovedDevice')}",
    ],
    f"rules-placeholder/{D}azure_users_authenticating_to_other_azure_ad_tenants.yml": [
        f"22:9 {NO_VALUE.format('HomeTenantID')}", f"24:9 {NO_VALUE.format('HomeTenantID')}",
    ],
    f"rules/{D}azure_app_device_code_authentication.yml": [
        f"23:9 E101 unknown field 'properties.message' ({HINTS['properties.message']})",
    ],
    f"rules/{D}azure_app_ropc_authentication.yml": [
        f"22:9 E101 unknown field 'properties.message' ({HINTS['properties.message']})",
    ],
    f"rules/{D}azure_legacy_authentication_protocols.yml": [
        f"22:9 E101 unknown field 'ActivityDetails' ({HINTS['ActivityDetails']})",
        "23:9 E101 unknown field 'ClientApp' (did you mean 'ClientAppUsed'?)",
        "31:9 E101 unknown field 'Username' (did you mean 'UserPrincipalName'?)",
    ],
}


def display(path: Path) -> str:
    return path.relative_to(CORPUS).as_posix()


def short(d: Diagnostic) -> str:
    """A diagnostic without its file and rule (both checked separately): line:column, code, text."""
    return f"{d.location.line}:{d.location.column} {d.code} {d.message}" + (f" ({d.hint})" if d.hint else "")


@pytest.fixture(scope="module")
def corpus():
    result = Compiler().compile_paths([CORPUS / folder for folder in FOLDERS], ("sentinel",))
    compiled = {c.rule.source: c for c in result.compiled}
    return result, compiled


@pytest.fixture(scope="module")
def verdicts(corpus, kusto):
    _, compiled = corpus
    return check_kql(kusto, {source: c.texts["sentinel"] for source, c in compiled.items()})


def test_corpus_is_the_24_rules_and_each_has_an_expectation():
    assert len(RULE_FILES) == 24
    assert not set(COMPILES) & set(FAILS)
    assert {display(p) for p in RULE_FILES} == set(COMPILES) | set(FAILS)
    assert (CORPUS / "LICENSE.DRL").is_file() and "8eaafff1f" in (CORPUS / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_rule(path, corpus):
    result, compiled = corpus
    source = display(path)
    mine = [d for d in result.diagnostics if d.location.path == source]
    document = next(d for d in result.documents if d.display_path == source)
    assert all(d.rule == document.title for d in mine)
    if source in FAILS:
        assert source not in compiled
        assert sorted(short(d) for d in mine) == sorted(FAILS[source])
        assert all(d.severity == "error" for d in mine)
        return
    expected = COMPILES[source]
    assert sorted(short(d) for d in mine) == sorted(expected.warnings)
    assert all(d.severity == "warning" for d in mine)
    rule = compiled[source]
    text = rule.texts["sentinel"]
    assert rule.rule.service == "signins"
    assert rule.queries["sentinel"].tables == USER_TABLES
    for snippet in expected.contains:
        assert snippet in text, snippet
    for snippet in expected.lacks:
        assert snippet not in text, snippet
    # the two traps of the older converter: a number against the text column ResultType,
    # and the dynamic Status compared as if it were text
    assert not re.search(r"ResultType\s*(==|=~|!=|in~?|[<>]=?)\s*\(?\s*-?\d", text), text
    assert not re.search(r"\bStatus\s*(==|=~|!=|in~?|contains|has|startswith|endswith)\b", text), text


@pytest.mark.parametrize("source", sorted(COMPILES))
def test_what_compiles_passes_kusto_language(source, corpus, verdicts):
    _, compiled = corpus
    assert verdicts[source] == [], compiled[source].texts["sentinel"]


def test_defender_queries_that_compile_pass_kusto_language(kusto):
    """`--target defender` reads EntraIdSignInEvents; what compiles there must parse too."""
    compiler = Compiler()
    texts = {}
    for path in RULE_FILES:
        if display(path) in COMPILES:
            document, _ = parse_yaml(path.read_text(encoding="utf-8"), path, display(path))
            rules, _ = compiler.rules([document])
            result, _ = compiler.compile_rule(rules[0], ("defender",))
            texts.update({display(path): t for t in result.texts.values()})
    # Defender's table has no failure reason nor status details, so rules that need them cannot match there
    no_column = {f"rules/{D}azure_{name}.yml" for name in (
        "blocked_account_attempt", "conditional_access_failure", "login_to_disabled_account", "mfa_denies",
        "mfa_interrupted", "unusual_authentication_interruption",
    )}
    assert set(texts) == set(COMPILES) - no_column
    assert {k: v for k, v in check_kql(kusto, texts).items() if v} == {}


# -- the placeholder rules, with values ----------------------------------------------------------
# tests/sigmahq/entra-sigma.toml gives the five rules of rules-placeholder/ values (ours, not
# SigmaHQ's); `%Important_AppIds%` is a Sentinel watchlist there, the others are lists.
PLACEHOLDER_RULES = {
    f"rules-placeholder/{D}azure_ad_auth_to_important_apps_using_single_factor_auth.yml": (
        'AppId in~ (_GetWatchlist("ImportantApps") | project SearchKey)',
        'AuthenticationRequirement =~ "singleFactorAuthentication"', 'ResultType == "0"',
    ),
    f"rules-placeholder/{D}azure_ad_authentications_from_countries_you_do_not_operate_out_of.yml": (
        'not(tostring(LocationDetails.countryOrRegion) contains "US" or tostring(LocationDetails.countryOrRegion) contains "GB")',
    ),
    f"rules-placeholder/{D}azure_ad_failed_auth_from_countries_you_do_not_operate_out_of.yml": (
        'not(ResultType == "0" and (tostring(LocationDetails.countryOrRegion) contains "US"',
    ),
    f"rules-placeholder/{D}azure_privileged_account_sigin_expected_controls.yml": (
        'tostring(LocationDetails.countryOrRegion) in~ ("KP", "IR")', 'IPAddress in~ ("203.0.113.7", "198.51.100.9")',
        'tostring(DeviceDetail.deviceId) =~ "0b2c3d4e-5f60-4718-8a9b-0c1d2e3f4a5b"', 'not(ResultType == "0")',
    ),
    f"rules-placeholder/{D}azure_users_authenticating_to_other_azure_ad_tenants.yml": (
        'HomeTenantId =~ "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"',
        'not(ResourceTenantId contains "6f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0")',
    ),
}


@pytest.fixture(scope="module")
def with_values():
    result = Compiler(environment=placeholder_environment()).compile_paths([CORPUS / "rules-placeholder"], ("sentinel",))
    return result, {c.rule.source: c for c in result.compiled}


def test_the_placeholder_rules_compile_with_values(with_values):
    result, compiled = with_values
    assert result.diagnostics == []
    assert set(compiled) == set(PLACEHOLDER_RULES) == {s for s in FAILS if s.startswith("rules-placeholder/")}
    for source, snippets in PLACEHOLDER_RULES.items():
        text = compiled[source].texts["sentinel"]
        assert compiled[source].queries["sentinel"].tables == USER_TABLES
        for snippet in snippets:
            assert snippet in text, f"{source}: {snippet}\n{text}"
        assert "%" not in text.replace("% ", ""), text  # no placeholder left behind


def test_the_placeholder_rules_with_values_pass_kusto_language(with_values, kusto):
    _, compiled = with_values
    assert {k: v for k, v in check_kql(kusto, {s: c.texts["sentinel"] for s, c in compiled.items()}).items() if v} == {}


@pytest.mark.replay
def test_the_placeholder_rules_with_values_mean_what_they_say(with_values):
    """Replayed: the watchlist is read when the query runs (the replay's _GetWatchlist over a
    seeded table), and `location|contains|expand` tests each country of the list."""
    from entra_sigma.verbs.ruletests.replay import LocalEngine

    _, compiled = with_values
    engine = LocalEngine(REGISTRY)
    apps = compiled[f"rules-placeholder/{D}azure_ad_auth_to_important_apps_using_single_factor_auth.yml"].texts["sentinel"]
    row = {"AppId": "c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "ResultType": "0", "AuthenticationRequirement": "singleFactorAuthentication"}
    watchlist = {"ImportantApps": ("SearchKey", ("C44B4083-3BB0-49C1-B47D-974E53CBDF3C", "another-app"))}
    engine.load({"SigninLogs": [row]}, watchlist)
    assert len(engine.run(apps).rows) == 1  # in~: the watchlist's value in other case still matches
    engine.load({"SigninLogs": [row]}, {"ImportantApps": ("SearchKey", ("another-app",))})
    assert engine.run(apps).rows == ()
    countries = compiled[f"rules-placeholder/{D}azure_ad_authentications_from_countries_you_do_not_operate_out_of.yml"].texts["sentinel"]
    rows = [{"UserPrincipalName": user, "ResultType": "0", "LocationDetails": {"countryOrRegion": country}}
            for user, country in (("home@contoso.com", "GB"), ("away@contoso.com", "BR"), ("us@contoso.com", "US"))]
    engine.load({"SigninLogs": rows})
    result = engine.run(countries)
    assert [row[result.columns.index("UserPrincipalName")] for row in result.rows] == ["away@contoso.com"]


# -- names ----------------------------------------------------------------------------------
VOCABULARY = vocabulary_for(default_catalog())
CATALOG = default_catalog()
REGISTRY = bundled_registry()


def lookup_path(name: str) -> str | None:
    found = VOCABULARY.lookup(name)
    return found.name.path if found.name and not found.ignoring_case else None


def test_every_mapped_log_analytics_column_reads_as_its_beta_path():
    columns = {}
    for table in REGISTRY.tables_for("sentinel", aliases()["logsource"]["reads"]):
        for path, target in REGISTRY.mapping(table).fields.items():
            if "column" in target and not target.get("path"):
                columns.setdefault(target["column"], set()).add(path)
    assert {"ResultType", "ResultDescription", "Status", "DeviceDetail", "LocationDetails"} <= set(columns)
    wrong = {c: (paths, lookup_path(c)) for c, paths in columns.items() if lookup_path(c) not in paths}
    assert wrong == {}
    assert lookup_path("DeviceDetail.isCompliant") == "deviceDetail.isCompliant"
    assert lookup_path("LocationDetails.countryOrRegion") == "location.countryOrRegion"


def test_graph_and_diagnostic_settings_names_read_as_the_catalog_path():
    shadowed = set(aliases()["fields"])
    assert {p: lookup_path(p) for p in CATALOG.fields if p not in shadowed and lookup_path(p) != p} == {}
    assert {p: lookup_path(f"properties.{p}") for p in CATALOG.fields if lookup_path(f"properties.{p}") != p} == {}


def test_alias_data_is_consistent_with_the_catalog():
    data = aliases()
    derived = Vocabulary.build(CATALOG, REGISTRY, {**data, "fields": {}, "hints": {}})
    assert data["logsource"]["reads"] in REGISTRY.targets["sentinel"]
    for spelling, entry in data["fields"].items():
        paths = [entry["path"]] + [w["path"] for w in entry.get("words", {}).values()] + entry.get("text", [])
        assert all(CATALOG.get(p) for p in paths), spelling
        assert entry["convention"] and entry["source"], spelling
        # an alias that replaces a derived meaning says so and why; one that does not, does not claim to
        assert ("shadows" in entry) == (spelling in derived.names), spelling
    for spelling in data["hints"]:
        assert derived.lookup(spelling).name is None, f"hint for '{spelling}', which resolves"


def test_bundled_names_are_unambiguous_even_ignoring_case():
    assert VOCABULARY.ambiguous == {}
    clashes = {}
    for name in VOCABULARY.names.values():
        clashes.setdefault(name.spelling.lower(), set()).add(name.path)
    assert {k: v for k, v in clashes.items() if len(v) > 1} == {}, "decide each in schemas/sigmahq-aliases.json"


def test_a_name_with_two_meanings_ignoring_case_is_refused():
    vocabulary = Vocabulary({"Foo": Name("Foo", "userId", GRAPH), "foo": Name("foo", "appId", GRAPH)}, {}, {})
    assert vocabulary.lookup("Foo").name.path == "userId"
    assert vocabulary.lookup("FOO").candidates == ("Foo", "foo")
    assert vocabulary.lookup("Fooo").hint == "did you mean 'Foo'?"
    assert vocabulary.lookup("zzz").hint == "see docs/sigmahq.md"


# -- inline rules -------------------------------------------------------------------------------
def compile_rule(detection: str, fields: str = "", logsource: str = "product: azure\n  service: signinlogs"):
    text = (
        "title: t\nid: 11111111-1111-4111-8111-111111111111\n"
        f"logsource:\n  {logsource}\ndetection:\n{detection}" + (f"fields:\n{fields}" if fields else "")
    )
    document, problems = parse_yaml(text, Path("r.yml"), "r.yml")
    assert problems == []
    compiler = Compiler()
    rules, diagnostics = compiler.rules([document])
    if not rules:
        return None, [short(d) for d in diagnostics], None
    compiled, more = compiler.compile_rule(rules[0], ("sentinel",))
    return compiled.texts.get("sentinel"), [short(d) for d in diagnostics + more], rules[0]


def test_status_word_other_than_success_is_refused():
    _, diagnostics, _ = compile_rule("  sel:\n    Status: Failure\n  condition: sel\n")
    assert diagnostics == [
        "8:5 E111 'Failure' is not a status word for 'Status' (known: Success; for failures, match ResultType "
        "(status.errorCode) codes)"
    ]


def test_status_exists_asks_about_the_object():
    text, diagnostics, _ = compile_rule("  sel:\n    Status|exists: true\n  condition: sel\n")
    assert diagnostics == [] and "isnotempty(tostring(Status))" in text


def test_numbers_as_text_compare_and_fieldref_read_sigmahq_names(kusto):
    text, diagnostics, _ = compile_rule(
        "  sel:\n    resultType: '50126'\n    HomeTenantId|fieldref: ResourceTenantId\n"
        "  other:\n    ResultType|gte: 50000\n  condition: sel or other\n"
    )
    assert diagnostics == []
    assert 'ResultType == "50126"' in text and "HomeTenantId =~ ResourceTenantId" in text
    assert "coalesce(toint(ResultType) >= 50000, false)" in text
    assert check_kql(kusto, {"q": text}) == {"q": []}


def test_diagnostic_settings_location_is_the_country_and_isinteractive_the_column():
    text, diagnostics, rule = compile_rule("  sel:\n    location: GB\n    IsInteractive: false\n  condition: sel\n")
    assert diagnostics == []
    # real SigninLogs rows hold IsInteractive false too; the other table is non-interactive throughout
    assert [leg.table for leg in Compiler().compile_rule(rule, ("sentinel",))[0].queries["sentinel"].legs] == [
        "SigninLogs", "AADNonInteractiveUserSignInLogs"
    ]
    assert "| where IsInteractive == false" in text
    assert 'tostring(todynamic(LocationDetails).countryOrRegion) =~ "GB"' in text


def test_fields_are_resolved_and_located():
    _, diagnostics, rule = compile_rule(
        "  sel:\n    userAgent: x\n  condition: sel\n",
        "  - UserPrincipalName\n  - ResultType\n  - properties.deviceDetail.browser\n",
    )
    assert diagnostics == [] and rule.fields == ("userPrincipalName", "status.errorCode", "deviceDetail.browser")
    _, diagnostics, _ = compile_rule(
        "  sel:\n    userAgent: x\n  condition: sel\n",
        "  - Nope\n  - AuthenticationDetails.succeeded\n  - userprincipalname\n",
    )
    assert sorted(diagnostics) == [
        "11:5 E101 unknown field 'Nope' in 'fields' (see docs/sigmahq.md)",
        "12:5 E108 'authenticationDetails.succeeded' is inside the array 'authenticationDetails'; return the whole"
        " array instead (use 'authenticationDetails')",
        "13:5 W101 field 'userprincipalname' in 'fields' matches 'userPrincipalName' only ignoring case; read as"
        " that (write 'userPrincipalName', the beta path 'userPrincipalName')",
    ]


def test_our_own_rules_keep_beta_names_only():
    _, diagnostics, _ = compile_rule(
        "  sel:\n    ResultType: 50126\n  condition: sel\n", logsource="product: entra\n  service: signins"
    )
    assert diagnostics == ["8:5 E101 unknown field 'ResultType' (see docs/reference/fields.md)"]
    _, diagnostics, _ = compile_rule(
        "  sel:\n    ResultType: 0\n  condition: sel\n", logsource="product: azure\n  service: auditlogs"
    )
    assert diagnostics == [
        "4:3 E002 'logsource.product' must be entra (or azure, with service signinlogs as SigmaHQ writes it), not 'azure'",
        "5:3 E002 'logsource.service' must be one of signins, interactive, noninteractive, serviceprincipal, "
        "managedidentity, not 'auditlogs'",
    ]


# -- docs -----------------------------------------------------------------------------------------
def test_docs_page_table_is_current():
    page = REPO / PAGE
    current = page.read_text(encoding="utf-8")
    assert render_page(current) == current, "docs/sigmahq.md is out of date: run `python -m compiler.dev.sigmahq_report`"


def test_docs_page_has_one_row_per_rule():
    text = (REPO / PAGE).read_text(encoding="utf-8")
    for path in RULE_FILES:
        assert text.count(f"| `{display(path)}` |") == 1, display(path)

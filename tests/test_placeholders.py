"""Placeholders (project/placeholders.py): `field|expand: '%name%'` takes the environment's values.

A list becomes the same comparison over every value, with the key's other modifiers applied to
each; a Sentinel watchlist becomes `in~ (_GetWatchlist(...) | project SearchKey)` (or IP ranges
for `cidr`). Each construct: its exact KQL, Kusto.Language's verdict, and a replay on the local
engine, where `_GetWatchlist` is a stored function over a table the case seeds. Then the errors,
located and word for word.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.build import Compiler
from entra_sigma.load.loader import parse_yaml
from entra_sigma.model.ir import Watchlist
from entra_sigma.project.environment import NO_ENVIRONMENT, Environment, Values, WatchlistValues
from entra_sigma.verbs.ruletests.replay import LocalEngine, NotReplayed
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .helpers import REGISTRY, check_kql

EGRESS = Values(("192.0.2.0/24", "2001:db8::/32"))
ENV = Environment("prod", placeholders={
    "egress": EGRESS,
    "admins": Values(("adm-*", "root@contoso.com")),
    "domains": Values(("contoso.com", "fabrikam.com")),
    "codes": Values((50126, 50053)),
    "break_glass": WatchlistValues(Watchlist("BreakGlass")),
    "egress_list": WatchlistValues(Watchlist("Egress", "Range")),
    "apps": WatchlistValues(Watchlist("Apps")),
})


def rule(detection: str, service: str = "interactive", fields: str = "") -> str:
    return (
        "title: Placeholders\nid: 5b8e2c1d-3f4a-4b6c-8d7e-9f0a1b2c3d4e\n"
        f"logsource: {{product: entra, service: {service}}}\n"
        f"detection:\n{detection}{fields}"
    )


def compile_with(text: str, environment: Environment | None = ENV, platform: str = "sentinel"):
    compiler = Compiler(environment=environment)
    document, problems = parse_yaml(text, Path("rules/p.yml"), "rules/p.yml")
    assert problems == []
    rules, diagnostics = compiler.rules([document])
    if not rules:
        return None, diagnostics
    compiled, problems = compiler.compile_rule(rules[0], (platform,))
    return compiled.texts.get(platform), diagnostics + problems


def where_lines(kql: str) -> list[str]:
    return [line.strip().removeprefix("| ") for line in kql.splitlines() if line.strip().startswith("| where")]


# -- lists: the key's modifiers apply to each value ------------------------------------------
LISTS = {
    "cidr": ("  sel:\n    ipAddress|cidr|expand: '%egress%'\n  condition: sel\n",
             'where coalesce(ipv4_is_in_range(IPAddress, "192.0.2.0/24"), false) or coalesce(ipv6_is_in_range(IPAddress, "2001:db8::/32"), false)'),
    "wildcards": ("  sel:\n    userPrincipalName|expand: '%admins%'\n  condition: sel\n",
                  'where UserPrincipalName startswith "adm-" or UserPrincipalName =~ "root@contoso.com"'),
    "inside a value": ("  sel:\n    userPrincipalName|endswith|expand: '@%domains%'\n  condition: sel\n",
                       'where UserPrincipalName endswith "@contoso.com" or UserPrincipalName endswith "@fabrikam.com"'),
    "numbers": ("  sel:\n    status.errorCode|expand: '%codes%'\n  condition: sel\n",
                'where ResultType in ("50126", "50053")'),
    "all": ("  sel:\n    userPrincipalName|contains|all|expand: '%domains%'\n  condition: sel\n",
            'where UserPrincipalName contains "contoso.com"', 'where UserPrincipalName contains "fabrikam.com"'),
    "beside other values": ("  sel:\n    userPrincipalName|expand: ['%admins%', 'x@contoso.com']\n  condition: sel\n",
                            'where UserPrincipalName startswith "adm-" or UserPrincipalName =~ "root@contoso.com" or UserPrincipalName =~ "x@contoso.com"'),
}


@pytest.mark.parametrize("name", LISTS)
def test_a_list_is_the_same_comparison_over_every_value(name):
    detection, *expected = LISTS[name]
    kql, diagnostics = compile_with(rule(detection))
    assert diagnostics == []
    assert where_lines(kql) == expected


# -- watchlists --------------------------------------------------------------------------------
WATCHLISTS = {
    "equality": ("  sel:\n    userPrincipalName|expand: '%break_glass%'\n  condition: sel\n",
                 'where UserPrincipalName in~ (_GetWatchlist("BreakGlass") | project SearchKey)'),
    "cased": ("  sel:\n    userPrincipalName|cased|expand: '%break_glass%'\n  condition: sel\n",
              'where UserPrincipalName in (_GetWatchlist("BreakGlass") | project SearchKey)'),
    "negated": ("  sel:\n    status.errorCode: 0\n  bg:\n    userPrincipalName|expand: '%break_glass%'\n  condition: sel and not bg\n",
                'where not(UserPrincipalName in~ (_GetWatchlist("BreakGlass") | project SearchKey))'),
    "a number as its text": ("  sel:\n    status.errorCode|expand: '%break_glass%'\n  condition: sel\n",
                             'where ResultType in (_GetWatchlist("BreakGlass") | project SearchKey)'),
    "ranges": ("  sel:\n    ipAddress|cidr|expand: '%egress_list%'\n  condition: sel\n",
               'where (coalesce(ipv4_is_in_any_range(IPAddress, toscalar(_GetWatchlist("Egress") | project Range | where Range !contains ":" '
               '| summarize make_list(Range))), false) or coalesce(ipv6_is_in_any_range(IPAddress, toscalar(_GetWatchlist("Egress") '
               '| project Range | where Range contains ":" | summarize make_list(Range))), false))'),
}


@pytest.mark.parametrize("name", WATCHLISTS)
def test_a_watchlist_is_read_when_the_query_runs(name):
    detection, expected = WATCHLISTS[name]
    kql, diagnostics = compile_with(rule(detection))
    assert diagnostics == []
    assert expected in where_lines(kql)


def test_a_watchlist_inside_an_array_is_tested_per_element():
    kql, diagnostics = compile_with(rule(
        "  sel:\n    authenticationDetails.authenticationMethod|expand: '%apps%'\n  condition: sel\n"))
    assert diagnostics == []
    assert 'tostring(_authenticationDetails.authenticationMethod) in~ (_GetWatchlist("Apps") | project SearchKey)' in kql


@pytest.fixture(scope="module")
def every_construct():
    queries = {}
    for name, (detection, *_) in {**LISTS, **WATCHLISTS}.items():
        for service in ("interactive", "signins", "serviceprincipal"):
            if service == "serviceprincipal" and "userPrincipalName" in detection:
                continue
            kql, diagnostics = compile_with(rule(detection, service))
            assert kql is not None, diagnostics
            queries[f"{name} {service}"] = kql
    queries["array"] = compile_with(rule("  sel:\n    authenticationDetails.authenticationMethod|expand: '%apps%'\n  condition: sel\n"))[0]
    return queries


def test_every_construct_passes_kusto_language(every_construct, kusto):
    """`_GetWatchlist` as Sentinel declares it (SearchKey and three more columns); a watchlist
    column of your own (`Range` here) is declared for the check."""
    verdicts = {k: v for k, v in kusto.check(sorted(every_construct.items()), watchlist_columns=["Range"]).items() if v}
    assert verdicts == {}
    # without the column declared, Kusto.Language refuses it: the check reads the name
    ranges = {k: v for k, v in every_construct.items() if k.startswith("ranges")}
    assert all(kusto.check(sorted(ranges.items()))[k] for k in ranges)


# -- replay: what the queries mean on rows -------------------------------------------------------
@pytest.fixture(scope="module")
def engine():
    return LocalEngine(REGISTRY)


def matched(engine, kql, rows, watchlists=None) -> list[str]:
    engine.load({"SigninLogs": rows}, watchlists or {})
    result = engine.run(kql)
    assert not isinstance(result, NotReplayed), result
    return [row[result.columns.index("UserPrincipalName")] for row in result.rows]


USERS = [{"UserPrincipalName": upn, "ResultType": code} for upn, code in
         (("BG1@contoso.com", "0"), ("alice@contoso.com", "0"), ("adm-bob@contoso.com", "50126"), ("root@contoso.com", "0"))]


@pytest.mark.replay
def test_replay_a_watchlist_in_and_not_in(engine):
    seeded = {"BreakGlass": ("SearchKey", ("bg1@contoso.com", "bg2@contoso.com"))}
    kql = compile_with(rule(WATCHLISTS["equality"][0]))[0]
    assert matched(engine, kql, USERS, seeded) == ["BG1@contoso.com"]  # in~: any case
    cased = compile_with(rule(WATCHLISTS["cased"][0]))[0]
    assert matched(engine, cased, USERS, seeded) == []
    negated = compile_with(rule(WATCHLISTS["negated"][0]))[0]
    assert sorted(matched(engine, negated, USERS, seeded)) == ["alice@contoso.com", "root@contoso.com"]
    assert sorted(matched(engine, negated, USERS, {"BreakGlass": ("SearchKey", ())})) == ["BG1@contoso.com", "alice@contoso.com", "root@contoso.com"]


@pytest.mark.replay
def test_replay_a_watchlist_of_numbers_and_of_another_column(engine):
    kql = compile_with(rule(WATCHLISTS["a number as its text"][0]))[0]
    assert matched(engine, kql, USERS, {"BreakGlass": ("SearchKey", ("50126",))}) == ["adm-bob@contoso.com"]
    other = Environment("x", placeholders={"bg": WatchlistValues(Watchlist("Admins", "UPN"))})
    kql = compile_with(rule("  sel:\n    userPrincipalName|expand: '%bg%'\n  condition: sel\n"), other)[0]
    assert "project UPN" in kql
    assert matched(engine, kql, USERS, {"Admins": ("UPN", ("root@contoso.com",))}) == ["root@contoso.com"]


@pytest.mark.replay
def test_replay_lists(engine):
    wildcards = compile_with(rule(LISTS["wildcards"][0]))[0]
    assert matched(engine, wildcards, USERS) == ["adm-bob@contoso.com", "root@contoso.com"]
    numbers = compile_with(rule(LISTS["numbers"][0]))[0]
    assert matched(engine, numbers, USERS) == ["adm-bob@contoso.com"]
    inside = compile_with(rule(LISTS["inside a value"][0]))[0]
    assert matched(engine, inside, [{"UserPrincipalName": "eve@fabrikam.com"}, {"UserPrincipalName": "eve@fabrikam.org"}]) == ["eve@fabrikam.com"]


@pytest.mark.replay
def test_what_the_local_engine_cannot_run_is_not_replayed(engine):
    """IP ranges (ipv4_is_in_range, ipv4_is_in_any_range) and mv-apply: duckdb-kql 1.1.2 has
    neither, so those cases are reported as not replayed (Kusto.Language checked them above)."""
    for kql in (compile_with(rule(WATCHLISTS["ranges"][0]))[0], compile_with(rule(LISTS["cidr"][0]))[0]):
        engine.load({"SigninLogs": USERS}, {"Egress": ("Range", ("192.0.2.0/24",))})
        assert isinstance(engine.run(kql), NotReplayed)


@settings(max_examples=25, derandomize=True, database=None, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
                       .filter(lambda v: "*" not in v and "?" not in v and "\\" not in v), min_size=1, max_size=3))
def test_any_value_of_a_list_reaches_the_query_as_one_constant(values, kusto):
    """Values come from a project file, as untrusted as a rule: each is one string literal."""
    environment = Environment("x", placeholders={"v": Values(tuple(values))})
    kql, diagnostics = compile_with(rule("  sel:\n    userAgent|contains|expand: '%v%'\n  condition: sel\n"), environment)
    assert diagnostics == []
    analysis = kusto.analyze_one(kql)
    assert analysis.diagnostics == []
    assert analysis.strings == list(dict.fromkeys(values))  # a value given twice is tested once


# -- errors ------------------------------------------------------------------------------------
def messages(diagnostics) -> list[str]:
    return [str(d) for d in diagnostics]


def test_a_placeholder_with_no_value_says_which_where_and_how():
    text = rule("  sel:\n    ipAddress|cidr|expand: '%corporate_egress%'\n  condition: sel\n")
    _, diagnostics = compile_with(text, ENV)
    assert messages(diagnostics) == [
        "rules/p.yml:6:5: error: placeholder '%corporate_egress%' has no value in environment 'prod' in rule 'Placeholders' "
        "(define it under [environments.prod.placeholders] or [defaults.placeholders] in entra-sigma.toml)"
    ]
    assert diagnostics[0].code == "E704"
    _, diagnostics = compile_with(text, NO_ENVIRONMENT)
    assert [d.code for d in diagnostics] == ["E705"]
    assert messages(diagnostics) == [
        "rules/p.yml:6:5: error: placeholder '%corporate_egress%' has no value: no environment is chosen in rule 'Placeholders' "
        "(give it a value in an environment of entra-sigma.toml and choose it with --env, see docs/environments.md; or in the rule's tests file)"
    ]


def test_placeholder_names_are_case_sensitive_and_the_hint_says_so():
    _, diagnostics = compile_with(rule("  sel:\n    userPrincipalName|expand: '%Break_Glass%'\n  condition: sel\n"))
    assert diagnostics[0].hint == "did you mean '%break_glass%'? placeholder names are case-sensitive"


REFUSED = {
    "contains": ("  sel:\n    userPrincipalName|contains|expand: '%break_glass%'\n  condition: sel\n",
                 "rules/p.yml:6:5: error: modifier 'contains' cannot apply to the watchlist of placeholder '%break_glass%' in rule 'Placeholders' "
                 "(a watchlist is a column of values: match them whole (no modifier, cased, neq) or as IP ranges (cidr); Kusto's has_any "
                 "matches whole terms, not text inside them; use a list placeholder for contains and the like)"),
    "part of a value": ("  sel:\n    userPrincipalName|expand: '%break_glass%@contoso.com'\n  condition: sel\n",
                        "rules/p.yml:6:5: error: the watchlist of placeholder '%break_glass%' must be the whole and only value of "
                        "'userPrincipalName|expand' in rule 'Placeholders' (a watchlist stands for whole values; put other values under a "
                        "second selection joined with 'or')"),
    "a boolean field": ("  sel:\n    deviceDetail.isManaged|expand: '%break_glass%'\n  condition: sel\n",
                        "rules/p.yml:6:5: error: the watchlist 'BreakGlass' cannot be compared with 'deviceDetail.isManaged': a watchlist "
                        "holds text, and 'deviceDetail.isManaged' is bool in rule 'Placeholders' (use a list placeholder)"),
    "cidr on text": ("  sel:\n    userAgent|cidr|expand: '%egress_list%'\n  condition: sel\n",
                     "rules/p.yml:6:5: error: the watchlist 'Egress' cannot be compared with 'userAgent': a watchlist holds IP ranges "
                     "for an IP address field in rule 'Placeholders' (use a list placeholder)"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_what_a_watchlist_cannot_do_is_a_located_error(name):
    detection, expected = REFUSED[name]
    kql, diagnostics = compile_with(rule(detection))
    assert kql is None
    assert messages(diagnostics) == [expected]
    assert {d.code for d in diagnostics} == {"E706"}


def test_a_watchlist_in_a_defender_query_is_a_located_error():
    kql, diagnostics = compile_with(rule(WATCHLISTS["equality"][0], "signins"), platform="defender")
    assert kql is None
    assert messages(diagnostics) == [
        "rules/p.yml:6:5: error: the watchlist 'BreakGlass' is read by _GetWatchlist, which only Microsoft Sentinel has; "
        "EntraIdSignInEvents is a Defender XDR table in rule 'Placeholders' [defender] (give the placeholder a list of values "
        "in environments that build Defender, or set defender = false)"
    ]
    assert diagnostics[0].code == "E707"


def test_the_marker_of_a_watchlist_never_reaches_a_query():
    """The value that stands for a watchlist until the model reads it is private-use text that
    no output may hold."""
    for detection, *_ in WATCHLISTS.values():
        kql, _ = compile_with(rule(detection))
        assert "\ue000" not in kql


def test_expand_without_a_placeholder_is_the_plain_value():
    kql, diagnostics = compile_with(rule("  sel:\n    userAgent|contains|expand: 'curl/'\n  condition: sel\n"), NO_ENVIRONMENT)
    assert diagnostics == [] and where_lines(kql) == ['where UserAgent contains "curl/"']

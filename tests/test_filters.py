"""Sigma filters (project/filters.py): applied as pySigma 2's SigmaFilter.apply_on_rule applies them.

The rule's condition becomes `(<rule condition>) and (<filter condition>)`, the filter's
selections join the rule's detection under a prefix, and so does every name in the filter's
condition; we compare with pySigma itself (its prefix is random, ours is the filter's place).
Then what a filter means on rows (replayed), where its problems are reported, and how the
output says which filters shaped a query.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from entra_sigma.build import Compiler, build_outputs
from entra_sigma.load.loader import RuleDocument, parse_documents, parse_yaml
from entra_sigma.project.environment import Environment, Filter
from entra_sigma.project.filters import merge
from entra_sigma.verbs.ruletests.replay import LocalEngine
from sigma.filters import SigmaFilter
from sigma.rule import SigmaRule

from .helpers import REGISTRY, check_kql

RULE = """title: Legacy authentication
id: 8d2f4a6c-3e5b-4c7d-9a1f-6b8e0c2d4f57
name: legacy_auth
logsource: {product: entra, service: signins}
detection:
  legacy:
    clientAppUsed: [IMAP4, Authenticated SMTP]
  success:
    status.errorCode: 0
  condition: legacy and success
fields: [userPrincipalName, clientAppUsed]
"""
CONDITIONS = ["not selection", "selection", "not 1 of sel*", "all of them", "not (selection and other)", "1 of *_x"]


def filter_text(condition: str, rules="[legacy_auth]", logsource="{product: entra}") -> str:
    return (
        "title: Printers\n"
        f"logsource: {logsource}\n"
        "filter:\n"
        f"  rules: {rules}\n"
        "  selection:\n    userPrincipalName|startswith: scan-\n"
        "  sel2:\n    clientAppUsed: Authenticated SMTP\n"
        "  other:\n    ipAddress: 192.0.2.7\n"
        "  a_x:\n    userAgent: x\n"
        f"  condition: {condition}\n"
    )


def a_filter(text: str, display: str = "filters/f.yml") -> Filter:
    documents, problems = parse_documents(text, Path(display), display)
    assert problems == []
    return Filter(display, documents[0])


def normalised(text: str) -> str:
    return re.sub(r"_filt(_[a-z]{10}|\d+)_", "F_", text)


@pytest.mark.parametrize("condition", CONDITIONS)
def test_the_condition_and_selections_are_pysigma_s(condition):
    ours = merge(parse_yaml(RULE, Path("r.yml"), "r.yml")[0], a_filter(filter_text(condition)), 1)
    theirs = SigmaFilter.from_dict(yaml.safe_load(filter_text(condition))).apply_on_rule(SigmaRule.from_dict(yaml.safe_load(RULE)))
    assert normalised(ours.data["detection"]["condition"]) == normalised(theirs.detection.condition[0])
    assert {normalised(k) for k in ours.data["detection"] if k != "condition"} == {normalised(k) for k in theirs.detection.detections}
    assert ours.data["detection"]["condition"] == f"(legacy and success) and ({condition.replace('them', '_filt1_*')})".replace(
        "selection", "_filt1_selection").replace("sel*", "_filt1_sel*").replace("other", "_filt1_other").replace("*_x", "_filt1_*_x")


def test_a_list_condition_and_a_prefix_that_would_clash():
    rule = RULE.replace("condition: legacy and success", "condition: [legacy and success]").replace("  success:", "  _filt1_x:\n    userAgent: y\n  success:")
    document = parse_yaml(rule, Path("r.yml"), "r.yml")[0]
    merged = merge(document, a_filter(filter_text("not selection")), 1)
    assert merged.data["detection"]["condition"] == ["(legacy and success) and (not __filt1_selection)"]


def compiled(rule_text: str, filters: list[str], platform="sentinel", environment_name="prod"):
    environment = Environment(environment_name, filters=tuple(a_filter(text, f"filters/f{i}.yml") for i, text in enumerate(filters)))
    compiler = Compiler(environment=environment)
    document, _ = parse_yaml(rule_text, Path("rules/r.yml"), "rules/r.yml")
    rules, diagnostics = compiler.rules([document])
    if not rules:
        return None, diagnostics
    result, problems = compiler.compile_rule(rules[0], (platform,))
    return result.texts.get(platform), diagnostics + problems


def test_a_suppressing_filter_and_a_narrowing_one():
    suppress, _ = compiled(RULE, [filter_text("not selection")])
    narrow, _ = compiled(RULE, [filter_text("selection")])
    assert '| where not(UserPrincipalName startswith "scan-")' in suppress
    assert '| where UserPrincipalName startswith "scan-"' in narrow
    assert "// filters: filters/f0.yml\n" in suppress


@pytest.mark.replay
def test_what_a_filter_means_on_rows():
    engine = LocalEngine(REGISTRY)
    rows = [{"UserPrincipalName": u, "ClientAppUsed": "Authenticated SMTP", "ResultType": "0"} for u in ("scan-3f@contoso.com", "alice@contoso.com")]
    engine.load({"SigninLogs": rows})

    def users(kql):
        result = engine.run(kql)
        return [r[result.columns.index("userPrincipalName")] for r in result.rows]

    assert users(compiled(RULE, [])[0]) == ["scan-3f@contoso.com", "alice@contoso.com"]
    assert users(compiled(RULE, [filter_text("not selection")])[0]) == ["alice@contoso.com"]
    assert users(compiled(RULE, [filter_text("selection")])[0]) == ["scan-3f@contoso.com"]
    assert users(compiled(RULE, [filter_text("not (selection and sel2)"), filter_text("not other")])[0]) == ["alice@contoso.com"]


def test_filtered_queries_pass_kusto_language(kusto):
    texts = {c: compiled(RULE, [filter_text(c)])[0] for c in CONDITIONS}
    texts["two"] = compiled(RULE, [filter_text("not selection"), filter_text("not other")])[0]
    assert {k: v for k, v in check_kql(kusto, texts).items() if v} == {}


def test_a_filter_applies_only_where_its_logsource_matches_and_never_to_a_correlation():
    other_service, _ = compiled(RULE, [filter_text("not selection", logsource="{product: entra, service: interactive}")])
    assert "scan-" not in other_service
    anything, _ = compiled(RULE, [filter_text("not selection", rules="any")])
    assert "scan-" in anything
    named_by_id, _ = compiled(RULE, [filter_text("not selection", rules="[8D2F4A6C-3E5B-4C7D-9A1F-6B8E0C2D4F57]")])
    assert "scan-" in named_by_id


# -- problems, located where they are written ----------------------------------------------------
def test_a_filter_naming_an_unknown_rule():
    _, diagnostics = compiled(RULE, [filter_text("not selection", rules="[legacy_aut, 8d2f4a6c-3e5b-4c7d-9a1f-6b8e0c2d4f57]")])
    assert [str(d) for d in diagnostics] == [
        "filters/f0.yml:4:11: error: filter 'Printers' names rule 'legacy_aut', which no rule file has (did you mean 'legacy_auth'?)"
    ]
    assert diagnostics[0].code == "E709"
    _, diagnostics = compiled(RULE, [filter_text("not selection", rules="[Legacy authentication]")])
    assert diagnostics[0].hint == "that is a rule's title: name it by id or name ('8d2f4a6c-3e5b-4c7d-9a1f-6b8e0c2d4f57' or 'legacy_auth')"


def test_a_filter_whose_logsource_matches_none_of_its_rules():
    _, diagnostics = compiled(RULE, [filter_text("not selection", logsource="{product: azure, service: signinlogs}")])
    assert [str(d) for d in diagnostics] == [
        "filters/f0.yml:2:1: error: the logsource of filter 'Printers' (product: azure, service: signinlogs) matches none of its "
        "rules (product: entra, service: signins) (a filter applies where every logsource key it writes equals the rule's)"
    ]
    assert diagnostics[0].code == "E710"


def test_a_field_the_catalog_lacks_is_reported_in_the_filter_once():
    text = filter_text("not selection").replace("userPrincipalName|startswith", "userPrincipalNam|startswith")
    kql, diagnostics = compiled(RULE, [text])
    assert [str(d) for d in diagnostics] == [
        "filters/f0.yml:6:5: error: unknown field 'userPrincipalNam' in rule 'Printers' (did you mean 'userPrincipalName'?)"
    ]
    assert kql is not None and "scan-" not in kql  # the rule itself still compiles; the broken filter is not applied


def test_a_filter_that_is_not_a_filter():
    from entra_sigma.project.environment import filter_shape_problems

    documents, _ = parse_documents("title: x\nlogsource: {product: entra}\nfilter:\n  rulez: [a]\n  condition: not s\n", Path("f.yml"), "filters/f.yml")
    assert [str(d) for d in filter_shape_problems(documents[0])] == [
        "filters/f.yml:3:1: error: missing required key 'rules' in 'filter' in rule 'x'",
    ]


def test_the_manifest_names_the_filters_of_each_rule(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "legacy.yml").write_text(RULE.replace("fields:", "tags: [attack.defense_evasion, attack.t1078.004]\nfields:"), encoding="utf-8")
    environment = Environment("prod", filters=(a_filter(filter_text("not selection"), "filters/prod/printers.yml"),))
    outputs = build_outputs(Compiler(environment=environment), [tmp_path / "rules"], ("kql",))
    assert outputs.manifest["environment"] == "prod"
    assert outputs.manifest["rules"][0]["filters"] == ["filters/prod/printers.yml"]
    plain = build_outputs(Compiler(), [tmp_path / "rules"], ("kql",))
    assert "filters" not in plain.manifest["rules"][0] and "environment" not in plain.manifest


def test_a_filter_with_a_placeholder_takes_the_environment_s_values():
    text = filter_text("not selection").replace("userPrincipalName|startswith: scan-", "userPrincipalName|startswith|expand: '%printer_prefixes%'")
    environment = Environment("prod", filters=(a_filter(text),))
    from entra_sigma.project.environment import Values

    environment = Environment("prod", placeholders={"printer_prefixes": Values(("scan-", "mfp-"))}, filters=environment.filters)
    compiler = Compiler(environment=environment)
    rules, diagnostics = compiler.rules([parse_yaml(RULE, Path("rules/r.yml"), "rules/r.yml")[0]])
    assert diagnostics == []
    kql = compiler.compile_rule(rules[0], ("sentinel",))[0].texts["sentinel"]
    assert 'where not(UserPrincipalName startswith "scan-" or UserPrincipalName startswith "mfp-")' in kql


def test_copying_a_filter_never_changes_the_rule_it_was_merged_into():
    document = parse_yaml(RULE, Path("r.yml"), "r.yml")[0]
    before = copy.deepcopy(document.data)
    merge(document, a_filter(filter_text("not selection")), 1)
    assert document.data == before and isinstance(document, RuleDocument)


def test_a_correlation_is_not_filtered_but_its_rules_are_and_its_header_says_so(tmp_path):
    chained = (Path(__file__).parent / "cases" / "correlations" / "chained.yml").read_text(encoding="utf-8")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "chained.yml").write_text(chained, encoding="utf-8")
    service_account = ("title: Service accounts\nlogsource: {product: entra}\nfilter:\n  rules: [failed_login]\n"
                       "  svc:\n    userPrincipalName|startswith: svc-\n  condition: not svc\n")
    environment = Environment("prod", filters=(a_filter(service_account, "filters/svc.yml"),))
    outputs = build_outputs(Compiler(environment=environment), [tmp_path / "rules"], ("kql",))
    assert outputs.ok, outputs.diagnostics
    (kql,) = [text for path, text in outputs.files.items() if path.endswith(".kql")]
    assert "// filters: filters/svc.yml\n" in kql and 'not(UserPrincipalName startswith "svc-")' in kql
    naming_the_correlation = service_account.replace("[failed_login]", "[multiple_failed_login]")
    environment = Environment("prod", filters=(a_filter(naming_the_correlation, "filters/svc.yml"),))
    outputs = build_outputs(Compiler(environment=environment), [tmp_path / "rules"], ("kql",))
    assert [str(d) for d in outputs.diagnostics if d.code == "E709"] == [
        "filters/svc.yml:4:11: error: filter 'Service accounts' names 'multiple_failed_login', a correlation rule; "
        "filters apply to the rules it correlates (name those rules instead)"
    ]

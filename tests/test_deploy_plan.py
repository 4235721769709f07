"""The plan's decisions, the marker and content normalisation, on small hand-made rules."""

from __future__ import annotations

import json

import pytest
from entra_sigma.verbs.deploy.content import canonical_duration, field_changes, normalize
from entra_sigma.verbs.deploy.desired import DesiredSet
from entra_sigma.verbs.deploy.marker import Marker, add_marker, content_hash, split_marker
from entra_sigma.verbs.deploy.plan import make_plan
from entra_sigma.verbs.deploy.sentinel import SentinelTarget

RULE_ID = "3f6c2a1e-7b4d-4c9e-9a2f-1d8e5b7c6a10"
BODY = {"kind": "Scheduled", "properties": {"displayName": "T", "description": "D", "severity": "Low", "queryPeriod": "P1D"}}


def desired(body=BODY, rule_id=RULE_ID):
    text = '{"resources": [{"type": "Microsoft.SecurityInsights/alertRules", "apiVersion": "2025-09-01", "kind": "Scheduled", ' \
           f'"name": "{rule_id}", "properties": ' + json.dumps(body["properties"]) + "}]}"
    return SentinelTarget.desired(text, "rules/t.yml")


def deployed(rule, *, written=None, marker_id=None, **changes):
    """The service's copy of `rule` as last written from `written` (default: this rule), then edited with `changes`."""
    written = written or rule
    body = SentinelTarget.marked(written)
    if marker_id is not None:
        description, _ = split_marker(body["properties"]["description"])
        body["properties"]["description"] = add_marker(description, Marker(marker_id, written.digest))
    body = {**body, "name": rule.id, "etag": '"1"', "properties": {**body["properties"], **changes, "lastModifiedUtc": "x"}}
    return SentinelTarget.deployed(body)


def plan_of(rules, remote, *, skipped=None, prune=False, keep_drifted=False):
    wanted = DesiredSet(rules={r.id: r for r in rules}, skipped=skipped or {})
    return make_plan("sentinel", "test", wanted, {r.id: r for r in remote}, prune=prune, keep_drifted=keep_drifted)


def only(plan):
    assert len(plan.changes) == 1
    return plan.changes[0]


def test_a_rule_not_deployed_is_created():
    assert only(plan_of([desired()], [])).action == "create"


def test_a_rule_deployed_as_written_is_unchanged_despite_the_services_rewriting():
    rule = desired()
    change = only(plan_of([rule], [deployed(rule, queryPeriod="PT24H", alertRuleTemplateName=None)]))
    assert (change.action, change.fields, change.writes) == ("unchanged", [], False)


def test_a_changed_rule_is_an_update_and_an_edited_one_drift():
    old, new = desired(), desired({"kind": "Scheduled", "properties": {**BODY["properties"], "severity": "High"}})
    update = only(plan_of([new], [deployed(new, written=old)]))
    assert (update.action, update.drifted) == ("update", False)
    assert [(f.path, f.before, f.after) for f in update.fields] == [("properties.severity", "Low", "High")]
    drift = only(plan_of([old], [deployed(old, enabled=False)]))
    assert (drift.action, drift.drifted, drift.writes) == ("drift", True, True)
    assert [(f.path, f.before, f.after) for f in drift.fields] == [("properties.enabled", False, None)]
    both = only(plan_of([new], [deployed(new, written=old, enabled=False)]))
    assert (both.action, both.drifted) == ("update", True)
    kept = only(plan_of([old], [deployed(old, enabled=False)], keep_drifted=True))
    assert (kept.action, kept.kept, kept.writes) == ("drift", True, False)


def test_content_already_right_with_a_stale_marker_refreshes_the_marker():
    old, new = desired(), desired({"kind": "Scheduled", "properties": {**BODY["properties"], "severity": "High"}})
    change = only(plan_of([new], [deployed(new, written=old, severity="High")]))
    assert (change.action, change.fields) == ("update", [])
    assert "only the marker's hash is refreshed" in change.reason


def test_a_rule_without_our_marker_or_with_another_rules_marker_is_foreign():
    rule = desired()
    theirs = SentinelTarget.deployed({"name": RULE_ID, "kind": "Scheduled", "properties": {"displayName": "X", "description": "mine"}})
    assert only(plan_of([rule], [theirs])).action == "foreign"
    copied = deployed(rule, marker_id="11111111-1111-4111-8111-111111111111")
    change = only(plan_of([rule], [copied]))
    assert change.action == "foreign" and "a copy of another rule" in change.reason
    assert change.error[0] == "E603"


def test_our_rules_that_left_rules_are_kept_or_pruned_and_others_never_listed():
    rule = desired()
    theirs = SentinelTarget.deployed({"name": "other", "kind": "Scheduled", "properties": {"displayName": "X"}})
    kept = plan_of([], [deployed(rule), theirs])
    assert [c.action for c in kept.changes] == ["keep"] and kept.others == 1 and not kept.has_changes
    pruned = plan_of([], [deployed(rule), theirs], prune=True)
    assert [c.action for c in pruned.changes] == ["delete"] and pruned.has_changes


def test_a_rule_the_platform_cannot_express_is_skipped_and_its_deployed_version_stays():
    rule = desired()
    plan = plan_of([], [deployed(rule)], skipped={RULE_ID: ("T", "rules/t.yml", "no column")}, prune=True)
    change = only(plan)
    assert change.action == "skipped" and change.reason == "no column (the deployed version stays)"
    assert not plan.has_changes


@pytest.mark.parametrize("description", [None, "", "one line", "two\nlines\n", "Deployed by entra-sigma: lookalike"])
def test_the_marker_round_trips(description):
    marker = Marker(RULE_ID, "0123456789abcdef")
    text = add_marker(description, marker)
    assert split_marker(text) == (description or None, marker)


def test_text_added_after_the_marker_is_kept_and_the_marker_still_found():
    marker = Marker(RULE_ID, "0123456789abcdef")
    text = add_marker("D", marker) + "\n\nanalyst note"
    assert split_marker(text) == ("D\n\nanalyst note", marker)
    assert split_marker("no marker here") == ("no marker here", None)


@pytest.mark.parametrize("text, canonical", [
    ("P1D", "P1D"), ("PT24H", "P1D"), ("PT90M", "PT1H30M"), ("P1W", "P7D"), ("PT0S", "PT0S"), ("P1DT1H", "P1DT1H"),
    ("1h", "1h"), ("P", "P"), ("PT", "PT"), ("P1DT", "P1DT"),
])
def test_durations_have_one_spelling(text, canonical):
    assert canonical_duration(text) == canonical


def test_normalize_drops_what_is_not_content():
    value = {"a": None, "b": [], "c": {}, "d": {"e": None}, "@odata.context": "x", "skip": 1, "keep": [{"x": None, "y": 1}],
             "t": "PT60M", "u": {"v": 0, "w": False, "s": ""}}
    assert normalize(value, frozenset({"skip"}), frozenset({"t"})) == {"keep": [{"y": 1}], "t": "PT1H", "u": {"v": 0, "w": False, "s": ""}}


def test_field_changes_compare_leaves_and_whole_lists():
    changes = field_changes({"a": {"b": 1, "c": [1, 2]}, "gone": 1}, {"a": {"b": 2, "c": [2, 1]}, "new": {"x": 1}})
    assert [(c.path, c.before, c.after) for c in changes] == [
        ("a.b", 1, 2), ("a.c", [1, 2], [2, 1]), ("gone", 1, None), ("new.x", None, 1),
    ]


def test_the_hash_is_of_canonical_json():
    assert content_hash({"a": 1, "b": "é"}) == content_hash({"b": "é", "a": 1})
    assert len(content_hash({})) == 16


# -- differences that deploy nothing (issue 20, item 2) ----------------------------------------------
QUERY = "// T\n// id: {id}\n// level: {level}\n// source: {source}\nSigninLogs\n| where ResultType == \"0\"\n"


def with_query(level="high", source="rules/t.yml", severity="High", where='"0"'):
    query = QUERY.format(id=RULE_ID, level=level, source=source).replace('"0"', where)
    return desired({"kind": "Scheduled", "properties": {**BODY["properties"], "severity": severity, "query": query}})


def test_a_moved_rule_file_is_unchanged_and_says_why():
    old, moved = with_query(), with_query(source="rules/identity/t.yml")
    change = only(plan_of([moved], [deployed(moved, written=old)]))
    assert (change.action, change.writes) == ("unchanged", False)
    assert change.reason == ("only the query's comments differ (the rule file moved from rules/t.yml to rules/identity/t.yml): "
                             "nothing to deploy; they go with the next real change")
    from entra_sigma.verbs.deploy.report import render_markdown, render_text

    plan = plan_of([moved], [deployed(moved, written=old)])
    assert "= unchanged T [" in render_text(plan) and "the rule file moved" in render_text(plan)
    assert "**Unchanged**" in render_markdown(plan) and not plan.has_changes


def test_a_level_that_keeps_the_severity_says_so_and_one_that_changes_it_is_an_update():
    high, critical = with_query(level="high"), with_query(level="critical")
    kept = only(plan_of([critical], [deployed(critical, written=high)]))
    assert kept.action == "unchanged"
    assert "level high -> critical, which deploys the same severity (High)" in kept.reason
    medium = with_query(level="medium", severity="Medium")
    raised = only(plan_of([high], [deployed(high, written=medium)]))
    assert raised.action == "update"
    assert [f.path for f in raised.fields] == ["properties.query", "properties.severity"]


def test_a_change_of_the_query_itself_is_still_an_update():
    old, new = with_query(), with_query(source="rules/moved.yml", where='"50126"')
    assert only(plan_of([new], [deployed(new, written=old)])).action == "update"


def test_comments_edited_on_the_service_are_drift_not_hidden():
    rule = with_query()
    edited = deployed(rule, query=rule.body["properties"]["query"].replace("// T\n", "// T (edited in the portal)\n"))
    assert only(plan_of([rule], [edited])).action == "drift"

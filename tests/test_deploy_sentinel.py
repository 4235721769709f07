"""`entra-sigma deploy sentinel` against the loopback ARM service: plan, apply, drift, prune, ownership."""

from __future__ import annotations

import json

from entra_sigma.verbs.deploy.marker import split_marker

from tests.deploy_helpers import (  # noqa: F401 - fixtures
    ACCOUNT_LOCKED,
    DISABLED,
    PACK_ENV,
    REPO_RULES,
    ROPC,
    RULES,
    WRONG_PASSWORD,
    fake,
    rules,
    sentinel,
    workspace_rules,
)


def plan_json(result) -> dict:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return json.loads(result.stdout)


def actions(document: dict) -> dict[str, str]:
    return {c["id"]: c["action"] for c in document["changes"]}


def test_plan_on_an_empty_workspace_creates_every_rule_and_changes_nothing(fake):
    result = sentinel(fake, RULES, "--format", "json")
    assert result.exit_code == 0, result.stderr
    document = plan_json(result)
    assert actions(document) == {WRONG_PASSWORD: "create", ACCOUNT_LOCKED: "create", ROPC: "create", DISABLED: "create"}
    assert document["applied"] is False and document["changes_pending"] is True
    assert [r.method for r in fake.requests] == ["GET"]  # one list, no writes
    assert workspace_rules(fake) == {}


def test_detailed_exitcode_is_2_with_changes_and_0_without(fake):
    assert sentinel(fake, RULES, "--detailed-exitcode").exit_code == 2
    assert sentinel(fake, RULES, "--apply").exit_code == 0
    assert sentinel(fake, RULES, "--detailed-exitcode").exit_code == 0


def test_detailed_exitcode_is_for_plans_only(fake):
    result = sentinel(fake, RULES, "--apply", "--detailed-exitcode")
    assert result.exit_code == 2
    assert "--detailed-exitcode is for plans" in result.stderr
    assert fake.requests == []


def test_apply_creates_the_rules_build_writes_with_the_marker(fake, tmp_path):
    result = sentinel(fake, RULES, "--apply")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "Done: 4 created, 0 updated, 0 restored, 0 deleted, 0 failed, 0 conflict" in result.stdout
    build = tmp_path / "build"
    from tests.deploy_helpers import run

    assert run(["build", RULES, "--out", build]).exit_code == 0
    for name, rule_id in (("wrong-password", WRONG_PASSWORD), ("account-locked", ACCOUNT_LOCKED), ("ropc", ROPC),
                          ("disabled-account", DISABLED)):
        template = json.loads((build / "arm" / f"{name}.json").read_text(encoding="utf-8"))["resources"][0]
        sent = next(r.body for r in fake.writes() if r.path.endswith(rule_id))
        description, marker = split_marker(sent["properties"]["description"])
        assert marker is not None and marker.rule_id == rule_id
        assert {**sent["properties"], "description": description} == template["properties"]
        assert sent["kind"] == "Scheduled"
    creates = [r for r in fake.writes()]
    assert all(r.method == "PUT" and r.headers.get("if-none-match") == "*" for r in creates)
    assert all(r.query["api-version"] == ["2025-09-01"] for r in fake.requests)


def test_a_second_apply_right_after_the_first_plans_and_sends_nothing(fake):
    assert sentinel(fake, RULES, "--apply").exit_code == 0
    writes = len(fake.writes())
    result = sentinel(fake, RULES, "--apply", "--format", "json")
    assert result.exit_code == 0
    document = plan_json(result)
    assert set(actions(document).values()) == {"unchanged"}
    assert len(fake.writes()) == writes
    assert "Nothing to do." in sentinel(fake, RULES).stdout


def test_the_bundled_rules_deploy_and_then_plan_nothing(fake):
    """Every bundled rule passes the contract, and survives the service's rewriting (P1D → PT24H, nulls, ETags)."""
    assert sentinel(fake, REPO_RULES, *PACK_ENV, "--apply", "--concurrency", "8").exit_code == 0
    assert len(workspace_rules(fake)) >= 30
    document = plan_json(sentinel(fake, REPO_RULES, *PACK_ENV, "--format", "json", "--detailed-exitcode"))
    assert set(actions(document).values()) == {"unchanged"}


def test_a_rule_changed_in_rules_is_an_update_with_a_field_diff_and_a_query_diff(fake, rules):
    assert sentinel(fake, rules, "--apply").exit_code == 0
    path = rules / "account-locked.yml"
    text = path.read_text(encoding="utf-8").replace("level: medium", "level: high").replace("50053", "50055")
    path.write_text(text, encoding="utf-8")
    result = sentinel(fake, rules)
    assert result.exit_code == 0
    assert "~ update   Account locked after repeated failures" in result.stdout
    assert '    properties.severity: "Medium" -> "High"' in result.stdout
    assert "      --- deployed/properties.query\n      +++ rules/properties.query\n" in result.stdout
    assert '      -    | where ResultType == "50053"\n      +    | where ResultType == "50055"\n' in result.stdout
    document = plan_json(sentinel(fake, rules, "--format", "json"))
    change = next(c for c in document["changes"] if c["id"] == ACCOUNT_LOCKED)
    assert change["action"] == "update" and change["drifted"] is False
    assert {"path": "properties.severity", "deployed": "Medium", "rules": "High"} in change["fields"]
    assert sentinel(fake, rules, "--apply").exit_code == 0
    update = fake.writes()[-1]
    assert update.method == "PUT" and update.body["etag"] and update.headers["if-match"] == update.body["etag"]
    assert workspace_rules(fake)[ACCOUNT_LOCKED]["properties"]["severity"] == "High"
    assert "Nothing to do." in sentinel(fake, rules).stdout


def test_a_rule_edited_in_the_portal_is_drift_with_its_fields_and_apply_restores_it(fake):
    assert sentinel(fake, RULES, "--apply").exit_code == 0
    fake.edit_sentinel(workspace_rules(fake), ACCOUNT_LOCKED, enabled=False, severity="Low")
    result = sentinel(fake, RULES, "--detailed-exitcode")
    assert result.exit_code == 2
    assert "! drift    Account locked after repeated failures" in result.stdout
    assert "changed on the service since the last deploy; apply restores the rules' version" in result.stdout
    assert "    properties.enabled: false -> true" in result.stdout
    assert '    properties.severity: "Low" -> "Medium"' in result.stdout
    kept = sentinel(fake, RULES, "--apply", "--keep-drifted")
    assert kept.exit_code == 0 and "left as it is (--keep-drifted)" in kept.stdout
    assert workspace_rules(fake)[ACCOUNT_LOCKED]["properties"]["enabled"] is False
    restored = sentinel(fake, RULES, "--apply")
    assert restored.exit_code == 0 and "=> restored" in restored.stdout
    assert workspace_rules(fake)[ACCOUNT_LOCKED]["properties"]["enabled"] is True
    assert "Nothing to do." in sentinel(fake, RULES).stdout


def test_a_portal_edit_and_a_rule_change_together_are_an_update_that_says_so(fake, rules):
    assert sentinel(fake, rules, "--apply").exit_code == 0
    fake.edit_sentinel(workspace_rules(fake), ACCOUNT_LOCKED, enabled=False)
    path = rules / "account-locked.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("level: medium", "level: high"), encoding="utf-8")
    change = next(c for c in plan_json(sentinel(fake, rules, "--format", "json"))["changes"] if c["id"] == ACCOUNT_LOCKED)
    assert change["action"] == "update" and change["drifted"] is True
    assert {f["path"] for f in change["fields"]} == {"properties.enabled", "properties.severity", "properties.query"}


def test_a_rule_removed_from_rules_is_deleted_only_with_prune(fake, rules):
    assert sentinel(fake, rules, "--apply").exit_code == 0
    (rules / "ropc.yml").unlink()
    result = sentinel(fake, rules, "--apply")
    assert result.exit_code == 0
    assert "no longer in RULES; --prune deletes it" in result.stdout
    assert ROPC in workspace_rules(fake)
    assert not any(r.method == "DELETE" for r in fake.requests)
    plan = sentinel(fake, rules, "--prune", "--detailed-exitcode")
    assert plan.exit_code == 2 and "- delete   Sign-in with resource owner password credentials" in plan.stdout
    assert ROPC in workspace_rules(fake)
    pruned = sentinel(fake, rules, "--apply", "--prune")
    assert pruned.exit_code == 0 and "=> deleted" in pruned.stdout
    assert ROPC not in workspace_rules(fake)
    assert [r.headers.get("if-match") is not None for r in fake.requests if r.method == "DELETE"] == [True]


def test_rules_created_by_someone_else_are_never_touched(fake, rules):
    workspace = workspace_rules(fake)
    theirs = {"displayName": "Analyst's own rule", "description": "hand made", "enabled": True, "severity": "High",
              "query": "SigninLogs", "queryFrequency": "PT1H", "queryPeriod": "PT1H", "triggerOperator": "GreaterThan",
              "triggerThreshold": 0, "suppressionEnabled": False, "suppressionDuration": "PT5H"}
    fake.add_sentinel(workspace, "11111111-2222-4333-8444-555555555555", theirs)
    fake.add_sentinel(workspace, ROPC, {**theirs, "displayName": "Same id, not ours"})
    result = sentinel(fake, rules, "--apply", "--prune")
    assert result.exit_code == 1
    assert "x foreign  Sign-in with resource owner password credentials" in result.stdout
    assert "error E603" in result.stdout and "error E603" in result.stderr
    assert "not created by entra-sigma ('Same id, not ours'): left alone" in result.stdout
    assert "1 other rule(s) there were not created by entra-sigma: left alone" in result.stdout
    touched = {r.path.rsplit("/", 1)[1] for r in fake.writes()}
    assert touched == {WRONG_PASSWORD, ACCOUNT_LOCKED, DISABLED}
    assert workspace["11111111-2222-4333-8444-555555555555"]["properties"] == {**theirs, "lastModifiedUtc": workspace["11111111-2222-4333-8444-555555555555"]["properties"]["lastModifiedUtc"]}
    assert workspace[ROPC]["properties"]["displayName"] == "Same id, not ours"


def test_a_portal_copy_of_one_of_our_rules_is_not_ours(fake, rules):
    """Duplicating a rule in the portal copies its description, marker included: the id in the marker tells them apart."""
    assert sentinel(fake, rules, "--apply").exit_code == 0
    workspace = workspace_rules(fake)
    copy_id = "99999999-8888-4777-8666-555555555555"
    fake.add_sentinel(workspace, copy_id, dict(workspace[ROPC]["properties"], displayName="Copy of ROPC"))
    (rules / "ropc.yml").unlink()
    result = sentinel(fake, rules, "--apply", "--prune")
    assert result.exit_code == 0
    assert copy_id in workspace and ROPC not in workspace


def test_errors_in_the_rules_stop_everything_before_any_request(fake, rules):
    (rules / "broken.yml").write_text("title: Broken\nid: not-a-uuid\nlogsource: {product: entra, service: signins}\n"
                                      "detection: {selection: {userPrincipalName: x}, condition: selection}\nlevel: low\n",
                                      encoding="utf-8")
    result = sentinel(fake, rules, "--apply")
    assert result.exit_code == 1
    assert "nothing sent to sentinel: fix the errors above" in result.stderr
    assert "rules/broken.yml" in result.stderr
    assert fake.requests == []


def test_markdown_plan_is_a_pull_request_comment(fake, rules):
    assert sentinel(fake, rules, "--apply").exit_code == 0
    fake.edit_sentinel(workspace_rules(fake), WRONG_PASSWORD, severity="High")
    path = rules / "account-locked.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("50053", "50055"), encoding="utf-8")
    (rules / "ropc.yml").unlink()
    result = sentinel(fake, rules, "--format", "markdown", "--prune")
    assert result.exit_code == 0
    text = result.stdout
    assert text.startswith("### entra-sigma deploy sentinel plan: 0 to create, 1 to update, 1 drifted, 1 to delete, 1 unchanged\n")
    assert "**To update**" in text and "**Drift**" in text and "**To delete**" in text
    assert "<summary>Account locked after repeated failures (<code>6d1f0b7a-2c3e-4f58-9a61-7b8c9d0e1f23</code>)" in text
    assert "| `properties.severity` | `\"High\"` | `\"Low\"` |" in text
    assert "```diff\n--- deployed/properties.query\n+++ rules/properties.query\n" in text
    assert "- Sign-in with resource owner password credentials (`9a4e2b1c-7d3f-4e6a-b5c8-0f1e2d3c4b5a`): no longer in RULES" in text


def test_json_plan_lists_every_rule_with_its_action(fake):
    assert sentinel(fake, RULES, "--apply").exit_code == 0
    document = plan_json(sentinel(fake, RULES, "--format", "json"))
    assert document["summary"] == {"foreign": 0, "create": 0, "update": 0, "drift": 0, "delete": 0, "keep": 0,
                                   "skipped": 0, "unchanged": 4, "others": 0}
    assert document["errors"] == [] and document["changes_pending"] is False
    assert [c["id"] for c in document["changes"]] == sorted([WRONG_PASSWORD, ACCOUNT_LOCKED, ROPC, DISABLED])


def test_the_workspace_is_addressed_by_valid_names_only(fake):
    from tests.deploy_helpers import run

    result = run(["deploy", "sentinel", RULES, "--subscription", "not-a-guid", "--resource-group", "rg/..",
                  "--workspace", "law_1", "--arm-endpoint", fake.url])
    assert result.exit_code == 2
    assert "--subscription 'not-a-guid': expected a subscription id" in result.stderr
    assert "--resource-group 'rg/..': not a resource group name" in result.stderr
    assert "--workspace 'law_1': not a Log Analytics workspace name" in result.stderr
    assert fake.requests == []


def test_a_service_that_stores_other_values_than_were_sent_is_a_warning(fake):
    fake.rewrite = lambda properties: properties.update(suppressionDuration="PT6H")
    result = sentinel(fake, RULES, "--apply")
    assert result.exit_code == 0
    assert "=> created; warning W601: the service stored other values than were sent for properties.suppressionDuration" in result.stdout
    change = plan_json(sentinel(fake, RULES, "--format", "json"))["changes"][0]
    assert change["action"] == "drift"
    assert change["fields"] == [{"path": "properties.suppressionDuration", "deployed": "PT6H", "rules": "PT5H"}]


def test_a_folder_without_rules_is_refused_rather_than_planned_as_deleting_everything(fake, tmp_path):
    assert sentinel(fake, RULES, "--apply").exit_code == 0
    (tmp_path / "empty").mkdir()
    result = sentinel(fake, tmp_path / "empty", "--apply", "--prune")
    assert result.exit_code == 2
    assert "no rule files in" in result.stderr and "nothing to deploy" in result.stderr
    assert len(workspace_rules(fake)) == 4 and not any(r.method == "DELETE" for r in fake.requests)


def test_the_list_follows_next_links_on_the_same_host_only(fake):
    assert sentinel(fake, RULES, "--apply").exit_code == 0
    before = len(fake.requests)
    assert "Nothing to do." in sentinel(fake, RULES).stdout
    pages = fake.requests[before:]
    assert [r.query.get("$skipToken") for r in pages] == [None, ["2"]]  # four rules, two per page
    fake.next_link_base = "https://elsewhere.example"
    result = sentinel(fake, RULES)
    assert result.exit_code == 1
    assert "https://elsewhere.example/subscriptions/" in result.stderr
    assert "UnexpectedNextLink: the next page is on another host: not followed" in result.stderr


def test_the_fake_service_refuses_another_api_version(fake):
    import json as json_module
    import urllib.error
    import urllib.request

    from tests.deploy_helpers import RESOURCE_GROUP, SUBSCRIPTION, WORKSPACE

    url = (f"{fake.url}/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/Microsoft.OperationalInsights"
           f"/workspaces/{WORKSPACE}/providers/Microsoft.SecurityInsights/alertRules?api-version=2023-02-01")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {fake.tokens['arm']}"})
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as error:
        assert error.code == 400
        assert json_module.loads(error.read())["error"]["code"] == "InvalidApiVersionParameter"
    else:
        raise AssertionError("the fake service accepted api-version 2023-02-01")

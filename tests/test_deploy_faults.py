"""Deploys under faults: throttling, server errors, lost connections and answers, slow answers, ETag conflicts.

Whatever the fault, `--apply` ends with every rule deployed after at most one re-run, never
deletes a rule that should stay, and never overwrites a change it did not see.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.deploy_helpers import (  # noqa: F401 - fixtures
    ACCOUNT_LOCKED,
    DISABLED,
    ROPC,
    RULES,
    WRONG_PASSWORD,
    defender,
    fake,
    rules,
    sentinel,
    workspace_rules,
)

THEIRS = "11111111-2222-4333-8444-555555555555"
FOREIGN_SENTINEL = {
    "displayName": "Analyst's own rule", "description": "hand made", "enabled": True, "severity": "High",
    "query": "SigninLogs", "queryFrequency": "PT1H", "queryPeriod": "PT1H", "triggerOperator": "GreaterThan",
    "triggerThreshold": 0, "suppressionEnabled": False, "suppressionDuration": "PT5H",
}
FOREIGN_DEFENDER = {
    "id": THEIRS, "displayName": "Analyst's own detection", "description": None, "status": "enabled",
    "queryCondition": {"queryText": "EntraIdSignInEvents"}, "schedule": {"frequency": "PT1H"},
    "detectionAction": {"alertTemplate": {"title": "t", "description": "d", "severity": "low"}},
}
# method and path part of each write, per target: create WRONG_PASSWORD, update ACCOUNT_LOCKED, delete DISABLED
WRITES = {
    "sentinel": [("PUT", WRONG_PASSWORD), ("PUT", ACCOUNT_LOCKED), ("DELETE", DISABLED)],
    "defender": [("POST", "detectionRules"), ("PATCH", ACCOUNT_LOCKED), ("DELETE", DISABLED)],
}
FAULTS = {
    "429": {"kind": "429", "retry_after": "30"},  # capped by --max-wait
    "500": {"kind": "500"},
    "500-persistent": {"kind": "500", "times": 10},
    "drop": {"kind": "drop"},
    "drop-after-write": {"kind": "drop-after"},
    "slow": {"kind": "slow", "delay": 0.8},
}


def deploy(target: str, fake, folder, *extra):
    return (sentinel if target == "sentinel" else defender)(fake, folder, "--timeout", "0.3", *extra)


def arrange(target: str, fake, rules):
    """Deployed: account-locked and disabled-account (and for Sentinel ropc), plus someone else's rule.
    RULES then: wrong-password is new, account-locked changed, disabled-account removed."""
    wrong_password = (rules / "wrong-password.yml").read_text(encoding="utf-8")
    (rules / "wrong-password.yml").unlink()
    assert deploy(target, fake, rules, "--apply").exit_code == 0
    if target == "sentinel":
        fake.add_sentinel(workspace_rules(fake), THEIRS, FOREIGN_SENTINEL)
    else:
        fake.add_defender(FOREIGN_DEFENDER)
    (rules / "wrong-password.yml").write_text(wrong_password, encoding="utf-8")
    path = rules / "account-locked.yml"
    path.write_text(path.read_text(encoding="utf-8").replace("level: medium", "level: high"), encoding="utf-8")
    (rules / "disabled-account.yml").unlink()


def deployed(target: str, fake) -> dict[str, dict]:
    return workspace_rules(fake) if target == "sentinel" else fake.defender


def severity(target: str, fake, rule_id: str) -> str:
    rule = deployed(target, fake)[rule_id]
    return rule["properties"]["severity"] if target == "sentinel" else rule["detectionAction"]["alertTemplate"]["severity"]


def assert_finished(target: str, fake, rules):
    state = deployed(target, fake)
    assert WRONG_PASSWORD in state and DISABLED not in state and THEIRS in state
    assert severity(target, fake, ACCOUNT_LOCKED).lower() == "high"
    assert (ROPC in state) == (target == "sentinel")
    final = json.loads(deploy(target, fake, rules, "--prune", "--format", "json").stdout)
    assert final["changes_pending"] is False, final


@pytest.mark.parametrize("target", ["sentinel", "defender"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_ends_with_all_rules_deployed_after_at_most_one_rerun(target, fault, fake, rules):
    arrange(target, fake, rules)
    for method, part in WRITES[target]:
        fake.fault(method, part, **FAULTS[fault])
    started, before = time.monotonic(), len(fake.requests)
    first = deploy(target, fake, rules, "--apply", "--prune")
    assert time.monotonic() - started < 10  # Retry-After: 30 is capped by --max-wait
    for method, part in WRITES[target]:  # each fault was met, and the write was tried again
        tries = [r for r in fake.requests[before:] if r.method == method and part in r.path]
        assert len(tries) == (4 if fault == "500-persistent" else 2), (method, part)
    if fault == "500-persistent":
        assert first.exit_code == 1
        assert first.stdout.count("=> failed: error E601") == 3
        assert "HTTP 500 InternalServerError: injected 500" in first.stdout
        assert DISABLED in deployed(target, fake) and WRONG_PASSWORD not in deployed(target, fake)
        fake.faults.clear()
        assert deploy(target, fake, rules, "--apply", "--prune").exit_code == 0
    else:
        assert first.exit_code == 0, first.stdout + first.stderr
        assert "Done: 1 created, 1 updated, 0 restored, 1 deleted, 0 failed, 0 conflict" in first.stdout
    assert_finished(target, fake, rules)


@pytest.mark.parametrize("target", ["sentinel", "defender"])
def test_a_rule_changed_between_read_and_write_is_reported_not_overwritten(target, fake, rules):
    arrange(target, fake, rules)
    method, part = ("PUT", ACCOUNT_LOCKED) if target == "sentinel" else ("GET", ACCOUNT_LOCKED)
    fake.fault(method, part, "edit")  # someone edits the rule just before our write reaches it
    fake.fault("DELETE" if target == "sentinel" else "GET", DISABLED, "edit")
    first = deploy(target, fake, rules, "--apply", "--prune")
    assert first.exit_code == 1
    assert first.stdout.count("=> conflict: error E602") == 2
    assert "Nothing was overwritten: plan again to see the rule as it is now" in first.stdout
    assert severity(target, fake, ACCOUNT_LOCKED).lower() == "informational"  # the other writer's value stays
    assert DISABLED in deployed(target, fake)
    assert WRONG_PASSWORD in deployed(target, fake)  # the other rules went on
    plan = json.loads(deploy(target, fake, rules, "--prune", "--format", "json").stdout)
    change = next(c for c in plan["changes"] if c["id"] == ACCOUNT_LOCKED)
    assert change["action"] == "update" and change["drifted"] is True
    assert deploy(target, fake, rules, "--apply", "--prune").exit_code == 0
    assert_finished(target, fake, rules)


@pytest.mark.slow  # waits the second the service asks for
def test_retry_after_is_honoured(fake):
    fake.fault("PUT", WRONG_PASSWORD, "429", retry_after="1")
    result = sentinel(fake, RULES, "--apply", "--max-wait", "5")
    assert result.exit_code == 0
    tries = [r.at for r in fake.requests if r.method == "PUT" and r.path.endswith(WRONG_PASSWORD)]
    assert len(tries) == 2 and tries[1] - tries[0] >= 0.95


def test_requests_run_with_bounded_concurrency(fake):
    fake.delay = 0.15
    assert sentinel(fake, RULES, "--apply", "--concurrency", "2").exit_code == 0
    assert fake.max_in_flight == 2


def test_a_failed_read_stops_before_any_write(fake, rules):
    assert sentinel(fake, rules, "--apply").exit_code == 0
    (rules / "ropc.yml").unlink()
    fake.fault("GET", "alertRules", "500", times=10)
    result = sentinel(fake, rules, "--apply", "--prune")
    assert result.exit_code == 1
    assert "cannot read the rules deployed to Sentinel workspace law-sentinel" in result.stderr
    assert "HTTP 500 InternalServerError" in result.stderr
    assert [r for r in fake.writes()][4:] == []  # only the first apply's four creates
    assert ROPC in workspace_rules(fake)


def test_a_lost_answer_to_a_create_is_confirmed_by_reading_the_rule_back(fake):
    fake.fault("POST", "detectionRules", "drop-after")
    result = defender(fake, RULES, "--apply")
    assert result.exit_code == 0, result.stdout
    posts = [r for r in fake.requests if r.method == "POST"]
    assert len(posts) == 4  # three rules, one sent twice; the second meets 409 and a read finds our rule
    assert "=> created" in result.stdout and "failed" not in result.stdout.split("Done:")[0]


# -- a broken or hostile service: answers are untrusted input -------------------------------------------
LIST = {"sentinel": "alertRules", "defender": "detectionRules"}


@pytest.mark.parametrize("target", ["sentinel", "defender"])
def test_a_next_link_back_to_the_same_page_is_not_followed(target, fake, rules):
    """It was followed without end (the fake gives up after 50 here, so that the old code ends)."""
    assert deploy(target, fake, rules, "--apply").exit_code == 0
    fake.fault("GET", LIST[target], "loop", times=50)
    before = len(fake.requests)
    result = deploy(target, fake, rules)
    assert result.exit_code == 1
    assert "NextLinkLoop: the next page is one already read: not followed" in result.stderr
    assert "cannot read the rules deployed to" in result.stderr and "Traceback" not in result.stderr
    assert len(fake.requests) - before == 1  # the page, once


@pytest.mark.parametrize("target", ["sentinel", "defender"])
def test_a_listing_stops_at_the_page_bound(target, fake, rules, monkeypatch):
    from entra_sigma.verbs.deploy import answers

    assert deploy(target, fake, rules, "--apply").exit_code == 0  # three or four rules: two pages of two
    monkeypatch.setattr(answers, "MAX_PAGES", 1)
    result = deploy(target, fake, rules)
    assert result.exit_code == 1
    assert "TooManyPages: the listing goes on past 1 pages: not followed further" in result.stderr


@pytest.mark.parametrize("target,declared", [("sentinel", False), ("defender", True)], ids=["streamed", "declared"])
def test_an_answer_past_the_size_bound_is_not_read_further(target, declared, fake, rules):
    """A 400 MB answer was read whole (and would have been parsed): reading stops at the bound."""
    from entra_sigma.verbs.deploy.answers import MAX_ANSWER_BYTES

    fake.fault("GET", LIST[target], "huge", size=400 << 20, declared=declared)
    started = time.monotonic()
    result = deploy(target, fake, rules)
    assert result.exit_code == 1 and time.monotonic() - started < 30
    assert f"AnswerTooLarge: the answer is larger than {MAX_ANSWER_BYTES} bytes: not read further" in result.stderr
    assert fake.sent < (MAX_ANSWER_BYTES if declared else 2 * MAX_ANSWER_BYTES)  # it hung up; no retry read it again
    assert [r.method for r in fake.requests] == ["GET"]


WRONG_LISTS = {
    "a list": ([1, 2, 3], "the answer is a list, not an object"),
    "value as text": ({"value": "x"}, "'value' is text, not a list"),
    "items of numbers": ({"value": [1]}, "item 0 of 'value': the answer is a number, not an object"),
    "next link as a number": ({"value": [], "nextLink": 5, "@odata.nextLink": 5}, "is a number, not text or null"),
    "nested without end": (json.loads("[" * 500 + "]" * 500), "the answer nests deeper than 64 levels"),
}


@pytest.mark.parametrize("target", ["sentinel", "defender"])
@pytest.mark.parametrize("shape", list(WRONG_LISTS))
def test_a_listing_of_the_wrong_shape_fails_the_read_cleanly(target, shape, fake, rules):
    """`[1, 2, 3]` crashed the deploy (AttributeError: an internal error)."""
    body, message = WRONG_LISTS[shape]
    fake.fault("GET", LIST[target], "body", body=body)
    result = deploy(target, fake, rules)
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    assert "cannot read the rules deployed to" in result.stderr and "InvalidResponse" in result.stderr
    assert message in result.stderr


@pytest.mark.parametrize("target", ["sentinel", "defender"])
@pytest.mark.parametrize("body", [[1, 2, 3], {"id": 5, "name": 5}, "text"], ids=["list", "numbers", "text"])
def test_a_write_answered_with_the_wrong_shape_is_a_failed_write(target, body, fake, rules):
    method, part = ("PUT", WRONG_PASSWORD) if target == "sentinel" else ("POST", "detectionRules")
    fake.fault(method, part, "body", body=body)
    result = deploy(target, fake, rules, "--apply")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    failed = [line for line in result.stdout.splitlines() if "=> failed: error E601" in line]
    assert len(failed) == 1 and f"{method} failed: HTTP 200 InvalidResponse: " in failed[0]
    created = 3 if target == "sentinel" else 2  # Defender has no column for the ROPC rule
    assert f"Done: {created} created, 0 updated, 0 restored, 0 deleted, 1 failed" in result.stdout

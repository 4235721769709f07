"""`entra-sigma deploy defender` against the loopback Graph service: the parts that differ from Sentinel."""

from __future__ import annotations

import json

from tests.deploy_helpers import (  # noqa: F401 - fixtures
    ACCOUNT_LOCKED,
    PACK_ENV,
    REPO_RULES,
    ROPC,
    RULES,
    WRONG_PASSWORD,
    defender,
    fake,
)


def test_the_bundled_rules_deploy_and_then_plan_nothing(fake):
    result = defender(fake, REPO_RULES, *PACK_ENV, "--apply", "--concurrency", "8")
    assert result.exit_code == 0, result.stdout
    assert len(fake.defender) >= 8
    assert "warning: field 'authenticationProtocol' has no column in EntraIdSignInEvents" in result.stderr
    document = json.loads(defender(fake, REPO_RULES, *PACK_ENV, "--format", "json", "--detailed-exitcode").stdout)
    assert {c["action"] for c in document["changes"]} == {"unchanged", "skipped"}
    skipped = next(c for c in document["changes"] if c["action"] == "skipped")
    assert skipped["reason"]


def test_creates_post_the_detection_rule_build_writes_with_the_marker(fake):
    assert defender(fake, RULES, "--apply").exit_code == 0
    posts = {r.body["id"]: r.body for r in fake.requests if r.method == "POST"}
    assert set(posts) == {WRONG_PASSWORD, ACCOUNT_LOCKED, "2c7b9e4d-1a3f-4b6c-8d5e-9f0a1b2c3d4e"}
    assert ROPC not in fake.defender
    body = posts[ACCOUNT_LOCKED]
    assert body["description"].endswith(f"\n\nDeployed by entra-sigma: id={ACCOUNT_LOCKED} sha256=" + body["description"][-16:])
    assert body["detectionAction"]["alertTemplate"]["description"] == "Sign-ins refused because the account is locked (AADSTS50053)."
    assert all(r.path.startswith("/beta/security/rules/detectionRules") for r in fake.requests)


def test_a_portal_edit_is_drift_and_apply_restores_it_with_a_patch(fake):
    assert defender(fake, RULES, "--apply").exit_code == 0
    fake.edit_defender(ACCOUNT_LOCKED, "detectionAction.organizationalScope", {"scopeType": "deviceGroup", "scopeNames": ["g"]})
    fake.edit_defender(ACCOUNT_LOCKED, "status", "disabled")
    plan = defender(fake, RULES, "--detailed-exitcode")
    assert plan.exit_code == 2
    assert "! drift    Account locked after repeated failures" in plan.stdout
    assert '    status: "disabled" -> "enabled"' in plan.stdout
    assert '    detectionAction.organizationalScope.scopeType: "deviceGroup" -> (absent)' in plan.stdout
    assert defender(fake, RULES, "--apply").exit_code == 0
    patch = [r for r in fake.requests if r.method == "PATCH"][-1]
    assert "id" not in patch.body and "@odata.type" not in patch.body
    assert patch.body["status"] == "enabled" and "organizationalScope" not in patch.body["detectionAction"]
    reads = [r.method for r in fake.requests[-3:]]
    assert reads == ["GET", "GET", "PATCH"]  # the list, then the rule again just before the write
    assert "Nothing to do." in defender(fake, RULES).stdout


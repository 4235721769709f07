"""Microsoft Defender XDR custom detection rules: Graph beta `security/rules/detectionRules`.

The body sent is the detection rule `build` writes (`defender/detections/<rule>.json`), with
the marker added to the rule's own `description`. The id is client-chosen (the rule's id), so
a create that is retried after a lost answer meets a 409, and `apply` then checks whether the
rule it finds is the one it sent. The detectionRule schema publishes no ETag, so a write is
guarded by re-reading the rule just before it: if `lastModifiedDateTime` moved since the plan
read it, the write is not sent.
"""

from __future__ import annotations

import json
from urllib.parse import quote

from .content import normalize
from .marker import Marker, add_marker, content_hash, split_marker
from .pipeline import ApiClient, RequestFailed
from .redaction import redact
from .rules import Conflict, DeployedRule, DesiredRule

COLLECTION = "/beta/security/rules/detectionRules"
# Not content: the id (the key), the fields the Graph beta detectionRule marks read-only
# (tests/test_deploy_contract.py checks this list against tests/reference/defender-detection-rule.schema.json),
# and the deprecated aliases the service derives from the current shape (isEnabled from
# status, schedule.period from schedule.frequency).
IGNORED = frozenset({
    "id", "createdBy", "createdDateTime", "lastModifiedBy", "lastModifiedDateTime", "detectorId", "lastRunDetails",
    "queryCondition.lastModifiedDateTime", "schedule.nextRunDateTime", "isEnabled", "schedule.period",
})
DURATIONS = frozenset({"schedule.frequency", "schedule.lookback"})
NOT_PATCHED = ("id", "@odata.type")  # the key and the type annotation are fixed at creation


def content_of(body: dict) -> tuple[dict, Marker | None]:
    description, marker = split_marker(body.get("description"))
    return normalize({**body, "description": description}, IGNORED, DURATIONS), marker


class DefenderTarget:
    platform = "defender"
    output_format = "defender-detection"

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def describe(self) -> str:
        return f"Defender XDR custom detections ({self.client.endpoint.url})"

    # -- the rules' side ---------------------------------------------------------------------
    @staticmethod
    def desired(text: str, source: str) -> DesiredRule:
        body = json.loads(text)
        if not isinstance(body, dict) or not isinstance(body.get("id"), str):
            raise ValueError("expected a detection rule with an 'id'")
        content, _ = content_of(body)
        return DesiredRule(body["id"], str(body.get("displayName", "")), source, body, content, content_hash(content))

    @staticmethod
    def marked(rule: DesiredRule) -> dict:
        return {**rule.body, "description": add_marker(rule.body.get("description"), rule.marker)}

    # -- the service's side ------------------------------------------------------------------
    @staticmethod
    def deployed(body: dict) -> DeployedRule:
        content, marker = content_of(body)
        return DeployedRule(str(body.get("id", "")), str(body.get("displayName", "")), body, content, marker,
                            body.get("lastModifiedDateTime"))

    def url(self, rule_id: str) -> str:
        return f"{COLLECTION}/{quote(rule_id, safe='')}"

    def list(self) -> dict[str, DeployedRule]:
        rules: dict[str, DeployedRule] = {}
        url = COLLECTION
        while url:
            page = self.client.send("GET", url).body or {}
            for body in page.get("value") or []:
                rule = self.deployed(body)
                rules[rule.id.lower()] = rule
            url = page.get("@odata.nextLink")
            if url and not self.client.endpoint.same_origin(url):
                raise RequestFailed("GET", url, None, "UnexpectedNextLink", "the next page is on another host: not followed")
        return rules

    def read(self, rule_id: str) -> DeployedRule | None:
        response = self.client.send("GET", self.url(rule_id), ok=(404,))
        return None if response.status == 404 else self.deployed(response.body or {})

    def create(self, rule: DesiredRule) -> DeployedRule | None:
        response = self.client.send("POST", COLLECTION, body=self.marked(rule), ok=(409,))
        if response.status == 409:
            raise Conflict(_conflict_message(response, "a rule with this id exists"))
        return self.deployed(response.body) if isinstance(response.body, dict) else None

    def _unchanged_since(self, current: DeployedRule) -> None:
        now = self.read(current.id)
        if now is None:
            raise Conflict("the rule was deleted on the service since it was read")
        if now.version != current.version or now.content != current.content:
            raise Conflict(f"lastModifiedDateTime is now {now.version}, not {current.version}")

    def update(self, rule: DesiredRule, current: DeployedRule) -> DeployedRule | None:
        self._unchanged_since(current)
        body = {key: value for key, value in self.marked(rule).items() if key not in NOT_PATCHED}
        for key in current.content:  # a PATCH keeps what it does not name: clear what the rule no longer has
            if key not in body:
                body[key] = None
        response = self.client.send("PATCH", self.url(rule.id), body=body)
        return self.deployed(response.body) if isinstance(response.body, dict) else None

    def delete(self, current: DeployedRule) -> None:
        self._unchanged_since(current)
        self.client.send("DELETE", self.url(current.id), ok=(404,))


def _conflict_message(response, fallback: str) -> str:
    error = response.body.get("error") if isinstance(response.body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        return redact(f"HTTP {response.status}: {error['message']}")
    return f"HTTP {response.status}: {fallback}"

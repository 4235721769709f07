"""Microsoft Sentinel scheduled analytics rules: `Microsoft.SecurityInsights/alertRules`, api-version 2025-09-01.

The body sent is the `kind` and `properties` of the resource in the ARM template that `build`
writes (`arm/<rule>.json`), read as ARM reads them (a title `[x]` is written `[[x]` there), with
the marker added to the description; the resource name is
the rule's id. Writes use the ETag read with the rule: in the body (`etag`, as the API
documents for ResourceWithEtag) and as `If-Match`; a create sends `If-None-Match: *`, so a rule
made by someone else in the meantime is never overwritten.
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

from ...render.readback import arm_read
from .content import normalize
from .marker import Marker, add_marker, content_hash, split_marker
from .pipeline import ApiClient, RequestFailed
from .redaction import redact
from .rules import Conflict, DeployedRule, DesiredRule

API_VERSION = "2025-09-01"
RESOURCE_TYPE = "Microsoft.SecurityInsights/alertRules"
KIND = "Scheduled"
# Not content: ARM's resource envelope (id, name, type, etag, systemData: read-only in ARM's
# common types) and the read-only properties of ScheduledAlertRuleProperties in the 2025-09-01
# OpenAPI document (tests/test_deploy_contract.py checks this list against it).
IGNORED = frozenset({"id", "name", "type", "etag", "systemData", "properties.lastModifiedUtc"})
DURATIONS = frozenset({
    "properties.queryFrequency", "properties.queryPeriod", "properties.suppressionDuration",
    "properties.incidentConfiguration.groupingConfiguration.lookbackDuration",
})
SUBSCRIPTION = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
RESOURCE_GROUP = re.compile(r"^[-\w.()]{1,90}$")  # ARM's rule; may not end in a period
WORKSPACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{1,88}[A-Za-z0-9]$")  # common/2.0/types.json#/parameters/WorkspaceName


def check_scope(subscription: str, resource_group: str, workspace: str) -> list[str]:
    """Problems with the names that address the workspace (each becomes a usage error)."""
    problems = []
    if not SUBSCRIPTION.match(subscription):
        problems.append(f"--subscription {subscription!r}: expected a subscription id (a GUID)")
    if not RESOURCE_GROUP.match(resource_group) or resource_group.endswith("."):
        problems.append(f"--resource-group {resource_group!r}: not a resource group name")
    if not WORKSPACE.match(workspace):
        problems.append(f"--workspace {workspace!r}: not a Log Analytics workspace name (letters, digits and inner hyphens)")
    return problems


def content_of(body: dict) -> tuple[dict, Marker | None]:
    properties = dict(body.get("properties") or {})
    properties["description"], marker = split_marker(properties.get("description"))
    return normalize({**body, "properties": properties}, IGNORED, DURATIONS), marker


class SentinelTarget:
    platform = "sentinel"
    output_format = "arm"

    def __init__(self, client: ApiClient, subscription: str, resource_group: str, workspace: str) -> None:
        self.client = client
        self.subscription, self.resource_group, self.workspace = subscription, resource_group, workspace
        self.base = (
            f"/subscriptions/{quote(subscription)}/resourceGroups/{quote(resource_group)}"
            f"/providers/Microsoft.OperationalInsights/workspaces/{quote(workspace)}"
            "/providers/Microsoft.SecurityInsights/alertRules"
        )

    def describe(self) -> str:
        return f"Sentinel workspace {self.workspace} (resource group {self.resource_group}, subscription {self.subscription})"

    # -- the rules' side ---------------------------------------------------------------------
    @staticmethod
    def desired(text: str, source: str) -> DesiredRule:
        """The alert rule in an ARM template that `build` wrote."""
        template = json.loads(text)
        resources = template.get("resources") if isinstance(template, dict) else None
        if not isinstance(resources, list) or len(resources) != 1:
            raise ValueError("expected an ARM template with one resource")
        resource = resources[0]
        if resource.get("type") != RESOURCE_TYPE or resource.get("apiVersion") != API_VERSION or resource.get("kind") != KIND:
            raise ValueError(f"expected one {RESOURCE_TYPE} resource of kind {KIND}, api-version {API_VERSION}")
        # the REST API evaluates no template expression: send the values as ARM would read them ('[[x]' is '[x]')
        properties = arm_read(resource["properties"])
        body = {"kind": KIND, "properties": properties}
        content, _ = content_of(body)
        return DesiredRule(str(arm_read(resource["name"])), str(properties.get("displayName", "")), source,
                           body, content, content_hash(content))

    @staticmethod
    def marked(rule: DesiredRule) -> dict:
        properties = dict(rule.body["properties"])
        properties["description"] = add_marker(properties.get("description"), rule.marker)
        return {**rule.body, "properties": properties}

    # -- the service's side ------------------------------------------------------------------
    @staticmethod
    def deployed(resource: dict) -> DeployedRule:
        content, marker = content_of(resource)
        properties = resource.get("properties") or {}
        return DeployedRule(str(resource.get("name", "")), str(properties.get("displayName", "")), resource,
                            content, marker, resource.get("etag"))

    def list(self) -> dict[str, DeployedRule]:
        rules: dict[str, DeployedRule] = {}
        url, params = self.base, {"api-version": API_VERSION}
        while url:
            page = self.client.send("GET", url, params=params).body or {}
            for resource in page.get("value") or []:
                rule = self.deployed(resource)
                rules[rule.id.lower()] = rule
            url, params = page.get("nextLink"), None
            if url and not self.client.endpoint.same_origin(url):
                raise RequestFailed("GET", url, None, "UnexpectedNextLink", "the next page is on another host: not followed")
        return rules

    def read(self, rule_id: str) -> DeployedRule | None:
        response = self.client.send("GET", f"{self.base}/{quote(rule_id)}", params={"api-version": API_VERSION}, ok=(404,))
        return None if response.status == 404 else self.deployed(response.body or {})

    def create(self, rule: DesiredRule) -> DeployedRule:
        return self._put(rule, {"If-None-Match": "*"}, None)

    def update(self, rule: DesiredRule, current: DeployedRule) -> DeployedRule:
        return self._put(rule, {"If-Match": current.version} if current.version else {}, current.version)

    def _put(self, rule: DesiredRule, headers: dict[str, str], etag: str | None) -> DeployedRule:
        body = self.marked(rule)
        if etag:
            body = {**body, "etag": etag}
        response = self.client.send(
            "PUT", f"{self.base}/{quote(rule.id)}", params={"api-version": API_VERSION}, body=body, headers=headers,
            ok=(409, 412),
        )
        if response.status in (409, 412):
            raise Conflict(_conflict_message(response))
        return self.deployed(response.body or {})

    def delete(self, current: DeployedRule) -> None:
        headers = {"If-Match": current.version} if current.version else {}
        response = self.client.send(
            "DELETE", f"{self.base}/{quote(current.id)}", params={"api-version": API_VERSION}, headers=headers,
            ok=(404, 409, 412),
        )
        if response.status in (409, 412):
            raise Conflict(_conflict_message(response))


def _conflict_message(response) -> str:
    error = (response.body or {}).get("error") if isinstance(response.body, dict) else None
    if isinstance(error, dict) and error.get("message"):
        code = f" {error['code']}" if error.get("code") else ""
        return redact(f"HTTP {response.status}{code}: {error['message']}")
    return f"HTTP {response.status}"

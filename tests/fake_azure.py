"""A loopback stand-in for the three services `deploy` and `schema pull` talk to.

One stdlib HTTP server on 127.0.0.1 (an ephemeral port) serves:

- ARM `Microsoft.SecurityInsights/alertRules` (list with nextLink paging, get, put, delete),
  api-version 2025-09-01 only, with ETags (body `etag`, `If-Match`, `If-None-Match: *`);
- Graph beta `security/rules/detectionRules` (list with @odata.nextLink, get, post, patch, delete);
- the Log Analytics query API (`POST /v1/workspaces/{id}/query`), for `<Table> | getschema`.

Every request needs the right bearer token for its API, and every body is checked against
the published contract (tests/api_contract.py): a body that breaks it is refused with 400
and recorded in `contract_errors`, which every test expects to stay empty. Like the real
services, answers carry read-only fields, nulls for optional fields, and durations in the
service's own spelling. Faults can be queued per method and path: 429 with Retry-After, 500,
a dropped connection (before or after the write is done), a slow answer, a rule edited "in
the portal" just before the request (an ETag conflict), and an error that echoes the
caller's Authorization header. And the answers of a broken or hostile service: a listing
whose next link points back at the page itself (`loop`), an answer of any JSON (`body`, e.g.
`[1, 2, 3]`), and an endless answer streamed until the client hangs up (`huge`: `size` bytes,
with or without a Content-Length; `sent` records how many went out).
"""

from __future__ import annotations

import copy
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.api_contract import defender_body_errors, sentinel_body_errors

API_VERSION = "2025-09-01"
ALERT_RULES = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.OperationalInsights"
    r"/workspaces/(?P<ws>[^/]+)/providers/Microsoft\.SecurityInsights/alertRules(?:/(?P<name>[^/]+))?$",
    re.IGNORECASE,
)
DETECTION_RULES = re.compile(r"^/(?P<version>[^/]+)/security/rules/detectionRules(?:/(?P<id>[^/]+))?$")
LOGS_QUERY = re.compile(r"^/v1/workspaces/(?P<workspace>[^/]+)/query$")
GETSCHEMA = re.compile(r"^\s*(?P<table>[A-Za-z_][A-Za-z0-9_]*)\s*\|\s*getschema\s*$")
DOTNET_TYPES = {
    "string": "System.String", "int": "System.Int32", "long": "System.Int64", "real": "System.Double",
    "bool": "System.SByte", "datetime": "System.DateTime", "dynamic": "System.Object", "guid": "System.Guid",
    "timespan": "System.TimeSpan", "decimal": "System.Data.SqlTypes.SqlDecimal",
}


@dataclass
class Fault:
    method: str
    path_part: str
    kind: str  # 429, 500, drop, drop-after, slow, edit, echo, loop, body, huge
    times: int = 1
    retry_after: str = "0"
    delay: float = 0.0
    skip: int = 0  # let this many matching requests through first
    body: object = None  # `body`: the answer (status 200)
    size: int = 0  # `huge`: how many bytes to offer
    declared: bool = False  # `huge`: announce them in Content-Length first


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: object
    at: float = field(default_factory=time.monotonic)


def _service_duration(value):
    """The fake service spells whole days in hours (P1D → PT24H), as a service may."""
    match = re.fullmatch(r"P(\d+)D", value) if isinstance(value, str) else None
    return f"PT{int(match.group(1)) * 24}H" if match else value


class FakeAzure:
    def __init__(self, *, page_size: int = 100, workspace_id: str = "00000000-0000-4000-8000-0000000000aa",
                 tables: dict[str, list[tuple[str, str]]] | None = None) -> None:
        self.tokens = {api: f"{api}-{secrets.token_urlsafe(24)}" for api in ("arm", "graph", "logs")}
        self.page_size = page_size
        self.workspace_id = workspace_id
        self.tables = tables or {}
        self.sentinel: dict[tuple[str, str, str], dict[str, dict]] = {}
        self.defender: dict[str, dict] = {}
        self.requests: list[Recorded] = []
        self.contract_errors: list[tuple[str, str, list[str]]] = []
        self.faults: list[Fault] = []
        self.delay = 0.0
        self.rewrite = None  # a function the fake ARM service applies to the properties it stores
        self.next_link_base = None  # where next links point (default: this server)
        self.in_flight = 0
        self.max_in_flight = 0
        self.sent = 0  # bytes of `huge` answers that went out before the client hung up
        self.lock = threading.RLock()
        self.clock = itertools.count(1)
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "FakeAzure":
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.fake = self
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    # -- what tests arrange and inspect ----------------------------------------------------
    def fault(self, method: str, path_part: str, kind: str, **options) -> None:
        with self.lock:
            self.faults.append(Fault(method, path_part, kind, **options))

    def writes(self) -> list[Recorded]:
        return [r for r in self.requests if r.method in ("PUT", "POST", "PATCH", "DELETE")]

    def workspace(self, sub: str, rg: str, ws: str) -> dict[str, dict]:
        return self.sentinel.setdefault((sub.lower(), rg.lower(), ws.lower()), {})

    def stamp(self) -> str:
        return f"2026-01-01T00:{next(self.clock) // 60 % 60:02d}:{next(self.clock) % 60:02d}.000Z"

    def new_etag(self) -> str:
        return f'"{secrets.token_hex(4)}-0000-0100-0000-{secrets.token_hex(6)}"'

    def edit_sentinel(self, rules: dict[str, dict], name: str, **changes) -> None:
        """A change made in the portal: new values, a new ETag, a new lastModifiedUtc."""
        with self.lock:
            resource = rules[name.lower()]
            resource["properties"].update(changes)
            resource["properties"]["lastModifiedUtc"] = self.stamp()
            resource["etag"] = self.new_etag()

    def edit_defender(self, rule_id: str, path: str, value) -> None:
        with self.lock:
            body = self.defender[rule_id.lower()]
            node = body
            *parents, last = path.split(".")
            for key in parents:
                node = node.setdefault(key, {})
            node[last] = value
            body["lastModifiedDateTime"] = self.stamp()
            body["lastModifiedBy"] = "analyst@contoso.example"

    def add_sentinel(self, rules: dict[str, dict], name: str, properties: dict, kind: str = "Scheduled") -> None:
        """A rule someone else created (not through the fake's PUT, so never contract-checked)."""
        with self.lock:
            rules[name.lower()] = {
                "id": f"/fake/alertRules/{name}", "name": name, "type": "Microsoft.SecurityInsights/alertRules",
                "kind": kind, "etag": self.new_etag(), "properties": {**properties, "lastModifiedUtc": self.stamp()},
            }

    def add_defender(self, body: dict) -> None:
        with self.lock:
            self.defender[body["id"].lower()] = self._graph_stored(copy.deepcopy(body), created=True)

    def portal_edit(self, path: str) -> None:
        """The `edit` fault: someone changes the rule this request is about, just before it arrives."""
        if (match := ALERT_RULES.match(path)) and match["name"]:
            rules = self.workspace(match["sub"], match["rg"], match["ws"])
            if match["name"].lower() in rules:
                self.edit_sentinel(rules, match["name"], severity="Informational")
        elif (match := DETECTION_RULES.match(path)) and match["id"] and match["id"].lower() in self.defender:
            self.edit_defender(match["id"], "detectionAction.alertTemplate.severity", "informational")

    # -- routing ---------------------------------------------------------------------------
    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.path_part in path:
                    if fault.skip:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    return fault
        return None

    def route(self, method: str, path: str, query: dict, headers: dict, body) -> tuple[int, dict, object]:
        if (match := ALERT_RULES.match(path)):
            return self._arm(method, match, query, headers, body)
        if (match := DETECTION_RULES.match(path)):
            return self._graph(method, match, query, body)
        if (match := LOGS_QUERY.match(path)) and method == "POST":
            return self._logs(match, body)
        return 404, {}, {"error": {"code": "NotFound", "message": f"no such API: {method} {path}"}}

    def api_of(self, path: str) -> str:
        return "arm" if path.startswith("/subscriptions/") else "logs" if path.startswith("/v1/") else "graph"

    # -- ARM -------------------------------------------------------------------------------
    def _arm(self, method, match, query, headers, body):
        version = query.get("api-version", [None])[0]
        if version != API_VERSION:
            return 400, {}, {"error": {"code": "InvalidApiVersionParameter",
                                       "message": f"The api-version '{version}' is invalid. The supported versions are '{API_VERSION}'."}}
        rules = self.workspace(match["sub"], match["rg"], match["ws"])
        name = match["name"]
        base = match.group(0) if name is None else match.group(0).rsplit("/", 1)[0]
        if name is None:
            if method != "GET":
                return 405, {}, {"error": {"code": "MethodNotAllowed", "message": method}}
            names = sorted(rules)
            skip = int(query.get("$skipToken", ["0"])[0])
            page = [copy.deepcopy(rules[n]) for n in names[skip: skip + self.page_size]]
            answer = {"value": page}
            if skip + self.page_size < len(names):
                answer["nextLink"] = f"{self.next_link_base or self.url}{base}?api-version={API_VERSION}&$skipToken={skip + self.page_size}"
            return 200, {}, answer
        key = name.lower()
        current = rules.get(key)
        if method == "GET":
            if current is None:
                return 404, {}, {"error": {"code": "NotFound", "message": f"Alert rule {name} was not found"}}
            return 200, {"ETag": current["etag"]}, copy.deepcopy(current)
        if method == "DELETE":
            if current is not None and headers.get("if-match") not in (None, current["etag"]):
                return 412, {}, {"error": {"code": "PreconditionFailed", "message": "The ETag does not match"}}
            if current is None:
                return 204, {}, None
            del rules[key]
            return 200, {}, None
        if method != "PUT":
            return 405, {}, {"error": {"code": "MethodNotAllowed", "message": method}}
        errors = sentinel_body_errors(body)
        if errors:
            self.contract_errors.append((method, match.group(0), errors))
            return 400, {}, {"error": {"code": "BadRequest", "message": "; ".join(errors)}}
        if headers.get("if-none-match") == "*" and current is not None:
            return 412, {}, {"error": {"code": "PreconditionFailed", "message": "The alert rule already exists"}}
        if current is not None and headers.get("if-match") not in (None, current["etag"]):
            return 412, {}, {"error": {"code": "PreconditionFailed", "message": "The ETag does not match"}}
        if current is not None and body.get("etag") not in (None, current["etag"]):
            return 409, {}, {"error": {"code": "Conflict", "message": "Newer version of the alert rule exists. Please refresh and try again."}}
        properties = copy.deepcopy(body["properties"])
        for key_name in ("queryFrequency", "queryPeriod", "suppressionDuration"):
            properties[key_name] = _service_duration(properties[key_name])
        properties.setdefault("alertRuleTemplateName", None)
        properties.setdefault("templateVersion", None)
        properties.setdefault("alertDetailsOverride", None)
        properties["lastModifiedUtc"] = self.stamp()
        if self.rewrite is not None:
            self.rewrite(properties)
        stored = {
            "id": match.group(0), "name": name, "type": "Microsoft.SecurityInsights/alertRules", "kind": body["kind"],
            "etag": self.new_etag(), "systemData": {"lastModifiedBy": "entra-sigma-tests"}, "properties": properties,
        }
        rules[key] = stored
        return (201 if current is None else 200), {"ETag": stored["etag"]}, copy.deepcopy(stored)

    # -- Graph -----------------------------------------------------------------------------
    def _graph_stored(self, body: dict, created: bool, previous: dict | None = None) -> dict:
        now = self.stamp()
        body.pop("@odata.type", None)
        body["createdBy"] = (previous or {}).get("createdBy", "entra-sigma-tests")
        body["createdDateTime"] = (previous or {}).get("createdDateTime", now)
        body["lastModifiedBy"] = "entra-sigma-tests"
        body["lastModifiedDateTime"] = now
        body["detectorId"] = (previous or {}).get("detectorId", secrets.token_hex(8))
        body["lastRunDetails"] = {"lastRunDateTime": None, "status": None, "failureReason": None, "errorCode": None}
        body["isEnabled"] = body.get("status") == "enabled"
        body.setdefault("queryCondition", {})["lastModifiedDateTime"] = now
        schedule = body.setdefault("schedule", {})
        schedule["period"] = None
        schedule["nextRunDateTime"] = now
        schedule["frequency"] = _service_duration(schedule.get("frequency"))
        action = body.setdefault("detectionAction", {})
        action.setdefault("organizationalScope", None)
        action.setdefault("automatedActions", None)
        action.setdefault("responseActions", [])
        return body

    def _graph(self, method, match, query, body):
        if match["version"] != "beta":
            return 400, {}, {"error": {"code": "BadRequest", "message": f"detectionRules: {match['version']} is not served here (beta only)"}}
        rule_id = match["id"]
        if rule_id is None:
            if method == "GET":
                ids = sorted(self.defender)
                skip = int(query.get("$skiptoken", ["0"])[0])
                answer = {"@odata.context": "$metadata#security/rules/detectionRules",
                          "value": [copy.deepcopy(self.defender[i]) for i in ids[skip: skip + self.page_size]]}
                if skip + self.page_size < len(ids):
                    answer["@odata.nextLink"] = f"{self.url}/beta/security/rules/detectionRules?$skiptoken={skip + self.page_size}"
                return 200, {}, answer
            if method != "POST":
                return 405, {}, {"error": {"code": "MethodNotAllowed", "message": method}}
            errors = defender_body_errors(body)
            if errors:
                self.contract_errors.append((method, match.group(0), errors))
                return 400, {}, {"error": {"code": "BadRequest", "message": "; ".join(errors)}}
            if body["id"].lower() in self.defender:
                return 409, {}, {"error": {"code": "Conflict", "message": f"A rule with id {body['id']} already exists"}}
            stored = self._graph_stored(copy.deepcopy(body), created=True)
            self.defender[body["id"].lower()] = stored
            return 201, {}, copy.deepcopy(stored)
        key = rule_id.lower()
        current = self.defender.get(key)
        if current is None:
            return 404, {}, {"error": {"code": "NotFound", "message": f"Detection rule {rule_id} was not found"}}
        if method == "GET":
            return 200, {}, {"@odata.context": "$metadata#security/rules/detectionRules/$entity", **copy.deepcopy(current)}
        if method == "DELETE":
            del self.defender[key]
            return 204, {}, None
        if method != "PATCH":
            return 405, {}, {"error": {"code": "MethodNotAllowed", "message": method}}
        errors = defender_body_errors(body, partial=True)
        if errors:
            self.contract_errors.append((method, match.group(0), errors))
            return 400, {}, {"error": {"code": "BadRequest", "message": "; ".join(errors)}}
        updated = copy.deepcopy(current)
        for name, value in body.items():
            if value is None:
                updated.pop(name, None)
            else:
                updated[name] = copy.deepcopy(value)
        stored = self._graph_stored(updated, created=False, previous=current)
        self.defender[key] = stored
        return 200, {}, copy.deepcopy(stored)

    # -- Log Analytics ---------------------------------------------------------------------
    def _logs(self, match, body):
        if match["workspace"].lower() != self.workspace_id:
            return 404, {}, {"error": {"code": "WorkspaceNotFoundError", "message": f"Workspace {match['workspace']} not found"}}
        query = GETSCHEMA.match((body or {}).get("query") or "")
        if query is None:
            return 400, {}, {"error": {"code": "BadArgumentError", "message": "this test server answers '<Table> | getschema' only"}}
        table = query["table"]
        if table not in self.tables:
            return 400, {}, {"error": {
                "code": "BadArgumentError", "message": "The request had some invalid properties",
                "innererror": {"code": "SemanticError", "message": "A semantic error occurred.", "innererror": {
                    "code": "SEM0100", "message": f"'getschema' operator: Failed to resolve table or column expression named '{table}'"}},
            }}
        columns = [{"name": "ColumnName", "type": "string"}, {"name": "ColumnOrdinal", "type": "int"},
                   {"name": "DataType", "type": "string"}, {"name": "ColumnType", "type": "string"}]
        rows = [[name, index, DOTNET_TYPES.get(kind, "System.String"), kind]
                for index, (name, kind) in enumerate(self.tables[table])]
        return 200, {}, {"tables": [{"name": "PrimaryResult", "columns": columns, "rows": rows}]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args) -> None:  # quiet
        pass

    def _handle(self) -> None:
        fake: FakeAzure = self.server.fake
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parts = urlsplit(self.path)
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = "<not JSON>"
        headers = {k.lower(): v for k, v in self.headers.items()}
        with fake.lock:
            fake.requests.append(Recorded(self.command, parts.path, parse_qs(parts.query), headers, body))
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            self._answer(fake, parts, headers, body)
        finally:
            with fake.lock:
                fake.in_flight -= 1

    def _answer(self, fake: FakeAzure, parts, headers: dict, body) -> None:
        fault = fake.take_fault(self.command, parts.path)
        kind = fault.kind if fault else None
        if kind == "drop":
            self.close_connection = True
            return
        if kind in ("429", "500"):
            extra = {"Retry-After": fault.retry_after} if kind == "429" else {}
            code = "TooManyRequests" if kind == "429" else "InternalServerError"
            return self._send(int(kind), extra, {"error": {"code": code, "message": f"injected {kind}"}})
        api = fake.api_of(parts.path)
        if headers.get("authorization") != f"Bearer {fake.tokens[api]}":
            return self._send(401, {}, {"error": {"code": "InvalidAuthenticationToken", "message": "wrong or missing token"}})
        if kind == "echo":
            return self._send(400, {}, {"error": {"code": "BadRequest", "message": f"cannot use {headers.get('authorization')}"}})
        if kind == "edit":
            fake.portal_edit(parts.path)
        if kind == "body":
            return self._send(200, {}, fault.body)
        if kind == "huge":
            return self._send_huge(fake, fault.size, fault.declared)
        with fake.lock:
            status, extra, answer = fake.route(self.command, parts.path, parse_qs(parts.query), headers, body)
        if kind == "loop" and isinstance(answer, dict):  # the next page is this very page
            answer["nextLink" if fake.api_of(parts.path) == "arm" else "@odata.nextLink"] = fake.url + self.path
        if kind == "drop-after":
            self.close_connection = True
            return
        if kind == "slow" or fake.delay:
            time.sleep(fault.delay if kind == "slow" else fake.delay)
        self._send(status, extra, answer)

    def _send(self, status: int, headers: dict, body) -> None:
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_huge(self, fake: FakeAzure, size: int, declared: bool) -> None:
        """`size` bytes of one endless JSON list, made as they go out, chunked unless `declared`."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if declared:
            self.send_header("Content-Length", str(size))
        else:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        block = b'{"value": [' + b'{"name": "x"}, ' * 65_536
        offered = 0
        try:
            while offered < size:
                chunk = block[: size - offered]
                self.wfile.write(chunk if declared else b"%x\r\n%s\r\n" % (len(chunk), chunk))
                offered += len(chunk)
                with fake.lock:
                    fake.sent += len(chunk)
            if not declared:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client hung up, as it should
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

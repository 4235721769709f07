"""Deployment settings: rule metadata → what Sentinel and Defender need, decided once.

Severity from `level`, tactics and techniques from ATT&CK tags (checked against ATT&CK data
so a technique never travels without one of its tactics), schedule and alert settings from
the rule's `sentinel:` / `defender:` sections with defaults, and entity mappings derived from
the columns the query returns. Templates only lay these values out.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

from ..diagnostics import Diagnostic
from ..model.durations import parse_duration
from ..paths import SCHEMAS_DIR

if TYPE_CHECKING:  # annotations only: the formats (render/formats.py) import this module, and the cache reads them
    from ..convert.query import Query
    from ..model.rule import Rule

SENTINEL_SEVERITY = {"informational": "Informational", "low": "Low", "medium": "Medium", "high": "High", "critical": "High"}
DEFENDER_SEVERITY = {"informational": "informational", "low": "low", "medium": "medium", "high": "high", "critical": "high"}
TRIGGER_OPERATORS = {"gt": "GreaterThan", "lt": "LessThan", "eq": "Equal", "ne": "NotEqual"}
TECHNIQUE_TAG = re.compile(r"^attack\.(t[0-9]{4}(?:\.[0-9]{3})?)$")
MIN_PERIOD, MAX_PERIOD = timedelta(minutes=5), timedelta(days=14)
MAX_SUPPRESSION, MAX_LOOKBACK = timedelta(hours=24), timedelta(days=7)  # Sentinel's limits
MAX_QUERY_LENGTH = 10_000

# Which returned beta fields identify which Sentinel entity (in order of preference).
DERIVED_ENTITIES = (
    ("Account", (("FullName", "userPrincipalName"), ("AadUserId", "userId"))),
    ("IP", (("Address", "ipAddress"),)),
    ("CloudApplication", (("AppId", "appId"), ("Name", "appDisplayName"))),
)
DEFAULTS = {
    "enabled": True, "queryFrequency": "1h", "queryPeriod": "1h", "triggerOperator": "gt",
    "triggerThreshold": 0, "eventGrouping": "SingleAlert",
}
SUPPRESSION_DEFAULTS = {"enabled": False, "duration": "5h"}
GROUPING_DEFAULTS = {"enabled": False, "lookback": "5h", "matchingMethod": "AllEntities", "reopenClosedIncident": False, "groupByEntities": []}


@lru_cache(maxsize=1)
def attack_data() -> dict:
    return json.loads((SCHEMAS_DIR / "attack.json").read_text(encoding="utf-8"))


@lru_cache(maxsize=1)
def entity_identifiers() -> dict[str, list[str]]:
    """Entity type → the identifiers Sentinel defines for it (schemas/sentinel-entities.json)."""
    return json.loads((SCHEMAS_DIR / "sentinel-entities.json").read_text(encoding="utf-8"))["identifiers"]


def identifier_hint(identifier: str, allowed: list[str]) -> str:
    """A did-you-mean for a misspelt identifier (any case), else the list."""
    import difflib

    by_case = {name.lower(): name for name in allowed}
    close = [by_case[identifier.lower()]] if identifier.lower() in by_case else difflib.get_close_matches(identifier, allowed, n=1)
    return f"did you mean '{close[0]}'?" if close else f"identifiers: {', '.join(allowed)}"


def attack_tags(tags: tuple[str, ...], tactic_keys: dict[str, str]) -> tuple[list[str], list[tuple[int, str]]]:
    """A rule's ATT&CK tags: the tactic shortnames (`tactic_keys` maps `credential_access` to
    `credential-access`; both spellings are accepted), and (tag index, technique id) pairs."""
    tactics, techniques = [], []
    for index, tag in enumerate(tags):
        if not tag.startswith("attack."):
            continue
        name = tag.removeprefix("attack.").replace("-", "_")
        if name in tactic_keys:
            tactics.append(tactic_keys[name])
        elif TECHNIQUE_TAG.match(tag):
            techniques.append((index, name.upper()))
    return tactics, techniques


@dataclass(frozen=True)
class EntityMapping:
    entity_type: str
    fields: tuple[tuple[str, str], ...]  # (identifier, returned column)


@dataclass(frozen=True)
class Deployment:
    """All deployment decisions for one rule, shared by every output format."""

    rule: Rule
    severity: str
    defender_severity: str
    tactics: tuple[str, ...]
    techniques: tuple[str, ...]
    tactic_techniques: tuple[tuple[str, tuple[str, ...]], ...]
    enabled: bool
    query_frequency: str
    query_period: str
    trigger_operator: str
    trigger_threshold: int
    suppression_enabled: bool
    suppression_duration: str
    event_grouping: str
    entity_mappings: tuple[EntityMapping, ...]
    custom_details: tuple[tuple[str, str], ...]
    create_incident: bool
    grouping: dict = field(hash=False)
    required_tables: tuple[str, ...] = ()
    defender_frequency: str = "1h"
    defender_status: str = "enabled"
    defender_category: str | None = None

    @property
    def trigger_operator_name(self) -> str:
        return TRIGGER_OPERATORS[self.trigger_operator]

    @property
    def parent_techniques(self) -> tuple[str, ...]:
        return tuple(sorted({t.split(".")[0] for t in self.techniques}))


def correlation_period(frequency: str, seconds: int) -> str:
    """queryFrequency + timespan, in whole minutes: every window falls whole inside some run."""
    minutes = int(parse_duration(frequency).total_seconds() // 60) + -(-seconds // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


class DeploymentPlanner:
    def __init__(self) -> None:
        data = attack_data()
        self.tactics = {t["shortname"].replace("-", "_"): t for t in data["tactics"]}
        self.order = [t["shortname"] for t in data["tactics"]]
        self.techniques = data["techniques"]

    def plan(self, rule: Rule, query: Query | None) -> tuple[Deployment | None, list[Diagnostic]]:
        diagnostics: list[Diagnostic] = []
        doc = rule.document

        def error(code: str, message: str, *key, hint: str | None = None) -> None:
            diagnostics.append(Diagnostic(code, message, doc.location(*key), rule.title, hint, target="sentinel"))

        tactic_short, tagged = attack_tags(rule.tags, {k: t["shortname"] for k, t in self.tactics.items()})
        techniques = []
        for index, technique in tagged:
            if technique not in self.techniques:
                error("E301", f"unknown ATT&CK technique '{technique}'", "tags", index)
            else:
                techniques.append(technique)
        for technique in techniques:
            own = self.techniques[technique]["tactics"]
            if not set(own) & set(tactic_short):
                tags = " or ".join(f"attack.{t.replace('-', '_')}" for t in own)
                error("E302", f"technique {technique} is listed without one of its tactics", "tags",
                      hint=f"add {tags}")
        tactic_short = sorted(set(tactic_short), key=self.order.index)
        tactic_names = tuple(self.tactics[t.replace("-", "_")]["name"] for t in tactic_short)
        grouped = tuple(
            (self.tactics[t.replace("-", "_")]["name"],
             tuple(sorted(x for x in techniques if t in self.techniques[x]["tactics"])))
            for t in tactic_short
        )

        settings = {**DEFAULTS, **rule.settings("sentinel")}
        if rule.correlation is not None and "queryPeriod" not in rule.settings("sentinel"):
            settings["queryPeriod"] = correlation_period(settings["queryFrequency"], rule.correlation.reach_seconds)
        suppression = {**SUPPRESSION_DEFAULTS, **(settings.get("suppression") or {})}
        incident = settings.get("incident") or {}
        grouping = {**GROUPING_DEFAULTS, **(incident.get("grouping") or {})}
        frequency, period = parse_duration(settings["queryFrequency"]), parse_duration(settings["queryPeriod"])
        for key, value in (("queryFrequency", frequency), ("queryPeriod", period)):
            if key == "queryPeriod" and value > MAX_PERIOD and "queryPeriod" not in rule.settings("sentinel"):
                error("E303", f"the correlation needs a queryPeriod of {settings['queryPeriod']} (queryFrequency "
                      f"{settings['queryFrequency']} + {rule.correlation.reach}); Sentinel allows at most 14d",
                      "correlation", "timespan", hint="shorten the timespan (of the chain's levels), or the queryFrequency")
            elif not MIN_PERIOD <= value <= MAX_PERIOD:
                error("E303", f"'sentinel.{key}' must be between 5m and 14d", "sentinel", key)
        if period < frequency:
            error("E303", "'sentinel.queryPeriod' must be at least 'sentinel.queryFrequency'", "sentinel", "queryPeriod")
        warnings = self.window_warnings(rule, frequency, period, error)
        if not MIN_PERIOD <= parse_duration(suppression["duration"]) <= MAX_SUPPRESSION:
            error("E303", "'sentinel.suppression.duration' must be between 5m and 24h", "sentinel", "suppression", "duration")
        if not MIN_PERIOD <= parse_duration(grouping["lookback"]) <= MAX_LOOKBACK:
            error("E303", "'sentinel.incident.grouping.lookback' must be between 5m and 7d", "sentinel", "incident", "grouping", "lookback")
        if grouping["matchingMethod"] == "Selected" and not grouping["groupByEntities"]:
            error("E307", "incident grouping by 'Selected' needs 'groupByEntities'", "sentinel", "incident", "grouping", "matchingMethod")

        returned = dict(query.returned) if query else {}  # beta path → output column
        # without a query (the rule has errors already) there are no columns to map
        mappings = self.entity_mappings(rule, returned, error) if query is not None else ()
        custom = []
        for key, path in sorted((settings.get("customDetails") or {}).items()):
            if path not in returned:
                error("E304", f"custom detail '{key}' uses '{path}', which the query does not return", "sentinel", "customDetails", key,
                      hint="add it to 'fields'")
            else:
                custom.append((key, returned[path]))
        defender = rule.settings("defender")
        if diagnostics:
            return None, diagnostics + warnings
        return Deployment(
            rule=rule,
            severity=SENTINEL_SEVERITY[rule.level],
            defender_severity=DEFENDER_SEVERITY[rule.level],
            tactics=tactic_names,
            techniques=tuple(sorted(set(techniques))),
            tactic_techniques=grouped,
            enabled=bool(settings["enabled"]),
            query_frequency=settings["queryFrequency"],
            query_period=settings["queryPeriod"],
            trigger_operator=settings["triggerOperator"],
            trigger_threshold=int(settings["triggerThreshold"]),
            suppression_enabled=bool(suppression["enabled"]),
            suppression_duration=suppression["duration"],
            event_grouping=settings["eventGrouping"],
            entity_mappings=mappings,
            custom_details=tuple(custom),
            create_incident=bool(incident.get("create", True)),
            grouping=grouping,
            required_tables=tuple(query.tables) if query else (),
            defender_frequency=defender.get("frequency", "1h"),
            defender_status=defender.get("status", "enabled"),
            defender_category=defender.get("category"),
        ), warnings

    @staticmethod
    def window_warnings(rule: Rule, frequency: timedelta, period: timedelta, error) -> list[Diagnostic]:
        """A correlation window must fit in the period each run looks at; and to see a burst that
        straddles two runs whole, the period must reach back one timespan before the last run."""
        if rule.correlation is None:
            return []
        span = timedelta(seconds=rule.correlation.reach_seconds)
        reach = rule.correlation.reach
        if period < span:
            error("E308", f"'sentinel.queryPeriod' is shorter than the correlation timespan {reach}: no window is ever seen whole",
                  "sentinel", "queryPeriod")
        elif period < frequency + span:
            return [Diagnostic(
                "W308", f"'sentinel.queryPeriod' is less than queryFrequency + timespan ({reach}): a burst that straddles two runs can be missed",
                rule.document.location("sentinel", "queryPeriod"), rule.title,
                "leave queryPeriod out: correlations default to queryFrequency + timespan", severity="warning", target="sentinel",
            )]
        return []

    def entity_mappings(self, rule: Rule, returned: dict[str, str], error) -> tuple[EntityMapping, ...]:
        explicit = rule.settings("sentinel").get("entityMappings")
        mappings = []
        if explicit:
            for index, mapping in enumerate(explicit):
                fields = []
                allowed = entity_identifiers()[mapping["entityType"]]
                for field_index, item in enumerate(mapping["fieldMappings"]):
                    if item["identifier"] not in allowed:
                        error("E309", f"{item['identifier']!r} is not an identifier of the {mapping['entityType']} entity",
                              "sentinel", "entityMappings", index, "fieldMappings", field_index, "identifier",
                              hint=identifier_hint(item["identifier"], allowed))
                    elif item["field"] not in returned:
                        error("E304", f"entity mapping uses '{item['field']}', which the query does not return",
                              "sentinel", "entityMappings", index, "fieldMappings", field_index, hint="add it to 'fields'")
                    else:
                        fields.append((item["identifier"], returned[item["field"]]))
                mappings.append(EntityMapping(mapping["entityType"], tuple(fields)))
        else:
            for entity, candidates in DERIVED_ENTITIES:
                fields = tuple((identifier, returned[path]) for identifier, path in candidates if path in returned)
                if fields:
                    mappings.append(EntityMapping(entity, fields))
            if not mappings:
                error("E305", "no entity mapping: return userPrincipalName, userId, ipAddress, appId or appDisplayName in 'fields', or set 'sentinel.entityMappings'",
                      "fields" if rule.fields else "title")
        return tuple(mappings)

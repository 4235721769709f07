"""Random valid rules for the fuzzer (compiler/dev/fuzz.py), drawn from the catalog and tables.

Every rule is meant to compile: fields exist in the tables its service reads, modifiers fit the
field's type (enum members, numbers for gt/lt, IP fields for cidr, RE2-valid patterns for re),
conditions nest and/or/not/`1 of`/`all of` over the rule's selections, `fields` lists returnable
paths. Values are full of characters that break naive quoting. About one file in seven holds a
correlation rule (every type, boolean temporal conditions, now and then a chain of two) and the
rules it correlates, as Sigma keeps them: one file, `---` between documents.

A few draws deliberately reach edges where the compiler may refuse with a located diagnostic
(fields only some tables have: E201/E202; see EXPECTED_REFUSALS in fuzz.py).

What Sigma 2.1 added (time modifiers, correlation `neq`, a value_count of several fields) is
drawn from a second random stream, after the first has drawn what it always drew: a seed gives
the same rules as before, except where one of those constructs now appears.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass

from ..map.lower import constant_for, projection_access
from ..map.tables import ColumnAccess, Registry
from ..model.operators import TIME_PARTS
from ..validate.catalog import NUMERIC_TYPES, Catalog, Field

SERVICES = ("signins", "signins", "interactive", "noninteractive", "serviceprincipal", "managedidentity")
WORDS = ["admin", "curl", "python-requests/2.31", "Mozilla/5.0", "contoso.com", "x", "Azure Portal", "é", "zürich", "Δ", "东京"]
HOSTILE = [
    '"', "'", "\\", "\\\\", "\n", "\r\n", "\t", "//", "/*", "*/", "|", ";", "`", "@", '@"', "{", "}", "(", ")",
    "[", "]", "$", "%", ",", ":", "#", "\x00", "\x01", "\x7f", "\x85", "\u2028", "\u200b", "\u202e", "\ufeff",
    "\u0301", "😀", "\U000e0001", " ", '" or true or "', "\n| take 1", "let x = 1;",
    # for the other readers: ARM expressions, GitHub mentions and references, workflow commands
    "[parameters('w')]", "@octocat", "@org/team", "#12", "GH-3", "\n::error file=x.yml::forged", "::stop-commands::t",
    "##[error]",
]
REGEX_ATOMS = [".", ".*", ".+", "[a-z]", "[0-9]+", "\\d", "\\w+", "\\s", "(a|b)", "[^/]*", "x{2,3}", "\\.", "\\p{Greek}", "\\z"]
DATETIMES = ["2025-01-31", "2025-01-31T08:00:00Z", "2025-01-31T08:00:00.1234567Z", "2025-01-31 08:00", "2024-02-29T23:59:59+01:00"]
TIMESPANS = ["30s", "5m", "10m", "1h", "6h", "1d", "2d", "1w"]
LEVELS = ["informational", "low", "medium", "high", "critical"]
TAGS = [  # techniques with one of their tactics, as deployments require
    ("attack.credential_access", "attack.t1110.003"), ("attack.initial_access", "attack.t1078.004"),
    ("attack.credential_access", "attack.t1621"), ("attack.defense_evasion",),
]
ENTITIES = ["userPrincipalName", "userId", "ipAddress", "appId", "appDisplayName"]  # what Sentinel alerts can map
IDENTIFIERS = {  # an explicit entity mapping for each: (entity type, identifier)
    "userPrincipalName": ("Account", "FullName"), "userId": ("Account", "AadUserId"), "ipAddress": ("IP", "Address"),
    "appId": ("CloudApplication", "AppId"), "appDisplayName": ("CloudApplication", "Name"),
}
WIDE_SHARE = 0.015  # of field/value pairs (about one rule in 25) that get a long list of values
WIDENABLE = {"contains", "startswith", "endswith", "all", "cased"}  # text modifiers a list suits
METRIC_KINDS = ("value_sum", "value_avg", "value_median", "value_percentile")


@dataclass
class Pools:
    """The catalog paths one rule may use, for the tables its service reads."""

    match: list[str]  # fields with a column in every table (some rules draw from `partial` too)
    partial: list[str]  # fields with a column in some of the tables
    returnable: list[str]  # paths `fields` may list
    scalar: list[str]  # single values per sign-in in every table: group-by and counted fields


class RuleGenerator:
    """`random.Random(seed)` decides everything, so a seed always gives the same rules."""

    def __init__(self, catalog: Catalog, registry: Registry, seed: int):
        self.catalog = catalog
        self.registry = registry
        self.rng = random.Random(seed)
        self.newer = random.Random(f"{seed}/sigma-2.1")  # the constructs Sigma 2.1 added (module docstring)
        # wide value lists draw from a stream of their own, so adding them left every other draw
        # of a seed as it was
        self.wide_rng = random.Random(f"{seed}/wide")
        self.widened = 0  # long value lists generated so far
        self.pools = {service: self._pools(service) for service in set(SERVICES)}

    # -- vocabulary ------------------------------------------------------------------------------
    def _pools(self, service: str) -> Pools:
        tables = [self.registry.mapping(t) for t in self.registry.tables_for("sentinel", service)]
        usable = [p for p, f in sorted(self.catalog.fields.items()) if len(f.arrays) <= 1]
        column = {p: [isinstance(m.resolve(p), ColumnAccess) for m in tables] for p in usable}
        match = [p for p in usable if all(column[p])]
        partial = [p for p in usable if any(column[p]) and not all(column[p])]
        returnable = [
            p for p in sorted(self.catalog.fields)
            if not (self.catalog.fields[p].arrays and not self.catalog.fields[p].collection)
            and any(projection_access(m, p) or constant_for(m, p) for m in tables)
        ]
        scalar = [
            p for p in match
            if not self.catalog.fields[p].arrays and not self.catalog.fields[p].collection
            and self.catalog.fields[p].type in ("string", "enum", "int", "long", "bool")
        ]
        return Pools(match, partial, returnable, scalar)

    def text(self, hostile: float = 0.5) -> str:
        parts = [self.rng.choice(HOSTILE) if self.rng.random() < hostile else self.rng.choice(WORDS)
                 for _ in range(self.rng.randint(1, 4))]
        return "".join(parts)

    def literal(self) -> str:
        """Text with Sigma's special characters (`*`, `?`, `\\`) escaped, so it stays literal."""
        return re.sub(r"([*?\\])", r"\\\1", self.text())

    def regex(self) -> str:
        atoms = [re.escape(self.text()) if self.rng.random() < 0.4 else self.rng.choice(REGEX_ATOMS)
                 for _ in range(self.rng.randint(1, 4))]
        anchored = self.rng.random() < 0.5
        return ("^" if anchored else "") + "".join(atoms) + ("$" if anchored and self.rng.random() < 0.5 else "")

    def wildcard(self) -> str:
        parts = [self.literal() for _ in range(self.rng.randint(1, 3))]
        return "".join(part + self.rng.choice(["*", "?", "*"]) for part in parts[:-1]) + parts[-1]

    # -- one field/value pair ----------------------------------------------------------------------
    def item(self, path: str, spec: Field, pool: list[str]) -> tuple[str, object]:
        rng = self.rng
        if rng.random() < 0.06:
            return f"{path}|exists", rng.random() < 0.5
        if spec.type == "object" or (spec.collection and rng.random() < 0.5):
            return (f"{path}|exists", rng.random() < 0.5) if rng.random() < 0.7 else (path, None)
        if spec.type == "enum":
            members = self.catalog.enum_of(spec).members
            picks = [rng.choice([str.lower, str.upper, str])(rng.choice(members)) for _ in range(rng.randint(1, 3))]
            return path, picks[0] if len(picks) == 1 else sorted(set(picks))
        if spec.type in NUMERIC_TYPES:
            number = (lambda: round(rng.uniform(-90, 90), rng.randint(0, 6))) if spec.type == "double" else (lambda: rng.choice([0, 1, 50126, 500121, -1, 2**31, 2**53 - 1]))
            choice = rng.random()
            if choice < 0.4:
                return f"{path}|{rng.choice(['gt', 'gte', 'lt', 'lte'])}", number()
            if choice < 0.55:
                others = [p for p in pool if p != path and self.catalog.fields[p].type in NUMERIC_TYPES and not self.catalog.fields[p].arrays]
                if others and not spec.arrays:
                    return f"{path}|fieldref", rng.choice(others)
            if choice < 0.75:
                return path, [number() for _ in range(rng.randint(2, 3))]
            return path, str(number()) if rng.random() < 0.2 and spec.type != "double" else number()
        if spec.type == "bool":
            return path, rng.choice([True, False, "true", "FALSE"])
        if spec.type == "dateTime":
            value = rng.choice(DATETIMES)
            return self.time_part_item(path) if self.newer.random() < 0.6 else (path, value)
        return self.string_item(path, spec, pool)

    def time_part_item(self, path: str) -> tuple[str, object]:
        """`createdDateTime|hour: 3`, a list of parts, a comparison or `neq`, within the
        appendix's ranges (years near now)."""
        rng = self.newer
        part = rng.choice(sorted(TIME_PARTS))
        low, high = (2020, 2030) if part == "year" else TIME_PARTS[part]
        number = lambda: rng.randint(low, high)  # noqa: E731
        choice = rng.random()
        if choice < 0.4:
            return f"{path}|{part}", number()
        if choice < 0.6:
            return f"{path}|{part}", sorted({number() for _ in range(rng.randint(2, 4))})
        if choice < 0.85:
            return f"{path}|{part}|{rng.choice(['gt', 'gte', 'lt', 'lte'])}", number()
        return f"{path}|{part}|neq", number()

    def string_item(self, path: str, spec: Field, pool: list[str]) -> tuple[str, object]:
        rng = self.rng
        if spec.format == "ip" and rng.random() < 0.5:
            networks = ["10.0.0.0/8", "192.168.1.0/24", "2001:db8::/32", "fe80::/10", "0.0.0.0/0", "203.0.113.7/32"]
            return f"{path}|cidr", rng.choice(networks) if rng.random() < 0.6 else rng.sample(networks, 2)
        choice = rng.random()
        cased = "|cased" if rng.random() < 0.3 else ""
        if choice < 0.3:
            return path + cased, self.literal() if rng.random() < 0.6 else [self.literal() for _ in range(rng.randint(2, 4))]
        if choice < 0.55:
            modifier = rng.choice(["contains", "startswith", "endswith"])
            if rng.random() < 0.3:
                return f"{path}|{modifier}|all{cased}", [self.literal() + "a" for _ in range(rng.randint(2, 3))]
            return f"{path}|{modifier}{cased}", self.literal() + "a"
        if choice < 0.7:
            return f"{path}|re" + "".join(f for f in ("|i", "|m", "|s") if rng.random() < 0.3), self.regex()
        if choice < 0.8:
            return path + cased, self.wildcard()
        if choice < 0.87:
            others = [p for p in pool if p != path and self.catalog.fields[p].type in ("string", "enum") and not self.catalog.fields[p].arrays]
            if others and not spec.arrays:
                return f"{path}|fieldref", rng.choice(others)
        if choice < 0.93:
            return f"{path}|neq", self.literal()
        return path, None

    def widen(self, key: str, value: object, spec: Field) -> tuple[str, object]:
        """Now and then a text value becomes a long list (30 to 1,500 values, some
        repeated): compile time must grow linearly with it, and the Sentinel query may pass its
        10,000 characters (E306)."""
        modifiers = set(key.split("|")[1:])
        text = value if isinstance(value, str) else value[0] if isinstance(value, list) and value and isinstance(value[0], str) else None
        if text is None or spec.type != "string" or not modifiers <= WIDENABLE or self.wide_rng.random() >= WIDE_SHARE:
            return key, value
        count = self.wide_rng.choice([30, 300, 1500])
        self.widened += 1
        return key, [f"{text}{i}" if i % 10 else text for i in range(count)]

    # -- a rule ------------------------------------------------------------------------------------
    def selection(self, pool: list[str]) -> dict | list:
        def one_map() -> dict:
            items: dict = {}
            for _ in range(self.rng.randint(1, 3)):
                path = self.rng.choice(pool)
                spec = self.catalog.fields[path]
                key, value = self.widen(*self.item(path, spec, pool), spec)
                items.setdefault(key, value)
            return items

        return one_map() if self.rng.random() < 0.8 else [one_map() for _ in range(self.rng.randint(2, 3))]

    def condition(self, names: list[str], depth: int = 0) -> str:
        rng = self.rng
        roll = rng.random()
        if depth >= 3 or roll < 0.35:
            if rng.random() < 0.15:
                prefix = rng.choice(["sel", "filter", ""])
                target = f"{prefix}*" if prefix and any(n.startswith(prefix) for n in names) else "them"
                return f"{rng.choice(['1 of', 'all of'])} {target}"
            return rng.choice(names)
        if roll < 0.5:
            return f"not {self.condition(names, depth + 1)}"
        joiner = rng.choice([" and ", " or "])
        parts = [self.condition(names, depth + 1) for _ in range(rng.randint(2, 3))]
        text = joiner.join(parts)
        return f"({text})" if depth and rng.random() < 0.7 else text

    def rule(self, label: str, service: str | None = None, name: str | None = None) -> dict:
        rng = self.rng
        service = service or rng.choice(SERVICES)
        pools = self.pools[service]
        pool = pools.match + (pools.partial if rng.random() < 0.15 else [])
        names = rng.sample(["sel", "sel_main", "selection_1", "filter", "filter_legit", "sel2", "evil", "x"], rng.randint(1, 4))
        detection = {n: self.selection(pool) for n in names}
        detection["condition"] = self.condition(names)
        title = f"Fuzz {label} {self.text(0.3)}"[:256]
        if rng.random() < 0.15:  # what ARM would take for an expression
            title = f"[{title[:250]}]"
        rule = {"title": title, "id": str(uuid.UUID(int=rng.getrandbits(128), version=4))}
        if name:
            rule["name"] = name
        rule.update({
            "status": "experimental",
            "description": (self.text(0.6) if rng.random() < 0.7 else "") if rng.random() < 0.85 else f"[{self.text(0.6)}]",
            "tags": sorted({tag for pair in rng.sample(TAGS, rng.randint(0, 3)) for tag in pair}),
            "logsource": {"product": "entra", "service": service},
            "detection": detection,
            "level": rng.choice(LEVELS),
        })
        if rng.random() < 0.5 and not name:
            entity = rng.choice([p for p in ENTITIES if p in pools.returnable])
            rule["fields"] = sorted(set(rng.sample(pools.returnable, rng.randint(0, 3))) | {entity})
            if rng.random() < 0.4:  # deployment settings written out: entity mapping, custom detail
                entity_type, identifier = IDENTIFIERS[entity]
                rule["sentinel"] = {
                    "entityMappings": [{"entityType": entity_type, "fieldMappings": [{"identifier": identifier, "field": entity}]}],
                    "customDetails": {rng.choice(["Who", "Detail", "x_1"]): entity},
                }
        return rule

    def correlation(self, index: int) -> list[dict]:
        """A correlation rule and the rules it correlates (their documents follow it); now and
        then a chain: a correlation of that correlation and one more rule."""
        rng = self.rng
        service = rng.choice(["signins", "interactive", "noninteractive"])
        kind = rng.choice(["event_count", "value_count", "temporal", "temporal_ordered"] * 2 + list(METRIC_KINDS))
        count = 1 if kind not in ("temporal", "temporal_ordered") and rng.random() < 0.5 else rng.randint(2, 3)
        names = [f"fuzz_{index}_{i}" for i in range(count)]
        bases = [self.rule(f"{index}.{i}", service, name) for i, name in enumerate(names)]
        scalar = self.pools[service].scalar
        entity = rng.choice([p for p in ENTITIES if p in scalar])
        group_by = [entity] + sorted(set(rng.sample(scalar, rng.randint(0, 1))) - {entity})
        section: dict = {
            "type": kind, "rules": names if len(names) > 1 or rng.random() < 0.5 else names[0],
            "group-by": group_by, "timespan": rng.choice(TIMESPANS),
        }
        others = [p for p in scalar if p not in group_by]
        if kind in METRIC_KINDS and not any(self.catalog.fields[p].type in NUMERIC_TYPES for p in others):
            kind = section["type"] = "value_count"  # no number to measure in these tables
        if kind == "value_count":
            section["condition"] = {"field": rng.choice(others), "gte": rng.randint(1, 20)}
        elif kind == "event_count":
            section["condition"] = rng.choice([{"gte": rng.randint(1, 50)}, {"gt": 2, "lte": 10}, {"eq": 3}, {"lt": 5}])
        elif kind == "temporal" and rng.random() < 0.3:  # a boolean condition over the rules
            section["condition"] = f"{names[0]} and not ({' or '.join(names[1:])})" if rng.random() < 0.5 else " or ".join(names)
        elif kind == "temporal" and rng.random() < 0.5:
            section["condition"] = {"gte": rng.randint(1, count)}
        elif kind in METRIC_KINDS:
            section["condition"] = self.metric_condition(kind, others)
        if kind != "value_count" and kind not in METRIC_KINDS and len(group_by) > 1 and rng.random() < 0.3:  # an alias (not the entity)
            path = group_by[1]
            section["aliases"] = {"who": {name: path for name in names}}
            section["group-by"] = [group_by[0], "who"]
        if rng.random() < 0.3:
            section["generate"] = True
        correlation = {
            "title": f"Fuzz correlation {index} {self.text(0.3)}"[:256],
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "level": rng.choice(LEVELS),
            "correlation": section,
        }
        upper_only = kind in ("event_count", "value_count") and set(section["condition"]) <= {"lt", "lte", "field"}
        if upper_only or rng.random() > 0.2:
            self.newer_condition(section, others, count, chained=False)
            return [correlation, *bases]
        self.newer_condition(section, others, count, chained=True)
        correlation["name"] = f"fuzz_{index}_inner"
        extra = self.rule(f"{index}.{count}", service, f"fuzz_{index}_{count}")
        outer = {
            "title": f"Fuzz chain {index} {self.text(0.3)}"[:256],
            "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "level": rng.choice(LEVELS),
            "correlation": {
                "type": rng.choice(["temporal", "temporal_ordered"]), "rules": [correlation["name"], extra["name"]],
                "group-by": [entity], "timespan": rng.choice(TIMESPANS),
            },
        }
        if section["timespan"] == "1w" and outer["correlation"]["timespan"] == "1w":
            outer["correlation"]["timespan"] = "1d"  # Sentinel looks back 14 days at most: 1h + 1w + 1w is more
        return [outer, correlation, *bases, extra]

    def newer_condition(self, section: dict, others: list[str], count: int, chained: bool) -> None:
        """Now and then a value_count of two fields, or a `neq` condition (not on a counting
        correlation that another follows: it has no moment to follow)."""
        rng = self.newer
        kind, condition = section["type"], section.get("condition")
        if not isinstance(condition, dict):
            return
        if kind == "value_count" and len(others) > 1 and rng.random() < 0.3:
            condition["field"] = sorted({condition["field"], rng.choice(others)})
        if rng.random() >= 0.2 or (chained and kind in ("event_count", "value_count", "temporal")):
            return
        kept = {k: v for k, v in condition.items() if k in ("field", "percentile")}
        text_share = kind == "value_percentile" and "percentile" not in condition
        if kind in METRIC_KINDS:
            kept["neq"] = rng.choice([1, 5, 12.5]) if text_share else round(rng.uniform(-10, 5000), 1)
        else:
            kept["neq"] = rng.randint(1, count if kind == "temporal" else 5)
        condition.clear()
        condition.update(kept)

    def metric_condition(self, kind: str, fields: list[str]) -> dict:
        """A measure of a number (or, for value_percentile, now and then the share of a text value)."""
        rng = self.rng
        numbers = [p for p in fields if self.catalog.fields[p].type in NUMERIC_TYPES]
        texts = [p for p in fields if self.catalog.fields[p].type in ("string", "enum")]
        if kind == "value_percentile" and (not numbers or rng.random() < 0.5):
            return {"field": rng.choice(texts), rng.choice(["lt", "lte"]): rng.choice([1, 5, 12.5])}
        condition = {"field": rng.choice(numbers), rng.choice(["gt", "gte", "lt", "lte"]): round(rng.uniform(-10, 5000), 1)}
        if kind == "value_percentile":
            condition["percentile"] = rng.randint(0, 100)
        return condition

    def documents(self, index: int) -> list[dict]:
        """The documents of one generated file."""
        return self.correlation(index) if self.rng.random() < 0.15 else [self.rule(str(index))]

"""Model for Sigma correlation rules: a `correlation:` document → a Rule whose `correlation`
says what to count, per which group, within which window, and over which rules.

Parsing follows the Sigma correlation specification (v2): `event_count`, `value_count`,
`temporal`, `temporal_ordered`; `rules` by `name` or `id`; `group-by`; `timespan`; a
`condition` of one bound or a range (`gt: 100` with `lte: 200`); `aliases`; `generate`.
pySigma 2.0.1 refuses ranges, so the section is read here, after the JSON Schema has
checked its shape; pySigma still parses every referenced rule.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, replace
from typing import Callable

from .catalog import Catalog
from .diagnostics import Diagnostic, SourceLocation
from .loader import RuleDocument
from .rule import Rule

TIMESPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
LOWER_BOUNDS, UPPER_BOUNDS = ("gt", "gte"), ("lt", "lte")
COUNTED = {"event_count": "event_count", "value_count": "value_count", "temporal": "rule_count"}
RESERVED = {"window_start", "window_end", *COUNTED.values()}  # columns of the correlation's own result


@dataclass(frozen=True)
class Correlation:
    type: str
    references: tuple[str, ...]  # as written in `rules`
    group_by: tuple[str, ...]  # beta paths or alias names
    timespan: str  # as written: "10m"
    seconds: int
    conditions: tuple[tuple[str, int], ...]  # (operator, count), e.g. (("gt", 100), ("lte", 200))
    value_field: str | None
    aliases: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # alias → ((rule name, beta path), ...)
    generate: bool
    rules: tuple[Rule, ...] = ()  # the referenced rules, once bound

    @property
    def counted(self) -> str | None:
        """The name of the count the condition applies to (none for temporal_ordered)."""
        return COUNTED.get(self.type)

    def path_for(self, name: str, rule: Rule) -> str:
        """The beta path a group-by name (a path or an alias) stands for in one referenced rule."""
        for alias, pairs in self.aliases:
            if alias == name:
                targets = dict(pairs)
                return targets[rule_key(rule, targets)]
        return name


def rule_label(rule: Rule) -> str:
    """How a correlation names one of its rules in messages and in the query: `name`, else `id`."""
    name = rule.data.get("name")
    return name if isinstance(name, str) else rule.id


def rule_key(rule: Rule, names: dict[str, str]) -> str:
    """How an alias mapping names a rule: by `name`, or failing that by `id`."""
    name = rule.data.get("name")
    return name if name in names else rule.id


def parse_timespan(text: str) -> int:
    return int(text[:-1]) * TIMESPAN_SECONDS[text[-1]]


def kql_timespan(seconds: int) -> str:
    """The shortest exact KQL timespan literal (7d for 1w)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _as_list(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


class _Checker:
    """Collects located diagnostics for one correlation document."""

    def __init__(self, document: RuleDocument, catalog: Catalog):
        self.document = document
        self.catalog = catalog
        self.diagnostics: list[Diagnostic] = []

    def error(self, code: str, message: str, *path, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.document.location(*path), self.document.title, hint))

    def scalar_field(self, path: str, what: str, *where) -> None:
        """Group-by and counted fields are compared for equality: one scalar per event."""
        spec = self.catalog.get(path)
        if spec is None:
            suggestion = self.catalog.suggest(path)
            self.error("E403", f"unknown field '{path}' in {what}", *where,
                       hint=f"did you mean '{suggestion}'?" if suggestion else "see docs/reference/fields.md")
        elif spec.arrays or spec.collection or not spec.is_scalar:
            self.error("E403", f"'{path}' in {what} is not a single value per sign-in "
                       f"({'inside the array ' + spec.array_root if spec.arrays else spec.type})", *where,
                       hint="group and count by scalar fields such as userPrincipalName or ipAddress")


def build_correlation(document: RuleDocument, catalog: Catalog) -> tuple[Rule | None, list[Diagnostic]]:
    """A correlation Rule (references not yet bound) from a schema-valid document."""
    data = document.data
    section = data["correlation"]
    check = _Checker(document, catalog)
    kind = section["type"]
    aliases = {alias: dict(targets) for alias, targets in (section.get("aliases") or {}).items()}
    for alias, targets in aliases.items():
        if alias in RESERVED:
            check.error("E404", f"alias '{alias}' is a column the correlation query returns", "correlation", "aliases", alias,
                        hint="choose another name")
        elif catalog.get(alias) is not None:
            check.error("E404", f"alias '{alias}' is also a signIn field name", "correlation", "aliases", alias,
                        hint="choose a name that is not a field, e.g. 'user'")
        for reference, path in targets.items():
            check.scalar_field(path, f"alias '{alias}'", "correlation", "aliases", alias, reference)
    group_by = _as_list(section["group-by"])
    for index, name in enumerate(group_by):
        if name not in aliases:
            where = ("correlation", "group-by") + ((index,) if isinstance(section["group-by"], list) else ())
            check.scalar_field(name, "'group-by'", *where)
    condition = dict(section.get("condition") or {})
    value_field = condition.pop("field", None)
    if value_field is not None:
        if kind != "value_count":
            check.error("E405", f"'field' belongs to value_count conditions, not {kind}", "correlation", "condition", "field")
        elif value_field not in aliases:
            check.scalar_field(value_field, "'condition.field'", "correlation", "condition", "field")
    conditions = _conditions(check, kind, condition, len(_as_list(section["rules"])))
    if check.diagnostics:
        return None, check.diagnostics
    timespan = section["timespan"]
    correlation = Correlation(
        type=kind,
        references=_as_list(section["rules"]),
        group_by=group_by,
        timespan=timespan,
        seconds=parse_timespan(timespan),
        conditions=conditions,
        value_field=value_field,
        aliases=tuple((alias, tuple(targets.items())) for alias, targets in aliases.items()),
        generate=bool(section.get("generate", False)),
    )
    return Rule(
        id=str(data["id"]),
        title=str(data["title"]),
        level=str(data.get("level") or "medium"),
        description=str(data.get("description") or "").strip(),
        service="",
        tags=tuple(data.get("tags") or ()),
        fields=(),
        condition=None,
        source=document.display_path,
        document=document,
        correlation=correlation,
    ), []


def _conditions(check: _Checker, kind: str, condition: dict, rule_count: int) -> tuple[tuple[str, int], ...]:
    """One bound, `eq`, or a lower and an upper bound (a range), in a fixed order."""
    where = ("correlation", "condition")
    if kind == "temporal_ordered":
        if condition:
            check.error("E405", "temporal_ordered takes no condition: every rule must match, in order", *where)
        return ()
    if not condition:  # temporal: all the rules, by default
        return (("gte", rule_count),)
    lower = [op for op in LOWER_BOUNDS if op in condition]
    upper = [op for op in UPPER_BOUNDS if op in condition]
    if "eq" in condition and len(condition) > 1:
        check.error("E405", "'eq' cannot be combined with other bounds", *where)
    elif len(lower) > 1 or len(upper) > 1:
        check.error("E405", f"conflicting bounds {', '.join(lower if len(lower) > 1 else upper)}", *where,
                    hint="a range is one lower bound (gt or gte) and one upper bound (lt or lte)")
    elif lower and upper:
        low = condition[lower[0]] + (1 if lower[0] == "gt" else 0)
        high = condition[upper[0]] - (1 if upper[0] == "lt" else 0)
        if low > high:
            check.error("E405", f"the range {lower[0]} {condition[lower[0]]}, {upper[0]} {condition[upper[0]]} is empty", *where)
    if kind == "temporal":
        needed = condition.get("gte", condition.get("gt", -1) + 1 if "gt" in condition else condition.get("eq", 0))
        if needed > rule_count:
            check.error("E405", f"the condition asks for more distinct rules than the {rule_count} correlated", *where)
    order = ("eq",) + LOWER_BOUNDS + UPPER_BOUNDS
    return tuple((op, condition[op]) for op in order if op in condition)


# -- binding references ---------------------------------------------------------------------------
def bind_correlations(rules: list[Rule], catalog: Catalog) -> tuple[list[Rule], list[Diagnostic]]:
    """Resolve every correlation's `rules` (by name or id) and check its aliases against them.
    Rules referenced only by correlations that do not `generate` them are marked not standalone:
    per the Sigma specification they are building blocks, not detections of their own."""
    by_key: dict[str, Rule] = {}
    for rule in rules:
        by_key[rule.id.lower()] = rule
        name = rule.data.get("name")
        if isinstance(name, str):
            by_key.setdefault(name, rule)
    bound: dict[str, Rule] = {}
    generated: set[str] = set()
    referenced: set[str] = set()
    diagnostics: list[Diagnostic] = []
    names = sorted(k for k in by_key if not _is_uuid(k))
    for rule in rules:
        correlation = rule.correlation
        if correlation is None:
            continue
        problems: list[Diagnostic] = []
        locate: Callable[..., SourceLocation] = rule.document.location
        targets: list[Rule] = []
        for index, reference in enumerate(correlation.references):
            where = ("correlation", "rules") + ((index,) if isinstance(rule.data["correlation"]["rules"], list) else ())
            target = by_key.get(reference) or by_key.get(reference.lower())
            if target is None:
                close = difflib.get_close_matches(reference, names, n=1, cutoff=0.6)
                problems.append(Diagnostic(
                    "E401", f"no rule named or with id '{reference}'", locate(*where), rule.title,
                    f"did you mean '{close[0]}'?" if close else "give the rule a 'name' and compile its file too",
                ))
            elif target.correlation is not None:
                problems.append(Diagnostic(
                    "E402", f"'{reference}' is a correlation rule; correlating correlations is not supported",
                    locate(*where), rule.title, "correlate the rules it correlates, in one correlation",
                ))
            else:
                targets.append(target)
        if not problems:
            problems += _alias_problems(rule, targets, catalog)
        if problems:
            diagnostics += problems
            continue
        referenced.update(t.id for t in targets)
        if correlation.generate:
            generated.update(t.id for t in targets)
        bound[rule.id] = replace(rule, correlation=replace(correlation, rules=tuple(targets)))
    result = []
    for rule in rules:
        rule = bound.get(rule.id, rule)
        if rule.id in referenced and rule.id not in generated:
            rule = replace(rule, standalone=False)
        result.append(rule)
    return result, diagnostics


def _is_uuid(key: str) -> bool:
    return len(key) == 36 and key.count("-") == 4


def _alias_problems(rule: Rule, targets: list[Rule], catalog: Catalog) -> list[Diagnostic]:
    """Every alias used must name a field for every correlated rule, each of one type."""
    correlation = rule.correlation
    diagnostics = []
    used = set(correlation.group_by) | ({correlation.value_field} if correlation.value_field else set())
    for alias, mapping in correlation.aliases:
        names = dict(mapping)
        where = ("correlation", "aliases", alias)
        known = {t.data.get("name") for t in targets} | {t.id for t in targets}
        for reference in names:
            if reference not in known:
                diagnostics.append(Diagnostic(
                    "E404", f"alias '{alias}' names '{reference}', which is not one of the correlated rules",
                    rule.document.location(*where, reference), rule.title,
                ))
        if alias not in used:
            continue
        missing = [rule_label(t) for t in targets if rule_key(t, names) not in names]
        if missing:
            diagnostics.append(Diagnostic(
                "E404", f"alias '{alias}' gives no field for {', '.join(missing)}",
                rule.document.location(*where), rule.title, "map every correlated rule's name to a field",
            ))
            continue
        types = {catalog.get(path).type for path in names.values() if catalog.get(path)}
        if len(types) > 1:
            diagnostics.append(Diagnostic(
                "E404", f"alias '{alias}' joins fields of different types ({', '.join(sorted(types))})",
                rule.document.location(*where), rule.title,
            ))
    return diagnostics

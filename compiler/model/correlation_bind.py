"""Bind step for correlation rules: resolve each `rules` reference (by `name` or `id`) to a
rule or to another correlation, to any depth, and check what depends on the referenced
rules: fields and their types, aliases, and what a correlated correlation returns.

A correlated correlation returns its group-by names (and, at each moment it is met, the
time), so a chain can group by them, per the specification's note that a referenced
correlation keeps its own `group-by`; aliases resolve per level. Rules referenced only by
correlations that do not `generate` them are marked not standalone: per the Sigma
specification they are building blocks, not detections of their own.
"""

from __future__ import annotations

import difflib
from dataclasses import replace

from ..diagnostics import Diagnostic
from ..load.limits import MAX_VALUES, detection_values
from ..validate.catalog import NUMERIC_TYPES, Catalog
from .correlation import RESERVED, Correlation, rule_key, rule_label
from .rule import Rule

TEXT_TYPES = ("string", "enum")


def bind_correlations(
    rules: list[Rule], catalog: Catalog, broken: frozenset[str] = frozenset(),
) -> tuple[list[Rule], list[Diagnostic]]:
    """Every correlation with its references bound (inner ones first); `broken`: ids and
    names (lower-cased) of documents that failed on their own, so that a reference to one
    says so instead of 'no rule named'."""
    by_key: dict[str, Rule] = {}
    for rule in rules:
        by_key[rule.id.lower()] = rule
        name = rule.data.get("name")
        if isinstance(name, str):
            by_key.setdefault(name, rule)
    binder = _Binder(by_key, catalog, broken)
    for rule in rules:
        if rule.correlation is not None:
            binder.bind(rule, ())
    referenced, generated = set(), set()
    for rule in rules:
        if rule.correlation is None:
            continue
        for reference in rule.correlation.references:
            target = binder.lookup(reference)
            if target is not None:
                referenced.add(target.id)
                if rule.correlation.generate:
                    generated.add(target.id)
    result = []
    for rule in rules:
        rule = binder.bound.get(rule.id) or rule
        if rule.id in referenced and rule.id not in generated:
            rule = replace(rule, standalone=False)
        result.append(rule)
    return result, binder.diagnostics


class _Binder:
    def __init__(self, by_key: dict[str, Rule], catalog: Catalog, broken: frozenset[str]):
        self.by_key = by_key
        self.catalog = catalog
        self.broken = broken
        self.names = sorted(k for k in by_key if not _is_uuid(k))
        self.bound: dict[str, Rule | None] = {}  # rule id → bound rule, or None if it cannot be
        self.diagnostics: list[Diagnostic] = []

    def lookup(self, reference: str) -> Rule | None:
        return self.by_key.get(reference) or self.by_key.get(reference.lower())

    def bind(self, rule: Rule, chain: tuple[str, ...]) -> Rule | None:
        """The correlation with its references bound, or None (and diagnostics) if it cannot be."""
        if rule.id in self.bound:
            return self.bound[rule.id]
        correlation = rule.correlation
        locate = rule.document.location
        problems: list[Diagnostic] = []
        targets: list[Rule] = []
        failed_inside = False
        for index, reference in enumerate(correlation.references):
            where = ("correlation", "rules") + ((index,) if isinstance(rule.data["correlation"]["rules"], list) else ())
            target = self.lookup(reference)
            if target is None:
                if reference.lower() in self.broken:
                    problems.append(Diagnostic("E401", f"'{reference}' has errors of its own (see them above)",
                                               locate(*where), rule.title))
                    continue
                close = difflib.get_close_matches(reference, self.names, n=1, cutoff=0.6)
                problems.append(Diagnostic(
                    "E401", f"no rule named or with id '{reference}'", locate(*where), rule.title,
                    f"did you mean '{close[0]}'?" if close else "give the rule a 'name' and compile its file too",
                ))
            elif target.id in (*chain, rule.id):
                loop = " → ".join(rule_label(self.by_key[i.lower()]) for i in (*chain, rule.id)) + f" → {rule_label(target)}"
                problems.append(Diagnostic("E402", f"correlations refer to each other in a loop: {loop}", locate(*where),
                                           rule.title, "a correlation cannot depend on itself"))
            elif target.correlation is not None:
                inner = self.bind(target, (*chain, rule.id))
                if inner is None:
                    failed_inside = True
                elif not inner.correlation.fires:
                    bound = "a 'neq' bound" if inner.correlation.excluded is not None else "only an upper bound"
                    problems.append(Diagnostic(
                        "E410", f"'{reference}' has {bound}, so it is never met at a moment another correlation could follow",
                        locate(*where), rule.title, "give it a lower bound (gt, gte or eq), or correlate its rules directly",
                    ))
                else:
                    targets.append(inner)
            else:
                targets.append(target)
        if not problems and not failed_inside:
            problems = _LevelCheck(rule, targets, self.catalog).problems()
        self.diagnostics += problems
        if problems or failed_inside:
            self.bound[rule.id] = None
            return None
        bound = replace(rule, correlation=replace(correlation, rules=tuple(targets)))
        self.bound[rule.id] = bound
        return bound


def _is_uuid(key: str) -> bool:
    return len(key) == 36 and key.count("-") == 4


def name_type(correlation: Correlation, name: str, catalog: Catalog) -> str | None:
    """The catalog type a group-by or counted name has in a bound correlation's events."""
    for rule in correlation.rules:
        path = correlation.path_for(name, rule)
        if rule.correlation is not None:
            return name_type(rule.correlation, path, catalog)
        spec = catalog.get(path)
        return spec.type if spec else None
    return None


def correlated_values(targets: list[Rule]) -> int:
    """The detection values of every rule under these (each rule once, however often it is
    referenced): what one correlation query holds."""
    counted: dict[str, int] = {}
    pending = list(targets)
    while pending:
        rule = pending.pop()
        if rule.id in counted:
            continue
        if rule.correlation is not None:
            counted[rule.id] = 0
            pending.extend(rule.correlation.rules)
        else:
            counted[rule.id] = sum(detection_values(rule.data.get("detection")).values())
    return sum(counted.values())


class _LevelCheck:
    """What one correlation asks of the rules it correlates, checked once they are known."""

    def __init__(self, rule: Rule, targets: list[Rule], catalog: Catalog):
        self.rule = rule
        self.correlation: Correlation = rule.correlation
        self.targets = targets
        self.catalog = catalog
        self.diagnostics: list[Diagnostic] = []

    def error(self, code: str, message: str, where: tuple, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.rule.document.location(*where), self.rule.title, hint))

    def problems(self) -> list[Diagnostic]:
        correlation = self.correlation
        section = self.rule.data["correlation"]
        values = correlated_values(self.targets)
        if values > MAX_VALUES:  # its query holds them all: the bound on one rule's values (load/limits.py)
            self.error("E008", f"the rules it correlates hold {values} values together; a rule may hold at most {MAX_VALUES}",
                       ("correlation", "rules"), "correlate fewer rules, or shorten their value lists")
            return self.diagnostics
        aliases = {alias: dict(pairs) for alias, pairs in correlation.aliases}
        for alias, names in aliases.items():
            self.check_alias(alias, names)
        for index, name in enumerate(correlation.group_by):
            where = ("correlation", "group-by") + ((index,) if isinstance(section["group-by"], list) else ())
            self.check_name(name, "'group-by'", where, aliases)
        condition = section.get("condition")
        listed = isinstance(condition, dict) and isinstance(condition.get("field"), list)
        for index, name in enumerate(correlation.value_fields):
            where = ("correlation", "condition", "field") + ((index,) if listed else ())
            self.check_name(name, "'condition.field'", where, aliases)
        if not self.diagnostics and correlation.type in ("value_sum", "value_avg", "value_median", "value_percentile"):
            self.check_measured_type()
        for index, path in enumerate(correlation.fields):
            self.scalar_field(path, "'fields'", ("fields", index))
        return self.diagnostics

    def check_alias(self, alias: str, names: dict[str, str]) -> None:
        where = ("correlation", "aliases", alias)
        known = {t.data.get("name") for t in self.targets} | {t.id for t in self.targets}
        for reference, target in names.items():
            if reference not in known:
                self.error("E404", f"alias '{alias}' names '{reference}', which is not one of the correlated rules", where + (reference,))
        for rule in self.targets:
            key = rule_key(rule, names)
            if key in names:
                self.field_of(rule, names[key], f"alias '{alias}'", where + (key,))

    def check_name(self, name: str, what: str, where: tuple, aliases: dict[str, dict[str, str]]) -> None:
        if name in aliases:
            names = aliases[name]
            alias_where = ("correlation", "aliases", name)
            missing = [rule_label(t) for t in self.targets if rule_key(t, names) not in names]
            if missing:
                self.error("E404", f"alias '{name}' gives no field for {', '.join(missing)}", alias_where,
                           "map every correlated rule's name to a field")
                return
            types = {self.type_of(t, names[rule_key(t, names)]) for t in self.targets} - {None}
            if len(types) > 1:
                self.error("E404", f"alias '{name}' joins fields of different types ({', '.join(sorted(types))})", alias_where)
            return
        if name in RESERVED:
            self.error("E404", f"'{name}' is a column the correlation query returns", where, "choose another name")
            return
        checked_base = False
        for rule in self.targets:
            if rule.correlation is None:
                if not checked_base:
                    self.scalar_field(name, what, where)
                    checked_base = True
            else:
                self.field_of(rule, name, what, where)

    def field_of(self, rule: Rule, field: str, what: str, where: tuple) -> None:
        """`field` must exist in the events of `rule`: a scalar beta path of a rule, or a
        group-by name of a correlation."""
        if rule.correlation is None:
            self.scalar_field(field, what, where)
        elif field not in rule.correlation.group_by:
            returned = ", ".join(rule.correlation.group_by)
            self.error("E409", f"'{field}' in {what} is not returned by the correlation '{rule_label(rule)}', which returns {returned}",
                       where, f"group by one of {returned}, or map an alias to one of them")

    def scalar_field(self, path: str, what: str, where: tuple) -> None:
        """Group-by, counted and listed fields are one value per sign-in."""
        spec = self.catalog.get(path)
        if spec is None:
            suggestion = self.catalog.suggest(path)
            self.error("E403", f"unknown field '{path}' in {what}", where,
                       f"did you mean '{suggestion}'?" if suggestion else "see docs/reference/fields.md")
        elif spec.arrays or spec.collection or not spec.is_scalar:
            self.error("E403", f"'{path}' in {what} is not a single value per sign-in "
                       f"({'inside the array ' + spec.array_root if spec.arrays else spec.type})", where,
                       "group and count by scalar fields such as userPrincipalName or ipAddress")

    def type_of(self, rule: Rule, field: str) -> str | None:
        if rule.correlation is not None:
            return name_type(rule.correlation, field, self.catalog)
        spec = self.catalog.get(field)
        return spec.type if spec else None

    def check_measured_type(self) -> None:
        """Sums, averages and percentiles need numbers; value_percentile of text measures how
        common each value is, and then takes no `percentile`."""
        correlation = self.correlation
        kind, field = correlation.type, correlation.value_field
        where = ("correlation", "condition", "field")
        types = {self.type_of(t, correlation.path_for(field, t)) for t in self.targets} - {None}
        numeric = bool(types) and types <= set(NUMERIC_TYPES)
        text = bool(types) and types <= set(TEXT_TYPES)
        given = "percentile" in (self.rule.data["correlation"].get("condition") or {})
        described = ", ".join(sorted(types)) or "unknown"
        if kind == "value_percentile" and text:
            if given:
                self.error("E405", f"'{field}' is text: value_percentile measures each value's share of the events, so 'percentile' does not apply",
                           ("correlation", "condition", "percentile"), "leave out 'percentile', or count by a numeric field")
        elif not numeric:
            self.error("E405", f"{kind} needs a numeric field; '{field}' is {described}", where,
                       "numeric fields: " + ", ".join(sorted(p for p, f in self.catalog.fields.items()
                                                              if f.type in NUMERIC_TYPES and f.is_scalar and not f.arrays)))
        elif kind == "value_percentile" and not given:
            self.error("E405", f"value_percentile of the number '{field}' needs 'percentile' (0 to 100)", ("correlation", "condition"),
                       "e.g. percentile: 95; value_median is percentile 50")

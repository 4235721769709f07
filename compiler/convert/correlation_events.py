"""Convert step for correlations, part 1: each table read once.

Every single-event rule a correlation reaches, through any chain, is matched in one pass over
each table: one leg per table keeps the rows that match any of them, and says which (a
boolean column per rule, `_is_<name>`, when there are several). The result, `_events`, is
materialized: every later step of the query reads it, never the tables again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..diagnostics import Diagnostic
from ..map.lower import AnyElement, Tree, constant_for, projection_access
from ..map.tables import Registry
from ..model.correlation import rule_label
from ..model.rule import Rule
from .kql import Leg, collect_elements
from .query import Let, QueryBuilder, conjuncts, output_name

EVENTS = "_events"


@dataclass
class Events:
    """The materialized events of every rule a correlation reaches."""

    let: Let
    flags: dict[str, str] = field(default_factory=dict)  # rule id → its boolean column (several rules only)
    columns: dict[str, str] = field(default_factory=dict)  # beta path → its column in `_events`


def base_rules(top: Rule) -> list[tuple[Rule, Rule]]:
    """(correlation, single-event rule it references) for every level of a chain, top first."""
    found = []
    for rule in top.correlation.rules:
        if rule.correlation is None:
            found.append((top, rule))
    for rule in top.correlation.rules:
        if rule.correlation is not None:
            found += base_rules(rule)
    return found


def level_names(correlation) -> list[str]:
    """The names a level groups and measures by."""
    return list(dict.fromkeys([*correlation.group_by, *correlation.value_fields]))


class EventsBuilder:
    def __init__(self, single: QueryBuilder, registry: Registry):
        self.single = single
        self.registry = registry
        self.generator = single.generator

    def build(self, top: Rule) -> tuple[Events | None, list[Diagnostic]]:
        pairs = base_rules(top)
        rules = list({rule.id: rule for _, rule in pairs}.values())
        needed: dict[str, dict[str, None]] = {rule.id: {} for rule in rules}  # rule id → paths that must have a column
        listed = dict.fromkeys(top.correlation.fields)  # optional: a table without the column gives nulls
        for level, rule in pairs:
            needed[rule.id].update(dict.fromkeys(level.correlation.path_for(n, rule) for n in level_names(level.correlation)))
        diagnostics: list[Diagnostic] = []
        trees: dict[str, dict[str, Tree]] = {}  # rule id → table → lowered condition
        for rule in rules:
            live, problems = self.single.live_trees(rule)
            diagnostics += problems
            if live is None:
                return None, diagnostics
            kept = {t: tree for t, tree in live.items() if self._has_columns(t, needed[rule.id])}
            if not kept:
                diagnostics.append(self._no_column(rule, [level for level, r in pairs if r.id == rule.id], list(live)))
                return None, diagnostics
            trees[rule.id] = kept
        flags = _flag_names(rules) if len(rules) > 1 else {}
        paths = list(dict.fromkeys([p for rule in rules for p in needed[rule.id]] + list(listed)))
        columns = {path: output_name(path) for path in paths}
        tables = list(dict.fromkeys(t for rule in rules for t in trees[rule.id]))
        legs = [self._leg(table, [(r, trees[r.id][table]) for r in rules if table in trees[r.id]], flags, columns)
                for table in tables]
        return Events(Let(EVENTS, legs=legs, materialize=True), flags, columns), diagnostics

    def _no_column(self, rule: Rule, levels: list[Rule], tables: list[str]) -> Diagnostic:
        """E406: which names of which correlation have no column in any table the rule reads."""
        for level in levels:
            c = level.correlation
            missing = [n for n in level_names(c) if not any(self._has_columns(t, [c.path_for(n, rule)]) for t in tables)]
            if missing:
                break
        else:  # each name has a column somewhere, but no table has them all
            level, missing = levels[0], level_names(levels[0].correlation)
        where = ("correlation", "group-by") if set(missing) & set(level.correlation.group_by) else ("correlation", "condition", "field")
        return Diagnostic(
            "E406", f"rule '{rule_label(rule)}' has no column for {', '.join(missing)} in {', '.join(tables)}",
            level.document.location(*where), level.title, target=self.single.platform,
        )

    def _has_columns(self, table: str, paths) -> bool:
        """A leg whose group-by or measured field has no column can never join: leave it out."""
        mapping = self.registry.mapping(table)
        return all(projection_access(mapping, p) is not None or constant_for(mapping, p) is not None for p in paths)

    def _leg(self, table: str, matched: list[tuple[Rule, Tree]], flags: dict[str, str], columns: dict[str, str]) -> Leg:
        """One pass over `table` keeping the rows any of `matched` keeps."""
        generator = self.generator
        elements: list[AnyElement] = []
        for _, tree in matched:
            collect_elements(tree, elements)
        element_flags = {element: f"_any{index + 1}" for index, element in enumerate(dict.fromkeys(elements))}
        leg = Leg(table)
        mapping = self.registry.mapping(table)
        projected = [generator.assign("_time", mapping.table.time_column)]
        if len(matched) == 1:
            rule, tree = matched[0]
            before, after = _split(tree)
            leg.steps += generator.where_steps(before, element_flags)
            leg.steps += generator.mv_apply_steps(list(element_flags), element_flags)
            leg.steps += generator.where_steps(after, element_flags)
            projected += [generator.assign(flags[rule.id], generator.boolean(True))] if flags else []
            last = []
        else:
            befores = [_split(tree)[0] for _, tree in matched]
            if element_flags and all(befores):
                prefilter = generator.any_of([generator.group(generator.all_of([generator.condition(p, {}, "and") for p in parts]))
                                              for parts in befores])
                leg.steps.append(generator.filter(prefilter))
            conditions = {rule.id: generator.condition(tree, element_flags) for rule, tree in matched}
            if not element_flags:
                leg.steps.append(generator.filter(generator.any_of([generator.group(c) for c in conditions.values()])))
            leg.steps += generator.mv_apply_steps(list(element_flags), element_flags)
            projected += [generator.assign(flags[rule_id], text) for rule_id, text in conditions.items()]
            last = [generator.filter(generator.any_of([flags[rule.id] for rule, _ in matched]))] if element_flags else []
        projected += [generator.assign(name, self.single.column_expression(mapping, path)) for path, name in columns.items()]
        leg.steps.append(generator.project(projected))
        leg.steps += last
        return leg


def _split(tree: Tree) -> tuple[list[Tree], list[Tree]]:
    """The conjuncts that test the row itself, and those that need an array element (mv-apply)."""
    before, after = [], []
    for part in conjuncts(tree):
        found: list[AnyElement] = []
        collect_elements(part, found)
        (after if found else before).append(part)
    return before, after


def generated_name(label: str, prefix: str, fallback: str, taken) -> str:
    """A name for the query made from a rule's label: `prefix` + the label as an identifier
    (`x-y` → `_is_x_y`); where that is no identifier or is `taken`, `fallback`; where that is
    taken too (a rule named `rule2`, or `c2`), `fallback_2`, `fallback_3`, …. Unique among
    `taken`, and the same for the same rules in the same order."""
    identifier = re.sub(r"[^A-Za-z0-9_]", "_", label)
    if re.match(r"[A-Za-z]", identifier) and prefix + identifier not in taken:
        return prefix + identifier
    name, number = fallback, 2
    while name in taken:
        name, number = f"{fallback}_{number}", number + 1
    return name


def _flag_names(rules: list[Rule]) -> dict[str, str]:
    """`_is_<name>` per rule, or `_is_rule<n>` where the name is not an identifier or repeats."""
    flags: dict[str, str] = {}
    for index, rule in enumerate(rules, start=1):
        flags[rule.id] = generated_name(rule_label(rule), "_is_", f"_is_rule{index}", set(flags.values()))
    return flags

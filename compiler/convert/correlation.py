"""Convert step for correlation rules: one query from the events of every rule they reach.

The query reads each table once (`_events`, convert/correlation_events.py). Then each correlation of
a chain, innermost first, selects its rules' events from `_events` (and the moments the
correlations it correlates are met, from their `_met`), as its input `{prefix}_in`, and finds
its windows (convert/correlation_windows.py). The outermost one returns, per group, the first window in
which it is met.
"""

from __future__ import annotations

from ..diagnostics import Diagnostic
from ..map.tables import Registry
from ..model.correlation import TEMPORAL, Correlation, kql_timespan, rule_label
from ..model.correlation_bind import TEXT_TYPES, name_type
from ..model.rule import Rule
from ..validate.catalog import Catalog
from .correlation_events import EVENTS, Events, EventsBuilder, generated_name
from .correlation_windows import Windows
from .kql import GENERATORS, KqlGenerator, Leg
from .query import Let, Query, QueryBuilder, output_name


class CorrelationBuilder:
    def __init__(self, registry: Registry, catalog: Catalog, platform: str):
        self.registry = registry
        self.catalog = catalog
        self.single = QueryBuilder(registry, catalog, platform)
        self.generator: KqlGenerator = GENERATORS[platform]()
        self.platform = platform

    def build(self, rule: Rule) -> tuple[Query | None, list[Diagnostic]]:
        events, diagnostics = EventsBuilder(self.single, self.registry).build(rule)
        if events is None:
            return None, diagnostics
        level = _Levels(self, events)
        windows = level.add(rule, "")
        correlation = rule.correlation
        member = self.generator.member
        fields = [(member(output_name(p)), member(output_name(p))) for p in correlation.fields
                  if output_name(p) not in {output_name(n) for n in correlation.group_by}]
        value_column = member(output_name(correlation.value_field)) if windows.value_is_text else None
        extra, source, steps = windows.result(correlation.measured, value_column, fields)
        returned = {}
        for name in correlation.group_by:  # beta path → output column, for entity mappings
            paths = correlation.paths_of(name)
            if len(paths) == 1:
                returned[paths.pop()] = output_name(name)
        if value_column:
            returned[correlation.value_field] = output_name(correlation.value_field)
        return Query(
            rule, self.platform, legs=[], tail=steps, returned=returned, lets=level.lets + extra,
            source=source, summary="correlation: " + self.describe(rule),
        ), diagnostics

    def describe(self, rule: Rule) -> str:
        """One line on what a correlation (and those it correlates) counts, for the header."""
        c = rule.correlation
        field = c.value_field if len(c.value_fields) < 2 else f"({', '.join(c.value_fields)})"
        what = {
            "event_count": "events", "value_count": f"distinct {field}", "temporal": "distinct rules",
            "temporal_ordered": "rules in order", "value_sum": f"sum of {field}", "value_avg": f"average of {field}",
            "value_median": f"median of {field}", "value_percentile": f"{c.percentile}th percentile of {field}",
        }[c.type]
        if c.type == "value_percentile" and self.is_text(c):
            what = f"% of the events with each {field}"
        if c.expression is not None:
            what = "rules " + _expression_text(c.expression)
        bounds = " and ".join(f"{self.generator.comparisons[op]} {n}" for op, n in c.conditions)
        rules = ", ".join(
            f"{rule_label(r)} ({self.describe(r)})" if r.correlation is not None else rule_label(r) for r in c.rules
        )
        return (f"{c.type} of {rules} by {', '.join(c.group_by)} within {c.timespan}: {what}"
                + (f" {bounds}" if bounds and c.type != "temporal_ordered" and c.expression is None else ""))

    def is_text(self, correlation: Correlation) -> bool:
        return correlation.type == "value_percentile" and name_type(correlation, correlation.value_field, self.catalog) in TEXT_TYPES


class _Levels:
    """The lets of every correlation of a chain, innermost first, each once."""

    def __init__(self, builder: CorrelationBuilder, events: Events):
        self.builder = builder
        self.events = events
        self.lets: list[Let] = [events.let]
        self.prefixes: dict[str, str] = {}  # correlation rule id → its step prefix

    def add(self, rule: Rule, prefix: str) -> Windows:
        correlation = rule.correlation
        for target in correlation.rules:
            if target.correlation is not None and target.id not in self.prefixes:
                self.prefixes[target.id] = self.prefix_for(target)
                self.add(target, self.prefixes[target.id])
        g = self.builder.generator
        keys = [g.member(output_name(name)) for name in correlation.group_by]
        listed = prefix == "" and [p for p in correlation.fields if output_name(p) not in {output_name(n) for n in correlation.group_by}]
        selections = [self.selection(correlation, target, keys, listed or []) for target in correlation.rules]
        values = value_columns(correlation)
        present = [g.call("isnotempty", key) for key in keys]
        present += [g.call("isnotempty" if correlation.type == "value_count" or self.builder.is_text(correlation)
                           else "isnotnull", column) for column in values]
        name = f"{prefix}_in"
        steps = [g.filter(g.all_of(present))]
        if len(values) > 1:  # one text per combination: a bag of the fields' values, as JSON
            pairs = [part for field, column in zip(correlation.value_fields, values) for part in (g.string(field), column)]
            steps.append(g.extend([("_value", g.call("tostring", g.call("bag_pack", *pairs)))]))
        if len(selections) == 1:
            self.lets.append(Let(name, source=selections[0].table, steps=[*selections[0].steps, *steps]))
        else:
            self.lets.append(Let(name, legs=selections, steps=steps))
        windows = Windows(
            prefix, keys, kql_timespan(correlation.seconds), correlation,
            labels=[g.string(rule_label(r)) for r in correlation.rules], g=g, value_is_text=self.builder.is_text(correlation),
        )
        self.lets += windows.lets()
        return windows

    def prefix_for(self, rule: Rule) -> str:
        """`_<name>` for the lets of a correlated correlation (`_<name>_in`, …), unique in the query."""
        return generated_name(rule_label(rule), "_", f"_c{len(self.prefixes) + 1}", {*self.prefixes.values(), "_events"})

    def selection(self, correlation: Correlation, target: Rule, keys: list[str], listed: list[str]) -> Leg:
        """One correlated rule's part of a correlation's input: its events, or the moments a
        correlated correlation is met, with the columns the correlation reads."""
        g = self.builder.generator
        columns = ["_time"]
        if correlation.type in TEMPORAL:
            columns.append(g.assign("_rule", g.string(rule_label(target))))
        if target.correlation is not None:
            source, steps = f"{self.prefixes[target.id]}_met", []
        else:
            flag = self.events.flags.get(target.id)
            source, steps = EVENTS, [g.filter(flag)] if flag else []

        def column(path: str) -> str:
            """A correlation returns its names as columns; `_events` has a column per beta path."""
            return g.member(output_name(path) if target.correlation is not None else self.events.columns[path])

        for key, name in zip(keys, correlation.group_by):
            columns.append(g.assign_or_keep(key, column(correlation.path_for(name, target))))
        for value, field in zip(value_columns(correlation), correlation.value_fields):
            columns.append(g.assign_or_keep(value, column(correlation.path_for(field, target))))
        if target.correlation is None:
            columns += [g.assign_or_keep(g.member(output_name(p)), column(p)) for p in listed]
        steps.append(g.project(columns))
        return Leg(source, steps)


def value_columns(correlation: Correlation) -> list[str]:
    """The columns of `condition.field` in a correlation's input: `_value`, or for a value_count
    of several fields `_value1`, `_value2`, ... (combined into `_value` once checked)."""
    fields = correlation.value_fields
    return ["_value"] if len(fields) == 1 else [f"_value{index}" for index in range(1, len(fields) + 1)]


def _expression_text(tree) -> str:
    if tree[0] == "rule":
        return tree[1]
    if tree[0] == "not":
        return f"not {_expression_text(tree[1])}"
    return f" {tree[0]} ".join(f"({_expression_text(a)})" if a[0] in ("and", "or") else _expression_text(a) for a in tree[1:])

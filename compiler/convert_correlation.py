"""Convert step for correlation rules: the correlated rules' legs, then windows over them.

Windows slide: each one starts at a matching event and lasts `timespan` ([t, t + timespan],
both ends included). Any set of events that fits in a timespan has a first event, and the
window starting there holds them all, so a burst is never split by a bin edge the way fixed
`bin()` buckets split it. The count a condition tests is the largest count of any window of
the group (event_count, value_count, temporal); temporal_ordered chains strictly later
events, earliest first. Each window is found with a self-join of the group's matching events,
which costs the square of a group's matching events: cheap for the filtered events
correlations see, and documented in docs/correlations.md.
"""

from __future__ import annotations

from .backends.kql import GENERATORS, KqlGenerator
from .catalog import Catalog
from .convert import Let, Query, QueryBuilder, output_name
from .correlation import kql_timespan, rule_label
from .diagnostics import Diagnostic
from .mapping import constant_for, projection_access
from .rule import Rule
from .tables import Registry

OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=="}


class CorrelationBuilder:
    def __init__(self, registry: Registry, catalog: Catalog, platform: str):
        self.registry = registry
        self.single = QueryBuilder(registry, catalog, platform)
        self.generator: KqlGenerator = GENERATORS[platform]()
        self.platform = platform

    def build(self, rule: Rule) -> tuple[Query | None, list[Diagnostic]]:
        correlation = rule.correlation
        member = self.generator.member
        keys = [member(output_name(name)) for name in correlation.group_by]
        value = member(output_name(correlation.value_field)) if correlation.value_field else None
        tagged = correlation.type in ("temporal", "temporal_ordered")
        names = list(dict.fromkeys([*correlation.group_by, *([correlation.value_field] if value else [])]))
        legs, diagnostics = [], []
        for base in correlation.rules:
            columns: list = ["_time = {time}"]
            if tagged:
                columns.append(f"_rule = {self.generator.string(rule_label(base))}")
            columns += [(member(output_name(name)), correlation.path_for(name, base)) for name in names]
            query, problems = self.single.build(base, columns)
            diagnostics += problems
            if query is None:
                return None, diagnostics
            kept = [leg for leg in query.legs if self._has_columns(leg.table, correlation, base, names)]
            if not kept:
                diagnostics.append(Diagnostic(
                    "E406", f"rule '{rule_label(base)}' has no column for {', '.join(names)} in {', '.join(query.tables)}",
                    rule.document.location("correlation", "group-by"), rule.title, target=self.platform,
                ))
                return None, diagnostics
            legs += kept
        present = " and ".join(f"isnotempty({key})" for key in keys)
        lets = [Let("_events", legs=legs, steps=[f"where {present}"])]
        span = kql_timespan(correlation.seconds)
        on = ", ".join(keys)
        if correlation.type == "temporal_ordered":
            lets += self._ordered_steps(correlation, keys, span)
            final = Let("", source=f"_step{len(correlation.rules)}", steps=[
                f"summarize arg_min(window_start, _last) by {on}",
                f"project {on}, window_start, window_end = _last",
            ])
        else:
            count = correlation.counted
            pair = {"event_count": "", "value_count": f", _value = {value}", "temporal": ", _r = _rule"}[correlation.type]
            steps = [
                f"join kind=inner (_events | project _t = _time{pair}, {on}) on {on}",
                f"where _t between (_time .. (_time + {span}))" + (" and isnotempty(_value)" if value else ""),
            ]
            if correlation.type == "event_count":
                steps.append(f"summarize {count} = count() by {on}, window_start = _time")
            else:
                distinct = "_value" if value else "_r"
                steps += [f"summarize by {on}, window_start = _time, {distinct}",
                          f"summarize {count} = count() by {on}, window_start"]
            lets.append(Let("_windows", source="_events", steps=steps))
            test = " and ".join(f"{count} {OPERATORS[op]} {n}" for op, n in correlation.conditions)
            final = Let("", source="_windows", steps=[
                f"summarize {count} = max({count}) by {on}",
                f"where {test}",
                f"join kind=inner _windows on {on}, {count}",
                f"summarize window_start = min(window_start) by {on}, {count}",
                f"extend window_end = window_start + {span}",
            ])
        returned = {}
        for name in correlation.group_by:  # beta path → column, for entity mappings
            paths = {correlation.path_for(name, base) for base in correlation.rules}
            if len(paths) == 1:
                returned[paths.pop()] = output_name(name)
        return Query(
            rule, self.platform, legs=[], tail=final.steps, returned=returned, lets=lets,
            source=final.source, summary=self._summary(rule),
        ), diagnostics

    def _ordered_steps(self, correlation, keys: list[str], span: str) -> list[Let]:
        """Step n keeps, per first event, the earliest strictly later match of rule n."""
        on = ", ".join(keys)
        labels = [self.generator.string(rule_label(r)) for r in correlation.rules]
        lets = [Let("_step1", source="_events", steps=[
            f"where _rule == {labels[0]}", f"project window_start = _time, _last = _time, {on}",
        ])]
        for index, label in enumerate(labels[1:], start=2):
            lets.append(Let(f"_step{index}", source=f"_step{index - 1}", steps=[
                f"join kind=inner (_events | where _rule == {label} | project _t = _time, {on}) on {on}",
                f"where _t > _last and _t <= window_start + {span}",
                f"summarize _last = min(_t) by window_start, {on}",
            ]))
        return lets

    def _has_columns(self, table: str, correlation, base: Rule, names: list[str]) -> bool:
        """A leg whose group-by or counted field has no column can never join: leave it out."""
        mapping = self.registry.mapping(table)
        for name in names:
            path = correlation.path_for(name, base)
            if projection_access(mapping, path) is None and constant_for(mapping, path) is None:
                return False
        return True

    @staticmethod
    def _summary(rule: Rule) -> str:
        c = rule.correlation
        what = {"event_count": "events", "value_count": f"distinct {c.value_field}", "temporal": "distinct rules",
                "temporal_ordered": "rules in order"}[c.type]
        bounds = " and ".join(f"{OPERATORS[op]} {n}" for op, n in c.conditions)
        return (f"correlation: {c.type} of {', '.join(rule_label(r) for r in c.rules)} by {', '.join(c.group_by)}"
                f" within {c.timespan}: {what}" + (f" {bounds}" if bounds and c.type != "temporal_ordered" else ""))

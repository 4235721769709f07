"""Convert step for correlations, part 2: the windows of one correlation, as `let` steps.

A window is a stretch of `timespan` that ends at an event, both ends included: [t - span, t].
Any set of events that fits in a timespan has a last event, and the window ending there holds
them all, so no burst is split the way fixed `bin()` buckets split it; and a window ending at
an event is the moment the correlation is met, which is what a chain correlates (`_met`: the
group keys and `_time`, one row per such moment).

To stay cheap, time is also cut into bins one timespan wide, and every window lies within two
adjacent bins, a *pair*. Each step first keeps only the pairs (and so the groups) where the
condition could hold, a semi-join on the keys, before any join; joins never leave a pair.
docs/correlations.md gives the worst case of each shape.

The step names share a prefix per correlation, so the levels of a chain do not collide:
`{p}_in` is the correlation's own input (its rules' events, with `_time`, the group keys and
`_value` or `_rule`), and `{p}_met` the moments it is met.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model.correlation import COUNTING, Correlation
from .correlation_metrics import MetricSteps
from .kql import KqlGenerator, Leg
from .query import Let


@dataclass
class Windows(MetricSteps):
    """The steps of one correlation over its input `{prefix}_in`."""

    prefix: str
    keys: list[str]  # group-by columns
    span: str  # the timespan as a KQL literal
    correlation: Correlation
    labels: list[str]  # the correlated rules' `_rule` values (KQL strings), in order
    g: KqlGenerator  # writes every step
    value_is_text: bool = False  # value_percentile of a text field: each value's share

    def name(self, step: str) -> str:
        return f"{self.prefix}_{step}"

    def by(self, *more: str) -> list[str]:
        """The group-by columns, then `more`."""
        return [*self.keys, *more]

    def lag(self, time: str) -> str:
        """`time` one timespan earlier."""
        return self.g.binary(time, "-", self.span)

    def paired(self, source: str, time: str | None = None) -> str:
        """Every row twice: in the pair that starts at its bin, and in the one that ends there."""
        g = self.g
        at = time or g.bin("_time", self.span)
        return g.union([g.pipeline(source, [g.extend([("_pair", at)])]),
                        g.pipeline(source, [g.extend([("_pair", self.lag(at))])])])

    def ends(self) -> list[str]:
        """Each row as the end of a window, keyed by the pair the window lies in."""
        return [self.g.extend([("_pair", self.lag(self.g.bin("_time", self.span)))])]

    def in_pairs(self, pairs: str) -> str:
        """Keep the rows of the pairs (and groups) in `pairs`."""
        return self.g.join("leftsemi", pairs, self.by("_pair"))

    def at_least(self, column: str, k: int) -> str:
        return self.g.filter(self.g.compare(column, "gte", k))

    def levels(self) -> tuple[int | None, int | None, bool]:
        """For the counting types: the count at which a window meets the condition, the count
        at which a group is out (its densest window reaches it), and whether a group that is
        out stays out when it also meets the condition. `neq: k` is met at k + 1 (a group
        whose windows exceed k) or by a group that never reaches k."""
        c = self.correlation
        if c.excluded is not None:
            return c.excluded + 1, c.excluded, False
        return c.lower, (c.upper + 1 if c.upper is not None else None), True

    def lets(self) -> list[Let]:
        """The steps up to `{prefix}_met`."""
        kind = self.correlation.type
        if kind == "event_count":
            return self.event_count()
        if kind == "temporal" and self.correlation.expression is not None:
            return self.expression()
        if kind in ("value_count", "temporal"):
            return self.distinct("_rule" if kind == "temporal" else "_value")
        if kind == "temporal_ordered":
            return self.ordered()
        return self.shares() if self.value_is_text else self.metric()

    # -- event_count: the k-th event after each one, in sorted arrays --------------------------
    def event_count(self) -> list[Let]:
        g = self.g
        met_at, out_at, out_stays = self.levels()
        thresholds = [k for k in (met_at, out_at) if k is not None]
        lets = [Let(self.name("pairs"), source=self.paired(self.name("in")), steps=[
            g.summarize([("_n", "count()"), ("_times", g.call("make_list", "_time"))], self.by("_pair")),
            self.at_least("_n", min(thresholds)),
        ])]
        if out_at is not None:
            lets.append(Let(self.name("over"), source=self.name("pairs"), steps=[
                *self.reaching(out_at, min(thresholds)), g.distinct(self.keys),
            ]))
        if met_at is not None:
            steps = [*self.reaching(met_at, min(thresholds)), g.summarize([], self.by(g.assign("_time", "_later")))]
            if out_at is not None and out_stays:
                steps.append(g.join("leftanti", self.name("over"), self.keys))
            lets.append(Let(self.name("met"), source=self.name("pairs"), steps=steps))
        return lets

    def reaching(self, k: int, kept: int) -> list[str]:
        """Windows ending at an event `_later` that hold k events: the event k-1 places before it
        in the sorted times of its pair is at most one timespan earlier. `kept`: the pairs
        already hold at least that many events."""
        g = self.g
        return [
            *([self.at_least("_n", k)] if k > kept else []),
            g.extend([("_times", g.call("array_sort_asc", "_times"))]),
            g.extend([("_later", g.call("array_slice", "_times", k - 1, -1))]),
            g.mv_expand([("_times", "datetime"), ("_later", "datetime")]),
            g.filter(g.all_of([
                g.compare("_later", "gte", g.binary("_pair", "+", self.span)),
                g.compare(g.binary("_later", "-", "_times"), "lte", self.span),
            ])),
        ]

    # -- value_count and temporal: each value's first and last sighting per bin ---------------
    def having_first_rule(self) -> list[str]:
        """Only groups with an event of the first rule can hold all the rules: keep those
        (for a chain, the few groups where the correlation it follows was met)."""
        g = self.g
        first = g.pipeline(self.name("in"), [g.filter(g.compare("_rule", "eq", self.labels[0])), g.distinct(self.keys)])
        return [g.join("leftsemi", g.group(first), self.keys)]

    def sightings(self, column: str) -> list[Let]:
        g, c = self.g, self.correlation
        everyone = column == "_rule" and c.expression is None and c.lower == len(self.labels)
        return [
            Let(self.name("seen"), source=self.name("in"), steps=[
                *(self.having_first_rule() if everyone else []),
                g.summarize([("_since", g.call("min", "_time")), ("_until", g.call("max", "_time"))],
                            self.by(column, g.assign("_bin", g.bin("_time", self.span)))),
            ]),
            Let(self.name("paired"), source=self.paired(self.name("seen"), "_bin")),
        ]

    def in_window(self) -> str:
        """A value seen in the first bin of the pair after the window starts, or in the second
        bin before it ends, is in the window ending at `_end`."""
        g = self.g
        return g.filter(g.any_of([
            g.group(g.all_of([g.compare("_bin", "eq", "_pair"), g.compare("_until", "gte", self.lag("_end"))])),
            g.group(g.all_of([g.compare("_bin", "gt", "_pair"), g.compare("_since", "lte", "_end")])),
        ]))

    def distinct(self, column: str) -> list[Let]:
        g = self.g
        met_at, out_at, out_stays = self.levels()
        thresholds = [k for k in (met_at, out_at) if k is not None]
        narrowed = g.group(g.pipeline(self.name("paired"), [self.in_pairs(self.name("pairs"))]))
        lets = self.sightings(column) + [
            Let(self.name("pairs"), source=self.name("paired"), steps=[
                g.summarize([], self.by("_pair", column)),
                g.summarize([("_n", "count()")], self.by("_pair")),
                self.at_least("_n", min(thresholds)),
            ]),
            Let(self.name("counts"), source=self.name("in"), materialize=out_at is not None and met_at is not None, steps=[
                *self.ends(),
                self.in_pairs(self.name("pairs")),
                g.summarize([], self.by("_pair", g.assign("_end", "_time"))),
                g.join("inner", narrowed, self.by("_pair")),
                self.in_window(),
                g.summarize([], self.by("_end", column)),
                g.summarize([("_n", "count()")], self.by(g.assign("_time", "_end"))),
            ]),
        ]
        if out_at is not None:
            lets.append(Let(self.name("over"), source=self.name("counts"), steps=[
                g.filter(g.compare("_n", "gt", out_at - 1)), g.distinct(self.keys),
            ]))
        if met_at is not None:
            steps = [self.at_least("_n", met_at), g.project(self.by("_time"))]
            if out_at is not None and out_stays:
                steps.append(g.join("leftanti", self.name("over"), self.keys))
            lets.append(Let(self.name("met"), source=self.name("counts"), steps=steps))
        return lets

    # -- temporal with a boolean condition over the rules ------------------------------------
    def expression(self) -> list[Let]:
        g = self.g
        counters = {label: f"_n{index}" for index, label in enumerate(self.labels, start=1)}
        return self.sightings("_rule") + [
            Let(self.name("met"), source=self.name("in"), steps=[
                *self.ends(),
                g.summarize([], self.by("_pair", g.assign("_end", "_time"))),
                g.join("inner", self.name("paired"), self.by("_pair")),
                self.in_window(),
                g.summarize([(n, g.call("countif", g.compare("_rule", "eq", label))) for label, n in counters.items()],
                            self.by(g.assign("_time", "_end"))),
                g.filter(render_expression(g, self.correlation.expression, counters, self.label_of)),
                g.project(self.by("_time")),
            ]),
        ]

    def label_of(self, reference: str) -> str:
        return self.labels[self.correlation.references.index(reference)]

    # -- temporal_ordered: back from each event of the last rule -----------------------------
    def ordered(self) -> list[Let]:
        g = self.g
        labels = self.labels
        last = len(labels)
        lets = [
            Let(self.name("seen"), source=self.name("in"), steps=[
                *self.having_first_rule(), g.summarize([], self.by("_rule", "_time")),
            ]),
            Let(self.name("paired"), source=self.paired(self.name("seen"))),
            Let(self.name("pairs"), source=self.name("paired"), steps=[
                g.summarize([], self.by("_pair", "_rule")),
                g.summarize([("_n", "count()")], self.by("_pair")),
                g.filter(g.compare("_n", "eq", len(set(labels)))),
            ]),
            Let(self.name(f"step{last}"), source=self.name("seen"), steps=[
                g.filter(g.compare("_rule", "eq", labels[-1])),
                *self.ends(),
                self.in_pairs(self.name("pairs")),
                g.project(self.by("_pair", g.assign("_end", "_time"), g.assign("_at", "_time"))),
            ]),
        ]
        for step in range(last - 1, 0, -1):
            earlier = g.pipeline(self.name("paired"), [
                g.filter(g.compare("_rule", "eq", labels[step - 1])), self.in_pairs(self.name("pairs")),
            ])
            lets.append(Let(self.name(f"step{step}"), source=self.name(f"step{step + 1}"), steps=[
                g.join("inner", g.group(earlier), self.by("_pair")),
                g.filter(g.all_of([g.compare("_time", "lt", "_at"), g.compare("_time", "gte", self.lag("_end"))])),
                g.summarize([("_at", g.call("max", "_time"))], self.by("_pair", "_end")),
            ]))
        lets.append(Let(self.name("met"), source=self.name("step1"), steps=[
            g.project(self.by(g.assign("_time", "_end"), g.assign("_start", "_at"))),
        ]))
        return lets

    # -- the result: one row per group (per value for shares) --------------------------------
    def result(self, measured: str | None, value_column: str | None, fields: list[tuple[str, str]]) -> tuple[list[Let], str, list[str]]:
        """Extra lets, the source and the steps of the final pipeline: per group, the first
        window in which the correlation is met; for an upper bound alone, the window ending at
        the group's last event."""
        g, c = self.g, self.correlation
        listed = [g.assign(name, g.call("make_set", column, 100)) for name, column in fields]
        names = [name for name, _ in fields]
        if c.type == "temporal_ordered":
            steps = [g.summarize([g.call("arg_min", "_time", "_start")], self.keys),
                     g.project(self.by(g.assign("window_start", "_start"), g.assign("window_end", "_time")))]
            if not listed:
                return [], self.name("met"), steps
            return [Let(self.name("first"), source=self.name("met"), steps=steps)], self.name("in"), [
                g.join("inner", self.name("first"), self.keys),
                g.filter(g.between("_time", "window_start", "window_end")),
                g.summarize(listed, self.by("window_start", "window_end")),
                g.project(self.by("window_start", "window_end", *names)),
            ]
        per = self.by("_value") if self.value_is_text else self.keys
        if c.type in COUNTING and c.excluded is not None:  # above the bound at a moment, or never reaching it
            first = Let(self.name("first"), legs=[
                Leg(self.name("met"), [g.summarize([("window_end", g.call("min", "_time"))], self.keys)]),
                Leg(self.name("in"), [g.summarize([("window_end", g.call("max", "_time"))], self.keys),
                                      g.join("leftanti", self.name("over"), self.keys)]),
            ])
        elif c.type in COUNTING and c.lower is None and c.expression is None:
            first = Let(self.name("first"), source=self.name("in"), steps=[
                g.summarize([("window_end", g.call("max", "_time"))], self.keys),
                g.join("leftanti", self.name("over"), self.keys),
            ])
        elif c.type in COUNTING:
            first = Let(self.name("first"), source=self.name("met"), steps=[
                g.summarize([("window_end", g.call("min", "_time"))], self.keys),
            ])
        else:
            first = Let(self.name("first"), source=self.name("met"), steps=[
                g.summarize([g.call("arg_min", "_time", "_measure")], per),
                g.project([*per, g.assign("window_end", "_time"), "_measure"]),
            ])
        counted = {"event_count": [(measured, "count()")], "value_count": [("_values", g.call("make_set", "_value"))],
                   "temporal": [("_values", g.call("make_set", "_rule"))]}.get(c.type, [])
        group = per + (["_measure"] if c.type not in COUNTING else [])
        steps = [
            g.join("inner", self.name("first"), per),
            g.filter(g.between("_time", g.group(g.binary("window_end", "-", self.span)), "window_end")),
            g.summarize([*counted, ("window_start", g.call("min", "_time")), *listed], [*group, "window_end"]),
        ]
        if c.type in ("value_count", "temporal"):
            steps.append(g.extend([(measured, g.call("array_length", "_values"))]))
        elif c.type not in COUNTING:
            steps.append(g.extend([(measured, "_measure")]))
        value = [g.assign(value_column, "_value")] if self.value_is_text else []
        steps.append(g.project([*self.keys, *value, measured, "window_start", "window_end", *names]))
        return [first], self.name("in"), steps


def render_expression(g: KqlGenerator, tree, counters: dict[str, str], label_of) -> str:
    """An extended condition as KQL over per-rule counts of the window."""
    op = tree[0]
    if op == "rule":
        return g.compare(counters[label_of(tree[1])], "gt", 0)
    if op == "not":
        return g.negate(render_expression(g, tree[1], counters, label_of))
    parts = [render_expression(g, arg, counters, label_of) for arg in tree[1:]]
    grouped = [g.group(p) if len(tree[1:]) > 1 and arg[0] in ("and", "or") else p for p, arg in zip(parts, tree[1:])]
    return g.all_of(grouped) if op == "and" else g.any_of(grouped)

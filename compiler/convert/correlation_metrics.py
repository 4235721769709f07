"""Convert step for correlations, part 3: the windows of the metric types (value_sum,
value_avg, value_median, value_percentile), mixed into `Windows` (convert/correlation_windows.py),
whose pair helpers (`paired`, `ends`, `in_pairs`, `name`, `by`) they use.

A number's measure (sum, average, percentile) is computed per window ending at an event, over
the events of its pair that fall in it, after the pairs that cannot meet the bounds are left
out. The share of a text value comes from places in sorted arrays instead, so that no step
joins events with events (see `ranks`).
"""

from __future__ import annotations

from ..model.correlation import Correlation
from .kql import KqlGenerator, Leg
from .query import Let

CODE_BASE = 1_000_000_000_000_000  # 10^15: every code has 16 digits (and stays exact in a double)


class MetricSteps:
    """The lets of the metric types, for `Windows`."""

    g: KqlGenerator
    correlation: Correlation
    keys: list[str]
    span: str

    # -- metrics: the measure of each window ending at an event ------------------------------
    def window_rows(self, narrowed: bool = False) -> list[str]:
        """Each window ending at an event, joined with the events of its pair that fall in it
        (`narrowed`: of the pairs in `{prefix}_pairs` only)."""
        g = self.g
        pairs = self.in_pairs(self.name("pairs"))
        paired = g.group(g.pipeline(self.name("paired"), [pairs])) if narrowed else self.name("paired")
        return [
            *self.ends(),
            *([pairs] if narrowed else []),
            g.summarize([], self.by("_pair", g.assign("_end", "_time"))),
            g.join("inner", paired, self.by("_pair")),
            g.filter(g.between("_time", g.group(self.lag("_end")), "_end")),
        ]

    def bounds(self) -> str:
        return self.g.all_of([self.g.compare("_measure", op, bound) for op, bound in self.correlation.conditions])

    def possible(self) -> tuple[list[str], str]:
        """The pair summaries and the test that keep only pairs able to hold a window meeting
        the bounds: an average or a percentile lies between the pair's smallest and largest
        value, and a sum between the sums of its negative and of its positive values (a sum
        can differ from any `neq` bound: no test)."""
        g = self.g
        sums = self.correlation.type == "value_sum"
        summaries = {"_plus": g.call("sumif", "_value", g.compare("_value", "gt", 0)),
                     "_minus": g.call("sumif", "_value", g.compare("_value", "lt", 0)),
                     "_top": g.call("max", "_value"), "_bottom": g.call("min", "_value")}
        high, low = ("_plus", "_minus") if sums else ("_top", "_bottom")
        tests: list[tuple[tuple[str, ...], str]] = []  # (the summaries a test reads, the test)
        for op, bound in self.correlation.conditions:
            if op == "neq" and not sums:  # only a pair whose values all equal the bound cannot
                tests.append(((high, low), g.group(g.any_of([g.compare(high, "neq", bound), g.compare(low, "neq", bound)]))))
            if op in ("gt", "gte", "eq"):
                tests.append(((high,), g.compare(high, "gte" if op == "eq" else op, bound)))
            if op in ("lt", "lte", "eq"):
                tests.append(((low,), g.compare(low, "lte" if op == "eq" else op, bound)))
        used = dict.fromkeys(name for names, _ in tests for name in names)
        return [g.assign(name, summaries[name]) for name in used], g.all_of([test for _, test in tests])

    def metric(self) -> list[Let]:
        g, c = self.g, self.correlation
        # A percentile is the nearest rank, which Kusto's percentile() estimates (T-Digest).
        aggregate = {"value_sum": g.call("sum", "_value"), "value_avg": g.call("avg", "_value")}.get(
            c.type, g.call("percentile", "_value", c.percentile))
        summaries, test = self.possible()
        pairs = [Let(self.name("pairs"), source=self.name("paired"), steps=[
            g.summarize(summaries, self.by("_pair")), g.filter(test),
        ])] if test else []  # a sum can differ from any bound: no pair is left out
        return [
            Let(self.name("paired"), source=self.paired(self.name("in"))),
            *pairs,
            Let(self.name("met"), source=self.name("in"), steps=[
                *self.window_rows(narrowed=bool(pairs)),
                g.summarize([("_measure", g.call("todouble", aggregate))], self.by(g.assign("_time", "_end"))),
                g.filter(self.bounds()),
                g.project(self.by("_time", "_measure")),
            ]),
        ]

    def code(self, offset: str, parity: int) -> str:
        """An event's place in its pair as a 16-digit number (see `ranks`): odd for the event,
        even for the event shifted one timespan later."""
        g = self.g
        doubled = g.binary(2, "*", g.call("tolong", offset))
        return g.binary(g.binary(CODE_BASE, "+", doubled), "+", parity)

    def shares(self) -> list[Let]:
        """value_percentile of text: at each event, the share (in %) of the group's events in
        the window ending there that carry the same value. Both counts come from ranks in
        sorted arrays, so no step joins events with events (see `ranks`)."""
        g = self.g
        since_pair = g.binary("_time", "-", "_pair")
        per_value = self.by("_value")
        return [
            Let(self.name("paired"), source=self.paired(self.name("in")), steps=[
                g.extend([("_code", self.code(since_pair, 1)),
                          ("_shift", self.code(g.binary(since_pair, "+", self.span), 2))]),
            ]),
            *self.ranks("totals", self.keys, "_total"),
            *self.ranks("counts", per_value, "_count"),
            Let(self.name("met"), source=self.name("in"), steps=[
                *self.ends(),
                g.extend([("_code", self.code(since_pair, 1))]),
                g.summarize([], [*per_value, "_pair", "_code", "_time"]),
                g.join("inner", self.name("counts"), [*per_value, "_pair", "_code"]),
                g.join("inner", self.name("totals"), self.by("_pair", "_code")),
                g.extend([("_measure", g.binary(g.binary("100.0", "*", "_count"), "/", "_total"))]),
                g.filter(self.bounds()),
                g.project([*per_value, "_time", "_measure"]),
            ]),
        ]

    def ranks(self, step: str, keys: list[str], counted: str) -> list[Let]:
        """Per event of a pair, how many events of `keys` fall in the window ending at it.
        `_code` orders events in time, `_shift` orders each event one timespan later, after an
        event at that very moment. With A = events at or before t, and P = the last place of t
        among events and shifted events together, the events in [t - span, t] number 2A - P - 1
        (P counts the A - 1 events before t and the shifted events before t, which are the
        events before the window). Codes are relative to the pair and offset to 16 digits, so
        that sorting them as text (as the local engine does) and as numbers agree."""
        g = self.g
        lists = self.name(f"{step}_sorted")
        places = [*keys, "_pair"]
        sorted_codes = g.call("array_sort_asc", "_codes")
        return [
            Let(lists, source=self.name("paired"), steps=[
                g.summarize([("_codes", g.call("make_list", "_code")), ("_shifts", g.call("make_list", "_shift"))], places),
                g.extend([("_merged", g.call("array_sort_asc", g.call("array_concat", "_codes", "_shifts"))),
                          ("_codes", sorted_codes)]),
            ]),
            Let(self.name(step), legs=[
                Leg(lists, [g.project([*places, "_codes"]), g.mv_expand([("_codes", "long")], index="_i"),
                            g.summarize([("_upto", g.binary(g.call("max", "_i"), "+", 1))], [*places, g.assign("_code", "_codes")])]),
                Leg(lists, [g.project([*places, "_merged"]), g.mv_expand([("_merged", "long")], index="_i"),
                            g.filter(g.compare(g.binary("_merged", "%", 2), "eq", 1)),
                            g.summarize([("_place", g.call("max", "_i"))], [*places, g.assign("_code", "_merged")])]),
            ], steps=[g.summarize([(counted, g.binary(g.binary(g.binary(2, "*", g.call("max", "_upto")), "-", g.call("max", "_place")), "-", 1))],
                                  [*places, "_code"])]),
        ]

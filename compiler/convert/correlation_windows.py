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
from .kql import Leg
from .query import Let

OPERATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=="}
CODE_BASE = 1_000_000_000_000_000  # 10^15: every code has 16 digits (and stays exact in a double)


@dataclass
class Windows:
    """The steps of one correlation over its input `{prefix}_in`."""

    prefix: str
    keys: list[str]  # group-by columns
    span: str  # the timespan as a KQL literal
    correlation: Correlation
    labels: list[str]  # the correlated rules' `_rule` values (KQL strings), in order
    value_is_text: bool = False  # value_percentile of a text field: each value's share

    @property
    def on(self) -> str:
        return ", ".join(self.keys)

    def name(self, step: str) -> str:
        return f"{self.prefix}_{step}"

    def paired(self, source: str, time: str = "bin(_time, {s})") -> str:
        """Every row twice: in the pair that starts at its bin, and in the one that ends there."""
        at = time.format(s=self.span)
        return f"union ({source} | extend _pair = {at}), ({source} | extend _pair = {at} - {self.span})"

    def ends(self) -> list[str]:
        """Each row as the end of a window, keyed by the pair the window lies in."""
        return [f"extend _pair = bin(_time, {self.span}) - {self.span}"]

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
        c = self.correlation
        thresholds = [k for k in (c.lower, c.upper + 1 if c.upper is not None else None) if k is not None]
        lets = [Let(self.name("pairs"), source=self.paired(self.name("in")), steps=[
            f"summarize _n = count(), _times = make_list(_time) by {self.on}, _pair",
            f"where _n >= {min(thresholds)}",
        ])]
        if c.upper is not None:
            lets.append(Let(self.name("over"), source=self.name("pairs"), steps=[
                *self.reaching(c.upper + 1, min(thresholds)), f"distinct {self.on}",
            ]))
        if c.lower is not None:
            steps = [*self.reaching(c.lower, min(thresholds)), f"summarize by {self.on}, _time = _later"]
            if c.upper is not None:
                steps.append(f"join kind=leftanti {self.name('over')} on {self.on}")
            lets.append(Let(self.name("met"), source=self.name("pairs"), steps=steps))
        return lets

    def reaching(self, k: int, kept: int) -> list[str]:
        """Windows ending at an event `_later` that hold k events: the event k-1 places before it
        in the sorted times of its pair is at most one timespan earlier. `kept`: the pairs
        already hold at least that many events."""
        return [
            *([f"where _n >= {k}"] if k > kept else []),
            "extend _times = array_sort_asc(_times)",
            f"extend _later = array_slice(_times, {k - 1}, -1)",
            "mv-expand _times to typeof(datetime), _later to typeof(datetime)",
            f"where _later >= _pair + {self.span} and _later - _times <= {self.span}",
        ]

    # -- value_count and temporal: each value's first and last sighting per bin ---------------
    def having_first_rule(self) -> list[str]:
        """Only groups with an event of the first rule can hold all the rules: keep those
        (for a chain, the few groups where the correlation it follows was met)."""
        return [f"join kind=leftsemi ({self.name('in')} | where _rule == {self.labels[0]} | distinct {self.on}) on {self.on}"]

    def sightings(self, column: str) -> list[Let]:
        c = self.correlation
        everyone = column == "_rule" and c.expression is None and c.lower == len(self.labels)
        return [
            Let(self.name("seen"), source=self.name("in"), steps=[
                *(self.having_first_rule() if everyone else []),
                f"summarize _since = min(_time), _until = max(_time) by {self.on}, {column}, _bin = bin(_time, {self.span})",
            ]),
            Let(self.name("paired"), source=self.paired(self.name("seen"), "_bin")),
        ]

    def in_window(self) -> str:
        """A value seen in the first bin of the pair after the window starts, or in the second
        bin before it ends, is in the window ending at `_end`."""
        return f"where (_bin == _pair and _until >= _end - {self.span}) or (_bin > _pair and _since <= _end)"

    def distinct(self, column: str) -> list[Let]:
        c = self.correlation
        thresholds = [k for k in (c.lower, c.upper + 1 if c.upper is not None else None) if k is not None]
        lets = self.sightings(column) + [
            Let(self.name("pairs"), source=self.name("paired"), steps=[
                f"summarize by {self.on}, _pair, {column}",
                f"summarize _n = count() by {self.on}, _pair",
                f"where _n >= {min(thresholds)}",
            ]),
            Let(self.name("counts"), source=self.name("in"), materialize=c.upper is not None and c.lower is not None, steps=[
                *self.ends(),
                f"join kind=leftsemi {self.name('pairs')} on {self.on}, _pair",
                f"summarize by {self.on}, _pair, _end = _time",
                f"join kind=inner ({self.name('paired')} | join kind=leftsemi {self.name('pairs')} on {self.on}, _pair) on {self.on}, _pair",
                self.in_window(),
                f"summarize by {self.on}, _end, {column}",
                f"summarize _n = count() by {self.on}, _time = _end",
            ]),
        ]
        if c.upper is not None:
            lets.append(Let(self.name("over"), source=self.name("counts"), steps=[f"where _n > {c.upper}", f"distinct {self.on}"]))
        if c.lower is not None:
            steps = [f"where _n >= {c.lower}", f"project {self.on}, _time"]
            if c.upper is not None:
                steps.append(f"join kind=leftanti {self.name('over')} on {self.on}")
            lets.append(Let(self.name("met"), source=self.name("counts"), steps=steps))
        return lets

    # -- temporal with a boolean condition over the rules ------------------------------------
    def expression(self) -> list[Let]:
        counters = {label: f"_n{index}" for index, label in enumerate(self.labels, start=1)}
        return self.sightings("_rule") + [
            Let(self.name("met"), source=self.name("in"), steps=[
                *self.ends(),
                f"summarize by {self.on}, _pair, _end = _time",
                f"join kind=inner {self.name('paired')} on {self.on}, _pair",
                self.in_window(),
                "summarize " + ", ".join(f"{n} = countif(_rule == {label})" for label, n in counters.items())
                + f" by {self.on}, _time = _end",
                f"where {render_expression(self.correlation.expression, counters, self.label_of)}",
                f"project {self.on}, _time",
            ]),
        ]

    def label_of(self, reference: str) -> str:
        return self.labels[self.correlation.references.index(reference)]

    # -- temporal_ordered: back from each event of the last rule -----------------------------
    def ordered(self) -> list[Let]:
        labels = self.labels
        last = len(labels)
        lets = [
            Let(self.name("seen"), source=self.name("in"), steps=[
                *self.having_first_rule(), f"summarize by {self.on}, _rule, _time",
            ]),
            Let(self.name("paired"), source=self.paired(self.name("seen"))),
            Let(self.name("pairs"), source=self.name("paired"), steps=[
                f"summarize by {self.on}, _pair, _rule",
                f"summarize _n = count() by {self.on}, _pair",
                f"where _n == {len(set(labels))}",
            ]),
            Let(self.name(f"step{last}"), source=self.name("seen"), steps=[
                f"where _rule == {labels[-1]}",
                *self.ends(),
                f"join kind=leftsemi {self.name('pairs')} on {self.on}, _pair",
                f"project {self.on}, _pair, _end = _time, _at = _time",
            ]),
        ]
        for step in range(last - 1, 0, -1):
            earlier = f"{self.name('paired')} | where _rule == {labels[step - 1]} | join kind=leftsemi {self.name('pairs')} on {self.on}, _pair"
            lets.append(Let(self.name(f"step{step}"), source=self.name(f"step{step + 1}"), steps=[
                f"join kind=inner ({earlier}) on {self.on}, _pair",
                f"where _time < _at and _time >= _end - {self.span}",
                f"summarize _at = max(_time) by {self.on}, _pair, _end",
            ]))
        lets.append(Let(self.name("met"), source=self.name("step1"), steps=[f"project {self.on}, _time = _end, _start = _at"]))
        return lets

    # -- metrics: the measure of each window ending at an event ------------------------------
    def window_rows(self, narrowed: bool = False) -> list[str]:
        """Each window ending at an event, joined with the events of its pair that fall in it
        (`narrowed`: of the pairs in `{prefix}_pairs` only)."""
        pairs = f"join kind=leftsemi {self.name('pairs')} on {self.on}, _pair"
        paired = f"({self.name('paired')} | {pairs})" if narrowed else self.name("paired")
        return [
            *self.ends(),
            *([pairs] if narrowed else []),
            f"summarize by {self.on}, _pair, _end = _time",
            f"join kind=inner {paired} on {self.on}, _pair",
            f"where _time between ((_end - {self.span}) .. _end)",
        ]

    def bounds(self) -> str:
        return " and ".join(f"_measure {OPERATORS[op]} {bound}" for op, bound in self.correlation.conditions)

    def possible(self) -> tuple[list[str], str]:
        """The pair summaries and the test that keep only pairs able to hold a window meeting
        the bounds: an average or a percentile lies between the pair's smallest and largest
        value, and a sum between the sums of its negative and of its positive values."""
        sums = self.correlation.type == "value_sum"
        summaries = {"_plus": "sumif(_value, _value > 0)", "_minus": "sumif(_value, _value < 0)",
                     "_top": "max(_value)", "_bottom": "min(_value)"}
        high, low = ("_plus", "_minus") if sums else ("_top", "_bottom")
        tests = []
        for op, bound in self.correlation.conditions:
            if op in ("gt", "gte", "eq"):
                tests.append((high, f"{high} {OPERATORS['gte' if op == 'eq' else op]} {bound}"))
            if op in ("lt", "lte", "eq"):
                tests.append((low, f"{low} {OPERATORS['lte' if op == 'eq' else op]} {bound}"))
        used = list(dict.fromkeys(name for name, _ in tests))
        return [f"{name} = {summaries[name]}" for name in used], " and ".join(test for _, test in tests)

    def metric(self) -> list[Let]:
        c = self.correlation
        # A percentile is the nearest rank, which Kusto's percentile() estimates (T-Digest).
        aggregate = {"value_sum": "sum(_value)", "value_avg": "avg(_value)"}.get(c.type, f"percentile(_value, {c.percentile})")
        measure = [f"summarize _measure = todouble({aggregate}) by {self.on}, _time = _end"]
        summaries, test = self.possible()
        return [
            Let(self.name("paired"), source=self.paired(self.name("in"))),
            Let(self.name("pairs"), source=self.name("paired"), steps=[
                f"summarize {', '.join(summaries)} by {self.on}, _pair", f"where {test}",
            ]),
            Let(self.name("met"), source=self.name("in"), steps=[
                *self.window_rows(narrowed=True), *measure, f"where {self.bounds()}", f"project {self.on}, _time, _measure",
            ]),
        ]

    def shares(self) -> list[Let]:
        """value_percentile of text: at each event, the share (in %) of the group's events in
        the window ending there that carry the same value. Both counts come from ranks in
        sorted arrays, so no step joins events with events (see `ranks`)."""
        span = self.span
        per_value = f"{self.on}, _value"
        return [
            Let(self.name("paired"), source=self.paired(self.name("in")), steps=[
                f"extend _code = {CODE_BASE} + 2 * tolong(_time - _pair) + 1, _shift = {CODE_BASE} + 2 * tolong(_time - _pair + {span}) + 2",
            ]),
            *self.ranks("totals", self.on, "_total"),
            *self.ranks("counts", per_value, "_count"),
            Let(self.name("met"), source=self.name("in"), steps=[
                *self.ends(),
                f"extend _code = {CODE_BASE} + 2 * tolong(_time - _pair) + 1",
                f"summarize by {per_value}, _pair, _code, _time",
                f"join kind=inner {self.name('counts')} on {per_value}, _pair, _code",
                f"join kind=inner {self.name('totals')} on {self.on}, _pair, _code",
                "extend _measure = 100.0 * _count / _total",
                f"where {self.bounds()}",
                f"project {per_value}, _time, _measure",
            ]),
        ]

    def ranks(self, step: str, keys: str, counted: str) -> list[Let]:
        """Per event of a pair, how many events of `keys` fall in the window ending at it.
        `_code` orders events in time, `_shift` orders each event one timespan later, after an
        event at that very moment. With A = events at or before t, and P = the last place of t
        among events and shifted events together, the events in [t - span, t] number 2A - P - 1
        (P counts the A - 1 events before t and the shifted events before t, which are the
        events before the window). Codes are relative to the pair and offset to 16 digits, so
        that sorting them as text (as the local engine does) and as numbers agree."""
        lists = self.name(f"{step}_sorted")
        return [
            Let(lists, source=self.name("paired"), steps=[
                f"summarize _codes = make_list(_code), _shifts = make_list(_shift) by {keys}, _pair",
                "extend _merged = array_sort_asc(array_concat(_codes, _shifts)), _codes = array_sort_asc(_codes)",
            ]),
            Let(self.name(step), legs=[
                Leg(lists, [f"project {keys}, _pair, _codes", "mv-expand with_itemindex = _i _codes to typeof(long)",
                            f"summarize _upto = max(_i) + 1 by {keys}, _pair, _code = _codes"]),
                Leg(lists, [f"project {keys}, _pair, _merged", "mv-expand with_itemindex = _i _merged to typeof(long)",
                            "where _merged % 2 == 1", f"summarize _place = max(_i) by {keys}, _pair, _code = _merged"]),
            ], steps=[f"summarize {counted} = 2 * max(_upto) - max(_place) - 1 by {keys}, _pair, _code"]),
        ]

    # -- the result: one row per group (per value for shares) --------------------------------
    def result(self, measured: str | None, value_column: str | None, fields: list[tuple[str, str]]) -> tuple[list[Let], str, list[str]]:
        """Extra lets, the source and the steps of the final pipeline: per group, the first
        window in which the correlation is met; for an upper bound alone, the window ending at
        the group's last event."""
        c = self.correlation
        on = self.on
        listed = [f"{name} = make_set({column}, 100)" for name, column in fields]
        if c.type == "temporal_ordered":
            steps = [f"summarize arg_min(_time, _start) by {on}", f"project {on}, window_start = _start, window_end = _time"]
            if not listed:
                return [], self.name("met"), steps
            return [Let(self.name("first"), source=self.name("met"), steps=steps)], self.name("in"), [
                f"join kind=inner {self.name('first')} on {on}",
                "where _time between (window_start .. window_end)",
                f"summarize {', '.join(listed)} by {on}, window_start, window_end",
                f"project {on}, window_start, window_end, {', '.join(name for name, _ in fields)}",
            ]
        per = on + (", _value" if self.value_is_text else "")
        if c.type in COUNTING and c.lower is None and c.expression is None:
            first = Let(self.name("first"), source=self.name("in"), steps=[
                f"summarize window_end = max(_time) by {on}", f"join kind=leftanti {self.name('over')} on {on}",
            ])
        elif c.type in COUNTING:
            first = Let(self.name("first"), source=self.name("met"), steps=[f"summarize window_end = min(_time) by {on}"])
        else:
            first = Let(self.name("first"), source=self.name("met"), steps=[
                f"summarize arg_min(_time, _measure) by {per}", f"project {per}, window_end = _time, _measure",
            ])
        counted = {"event_count": [f"{measured} = count()"], "value_count": ["_values = make_set(_value)"],
                   "temporal": ["_values = make_set(_rule)"]}.get(c.type, [])
        group = per + (", _measure" if c.type not in COUNTING else "")
        steps = [
            f"join kind=inner {self.name('first')} on {per}",
            f"where _time between ((window_end - {self.span}) .. window_end)",
            f"summarize {', '.join([*counted, 'window_start = min(_time)', *listed])} by {group}, window_end",
        ]
        if c.type in ("value_count", "temporal"):
            steps.append(f"extend {measured} = array_length(_values)")
        elif c.type not in COUNTING:
            steps.append(f"extend {measured} = _measure")
        value = [f"{value_column} = _value"] if self.value_is_text else []
        steps.append(f"project {', '.join([on, *value, measured, 'window_start', 'window_end', *(n for n, _ in fields)])}")
        return [first], self.name("in"), steps


def render_expression(tree, counters: dict[str, str], label_of) -> str:
    """An extended condition as KQL over per-rule counts of the window."""
    op = tree[0]
    if op == "rule":
        return f"{counters[label_of(tree[1])]} > 0"
    if op == "not":
        return f"not({render_expression(tree[1], counters, label_of)})"
    parts = [render_expression(arg, counters, label_of) for arg in tree[1:]]
    return f" {op} ".join(f"({p})" if len(tree[1:]) > 1 and arg[0] in ("and", "or") else p for p, arg in zip(parts, tree[1:]))

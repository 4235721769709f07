"""Model for Sigma correlation rules: a `correlation:` document → a Rule whose `correlation`
says what to measure, per which group, within which window, over which rules.

Parsing follows the Sigma correlation specification (docs/correlations.md cites the
sections): `event_count`, `value_count`, `temporal`, `temporal_ordered` and the metric
types `value_sum`, `value_avg`, `value_percentile`, `value_median`; `rules` by `name` or
`id`, rules or other correlations; `group-by`; `timespan`; a `condition` of one bound, a
range (`gt: 100` with `lte: 200`) or `neq`, or for the temporal types a boolean expression
over the rule names; `condition.field`, a list for value_count (distinct combinations);
`aliases`; `generate`; `fields`. pySigma 2.0.1 refuses ranges, so the section
is read here after the JSON Schema has checked its shape; pySigma parses the boolean
expressions (`SigmaExtendedCorrelationCondition`) and every referenced rule. References
are bound, and checked against what each referenced rule returns, in model/correlation_bind.py.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Union

from sigma.correlations import (
    CorrelationConditionAND,
    CorrelationConditionNOT,
    CorrelationConditionOR,
    SigmaExtendedCorrelationCondition,
    SigmaRuleReference,
)
from sigma.exceptions import SigmaError

from ..diagnostics import Diagnostic
from ..load.limits import MAX_TIMESPAN_SECONDS
from ..load.loader import RuleDocument
from ..validate.catalog import Catalog
from .rule import Rule

TIMESPAN_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
LOWER_BOUNDS, UPPER_BOUNDS = ("gt", "gte"), ("lt", "lte")
COUNTING = ("event_count", "value_count", "temporal")  # the condition bounds a count of each window
METRICS = ("value_sum", "value_avg", "value_percentile", "value_median")  # it bounds a measure of a field
TEMPORAL = ("temporal", "temporal_ordered")
WITH_FIELD = ("value_count", *METRICS)  # types that read `condition.field`
MEASURED = {"event_count": "event_count", "value_count": "value_count", "temporal": "rule_count",
            **{kind: kind for kind in METRICS}}  # the result column each type returns
RESERVED = {"window_start", "window_end", *MEASURED.values()}  # columns of the correlation's own result

# An extended condition, as a tree: ("rule", reference) | ("not", tree) | ("and" | "or", tree, tree, ...)
Expression = Union[tuple]


@dataclass(frozen=True)
class Correlation:
    type: str
    references: tuple[str, ...]  # as written in `rules`
    group_by: tuple[str, ...]  # beta paths, alias names, or names a correlated correlation returns
    timespan: str  # as written: "10m"
    seconds: int
    conditions: tuple[tuple[str, int | float], ...]  # (operator, bound), e.g. (("gt", 100), ("lte", 200))
    value_fields: tuple[str, ...]  # `condition.field`: value_count counts distinct combinations of several
    aliases: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]  # alias → ((rule name, field), ...)
    generate: bool
    percentile: int | None = None  # value_percentile of a number: which percentile (value_median: 50)
    expression: Expression | None = None  # an extended (boolean) condition of a temporal type
    fields: tuple[str, ...] = ()  # beta paths whose distinct values the result lists
    rules: tuple[Rule, ...] = ()  # the referenced rules (rules or correlations), once bound

    @property
    def value_field(self) -> str | None:
        """The measured field (the first, for a value_count of several)."""
        return self.value_fields[0] if self.value_fields else None

    @property
    def measured(self) -> str | None:
        """The result column the condition applies to (none for temporal_ordered)."""
        return MEASURED.get(self.type)

    @property
    def excluded(self) -> int | float | None:
        """The value a `neq` condition excludes, if any."""
        return dict(self.conditions).get("neq")

    @property
    def lower(self) -> int | float | None:
        """The smallest measure that satisfies the lower bound, if any (`gt: 9` → 10 for counts)."""
        for op, bound in self.conditions:
            if op in ("gte", "eq"):
                return bound
            if op == "gt":
                return bound + 1 if self.type in COUNTING else bound
        return None

    @property
    def upper(self) -> int | float | None:
        """The largest measure that satisfies the upper bound, if any (`lt: 3` → 2 for counts)."""
        for op, bound in self.conditions:
            if op in ("lte", "eq"):
                return bound
            if op == "lt":
                return bound - 1 if self.type in COUNTING else bound
        return None

    @property
    def fires(self) -> bool:
        """Whether the correlation has moments at which it is met, which is what a chain
        correlates: a counting condition needs a lower bound (`neq` holds for a group that
        stays below it, without a moment); the other types always have them."""
        return self.type not in COUNTING or self.expression is not None or self.lower is not None

    @property
    def reach_seconds(self) -> int:
        """How far back from its last event a match can reach: its own timespan plus the
        longest reach of the correlations it correlates."""
        inner = [r.correlation.reach_seconds for r in self.rules if r.correlation is not None]
        return self.seconds + max(inner, default=0)

    @property
    def reach(self) -> str:
        """`reach_seconds` as a timespan: the one written, when nothing adds to it."""
        return self.timespan if self.reach_seconds == self.seconds else kql_timespan(self.reach_seconds)

    def path_for(self, name: str, rule: Rule) -> str:
        """The field a group-by name (a path, an alias, or a name a correlation returns)
        stands for in one referenced rule."""
        for alias, pairs in self.aliases:
            if alias == name:
                targets = dict(pairs)
                return targets[rule_key(rule, targets)]
        return name

    def beta_paths(self) -> set[str]:
        """The beta paths a bound correlation groups, measures and lists, through any chain."""
        names = [*self.group_by, *self.value_fields]
        paths = set()
        for rule in self.rules:
            for name in names:
                path = self.path_for(name, rule)
                if rule.correlation is not None:
                    paths |= rule.correlation.paths_of(path)
                else:
                    paths.add(path)
        return paths | set(self.fields)

    def paths_of(self, name: str) -> set[str]:
        """The beta paths one of this correlation's group-by names reads, through any chain."""
        paths = set()
        for rule in self.rules:
            path = self.path_for(name, rule)
            paths |= rule.correlation.paths_of(path) if rule.correlation is not None else {path}
        return paths


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

    def __init__(self, document: RuleDocument):
        self.document = document
        self.diagnostics: list[Diagnostic] = []

    def error(self, code: str, message: str, *path, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.document.location(*path), self.document.title, hint))


def build_correlation(document: RuleDocument, catalog: Catalog) -> tuple[Rule | None, list[Diagnostic]]:
    """A correlation Rule (references not yet bound) from a schema-valid document. What
    depends on the referenced rules (fields, types, chains) is checked when they are bound."""
    data = document.data
    section = data["correlation"]
    check = _Checker(document)
    kind = section["type"]
    references = _as_list(section["rules"])
    aliases = {alias: dict(targets) for alias, targets in (section.get("aliases") or {}).items()}
    for alias in aliases:
        if alias in RESERVED:
            check.error("E404", f"alias '{alias}' is a column the correlation query returns", "correlation", "aliases", alias,
                        hint="choose another name")
        elif catalog.get(alias) is not None:
            check.error("E404", f"alias '{alias}' is also a signIn field name", "correlation", "aliases", alias,
                        hint="choose a name that is not a field, e.g. 'user'")
    raw = section.get("condition")
    expression = None
    condition = {}
    if isinstance(raw, str):
        expression = _expression(check, kind, raw, references)
    else:
        condition = dict(raw or {})
    value_field = condition.pop("field", None)
    value_fields = _as_list(value_field) if value_field is not None else ()
    percentile = condition.pop("percentile", None)
    if value_field is not None and kind not in WITH_FIELD:
        check.error("E405", f"'field' belongs to the conditions of {', '.join(WITH_FIELD)}, not {kind}",
                    "correlation", "condition", "field")
    elif len(value_fields) > 1 and kind != "value_count":
        check.error("E405", f"{kind} measures one field, not {len(value_fields)}", "correlation", "condition", "field",
                    hint="several fields (counted as distinct combinations) are for value_count")
    if percentile is not None and kind != "value_percentile":
        check.error("E405", f"'percentile' belongs to value_percentile conditions, not {kind}",
                    "correlation", "condition", "percentile",
                    hint="value_median is the 50th percentile" if kind == "value_median" else None)
    conditions = () if expression is not None else _conditions(check, kind, condition, len(references))
    timespan = section["timespan"]
    if parse_timespan(timespan) > MAX_TIMESPAN_SECONDS:  # KQL and Python's timedelta could not hold some
        check.error("E407", f"the timespan {timespan} is longer than a year, the longest a correlation may span",
                    "correlation", "timespan", hint="Sentinel looks back 14 days at most, Defender's advanced hunting 30")
    if check.diagnostics:
        return None, check.diagnostics
    correlation = Correlation(
        type=kind,
        references=references,
        group_by=_as_list(section["group-by"]),
        timespan=timespan,
        seconds=parse_timespan(timespan),
        conditions=conditions,
        value_fields=value_fields,
        aliases=tuple((alias, tuple(targets.items())) for alias, targets in aliases.items()),
        generate=bool(section.get("generate", False)),
        percentile=50 if kind == "value_median" else percentile,
        expression=expression,
        fields=tuple(data.get("fields") or ()),
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


def _conditions(check: _Checker, kind: str, condition: dict, rule_count: int) -> tuple[tuple[str, int | float], ...]:
    """One bound, `eq`, or a lower and an upper bound (a range), in a fixed order."""
    where = ("correlation", "condition")
    if kind == "temporal_ordered":
        if condition:
            check.error("E405", "temporal_ordered takes no bounds: every rule must match, in order", *where,
                        hint="a boolean condition over the rule names is allowed when it asks for all of them")
        return ()
    if not condition:  # temporal: all the rules, by default
        return (("gte", rule_count),)
    if kind in COUNTING:
        fractions = [op for op, bound in condition.items() if not isinstance(bound, int)]
        if fractions:
            check.error("E405", f"{kind} bounds a count, so '{fractions[0]}' must be a whole number", *where, fractions[0])
            return ()
    lower = [op for op in LOWER_BOUNDS if op in condition]
    upper = [op for op in UPPER_BOUNDS if op in condition]
    alone = [op for op in ("eq", "neq") if op in condition]
    if alone and len(condition) > 1:
        check.error("E405", f"'{alone[0]}' cannot be combined with other bounds", *where,
                    hint="neq stands alone; a range is one lower bound (gt or gte) and one upper bound (lt or lte)" if alone[0] == "neq" else None)
    elif kind in COUNTING and condition.get("neq", 1) < 1:
        check.error("E405", f"neq {condition['neq']} always holds: a window ends at an event, so it holds at least one", *where)
    elif kind == "temporal" and condition.get("neq", 0) > rule_count:
        check.error("E405", f"neq {condition['neq']} always holds: a window holds at most the {rule_count} correlated rules", *where)
    elif len(lower) > 1 or len(upper) > 1:
        check.error("E405", f"conflicting bounds {', '.join(lower if len(lower) > 1 else upper)}", *where,
                    hint="a range is one lower bound (gt or gte) and one upper bound (lt or lte)")
    elif lower and upper:
        low, high = condition[lower[0]], condition[upper[0]]
        empty = low > high or (low == high and (lower[0] == "gt" or upper[0] == "lt"))
        if kind in COUNTING:
            empty = low + (lower[0] == "gt") > high - (upper[0] == "lt")
        if empty:
            check.error("E405", f"the range {lower[0]} {low}, {upper[0]} {high} is empty", *where)
    if kind == "temporal":
        needed = condition.get("gte", condition.get("gt", -1) + 1 if "gt" in condition else condition.get("eq", 0))
        if needed > rule_count:
            check.error("E405", f"the condition asks for more distinct rules than the {rule_count} correlated", *where)
    order = ("eq", "neq") + LOWER_BOUNDS + UPPER_BOUNDS
    return tuple((op, condition[op]) for op in order if op in condition)


# -- extended conditions ------------------------------------------------------------------------
_KEYWORDS = re.compile(r"\b(and|or|not)\b", re.IGNORECASE)


def _expression(check: _Checker, kind: str, text: str, references: tuple[str, ...]) -> Expression | None:
    """A boolean condition over the rule names (`failed and not success`), parsed by pySigma;
    the specification's examples write the operators in capitals, pySigma in lower case."""
    where = ("correlation", "condition")  # the schema allows text only for the temporal types
    try:
        parsed = SigmaExtendedCorrelationCondition(_KEYWORDS.sub(lambda m: m.group(1).lower(), text))
    except SigmaError as error:
        check.error("E405", f"invalid condition: {str(error).split(' in ')[0].strip()}", *where,
                    hint="rule names joined by and, or, not, with parentheses")
        return None
    named = parsed.get_referenced_rules()
    unknown = [n for n in named if n not in references]
    unused = [r for r in references if r not in named]
    if unknown:
        close = difflib.get_close_matches(unknown[0], references, n=1, cutoff=0.6)
        check.error("E405", f"the condition names '{unknown[0]}', which is not in 'rules'", *where,
                    hint=f"did you mean '{close[0]}'?" if close else f"the rules are {', '.join(references)}")
        return None
    if unused:
        check.error("E405", f"the condition does not use '{unused[0]}' from 'rules'", *where,
                    hint="every correlated rule must appear in the condition")
        return None
    tree = _tree(parsed.parsed)
    if kind == "temporal_ordered" and tree != ("and", *(("rule", r) for r in references)):
        check.error("E405", "temporal_ordered needs every rule, in order: its condition can only be all of them joined by 'and'",
                    *where, hint="use temporal for a condition with or / not")
        return None
    return None if kind == "temporal_ordered" else tree


def _tree(node) -> Expression:
    """pySigma's parse tree → nested tuples, with and/or flattened."""
    if isinstance(node, SigmaRuleReference):
        return ("rule", node.reference)
    if isinstance(node, CorrelationConditionNOT):
        return ("not", _tree(node.args[0]))
    op = "and" if isinstance(node, CorrelationConditionAND) else "or"
    assert isinstance(node, (CorrelationConditionAND, CorrelationConditionOR))
    args = []
    for arg in node.args:
        sub = _tree(arg)
        args += list(sub[1:]) if sub[0] == op else [sub]
    return (op, *args)


def expression_rules(tree: Expression) -> list[str]:
    """The rule names an expression mentions, in order."""
    if tree[0] == "rule":
        return [tree[1]]
    return [name for arg in tree[1:] for name in expression_rules(arg)]

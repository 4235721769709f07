"""A pySigma backend whose output is our IR instead of query text.

pySigma owns the Sigma semantics (modifiers, value types, `1 of`, `all`, negation); this
backend only records each field/value pair as an `ir.Match`. It knows neither Entra nor
KQL: tables and columns are the map step's business, syntax the KQL generator's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionIdentifier,
    ConditionItem,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.conversion.base import Backend
from sigma.conversion.state import ConversionState
from sigma.exceptions import SigmaError
from sigma.rule import SigmaDetection, SigmaRule
from sigma.types import (
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaFieldReference,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
    TimestampPart,
)

from . import ir

COMPARE_TOKENS = {"LT": "<", "LTE": "<=", "GT": ">", "GTE": ">="}
TIME_PARTS = {part: part.name.lower() for part in TimestampPart}  # MINUTE → "minute", the modifier's name
REGEX_FLAGS = {
    SigmaRegularExpressionFlag.IGNORECASE: "i",
    SigmaRegularExpressionFlag.MULTILINE: "m",
    SigmaRegularExpressionFlag.DOTALL: "s",
}


class UnsupportedConstruct(SigmaError):
    """A Sigma construct with no meaning on sign-in logs (keywords, timestamp parts, …)."""

    def __init__(self, message: str, origin: ir.Origin | None = None):
        super().__init__(message)
        self.origin = origin


def string_match(value: SigmaString) -> tuple[str, Any]:
    """Classify a Sigma string: plain equality, contains/startswith/endswith, or a pattern."""
    parts: list[str | ir.Wildcard] = []
    for part in value.s:
        if part == SpecialChars.WILDCARD_MULTI:
            parts.append(ir.Wildcard.MULTI)
        elif part == SpecialChars.WILDCARD_SINGLE:
            parts.append(ir.Wildcard.SINGLE)
        elif parts and isinstance(parts[-1], str):
            parts[-1] += str(part)
        else:
            parts.append(str(part))
    texts = [p for p in parts if isinstance(p, str)]
    wild = [p for p in parts if isinstance(p, ir.Wildcard)]
    if not wild:
        return "eq", "".join(texts)
    if all(p is ir.Wildcard.MULTI for p in parts):
        return "any", None
    if len(texts) == 1 and all(p is ir.Wildcard.MULTI for p in wild):
        text = texts[0]
        starts, ends = parts[0] is ir.Wildcard.MULTI, parts[-1] is ir.Wildcard.MULTI
        if len(parts) == 3 and starts and ends:
            return "contains", text
        if len(parts) == 2 and starts:
            return "endswith", text
        if len(parts) == 2 and ends:
            return "startswith", text
    return "pattern", tuple(parts)


class SigmaToIR(Backend):
    """Turns a parsed Sigma condition into `ir` nodes; one instance per rule."""

    name: ClassVar[str] = "entra-sigma intermediate form"
    formats: ClassVar[dict[str, str]] = {"default": "IR trees"}
    requires_pipeline: ClassVar[bool] = False

    def __init__(self) -> None:
        super().__init__(processing_pipeline=None, collect_errors=False)
        self._detections: dict[str, SigmaDetection] = {}
        # per selection, whether it is a list of maps; per ConditionOR, its arguments' positions.
        # Looked up once per match: computing them each time made wide selections quadratic.
        self._map_lists: dict[str, bool] = {}
        self._positions: dict[int, tuple[ConditionOR, dict[int, int]]] = {}

    # -- entry point -------------------------------------------------------------------
    def to_ir(self, rule: SigmaRule) -> list[ir.Node]:
        """The IR of every condition of `rule`."""
        self._detections = rule.detection.detections
        self._map_lists, self._positions = {}, {}
        try:
            return self.convert_rule(rule)
        finally:
            self._map_lists, self._positions = {}, {}

    def _origin(self, cond: ConditionFieldEqualsValueExpression) -> tuple[str, ir.Origin]:
        """The selection a match came from and, for a list of maps, which map (its group)."""
        chain: list[Any] = []
        node: Any = cond
        while node is not None and not isinstance(node, ConditionIdentifier):
            chain.append(node)
            node = getattr(node, "parent", None)
        if node is None:
            return "", ir.Origin("", cond.field or "")
        name = node.identifier
        index = None
        if self._is_map_list(name) and len(chain) >= 2 and isinstance(chain[-1], ConditionOR):
            index = self._position(chain[-1], chain[-2])
        group = name if index is None else f"{name}[{index}]"
        return group, ir.Origin(name, cond.field or "", index)

    def _is_map_list(self, name: str) -> bool:
        if name not in self._map_lists:
            detection = self._detections.get(name)
            maps = [i for i in detection.detection_items if isinstance(i, SigmaDetection)] if detection else []
            self._map_lists[name] = len(maps) > 1
        return self._map_lists[name]

    def _position(self, parent: ConditionOR, child: Any) -> int | None:
        """Where `child` (the very object) sits among `parent`'s arguments."""
        known = self._positions.get(id(parent))
        if known is None or known[0] is not parent:  # keep `parent` alive so its id stays its own
            known = (parent, {})
            for i, arg in enumerate(parent.args):
                known[1].setdefault(id(arg), i)
            self._positions[id(parent)] = known
        return known[1].get(id(child))

    def _match(self, cond: ConditionFieldEqualsValueExpression, op: str, value: Any, cased: bool = False) -> ir.Match:
        group, origin = self._origin(cond)
        return ir.Match(cond.field, op, value, cased, group, replace(origin, op=op))

    # -- boolean structure -------------------------------------------------------------
    def convert_condition_and(self, cond: ConditionAND, state: ConversionState) -> ir.Node:
        return ir.And(tuple(self.convert_condition(arg, state) for arg in cond.args))

    def convert_condition_or(self, cond: ConditionOR, state: ConversionState) -> ir.Node:
        return ir.Or(tuple(self.convert_condition(arg, state) for arg in cond.args))

    def convert_condition_not(self, cond: ConditionNOT, state: ConversionState) -> ir.Node:
        node: Any = cond.parent
        while node is not None and not isinstance(node, ConditionIdentifier):
            node = getattr(node, "parent", None)
        return ir.Not(self.convert_condition(cond.args[0], state), in_selection=node is not None)

    def convert_condition_as_in_expression(self, cond: ConditionItem, state: ConversionState) -> ir.Node:
        raise NotImplementedError  # never chosen: convert_or_as_in is False

    # -- field = value -----------------------------------------------------------------
    def convert_condition_field_eq_val_str(self, cond, state) -> ir.Node:
        op, value = string_match(cond.value)
        return self._match(cond, op, value, cased=isinstance(cond.value, SigmaCasedString))

    def convert_condition_field_eq_val_str_case_sensitive(self, cond, state) -> ir.Node:
        return self.convert_condition_field_eq_val_str(cond, state)

    def convert_condition_field_eq_val_num(self, cond, state) -> ir.Node:
        number: SigmaNumber = cond.value
        return self._match(cond, "eq", number.number)

    def convert_condition_field_eq_val_bool(self, cond, state) -> ir.Node:
        boolean: SigmaBool = cond.value
        return self._match(cond, "eq", boolean.boolean)

    def convert_condition_field_eq_val_re(self, cond, state) -> ir.Node:
        regex: SigmaRegularExpression = cond.value
        flags = "".join(sorted(REGEX_FLAGS[f] for f in regex.flags))
        return self._match(cond, "regex", (str(regex.regexp), flags), cased=True)

    def convert_condition_field_eq_val_cidr(self, cond, state) -> ir.Node:
        cidr: SigmaCIDRExpression = cond.value
        return self._match(cond, "cidr", str(cidr.network))

    def convert_condition_field_compare_op_val(self, cond, state) -> ir.Node:
        compare: SigmaCompareExpression = cond.value
        if isinstance(compare.number, SigmaTimestampPart):  # `createdDateTime|hour|gte: 22`
            part = compare.number
            return self._match(cond, "timepart", (TIME_PARTS[part.timestamp_part], COMPARE_TOKENS[compare.op.name], part.number))
        return self._match(cond, "compare", (COMPARE_TOKENS[compare.op.name], compare.number.number))

    def convert_condition_field_eq_val_timestamp_part(self, cond, state) -> ir.Node:
        part: SigmaTimestampPart = cond.value
        return self._match(cond, "timepart", (TIME_PARTS[part.timestamp_part], "==", part.number))

    def convert_condition_field_eq_field(self, cond, state) -> ir.Node:
        reference: SigmaFieldReference = cond.value
        if reference.starts_with or reference.ends_with:
            raise UnsupportedConstruct(
                "fieldref with startswith/endswith is not supported", self._origin(cond)[1]
            )
        return self._match(cond, "fieldref", reference.field)

    def convert_condition_field_eq_val_null(self, cond, state) -> ir.Node:
        return self._match(cond, "null", None)

    def convert_condition_field_exists(self, cond, state) -> ir.Node:
        return self._match(cond, "exists", True)

    def convert_condition_field_not_exists(self, cond, state) -> ir.Node:
        return self._match(cond, "exists", False)

    def convert_condition_field_eq_val_exists(self, cond, state) -> ir.Node:
        return self._match(cond, "exists", bool(cond.value.exists))

    # -- constructs without a meaning here -----------------------------------------------
    def _unsupported(self, what: str, cond: Any = None) -> ir.Node:
        origin = self._origin(cond)[1] if isinstance(cond, ConditionFieldEqualsValueExpression) else None
        raise UnsupportedConstruct(what, origin)

    def convert_condition_field_eq_query_expr(self, cond, state):
        return self._unsupported("query expressions are not supported", cond)

    def convert_condition_field_eq_expansion(self, cond, state):
        return self._unsupported("the 'expand' modifier needs placeholders, which are not supported", cond)

    def convert_condition_val(self, cond: ConditionValueExpression, state):
        return self._unsupported(
            "keyword searches (values without a field) are not supported: name the field"
        )

    convert_condition_val_str = convert_condition_val
    convert_condition_val_num = convert_condition_val
    convert_condition_val_re = convert_condition_val
    convert_condition_query_expr = convert_condition_val

    def _no_correlation(self, *args, **kwargs):
        raise UnsupportedConstruct("correlation rules are not supported")

    convert_correlation_event_count_rule = _no_correlation
    convert_correlation_value_count_rule = _no_correlation
    convert_correlation_temporal_rule = _no_correlation
    convert_correlation_temporal_ordered_rule = _no_correlation
    convert_correlation_extended_temporal_rule = _no_correlation
    convert_correlation_extended_temporal_ordered_rule = _no_correlation
    convert_correlation_value_sum_rule = _no_correlation
    convert_correlation_value_avg_rule = _no_correlation
    convert_correlation_value_median_rule = _no_correlation
    convert_correlation_value_percentile_rule = _no_correlation

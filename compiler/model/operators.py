"""What each match operator means, in one table.

A rule's field/value pair becomes an `ir.Match` with one of these operators. The modifier
checks (validate/fields.py), the map step's evaluation on missing and constant fields
(map/lower.py), the locator of a diagnostic's key (model/rule.py) and the KQL generator
(convert/kql.py, one `<op>_predicate` method per operator) all read an operator's meaning
here, instead of each testing operator names on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Callable

from ..validate.catalog import NUMERIC_TYPES


class Op(str, Enum):
    EQ = "eq"
    CONTAINS = "contains"
    STARTSWITH = "startswith"
    ENDSWITH = "endswith"
    PATTERN = "pattern"  # wildcards
    ANY = "any"  # `*` alone: any non-empty value
    REGEX = "regex"
    CIDR = "cidr"
    COMPARE = "compare"  # gt, gte, lt, lte
    EXISTS = "exists"
    NULL = "null"
    FIELDREF = "fieldref"
    TIMEPART = "timepart"  # minute, hour, day, week, month, year of a date-time
    BITS = "bits"  # set by the map step: a flags member tested as its bit


def _on_missing_exists(value: Any) -> bool:
    return not value  # `exists: false` holds for a missing field


@dataclass(frozen=True)
class Operator:
    op: Op
    modifiers: frozenset[str] = frozenset()  # the Sigma modifiers that ask for it ({} = a plain value)
    accepts: Callable[[Any], bool] | None = None  # which catalog fields it applies to (None: any scalar)
    requires: str = ""  # what it needs of a text field, for the message when it does not apply
    named: str = ""  # how a message names it (the modifiers a user wrote)
    presence: bool = False  # asks whether the field has a value: literal on absent keys, whole arrays
    text_search: bool = False  # searches inside text (SigmaHQ's `Status|contains` searches its words)
    on_missing: Callable[[Any], bool] = lambda value: False  # its value on a field a table lacks (Sigma: null)
    on_constant: Callable[[Any, Any, bool], bool] | None = None  # (rule value, constant, cased) → result


def _is_number(field) -> bool:
    return field.type in NUMERIC_TYPES


def _is_ip(field) -> bool:
    return field.type == "string" and field.format == "ip"


def _is_text(field) -> bool:
    return field.type == "string"


def _is_datetime(field) -> bool:
    return field.type == "dateTime"


# Sigma's time modifiers (modifiers appendix, 2.1.0): the part of a date-time each one reads,
# and the values the appendix gives it. The year has no stated range; KQL dates run 1 to 9999.
TIME_PARTS: dict[str, tuple[int, int]] = {
    "minute": (0, 59), "hour": (0, 23), "day": (1, 31), "week": (1, 52), "month": (1, 12), "year": (1, 9999),
}


def _eq_constant(value: Any, constant: Any, cased: bool) -> bool:
    if isinstance(constant, str) and isinstance(value, str):
        return constant == value if cased else constant.lower() == value.lower()
    return constant == value


OPERATORS: dict[Op, Operator] = {op.op: op for op in (
    Operator(Op.EQ, on_constant=_eq_constant),
    Operator(Op.CONTAINS, frozenset({"contains"}), _is_text, text_search=True),
    Operator(Op.STARTSWITH, frozenset({"startswith"}), _is_text, text_search=True),
    Operator(Op.ENDSWITH, frozenset({"endswith"}), _is_text, text_search=True),
    Operator(Op.PATTERN, accepts=_is_text, named="wildcards", text_search=True),
    Operator(Op.ANY, accepts=_is_text),
    Operator(Op.REGEX, frozenset({"re"}), _is_text, named="re", text_search=True),
    Operator(Op.CIDR, frozenset({"cidr"}), _is_ip, requires="an IP address field such as 'ipAddress'"),
    Operator(Op.COMPARE, frozenset({"gt", "gte", "lt", "lte"}), _is_number,
             requires="a number field (int, long or double)", named="gt/gte/lt/lte"),
    Operator(Op.EXISTS, frozenset({"exists"}), presence=True, on_missing=_on_missing_exists,
             on_constant=lambda value, constant, cased: (constant is not None) == bool(value)),
    Operator(Op.NULL, presence=True, on_missing=lambda value: True,
             on_constant=lambda value, constant, cased: constant is None),
    Operator(Op.FIELDREF, frozenset({"fieldref"})),
    Operator(Op.TIMEPART, frozenset(TIME_PARTS), _is_datetime, requires="a date-time field such as 'createdDateTime'",
             named="minute/hour/day/week/month/year"),
    Operator(Op.BITS),
)}

VALUE_MODIFIERS = frozenset().union(*(o.modifiers for o in OPERATORS.values()))


def operator(op: str) -> Operator:
    return OPERATORS[Op(op)]


def named(op: str) -> str:
    """The operator as a message names it: the modifiers a rule writes."""
    spec = operator(op)
    return spec.named or op

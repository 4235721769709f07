"""KQL generators: print mapped predicate trees as Kusto, one class per dialect.

The base class prints everything for Log Analytics (Sentinel); a dialect states only what
differs, as class attributes. Nothing here knows about sign-ins: columns, paths and
encodings arrive already resolved by the map step.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Callable, ClassVar

from ..map.lower import AnyElement, ElementAccess, Predicate, RowFilter, Tree
from ..map.tables import ColumnAccess
from ..model import ir
from ..model.operators import Op
from ..validate.catalog import Field
from .kql_watchlists import WatchlistPredicates

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KQL_KEYWORDS = {"and", "or", "not", "in", "has", "where", "project", "extend", "true", "false"}
STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Controls, format characters (bidi overrides, zero-width), surrogates and line or paragraph
# separators are spelt \uXXXX: raw, they are invisible in review, end a `//` comment, or make
# the YAML that embeds the query unreadable.
HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}


def is_hidden(ch: str) -> bool:
    return unicodedata.category(ch) in HIDDEN_CATEGORIES or ch in "\ufffe\uffff"


def unicode_escape(ch: str) -> str:
    r"""`\uXXXX`, as a UTF-16 pair above the BMP (Kusto reads `\ud83d\ude00` as one character)."""
    code = ord(ch)
    if code < 0x10000:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def comment_text(value: object) -> str:
    """Text safe inside a `//` comment: one line, runs of white space as one space, hidden
    characters spelt out."""
    text = " ".join(str(value).split())
    if text.isascii() and text.isprintable():
        return text
    return "".join(unicode_escape(ch) if is_hidden(ch) else ch for ch in text)


@dataclass
class Leg:
    """One table's part of the query: its name and the pipe steps after it."""

    table: str
    steps: list[str] = field(default_factory=list)


class KqlGenerator(WatchlistPredicates):
    """Log Analytics KQL, as Microsoft Sentinel runs it."""

    dialect: ClassVar[str] = "sentinel"
    # columns every projection starts with; {time} is the table's time column
    projection_prefix: ClassVar[tuple[str, ...]] = ("{time}", "Type")
    # conversion of a dynamic value to each catalog type
    converters: ClassVar[dict[str, str]] = {
        "string": "tostring", "enum": "tostring", "int": "toint", "long": "tolong",
        "double": "todouble", "bool": "tobool", "dateTime": "todatetime",
    }
    # the KQL type each converter yields
    converted_types: ClassVar[dict[str, str]] = {
        "string": "string", "enum": "string", "int": "int", "long": "long",
        "double": "real", "bool": "bool", "dateTime": "datetime", "object": "dynamic",
    }
    typed_nulls: ClassVar[dict[str, str]] = {
        "string": '""', "enum": '""', "int": "int(null)", "long": "long(null)",
        "double": "real(null)", "bool": "bool(null)", "dateTime": "datetime(null)", "object": "dynamic(null)",
    }
    string_operators: ClassVar[dict[tuple[str, bool], str]] = {
        ("eq", False): "=~", ("eq", True): "==",
        ("contains", False): "contains", ("contains", True): "contains_cs",
        ("startswith", False): "startswith", ("startswith", True): "startswith_cs",
        ("endswith", False): "endswith", ("endswith", True): "endswith_cs",
    }
    in_operators: ClassVar[dict[bool, str]] = {False: "in~", True: "in"}
    flags_operators: ClassVar[tuple[str, str]] = ("has", "has_any")
    json_parse: ClassVar[str] = "todynamic"

    # -- literals ----------------------------------------------------------------------
    @staticmethod
    def string(value: str) -> str:
        """The one way text becomes a KQL string literal: Kusto reads back exactly `value`
        (tests/test_literals.py proves it with Kusto.Language)."""
        if value.isascii() and value.isprintable():
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        else:
            escaped = "".join(
                STRING_ESCAPES.get(ch) or (unicode_escape(ch) if is_hidden(ch) else ch) for ch in value
            )
        return f'"{escaped}"'

    def regex(self, pattern: str) -> str:
        """A verbatim string (no backslash doubling) when the pattern has nothing to spell out."""
        if (pattern.isascii() and pattern.isprintable()) or not any(is_hidden(ch) for ch in pattern):
            return '@"' + pattern.replace('"', '""') + '"'
        return self.string(pattern)

    @staticmethod
    def number(value: int | float) -> str:
        return repr(value) if isinstance(value, float) else str(int(value))

    @staticmethod
    def boolean(value: bool) -> str:
        return "true" if value else "false"

    @staticmethod
    def member(name: str) -> str:
        return name if IDENTIFIER.match(name) and name.lower() not in KQL_KEYWORDS else f"[{KqlGenerator.string(name)}]"

    # -- access ------------------------------------------------------------------------
    def _path(self, base: str, path: tuple[str, ...]) -> str:
        for part in path:
            base += "." + part if IDENTIFIER.match(part) and part.lower() not in KQL_KEYWORDS else f"[{self.string(part)}]"
        return base

    def raw(self, access: ColumnAccess | ElementAccess) -> tuple[str, str]:
        """The access as KQL text and its KQL type, before conversion to the field's type."""
        if isinstance(access, ElementAccess):
            return self._path(access.variable, access.path), "dynamic"
        column = self.member(access.column)
        if not access.path:
            return column, access.column_type
        if access.column_type == "dynamic":
            return self._path(column, access.path), "dynamic"
        return self._path(f"{self.json_parse}({column})", access.path), "dynamic"

    def array(self, access: ColumnAccess) -> str:
        """An array column as dynamic (parsing it when it is stored as JSON text)."""
        text, kind = self.raw(access)
        return text if kind == "dynamic" else f"{self.json_parse}({text})"

    def typed(self, spec: Field, access: ColumnAccess | ElementAccess) -> tuple[str, str]:
        text, kind = self.raw(access)
        if spec.element_key and isinstance(access, ElementAccess) and not access.path:
            # an element written as an object holds the value under element_key
            text = f"coalesce({self._path(text, (spec.element_key,))}, {text})"
        if kind == "dynamic" and spec.type in self.converters:
            return f"{self.converters[spec.type]}({text})", self.converted_types[spec.type]
        return text, kind

    def as_number(self, spec: Field, text: str, kind: str) -> str:
        """A number-valued field stored as text (ResultType) compares after conversion."""
        if kind == "string":
            return f"{self.converters.get(spec.type, 'tolong')}({text})"
        return text

    # -- predicates: one method per operator (`<op>_predicate`), found once per class ------
    @classmethod
    def _dispatch(cls) -> dict[str, Callable]:
        if "_methods" not in cls.__dict__:
            cls._methods = {op.value: getattr(cls, f"{op.value}_predicate") for op in Op}
        return cls._methods

    def predicate(self, p: Predicate) -> str:
        method = self._dispatch().get(p.match.op)
        if method is None:
            raise ValueError(f"unknown match operator {p.match.op}")
        text, kind = self.typed(p.field, p.access)
        return method(self, p, text, kind)

    def _presence(self, p: Predicate, text: str, kind: str, present: bool) -> str:
        if p.field.collection and isinstance(p.access, ColumnAccess):  # an empty array is as absent as a missing one
            test = self.null_safe(f"array_length({self.array(p.access)}) > 0")
            return test if present else f"not({test})"
        if kind == "dynamic":
            text, kind = f"tostring({text})", "string"
        if kind == "string":
            return f"isnotempty({text})" if present else f"isempty({text})"
        return f"isnotnull({text})" if present else f"isnull({text})"

    def exists_predicate(self, p: Predicate, text: str, kind: str) -> str:
        return self._presence(p, text, kind, bool(p.match.value))

    def null_predicate(self, p: Predicate, text: str, kind: str) -> str:
        return self._presence(p, text, kind, False)

    def eq_predicate(self, p: Predicate, text: str, kind: str) -> str:
        m, spec = p.match, p.field
        if isinstance(m.value, ir.Watchlist):
            return self.in_watchlist(p, text, kind)
        encoding = p.access.encoding if isinstance(p.access, ColumnAccess) else None
        if spec.false_when_absent and m.value is False:
            return self.not_true(text, encoding)
        if encoding is not None:
            key = self.boolean(m.value) if isinstance(m.value, bool) else str(m.value)
            return f"{text} == {self.number(dict(encoding)[key])}"
        if spec.flags:
            return f"{text} {self.flags_operators[0]} {self.string(m.value)}"
        return f"{text} {self.eq_operator(m, spec, kind)} {self.value(m.value, spec, kind)}"

    def bits_predicate(self, p: Predicate, text: str, kind: str) -> str:
        return self.bits(self.number_of(p.access), (p.match.value,))

    def _text_search(self, p: Predicate, text: str, kind: str) -> str:
        m = p.match
        return f"{text} {self.string_operators[(m.op, m.cased)]} {self.string(m.value)}"

    contains_predicate = startswith_predicate = endswith_predicate = _text_search

    def any_predicate(self, p: Predicate, text: str, kind: str) -> str:
        return f"isnotempty({text})"

    def pattern_predicate(self, p: Predicate, text: str, kind: str) -> str:
        return f"{text} matches regex {self.regex(self.pattern_regex(p.match.value, p.match.cased))}"

    def regex_predicate(self, p: Predicate, text: str, kind: str) -> str:
        pattern, flags = p.match.value
        return f"{text} matches regex {self.regex(('(?' + flags + ')' if flags else '') + pattern)}"

    def cidr_predicate(self, p: Predicate, text: str, kind: str) -> str:
        if isinstance(p.match.value, ir.Watchlist):
            return self.in_watchlist_ranges(p.match.value, text)
        function = "ipv6_is_in_range" if ":" in p.match.value else "ipv4_is_in_range"
        return self.null_safe(f"{function}({text}, {self.string(p.match.value)})")

    def compare_predicate(self, p: Predicate, text: str, kind: str) -> str:
        operator, number = p.match.value
        return self.null_safe(f"{self.as_number(p.field, text, kind)} {operator} {self.number(number)}")

    def fieldref_predicate(self, p: Predicate, text: str, kind: str) -> str:
        m, spec = p.match, p.field
        other_spec, other_access = p.other
        other, other_kind = self.typed(other_spec, other_access)
        if spec.type in ("string", "enum"):  # two empty (missing) values are not equal
            return f"isnotempty({text}) and {text} {'==' if m.cased else '=~'} {other}"
        if spec.false_when_absent or other_spec.false_when_absent:  # absent is false on that side
            left = f"coalesce({text}, false)" if spec.false_when_absent else text
            right = f"coalesce({other}, false)" if other_spec.false_when_absent else other
            return self.null_safe(f"{left} == {right}")
        return self.null_safe(f"{self.as_number(spec, text, kind)} == {self.as_number(other_spec, other, other_kind)}")

    def truth(self, text: str, encoding: tuple[tuple[str, object], ...] | None) -> str:
        """A boolean field as true, false or null (a number-encoded column compared with its true)."""
        return f"{text} == {self.number(dict(encoding)['true'])}" if encoding is not None else text

    def not_true(self, text: str, encoding: tuple[tuple[str, object], ...] | None) -> str:
        """`false` on a key the tables leave out when false: absent (null) counts as false."""
        return f"coalesce({self.truth(text, encoding)}, false) == false"

    def number_of(self, access: ColumnAccess | ElementAccess) -> str:
        """A flags enum stored as its number, as an integer."""
        text, kind = self.raw(access)
        return text if kind in ("int", "long") else f"toint({text})"

    @staticmethod
    def bits(value: str, members: tuple[int, ...]) -> str:
        """Any of the members' bits set; a member numbered 0 (`none`) means no bit is set."""
        mask = 0
        for bit in members:
            mask |= bit
        tests = [f"{value} == 0"] if 0 in members else []
        if mask:
            tests.append(f"binary_and({value}, {mask}) != 0")
        return " or ".join(tests)  # two tests only for a list of members: an Or, which condition() brackets

    def row_filter(self, column: str, value: object) -> str:
        """Keep the rows of one service in a table that mixes several (IsManagedIdentity)."""
        literal = self.boolean(value) if isinstance(value, bool) else self.string(str(value))
        return f"{self.member(column)} == {literal}"

    @staticmethod
    def null_safe(expression: str) -> str:
        """Comparisons with a null side yield null, and not(null) is null: pin them to false so
        that `not` keeps Sigma's meaning for missing values."""
        return f"coalesce({expression}, false)"

    def eq_operator(self, m: ir.Match, spec: Field, kind: str) -> str:
        if spec.type == "enum":
            return "=~"
        if isinstance(m.value, str) and spec.type == "string":
            return self.string_operators[("eq", m.cased)]
        return "=="

    def value(self, value, spec: Field, kind: str) -> str:
        if isinstance(value, bool):
            return self.boolean(value) if kind != "string" else self.string(self.boolean(value))
        if isinstance(value, (int, float)):
            return self.string(self.number(value)) if kind == "string" else self.number(value)
        if spec.type == "dateTime":
            return f"datetime({value})"
        return self.string(value)

    @staticmethod
    def pattern_regex(parts: ir.Pattern, cased: bool) -> str:
        body = "".join(
            ".*" if p is ir.Wildcard.MULTI else "." if p is ir.Wildcard.SINGLE else re.escape(p)
            for p in parts
        )
        return ("(?s)" if cased else "(?is)") + "^" + body + "$"

    # -- boolean structure ---------------------------------------------------------------
    def in_list(self, node: ir.Or) -> str | None:
        """`a =~ x or a =~ y` → `a in~ (x, y)` when every branch is plain equality on one access."""
        preds = node.args
        if len(preds) < 2 or not all(isinstance(p, Predicate) and p.match.op in (Op.EQ, Op.BITS) for p in preds):
            return None
        if any(isinstance(p.match.value, ir.Watchlist) for p in preds):
            return None
        first = preds[0]
        if any(p.access != first.access or p.field != first.field or p.match.cased != first.match.cased
               or p.match.op != first.match.op for p in preds):
            return None
        spec = first.field
        if first.match.op == Op.BITS:
            return self.bits(self.number_of(first.access), tuple(p.match.value for p in preds))
        if spec.false_when_absent:  # `false` is not a plain value there
            return None
        text, kind = self.typed(spec, first.access)
        encoding = first.access.encoding if isinstance(first.access, ColumnAccess) else None
        if encoding is not None:
            values = [self.number(dict(encoding)[self.boolean(p.match.value) if isinstance(p.match.value, bool) else str(p.match.value)]) for p in preds]
            return f"{text} in ({', '.join(values)})"
        values = ", ".join(self.value(p.match.value, spec, kind) for p in preds)
        if spec.flags:
            return f"{text} {self.flags_operators[1]} ({values})"
        if kind == "string":  # enums compare case-insensitively, like their single-value `=~`
            exact = first.match.cased and spec.type == "string" or spec.type not in ("string", "enum")
            return f"{text} {self.in_operators[exact]} ({values})"
        return f"{text} in ({values})"

    def condition(self, node: Tree, flags: dict[AnyElement, str], parent: str = "") -> str:
        if isinstance(node, ir.Const):
            return self.boolean(node.value)
        if isinstance(node, Predicate):
            return self.predicate(node)
        if isinstance(node, AnyElement):
            return flags[node]
        if isinstance(node, RowFilter):
            return self.row_filter(node.column, node.value)
        if isinstance(node, ir.Not):
            return f"not({self.condition(node.arg, flags)})"
        if isinstance(node, ir.Or):
            text = self.in_list(node) or " or ".join(
                f"({self.condition(a, flags)})" if isinstance(a, ir.And) else self.condition(a, flags, "or")
                for a in node.args
            )
            return f"({text})" if parent == "and" and " or " in text else text
        if isinstance(node, ir.And):
            return " and ".join(self.condition(a, flags, "and") for a in node.args)
        raise TypeError(type(node).__name__)

    # -- arrays: one mv-apply per array condition, as a boolean column ----------------------
    def element_test(self, node: AnyElement, flag: str) -> str:
        """What mv-apply computes: whether any element matches, as the column `flag`; empty
        arrays keep their row."""
        array = self.array(node.array)
        inner = self.condition(node.condition, {})
        return (
            f"{node.variable} = iff(array_length({array}) > 0, {array}, dynamic([null])) on "
            f"(summarize {flag} = countif(isnotnull({node.variable}) and ({inner})) > 0)"
        )

    # -- pipe steps: the query builders lay these out, and never write KQL themselves ------
    def where(self, node: Tree, flags: dict[AnyElement, str]) -> str:
        return f"where {self.condition(node, flags)}"

    def mv_apply(self, node: AnyElement, flag: str) -> str:
        return "mv-apply " + self.element_test(node, flag)

    @staticmethod
    def project(columns: list[str]) -> str:
        return "project " + ", ".join(columns)

    @staticmethod
    def project_away(columns: list[str]) -> str:
        return "project-away " + ", ".join(columns)

    @staticmethod
    def assign(name: str, expression: str) -> str:
        return f"{name} = {expression}"

    def extend(self, assignments: list[tuple[str, str]]) -> str:
        return "extend " + ", ".join(self.assign(name, expression) for name, expression in assignments)


def collect_elements(node: Tree, found: list[AnyElement]) -> None:
    """Add the array tests in `node` to `found`, in order, each once."""
    for element in ir.walk(node):
        if isinstance(element, AnyElement) and element not in found:
            found.append(element)


class DefenderGenerator(KqlGenerator):
    """Advanced hunting in Microsoft Defender XDR: same language, other prefix columns."""

    dialect: ClassVar[str] = "defender"
    # custom detections need Timestamp, ReportId and a column naming the impacted user; a
    # projection keeps those its table has
    projection_prefix: ClassVar[tuple[str, ...]] = ("{time}", "ReportId", "AccountObjectId")
    # the columns of a sign-in table that can name a custom detection's impacted asset
    impacted_asset_columns: ClassVar[tuple[str, ...]] = ("AccountObjectId", "AccountUpn")


GENERATORS: dict[str, type[KqlGenerator]] = {"sentinel": KqlGenerator, "defender": DefenderGenerator}


"""Validate step 2: every field, modifier and value against the beta `signIn` catalog.

Returns the IR with values normalised to their field's type (enum members in Graph's
spelling, numbers as numbers, booleans as booleans) plus located diagnostics. Never raises
on user error.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import Callable

import re2

from ..diagnostics import Diagnostic, SourceLocation
from ..model import ir
from ..model.operators import Op, named, operator
from .catalog import NUMERIC_TYPES, Catalog, Field

# What a field of each type takes, for the message when an operator does not apply to it
TAKES = {"number": "a number (or gt/gte/lt/lte)", "bool": "true or false", "dateTime": "an ISO 8601 date-time value"}
BOOL_WORDS = {"true": True, "false": False}
# pySigma keeps an integer beyond 2^53 as a float, rounded (9007199254740993 → 2^53): refuse
# those on integer fields rather than compare with another number than the one written.
EXACT_INTEGERS = 2**53
# What KQL's datetime() reads: ISO 8601 date, optional time, fraction (up to 7 digits) and zone.
DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,7})?)?(?:Z|[+-]\d{2}:\d{2})?)?")

def regex_problem(pattern: str) -> str | None:
    """Why a Sigma `re` value cannot run in KQL, or None. KQL uses RE2, so RE2 itself judges
    (google-re2, which pySigma also uses); checked before pySigma sees the value."""
    options = re2.Options()
    options.log_errors = False  # RE2 would print each error to stderr as well
    try:
        re2.compile(pattern, options=options)
    except re2.error as error:
        detail = error.args[0] if error.args else error
        return detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    return None


Locate = Callable[[ir.Origin | None], SourceLocation]


class FieldChecker:
    """Checks and normalises the matches of one rule."""

    def __init__(self, catalog: Catalog, locate: Locate, rule_title: str | None):
        self.catalog = catalog
        self.locate = locate
        self.rule = rule_title
        self.diagnostics: list[Diagnostic] = []

    def error(self, code: str, message: str, origin: ir.Origin | None, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.locate(origin), self.rule, hint))

    # -- fields ------------------------------------------------------------------------
    def field(self, path: str, origin: ir.Origin | None) -> Field | None:
        found = self.catalog.get(path)
        unsupported = self.catalog.unsupported(path)
        if found is None and unsupported is not None:
            self.error("E101", f"field '{path}' is not supported", origin, unsupported)
            return None
        if found is None:
            suggestions = self.catalog.suggestions(path)
            self.error(
                "E101", f"unknown field '{path}'", origin,
                f"did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else "see docs/reference/fields.md",
            )
            return None
        if len(found.arrays) > 1:
            self.error(
                "E102", f"field '{path}' lies inside nested arrays ({' > '.join(found.arrays)}), which cannot be matched",
                origin,
            )
            return None
        if found.never_filled:
            self.diagnostics.append(never_filled_warning(found, self.locate(origin), self.rule))
        return found

    # -- the tree ----------------------------------------------------------------------
    def check(self, node: ir.Node) -> ir.Node:
        return ir.map_matches(node, self.match)

    def match(self, m: ir.Match) -> ir.Match:
        spec = self.field(m.field, m.origin)
        if spec is None:
            return m
        op = operator(m.op)
        if op.presence:
            return m
        if spec.type == "object":
            self.error(
                "E103", f"'{m.field}' is an object; match one of its properties, or use 'exists' or null",
                m.origin, self._children_hint(m.field),
            )
            return m
        if m.op == Op.FIELDREF:
            return self._fieldref(m, spec)
        if isinstance(m.value, ir.Watchlist):
            return self._watchlist(m, spec)
        if op.accepts is not None and not op.accepts(spec):
            return self._wrong_op(m, spec, op.requires if spec.type == "string" else self._takes(spec))
        if spec.type == "enum":
            return self._enum(m, spec)
        if spec.type in NUMERIC_TYPES:
            return self._number(m, spec)
        if spec.type == "bool":
            return self._bool(m, spec)
        if spec.type == "dateTime":
            return self._datetime(m, spec)
        return self._string(m, spec)

    def _children_hint(self, path: str) -> str | None:
        children = sorted(p for p in self.catalog.fields if p.startswith(path + ".") and p.count(".") == path.count(".") + 1)
        return f"properties: {', '.join(children[:8])}" if children else None

    def _takes(self, spec: Field) -> str:
        """What a field of this type takes, for the message when an operator does not apply."""
        if spec.type == "enum":
            enum = self.catalog.enum_of(spec)
            return f"one of its members ({', '.join(enum.members) if enum else ''})"
        return TAKES[spec.type if spec.type in TAKES else "number"]

    def _wrong_op(self, m: ir.Match, spec: Field, expected: str) -> ir.Match:
        self.error(
            "E104", f"'{named(m.op)}' does not apply to '{m.field}' ({spec.type}{' ' + spec.enum if spec.enum else ''}); expected {expected}",
            m.origin,
        )
        return m

    def _watchlist(self, m: ir.Match, spec: Field) -> ir.Match:
        """A watchlist holds text: it compares with text, enum members, numbers (as their text)
        and, with cidr, IP addresses; not with booleans, dates, flags or bitmasks."""
        if m.op == Op.CIDR and _is_ip(spec):
            return m
        comparable = spec.type in ("string", "enum", *NUMERIC_TYPES) and not spec.flags and not spec.bitmask
        if m.op == Op.EQ and comparable:
            return m
        what = "IP ranges for an IP address field" if m.op == Op.CIDR else (
            f"text, and '{m.field}' is {spec.type}{' (flags)' if spec.flags or spec.bitmask else ''}"
        )
        self.error("E706", f"the watchlist '{m.value.alias}' cannot be compared with '{m.field}': a watchlist holds {what}", m.origin,
                   "use a list placeholder")
        return m

    def _string(self, m: ir.Match, spec: Field) -> ir.Match:
        if m.op == Op.EQ and not isinstance(m.value, str):
            return replace(m, value=str(m.value).lower() if isinstance(m.value, bool) else str(m.value))
        return m

    def _enum(self, m: ir.Match, spec: Field) -> ir.Match:
        enum = self.catalog.enum_of(spec)
        canonical = enum.canonical(str(m.value)) if enum else None
        if enum and canonical is None:
            suggestion = enum.suggest(str(m.value))
            self.error(
                "E106", f"'{m.value}' is not a member of enum {enum.name} for '{m.field}'", m.origin,
                f"did you mean {suggestion}?" if suggestion else f"members: {', '.join(enum.members)}",
            )
            return m
        return replace(m, value=canonical)

    def _inexact(self, m: ir.Match, spec: Field, value) -> bool:
        if spec.type != "double" and isinstance(value, (int, float)) and abs(value) >= EXACT_INTEGERS:
            self.error("E107", f"'{m.field}' is {spec.type}: a number this large (2^53 or more) loses precision", m.origin)
            return True
        return False

    def _number(self, m: ir.Match, spec: Field) -> ir.Match:
        if m.op == Op.COMPARE:
            self._inexact(m, spec, m.value[1])
            return m
        value = m.value
        if isinstance(value, str):
            try:
                value = int(value) if spec.type != "double" else float(value)
            except ValueError:
                self.error("E107", f"'{m.field}' is a number ({spec.type}), not {m.value!r}", m.origin)
                return m
        if isinstance(value, bool) or (spec.type != "double" and isinstance(value, float) and not value.is_integer()):
            self.error("E107", f"'{m.field}' is {spec.type}, not {m.value!r}", m.origin)
            return m
        if self._inexact(m, spec, value):
            return m
        return replace(m, value=int(value) if spec.type != "double" else float(value))

    def _bool(self, m: ir.Match, spec: Field) -> ir.Match:
        value = m.value
        if isinstance(value, str):
            value = BOOL_WORDS.get(value.lower(), value)
        if not isinstance(value, bool):
            self.error("E107", f"'{m.field}' is a boolean, not {m.value!r}", m.origin, "use true or false")
            return m
        return replace(m, value=value)

    def _datetime(self, m: ir.Match, spec: Field) -> ir.Match:
        text = str(m.value).strip()
        # Python keeps microseconds only; validate a copy cut to 6 digits, emit the user's text
        probe = re.sub(r"(\.\d{6})\d+", r"\1", text.replace("Z", "+00:00"))
        try:
            if not DATETIME.fullmatch(text):  # the text goes into the query as written
                raise ValueError(text)
            datetime.fromisoformat(probe)
        except ValueError:
            self.error("E107", f"'{m.field}' is a date-time, not {m.value!r}", m.origin, "use ISO 8601, e.g. 2025-01-31T08:00:00Z")
            return m
        return replace(m, value=text)

    def _fieldref(self, m: ir.Match, spec: Field) -> ir.Match:
        other = self.field(str(m.value), m.origin)
        if other is None:
            return m
        family = lambda f: "number" if f.type in NUMERIC_TYPES else ("string" if f.type in ("string", "enum") else f.type)
        if family(spec) != family(other) or other.type == "object":
            self.error("E104", f"fieldref compares '{m.field}' ({spec.type}) with '{other.path}' ({other.type})", m.origin)
        elif spec.arrays or other.arrays:
            self.error("E104", "fieldref between fields inside arrays is not supported", m.origin)
        return m


def _is_ip(spec: Field) -> bool:
    return spec.type == "string" and spec.format == "ip"


def never_filled_warning(spec: Field, location: SourceLocation, rule: str | None) -> Diagnostic:
    """A field the tables never fill (real rows show it empty): a rule on it can hardly fire."""
    evidence = dict(spec.evidence).get("neverFilled", "")
    return Diagnostic(
        "W102", f"field '{spec.path}' is never filled in the sign-in tables: {evidence}", location, rule,
        f"read '{spec.never_filled}' instead", severity="warning",
    )


def check_fields(paths: list[str], catalog: Catalog, locate_field: Callable[[int], SourceLocation], rule: str | None) -> list[Diagnostic]:
    """The rule's `fields` list: each a known path, not inside an array element."""
    diagnostics = []
    for index, path in enumerate(paths):
        spec = catalog.get(path)
        unsupported = catalog.unsupported(path) if spec is None else None
        if unsupported is not None:
            diagnostics.append(Diagnostic("E101", f"field '{path}' in 'fields' is not supported", locate_field(index), rule, unsupported))
            continue
        if spec is not None and spec.never_filled:
            diagnostics.append(never_filled_warning(spec, locate_field(index), rule))
        if spec is None:
            suggestion = catalog.suggest(path)
            diagnostics.append(Diagnostic(
                "E101", f"unknown field '{path}' in 'fields'", locate_field(index), rule,
                f"did you mean '{suggestion}'?" if suggestion else None,
            ))
        elif spec.arrays and not spec.collection:
            diagnostics.append(Diagnostic(
                "E108", f"'{path}' is inside the array '{spec.array_root}'; return the whole array instead",
                locate_field(index), rule, f"use '{spec.array_root}'",
            ))
    return diagnostics

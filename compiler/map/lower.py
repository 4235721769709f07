"""Map step: IR on beta paths → per-table predicate trees on columns.

For each table a rule reads, every match is resolved to where its field lives (column,
inner path, encoding), a constant, or nothing. Missing fields behave as Sigma's missing
fields; constant folding then drops tables where the rule can never match. Fields of one
array inside one selection are bound to the same array element.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..model import ir
from ..model.operators import Op, operator
from ..validate.catalog import Catalog, Field
from .tables import Absent, ColumnAccess, Constant, TableMapping


@dataclass(frozen=True)
class ElementAccess:
    """A path inside the array element bound to `variable` by an enclosing AnyElement."""

    variable: str
    path: tuple[str, ...]


Access = ColumnAccess | ElementAccess


@dataclass(frozen=True)
class Predicate:
    """A typed match, ready to print: the match, its catalog field, and where it lives."""

    match: ir.Match
    field: Field
    access: Access
    other: tuple[Field, Access] | None = None  # the right-hand side of a fieldref


@dataclass(frozen=True)
class AnyElement:
    """True when some element of the array at `array` satisfies `condition`."""

    array: ColumnAccess
    variable: str
    condition: "Tree"


@dataclass(frozen=True)
class RowFilter:
    """A column test that picks the rows of one service out of a table holding several
    (Defender's EntraIdSpnSignInEvents: IsManagedIdentity). It comes from targets.json, not
    from the rule."""

    column: str
    value: Any


Tree = ir.And | ir.Or | ir.Not | ir.Const | Predicate | AnyElement | RowFilter


class MappingProblem(Exception):
    """The rule cannot be expressed on this table (reported per table, never a traceback)."""

    def __init__(self, message: str, match: ir.Match | None, code: str = "E203", hint: str | None = None):
        super().__init__(message)
        self.match = match
        self.code = code
        self.hint = hint


# -- folding ------------------------------------------------------------------------------
def simplify(node: Tree) -> Tree:
    """Fold constants so that impossible branches (and tables) disappear."""
    if isinstance(node, (ir.And, ir.Or)):
        is_and = isinstance(node, ir.And)
        args: list[Tree] = []
        for arg in (simplify(a) for a in node.args):
            if isinstance(arg, ir.Const):
                if arg.value != is_and:  # False in AND, True in OR decides
                    return ir.Const(not is_and)
                continue
            if type(arg) is type(node):
                args.extend(arg.args)
            elif arg not in args:
                args.append(arg)
        if not args:
            return ir.Const(is_and)
        return args[0] if len(args) == 1 else type(node)(tuple(args))
    if isinstance(node, ir.Not):
        inner = simplify(node.arg)
        if isinstance(inner, ir.Const):
            return ir.Const(not inner.value)
        if isinstance(inner, ir.Not):
            return inner.arg
        return ir.Not(inner, node.in_selection)
    if isinstance(node, AnyElement):
        inner = simplify(node.condition)
        if isinstance(inner, ir.Const) and not inner.value:
            return inner
        return AnyElement(node.array, node.variable, inner)
    return node


def whole_array(spec: Field, match: ir.Match) -> bool:
    """`authenticationDetails|exists` / `: null` ask about the array itself, not its elements."""
    return spec.collection and operator(match.op).presence and spec.path == spec.array_root


def evaluate_missing(match: ir.Match) -> bool:
    """How a match on a field that does not exist evaluates (Sigma: the value is null)."""
    return operator(match.op).on_missing(match.value)


def evaluate_constant(match: ir.Match, value: Any) -> bool:
    evaluate = operator(match.op).on_constant
    if evaluate is None or isinstance(match.value, ir.Watchlist):
        raise MappingProblem(f"'{match.op}' cannot be applied to '{match.field}', which is constant ({value!r}) here", match)
    return evaluate(match.value, value, match.cased)


# -- resolution -----------------------------------------------------------------------------
class TableMapper:
    """Lowers one rule's IR for one table."""

    def __init__(self, mapping: TableMapping, catalog: Catalog):
        self.mapping = mapping
        self.catalog = catalog
        self.missing: dict[str, Absent] = {}  # path with no column here → why
        self.constants: set[str] = set()  # paths with one value on every row here

    def lower(self, node: ir.Node) -> Tree:
        return simplify(self._lower(node, None))

    # `scope` is (array path, variable) while lowering the inside of an AnyElement
    def _lower(self, node: ir.Node, scope: tuple[str, str] | None) -> Tree:
        if isinstance(node, ir.Const):
            return node
        if isinstance(node, ir.Not):
            return ir.Not(self._lower(node.arg, scope), node.in_selection)
        if isinstance(node, ir.Match):
            return self._match(node, scope)
        # And / Or: parts bound to the same array within the same selection share one element
        if scope is None:
            grouped: dict[tuple[str, str], list[ir.Node]] = {}
            order: list[object] = []
            for arg in node.args:
                key = self._element_key(arg)
                if key is None:
                    order.append(arg)
                else:
                    if key not in grouped:
                        grouped[key] = []
                        order.append(key)
                    grouped[key].append(arg)
            lowered = []
            for item in order:
                if isinstance(item, tuple) and item in grouped:
                    members = grouped[item]
                    inner = members[0] if len(members) == 1 else type(node)(tuple(members))
                    lowered.append(self._any_element(item[0], inner))
                else:
                    lowered.append(self._lower(item, None))
            return type(node)(tuple(lowered))
        return type(node)(tuple(self._lower(a, scope) for a in node.args))

    def _element_key(self, node: ir.Node) -> tuple[str, str] | None:
        """(array, selection) when every match under `node` is on one array of one selection."""
        if any(isinstance(n, ir.Not) and not n.in_selection for n in ir.walk(node)):
            return None  # `not selection`: no element may match, so the negation stays outside
        keys = set()
        for match in ir.walk_matches(node):
            spec = self.catalog.get(match.field)
            if spec is None or not spec.array_root or match.op == Op.FIELDREF or whole_array(spec, match):
                return None
            keys.add((spec.array_root, match.group))
        return keys.pop() if len(keys) == 1 else None

    def _any_element(self, array: str, inner: ir.Node) -> Tree:
        resolved = self.mapping.resolve(array)
        if isinstance(resolved, Absent):
            self.missing[array] = resolved
            return ir.Const(False)  # no array, no element can match
        if isinstance(resolved, Constant):
            raise MappingProblem(f"'{array}' is constant in {self.mapping.table.name}", None)
        variable = "_" + array.split(".")[-1]
        return AnyElement(resolved, variable, self._lower(inner, (array, variable)))

    def _match(self, match: ir.Match, scope: tuple[str, str] | None) -> Tree:
        spec = self.catalog.get(match.field)
        assert spec is not None  # validated before mapping
        if isinstance(match.value, ir.Watchlist) and self.mapping.table.platform != "sentinel":
            raise MappingProblem(
                f"the watchlist '{match.value.alias}' is read by _GetWatchlist, which only Microsoft Sentinel has; "
                f"{self.mapping.table.name} is a Defender XDR table", match, "E707",
                "give the placeholder a list of values in environments that build Defender, or set defender = false",
            )
        if spec.bitmask and match.op == Op.EQ:
            match = self._as_bits(match, spec)
        if spec.array_root and scope is None and not whole_array(spec, match):
            return self._any_element(spec.array_root, match)
        if scope is not None:
            array, variable = scope
            inner = tuple(p for p in match.field[len(array):].split(".") if p)
            return Predicate(match, spec, ElementAccess(variable, inner))
        access = self._access(match.field, match)
        if not isinstance(access, ColumnAccess):
            return ir.Const(access)
        self._check_encoding(match, spec, access)
        other = None
        if match.op == Op.FIELDREF:
            other_spec = self.catalog.get(str(match.value))
            other_access = self._access(str(match.value), match)
            if not isinstance(other_access, ColumnAccess):
                return ir.Const(False)
            if other_access.encoding is not None:  # a number in this table, text in the rule
                raise MappingProblem(
                    f"'{match.value}' is stored as numbers in {self.mapping.table.name}; fieldref cannot compare it",
                    match,
                )
            other = (other_spec, other_access)
        return Predicate(match, spec, access, other)

    def _as_bits(self, match: ir.Match, spec: Field) -> ir.Match:
        """A flags enum stored as its number: the member becomes its bit (0 for `none`)."""
        enum = self.catalog.enum_of(spec)
        number = enum.number(str(match.value)) if enum else None
        if number is None:
            raise MappingProblem(f"'{match.field}' is stored as a number, and '{match.value}' has no known number", match)
        return replace(match, op=Op.BITS.value, value=number)

    def _access(self, path: str, match: ir.Match) -> ColumnAccess | bool:
        resolved = self.mapping.resolve(path)
        if isinstance(resolved, Absent):
            self.missing[path] = resolved
            return evaluate_missing(match) if path == match.field else False
        if isinstance(resolved, Constant):
            self.constants.add(path)
            return evaluate_constant(match, resolved.value)
        return resolved

    def _check_encoding(self, match: ir.Match, spec: Field, access: ColumnAccess) -> None:
        if access.encoding is None or operator(match.op).presence:
            return
        if match.op != Op.EQ or isinstance(match.value, ir.Watchlist):
            raise MappingProblem(
                f"'{match.field}' is stored as numbers in {self.mapping.table.name}; only equality, exists and null apply",
                match,
            )
        key = str(match.value).lower() if isinstance(match.value, bool) else str(match.value)
        if access.encoded(key) is None:
            known = ", ".join(k for k, _ in access.encoding)
            raise MappingProblem(
                f"{self.mapping.table.name} has no number for '{match.field}' = {match.value!r} (known: {known})",
                match,
            )


def projection_access(mapping: TableMapping, path: str) -> ColumnAccess | None:
    """Where a `fields` entry comes from in this table (None: not available here)."""
    resolved = mapping.resolve(path)
    return resolved if isinstance(resolved, ColumnAccess) else None


def constant_for(mapping: TableMapping, path: str) -> Constant | None:
    resolved = mapping.resolve(path)
    return resolved if isinstance(resolved, Constant) else None

"""The intermediate form between Sigma and KQL: boolean trees of typed field matches.

pySigma parses the rule; the backend turns its condition tree into these values; the map
step resolves fields per table; the KQL generators print. Frozen dataclasses make every
stage comparable in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Union


class Wildcard(Enum):
    MULTI = "*"
    SINGLE = "?"


Pattern = tuple[Union[str, Wildcard], ...]


@dataclass(frozen=True)
class Origin:
    """Where a match came from: its selection (detection name) and field, for diagnostics."""

    selection: str
    field: str
    index: int | None = None
    op: str = ""  # the match operator, to tell two keys on one field apart


@dataclass(frozen=True)
class Watchlist:
    """A value read when the query runs: the `column` of a Microsoft Sentinel watchlist (a
    placeholder's value in an environment, docs/environments.md). Matches `eq` (any of its
    values) and `cidr` (in any of its ranges)."""

    alias: str
    column: str = "SearchKey"


@dataclass(frozen=True)
class Match:
    """One Sigma field/value pair.

    op: eq | contains | startswith | endswith | pattern | any | regex | cidr | compare |
        exists | null | fieldref | bits
    value: str / int / float / bool for eq; a Pattern for pattern; (regex, flags) for regex;
        a network string for cidr (or a Watchlist for eq and cidr); (operator, number) for compare; bool for exists; a
        field path for fieldref; None for null and any; for bits (set by the map step on
        flags enums the tables store as numbers) the member's bit, 0 meaning "no bit set".
    group: the innermost detection map the match came from; fields of one array inside one
        group must match the same array element.
    """

    field: str
    op: str
    value: Any
    cased: bool = False
    group: str = ""
    origin: Origin | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class And:
    args: tuple["Node", ...]


@dataclass(frozen=True)
class Or:
    args: tuple["Node", ...]


@dataclass(frozen=True)
class Not:
    """Negation. `in_selection` marks a negated value inside one selection (the `neq`
    modifier): it still describes the same array element as its siblings, whereas a `not`
    in the condition negates a whole selection."""

    arg: "Node"
    in_selection: bool = False


@dataclass(frozen=True)
class Const:
    value: bool


Node = Union[Match, And, Or, Not, Const]


def walk(node):
    """Every node of a tree, parents first, left to right. Nodes that are not And, Or or Not
    (matches here, the map step's predicates and array tests) are leaves."""
    yield node
    if isinstance(node, (And, Or)):
        for arg in node.args:
            yield from walk(arg)
    elif isinstance(node, Not):
        yield from walk(node.arg)


def map_matches(node: Node, change) -> Node:
    """The same tree with every Match replaced by `change(match)`; other leaves are kept."""
    if isinstance(node, (And, Or)):
        return type(node)(tuple(map_matches(arg, change) for arg in node.args))
    if isinstance(node, Not):
        return Not(map_matches(node.arg, change), node.in_selection)
    if isinstance(node, Match):
        return change(node)
    return node


def walk_matches(node: Node):
    """Every Match in a tree, left to right."""
    return (n for n in walk(node) if isinstance(n, Match))

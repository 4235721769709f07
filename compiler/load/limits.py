"""Bounds on what one rule file may ask of the compiler, so hostile input gets a clear,
located error quickly instead of exhausting time, memory or the Python stack.

Real rules stay far below every bound: a few KB, nested about eight levels, a few hundred
values, conditions a few levels deep. docs/hardening.md lists the bounds and how they are tested.
"""

from __future__ import annotations

import re

MAX_FILE_BYTES = 1 << 20  # 1 MiB per rule file
MAX_DEPTH = 64  # YAML maps and lists inside each other
MAX_NODES = 100_000  # YAML values per file (keys, scalars, maps, lists), aliases counted as expanded
MAX_CONDITION_DEPTH = 32  # parentheses and `not`s inside each other in a condition
MAX_VALUES = 10_000  # values in one rule's detection (each item of a list counts)
MAX_TIMESPAN_SECONDS = 366 * 86_400  # a correlation's window: a year, past any service's look-back (Sentinel 14d)
WORDING_LIMIT = 128 << 10  # larger files keep libyaml's wording of a syntax error (the pure-Python re-parse is slow)

_TOKENS = re.compile(r"\(|\)|[^\s()]+")


def condition_depth(condition: str) -> int:
    """How deeply a Sigma condition nests: each open parenthesis, and each `not` until the
    operand it negates ends, is one level. pySigma parses conditions recursively, so a deep
    one would exhaust the stack (about a hundred levels)."""
    pending = [0]  # per open parenthesis: the `not`s waiting for their operand
    deepest = 0
    for token in _TOKENS.findall(condition):
        if token == "(":
            pending.append(0)
        elif token == ")":
            if len(pending) > 1:
                pending.pop()
            pending[-1] = 0  # the group was the operand of the `not`s before it
        elif token.lower() == "not":
            pending[-1] += 1
        elif token.lower() not in ("and", "or"):
            pending[-1] = 0
        deepest = max(deepest, len(pending) - 1 + sum(pending))
    return deepest


def detection_values(detection: object) -> dict[str, int]:
    """How many values each selection of a detection holds: every scalar, each item of a
    list, each key's value in a map (a null too). The map step and the KQL printer take time
    in proportion to this, so a rule may hold at most MAX_VALUES in all."""
    if not isinstance(detection, dict):
        return {}
    counts: dict[str, int] = {}
    for name, body in detection.items():
        if name in ("condition", "timeframe"):
            continue
        total, pending = 0, [body]
        while pending:  # no recursion: the loader bounds depth, but a loop keeps it cheap
            item = pending.pop()
            if isinstance(item, dict):
                pending.extend(item.values())
            elif isinstance(item, list):
                pending.extend(item)
            else:
                total += 1
        counts[str(name)] = total
    return counts


def bracket_depth(text: str) -> int:
    """How deeply `[` and `{` nest, counting every bracket (quoted ones too): an upper bound on
    the nesting of YAML flow collections and of TOML arrays and inline tables (a TOML table
    header's brackets count one level). Both parsers recurse once per level."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest

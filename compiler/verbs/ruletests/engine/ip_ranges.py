"""`ipv4_is_in_range`, `ipv6_is_in_range`, `ipv4_is_match`, `ipv4_is_in_any_range` on the local
engine, as arithmetic over addresses read by duckdb-kql's `parse_ipv4` and `parse_ipv6` rules.

Those rules are what duckdb-kql's author measured on Kusto (no leading zeros, whitespace
trimmed, a prefix masks the address, an IPv4 address is the IPv4-mapped IPv6 one, a prefix on a
dotted IPv4 tail counts IPv4 bits, invalid input converts to nothing). duckdb-kql renders each
call as nested correlated subqueries, which DuckDB plans as joins: a rule with twenty `cidr`
ranges took seven seconds per case. So the same rules are written here as plain expressions,
each intermediate value bound once by a one-element list's lambda (`_bind`), with duckdb-kql's
own patterns; tests/test_engine_conformance.py holds them equal to duckdb-kql's `parse_ipv4` and
`parse_ipv6` over a list of addresses, and engine/seams.py turns this off if those change.

On top of the parsed addresses:
- in range: the address, masked to the range's prefix length, equals the range's network;
- match: both addresses masked to the shortest of their prefixes and the optional third one;
- any range: the three-valued `or` of "in range" over the ranges.

Null, per Kusto's pages, when "conversion for one of the two strings wasn't successful". Where
the pages are silent we chose, and tests/cases/engine/ip-ranges.yml says so case by case: an
address with its own prefix is compared as `parse_ipv4` gives it (masked), a prefix argument
outside 0-32 or null gives null, a malformed range among several gives null unless another one
matches, an empty list of ranges is false, and an IPv6 prefix that is not a number is a failed
conversion (duckdb-kql's parse_ipv6 1.1.2 ignores it).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from functools import lru_cache

from duckdb_kql import ir
from duckdb_kql.errors import KqlUnsupportedError

V4_ALL = 4294967296  # 2^32


def _render(node: ir.Expr) -> str:
    from duckdb_kql.translate import render_expr

    return render_expr(node)


def _text(node: ir.Expr) -> str:
    return f"CAST({_render(node)} AS VARCHAR)"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _bind(value: str, name: str, body: str) -> str:
    """`body` with `name` bound to `value`, computed once, as a plain expression."""
    return f"list_transform([{value}], lambda {name}: {body})[1]"


# -- parsing ---------------------------------------------------------------------------------------
def v4(text: str, name: str) -> str:
    """An IPv4 text (SQL) as a struct {v: the number, masked to its prefix; p: the prefix
    length}, or null: duckdb-kql's parse_ipv4 (its pattern, its arithmetic)."""
    from duckdb_kql.translate import _IPV4_OCTET, _IPV4_PREFIX

    t = f"{name}_t"
    pattern = _quote("^" + r"\.".join([_IPV4_OCTET] * 4) + f"(/{_IPV4_PREFIX})?$")
    number = " + ".join(f"TRY_CAST(split_part(split_part({t}, '/', 1), '.', {i}) AS BIGINT) * {256 ** (4 - i)}"
                        for i in range(1, 5))
    prefix = f"(CASE WHEN strpos({t}, '/') > 0 THEN TRY_CAST(split_part({t}, '/', 2) AS BIGINT) ELSE 32 END)"
    return _bind(f"trim({text})", t, f"CASE WHEN regexp_matches({t}, {pattern}) THEN "
                                    f"struct_pack(v := ({number}) & {_v4_mask(prefix)}, p := {prefix}) END")


def _v4_mask(prefix: str) -> str:
    return f"({V4_ALL} - (CAST(1 AS BIGINT) << (32 - {prefix})))"


def v6(text: str, name: str) -> str:
    """An IPv6 or IPv4 text (SQL) as a struct {v: the 128-bit number, masked to its prefix; n:
    how many leading bits the prefix fixes}, or null: duckdb-kql's parse_ipv6, stage by stage
    (zone dropped, a dotted tail as two groups and its prefix as IPv4 bits, `::` expanded,
    eight groups of one to four hex digits), and a prefix that is a number."""
    t, a, g = f"{name}_t", f"{name}_a", f"{name}_g"
    quad = _quote(r"([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$")
    octets = [f"TRY_CAST(regexp_extract({a}.a, {quad}, {n}) AS INTEGER)" for n in range(1, 5)]
    tail = _quote(r"(^|:)([0-9]{1,3}\.){3}[0-9]{1,3}$")
    dotted = f"regexp_matches({a}.a, {tail}) AND " + " AND ".join(f"{o} < 256" for o in octets)
    pair = f"printf('%x:%x', {octets[0]} * 256 + {octets[1]}, {octets[2]} * 256 + {octets[3]})"
    rewritten = (f"CASE WHEN {a}.d THEN CASE WHEN strpos({a}.a, ':') = 0 THEN '::ffff:' || {pair} "
                 f"ELSE regexp_replace({a}.a, '[0-9.]+$', {pair}) END ELSE {a}.a END")
    left = f"list_filter(str_split(split_part({g}.r, '::', 1), ':'), lambda x: x <> '')"
    right = f"list_filter(str_split(split_part({g}.r, '::', 2), ':'), lambda x: x <> '')"
    groups = (f"CASE WHEN strpos({g}.r, '::') > 0 THEN list_concat(list_concat({left}, "
              f"list_transform(range(8 - len({left}) - len({right})), lambda x: '0')), {right}) "
              f"ELSE str_split({g}.r, ':') END")
    limit = f"CASE WHEN {g}.d THEN 32 ELSE 128 END"
    bits = f"CASE WHEN {g}.d THEN 96 + {g}.p ELSE {g}.p END"
    valid = (f"{g}.ok AND {g}.p BETWEEN 0 AND {limit} AND length({g}.r) - length(replace({g}.r, '::', '')) <= 2 "
             f"AND len(_kqlip_x) = 8 AND len(list_filter(_kqlip_x, lambda x: regexp_matches(x, '^[0-9a-f]{{1,4}}$'))) = 8")
    number = f"CAST('0x' || array_to_string(list_transform(_kqlip_x, lambda x: lpad(x, 4, '0')), '') AS UHUGEINT)"
    value = _bind(groups, "_kqlip_x", f"CASE WHEN {valid} THEN struct_pack(v := {_v6_masked(number, bits)}, n := {bits}) END")
    stage2 = _bind(f"struct_pack(r := {rewritten}, d := {a}.d, "
                   f"p := coalesce({a}.given, CASE WHEN {a}.d THEN 32 ELSE 128 END), ok := {a}.ok)", g, value)
    stage1 = _bind(f"struct_pack(a := split_part({t}, '/', 1), "
                   f"given := CASE WHEN strpos({t}, '/') > 0 THEN TRY_CAST(split_part({t}, '/', 2) AS INTEGER) END, "
                   f"ok := strpos({t}, '/') = 0 OR regexp_matches({t}, '/[0-9]+$'))", a,
                   _bind(f"struct_pack(a := {a}.a, given := {a}.given, ok := {a}.ok, d := {dotted})", a, stage2))
    return _bind(f"regexp_replace(lower(trim({text})), '%[^/]*', '')", t, stage1)


def _v6_masked(number: str, bits: str) -> str:
    return _v6_shift(_v6_shift(number, bits, ">>"), bits, "<<")


def _v6_shift(number: str, bits: str, direction: str) -> str:
    """`number` shifted by 128 - `bits` (0 when `bits` is 0: a shift by 128 is not defined)."""
    return f"(CASE WHEN {bits} = 0 THEN CAST(0 AS UHUGEINT) ELSE {number} {direction} CAST(128 - {bits} AS UHUGEINT) END)"


# -- the functions --------------------------------------------------------------------------------
def decide(test: str) -> str:
    """The SQL a function answers with. (tests/test_engine_mutations.py replaces it with TRUE,
    to show the rule cases notice.)"""
    return test


def _arity(node: ir.FunctionCall, counts: tuple[int, ...]) -> None:
    if len(node.args) not in counts:
        raise KqlUnsupportedError(f"function:{node.name}", hint=f"takes {' or '.join(map(str, counts))} arguments")


def in_range_v4(address: str, network: str) -> str:
    """SQL: whether the IPv4 `address` text (SQL) is in the `network` text's range."""
    s = "_kqlip_s"
    return decide(_bind(f"struct_pack(a := {v4(address, '_kqlip_a')}, r := {network_v4(network)})", s,
                        f"CASE WHEN {s}.a IS NULL OR {s}.r IS NULL THEN NULL "
                        f"ELSE ({s}.a.v & {_v4_mask(f'{s}.r.p')}) = {s}.r.v END"))


def ipv4_is_in_range(node: ir.FunctionCall) -> str:
    _arity(node, (2,))
    return in_range_v4(*map(_text, node.args))


def ipv6_is_in_range(node: ir.FunctionCall) -> str:
    _arity(node, (2,))
    address, network = map(_text, node.args)
    s = "_kqlip_s"
    test = _bind(f"struct_pack(a := {v6(address, '_kqlip_a')}, r := {network_v6(network)})", s,
                 f"CASE WHEN {s}.a IS NULL OR {s}.r IS NULL THEN NULL "
                 f"ELSE {_v6_shift(f'{s}.a.v', f'{s}.r.n', '>>')} = {_v6_shift(f'{s}.r.v', f'{s}.r.n', '>>')} END")
    return decide(test)


# A range written as a literal (every `cidr` value) is parsed once, when the query is translated,
# by DuckDB itself running the same expression: the query then carries the result, not the parse,
# which halves the SQL of a rule with many ranges.
LITERAL = re.compile(r"CAST\('((?:[^']|'')*)' AS VARCHAR\)")


def network_v4(network: str) -> str:
    found = LITERAL.fullmatch(network)
    if found is None:
        return v4(network, "_kqlip_r")
    parsed = _constant(v4(network, "_kqlip_r"))
    return "NULL" if parsed is None else f"struct_pack(v := CAST({parsed['v']} AS BIGINT), p := CAST({parsed['p']} AS BIGINT))"


def network_v6(network: str) -> str:
    found = LITERAL.fullmatch(network)
    if found is None:
        return v6(network, "_kqlip_r")
    parsed = _constant(v6(network, "_kqlip_r"))
    return "NULL" if parsed is None else f"struct_pack(v := CAST('{parsed['v']}' AS UHUGEINT), n := {parsed['n']})"


_constants: dict[str, object] = {}
_constants_lock = threading.Lock()


@lru_cache(maxsize=4096)
def _constant(expression: str):
    """The value of an expression that reads no column, computed by DuckDB (one in-memory
    connection for the process)."""
    import duckdb

    with _constants_lock:
        if "connection" not in _constants:
            _constants["connection"] = duckdb.connect()
        return _constants["connection"].sql(f"SELECT {expression}").fetchall()[0][0]


def ipv4_is_match(node: ir.FunctionCall) -> str:
    _arity(node, (2, 3))
    first, second = map(_text, node.args[:2])
    given = f"CAST({_render(node.args[2])} AS BIGINT)" if len(node.args) == 3 else "32"
    s = "_kqlip_s"
    shortest = f"least({s}.a.p, {s}.b.p, {s}.q)"
    test = _bind(f"struct_pack(a := {v4(first, '_kqlip_a')}, b := {v4(second, '_kqlip_b')}, q := {given})", s,
                 f"CASE WHEN {s}.a IS NULL OR {s}.b IS NULL OR {s}.q IS NULL OR {s}.q NOT BETWEEN 0 AND 32 THEN NULL "
                 f"ELSE ({s}.a.v & {_v4_mask(shortest)}) = ({s}.b.v & {_v4_mask(shortest)}) END")
    return decide(test)


def ipv4_is_in_any_range(node: ir.FunctionCall) -> str:
    if len(node.args) < 2:
        raise KqlUnsupportedError(f"function:{node.name}", hint="takes an address and at least one range")
    address, ranges = node.args[0], node.args[1:]
    if len(ranges) == 1 and _is_dynamic(ranges[0]):
        array = f"CAST({_render(ranges[0])} AS JSON)"
        texts = f"list_transform(CAST(json_extract({array}, '$[*]') AS JSON[]), lambda _kqlip_j: _kqlip_j ->> '$')"
        each = f"list_transform({texts}, lambda _kqlip_e: {in_range_v4(_text(address), '_kqlip_e')})"
        valid = f"{v4(_text(address), '_kqlip_v')} IS NOT NULL AND json_type({array}) = 'ARRAY'"
    elif len(ranges) == 1 and not _is_string(ranges[0]):
        raise KqlUnsupportedError(
            f"function:{node.name}",
            hint="its second argument may be one range (a string) or a list (a dynamic array), and the query "
                 "does not show which this one is",
        )
    else:
        each = "[" + ", ".join(in_range_v4(_text(address), _text(r)) for r in ranges) + "]"
        valid = f"{v4(_text(address), '_kqlip_v')} IS NOT NULL"
    # the three-valued `or`: true if one range holds the address, else null if one could not be read
    return _bind(each, "_kqlip_l", f"CASE WHEN NOT ({valid}) THEN NULL WHEN list_contains(_kqlip_l, true) THEN true "
                                   f"WHEN len(list_filter(_kqlip_l, lambda x: x IS NULL)) > 0 THEN NULL ELSE false END")


def coalesce_of_booleans(render_coalesce: Callable[[ir.FunctionCall], str]) -> Callable[[ir.FunctionCall], str]:
    """duckdb-kql's coalesce, but as plain COALESCE over our functions and boolean literals.

    duckdb-kql writes each argument of `coalesce` three times, to skip empty strings as Kusto
    does; a boolean is never an empty string, and the compiler's `coalesce(ipv4_is_in_range(...),
    false)` (one per `cidr` value) would carry three copies of the test: with twenty ranges that
    made a case take over a second."""

    def rendered(node: ir.FunctionCall) -> str:
        if node.args and all(_is_ours(a) or (isinstance(a, ir.Literal) and a.kind == "bool") for a in node.args) \
                and any(_is_ours(a) for a in node.args):
            return "COALESCE(" + ", ".join(_render(a) for a in node.args) + ")"
        return render_coalesce(node)

    return rendered


def _is_ours(node: ir.Expr) -> bool:
    return isinstance(node, ir.FunctionCall) and node.name.lower() in FUNCTIONS


def _is_dynamic(node: ir.Expr) -> bool:
    if isinstance(node, ir.Literal):
        return node.kind == "dynamic"
    return isinstance(node, ir.FunctionCall) and node.name.lower() in ("dynamic", "todynamic", "parse_json", "pack_array")


def _is_string(node: ir.Expr) -> bool:
    if isinstance(node, ir.Literal):
        return node.kind == "string"
    return isinstance(node, ir.FunctionCall) and node.name.lower() in ("tostring", "strcat")


FUNCTIONS: dict[str, Callable[[ir.FunctionCall], str]] = {
    "ipv4_is_in_range": ipv4_is_in_range,
    "ipv6_is_in_range": ipv6_is_in_range,
    "ipv4_is_match": ipv4_is_match,
    "ipv4_is_in_any_range": ipv4_is_in_any_range,
}

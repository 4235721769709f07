"""`ipv4_is_in_range`, `ipv6_is_in_range`, `ipv4_is_match`, `ipv4_is_in_any_range` on the local
engine, as arithmetic over duckdb-kql's own `parse_ipv4` and `parse_ipv6`.

Those two carry the parsing rules duckdb-kql's author measured on Kusto (no leading zeros,
whitespace trimmed, a prefix masks the address, an IPv4 address is the IPv4-mapped IPv6 one, a
prefix on a dotted IPv4 tail counts IPv4 bits, invalid input is null or ''). On top of them:

- in range: the address, masked to the range's prefix length, equals the range's network;
- match: both addresses masked to the shortest of their prefixes and the optional third one;
- any range: the three-valued `or` of "in range" over the ranges.

Null, per Kusto's pages, when "conversion for one of the two strings wasn't successful". Where
the pages are silent we chose, and tests/test_engine_conformance.py says so case by case: an
address with its own prefix is compared as `parse_ipv4` gives it (masked), a prefix argument
outside 0-32 or null gives null, a malformed range among several gives null unless another one
matches, and an empty list of ranges is false.
"""

from __future__ import annotations

from collections.abc import Callable

from duckdb_kql import ir
from duckdb_kql.errors import KqlUnsupportedError

V4_BITS = 4294967296  # 2^32


def _render(node: ir.Expr) -> str:
    from duckdb_kql.translate import render_expr

    return render_expr(node)


def _parse_v4(arg: ir.Expr) -> str:
    return _render(ir.FunctionCall("parse_ipv4", (arg,)))


def _parse_v6(arg: ir.Expr) -> str:
    return _render(ir.FunctionCall("parse_ipv6", (arg,)))


def _v4_prefix(arg: ir.Expr) -> str:
    """The prefix length a valid IPv4 text carries (32 without one); parse_ipv4 judges validity."""
    text = f"trim(CAST({_render(arg)} AS VARCHAR))"
    return f"(CASE WHEN strpos({text}, '/') > 0 THEN TRY_CAST(split_part({text}, '/', 2) AS BIGINT) ELSE 32 END)"


def _v4_mask(prefix: str) -> str:
    return f"(CASE WHEN {prefix} BETWEEN 0 AND 32 THEN {V4_BITS} - (CAST(1 AS BIGINT) << (32 - {prefix})) END)"


def _v6_bits(arg: ir.Expr) -> str:
    """How many leading bits of the 128 a valid IPv6 range text fixes: its prefix, or 128; a
    prefix on a dotted IPv4 tail counts the last 32 bits (parse_ipv6's rule, 96 + prefix)."""
    text = f"regexp_replace(lower(trim(CAST({_render(arg)} AS VARCHAR))), '%[^/]*', '')"
    dotted = r"regexp_matches(split_part(_kqlip_t, '/', 1), '(^|:)([0-9]{1,3}\.){3}[0-9]{1,3}$')"
    return (
        f"(SELECT CASE WHEN {dotted} THEN 96 + coalesce(_kqlip_g, 32) ELSE coalesce(_kqlip_g, 128) END "
        f"FROM (SELECT _kqlip_t, CASE WHEN strpos(_kqlip_t, '/') > 0 "
        f"THEN TRY_CAST(split_part(_kqlip_t, '/', 2) AS INTEGER) END AS _kqlip_g FROM (SELECT {text} AS _kqlip_t)))"
    )


def _v6_prefix_ok(arg: ir.Expr) -> str:
    """Whether a text's prefix, if it has one, is a number. duckdb-kql's parse_ipv6 1.1.2 reads
    `2001:db8::/x` as if it had no prefix; a conversion that fails is null here."""
    text = f"trim(CAST({_render(arg)} AS VARCHAR))"
    return f"(strpos({text}, '/') = 0 OR regexp_matches({text}, '/[0-9]+$'))"


def _v6_number(canonical: str) -> str:
    """A canonical IPv6 text (eight groups of four hex digits) as a 128-bit number."""
    return f"CAST('0x' || replace({canonical}, ':', '') AS UHUGEINT)"


def decide(test: str) -> str:
    """The SQL a function answers with. (tests/test_engine_mutations.py replaces it with
    TRUE, to show the rule cases notice.)"""
    return test


def _arity(node: ir.FunctionCall, counts: range) -> None:
    if len(node.args) not in counts:
        raise KqlUnsupportedError(f"function:{node.name}", hint=f"takes {counts.start} to {counts.stop - 1} arguments")


def in_range_v4(address: ir.Expr, network: ir.Expr) -> str:
    test = (
        f"(SELECT CASE WHEN _kqlip_a IS NULL OR _kqlip_r IS NULL THEN NULL "
        f"ELSE (_kqlip_a & {_v4_mask('_kqlip_p')}) = _kqlip_r END "
        f"FROM (SELECT {_parse_v4(address)} AS _kqlip_a, {_parse_v4(network)} AS _kqlip_r, "
        f"{_v4_prefix(network)} AS _kqlip_p))"
    )
    return decide(test)


def ipv4_is_in_range(node: ir.FunctionCall) -> str:
    _arity(node, range(2, 3))
    return in_range_v4(*node.args)


def ipv6_is_in_range(node: ir.FunctionCall) -> str:
    _arity(node, range(2, 3))
    address, network = node.args
    a, r = _v6_number("_kqlip_a"), _v6_number("_kqlip_r")
    test = (
        f"(SELECT CASE WHEN coalesce(_kqlip_a, '') = '' OR coalesce(_kqlip_r, '') = '' "
        f"OR NOT ({_v6_prefix_ok(address)} AND {_v6_prefix_ok(network)}) "
        f"OR _kqlip_n NOT BETWEEN 0 AND 128 THEN NULL WHEN _kqlip_n = 0 THEN TRUE "
        f"ELSE ({a} >> CAST(128 - _kqlip_n AS UHUGEINT)) = ({r} >> CAST(128 - _kqlip_n AS UHUGEINT)) END "
        f"FROM (SELECT {_parse_v6(address)} AS _kqlip_a, {_parse_v6(network)} AS _kqlip_r, "
        f"{_v6_bits(network)} AS _kqlip_n))"
    )
    return decide(test)


def ipv4_is_match(node: ir.FunctionCall) -> str:
    _arity(node, range(2, 4))
    first, second = node.args[:2]
    given = f"CAST({_render(node.args[2])} AS BIGINT)" if len(node.args) == 3 else "32"
    test = (
        f"(SELECT CASE WHEN _kqlip_a IS NULL OR _kqlip_b IS NULL OR _kqlip_q IS NULL "
        f"OR _kqlip_q NOT BETWEEN 0 AND 32 THEN NULL "
        f"ELSE (_kqlip_a & {_v4_mask('_kqlip_p')}) = (_kqlip_b & {_v4_mask('_kqlip_p')}) END "
        f"FROM (SELECT _kqlip_a, _kqlip_b, _kqlip_q, least(_kqlip_pa, _kqlip_pb, _kqlip_q) AS _kqlip_p "
        f"FROM (SELECT {_parse_v4(first)} AS _kqlip_a, {_parse_v4(second)} AS _kqlip_b, "
        f"{_v4_prefix(first)} AS _kqlip_pa, {_v4_prefix(second)} AS _kqlip_pb, {given} AS _kqlip_q)))"
    )
    return decide(test)


def ipv4_is_in_any_range(node: ir.FunctionCall) -> str:
    if len(node.args) < 2:
        raise KqlUnsupportedError(f"function:{node.name}", hint="takes an address and at least one range")
    address, ranges = node.args[0], node.args[1:]
    if len(ranges) == 1 and _is_dynamic(ranges[0]):
        return _in_any_of_array(address, ranges[0])
    if len(ranges) == 1 and not _is_string(ranges[0]):
        raise KqlUnsupportedError(
            f"function:{node.name}",
            hint="its second argument may be one range (a string) or a list (a dynamic array), and the query "
                 "does not show which this one is",
        )
    any_of = " OR ".join(in_range_v4(address, r) for r in ranges)
    return f"(CASE WHEN {_parse_v4(address)} IS NULL THEN NULL ELSE ({any_of}) END)"


def _in_any_of_array(address: ir.Expr, ranges: ir.Expr) -> str:
    array = _render(ranges)
    each = in_range_v4(address, ir.ColumnRef("_kqlip_e"))
    return (
        f"(SELECT CASE WHEN {_parse_v4(address)} IS NULL OR json_type(CAST({array} AS JSON)) IS DISTINCT FROM 'ARRAY' "
        f"THEN NULL WHEN bool_or(_kqlip_in) THEN TRUE WHEN bool_or(_kqlip_in IS NULL) THEN NULL ELSE FALSE END "
        f"FROM (SELECT {each} AS _kqlip_in FROM (SELECT _kqlip_j ->> '$' AS _kqlip_e FROM "
        f"(SELECT UNNEST(CAST(json_extract(CAST({array} AS JSON), '$[*]') AS JSON[])) AS _kqlip_j))))"
    )


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

"""`mv-apply` on the local engine: the subquery runs over each row's expanded subtable.

Kusto's reference page gives the operator as four steps: mv-expand each record into a
subtable, apply the subquery to each subtable, add the record's columns that were not expanded,
and union the results. That maps onto SQL as a LATERAL subquery:

    SELECT <columns> FROM <input> AS o, LATERAL (
        WITH t AS (<mv-expand of o's one row>)            -- the subtable
        SELECT b.* FROM (<the subquery, reading t>) AS b, (SELECT 1 FROM t LIMIT 1) AS g
    ) AS s

The subtable is duckdb-kql's own `mv-expand` of the one-row table holding the record (so its
rules hold as measured: an empty array gives no rows, a null or a scalar one row, `to
typeof(T)` converts each element, `with_itemindex` and `limit` as documented), and the
subquery is duckdb-kql's own rendering of the body over it. What is ours: the parse of the
operator, the join with `g` (a record whose subtable is empty yields nothing, even under
`summarize`: see below; a join, because DuckDB 2.0.1 fails to bind `WHERE EXISTS (...)` there
once a later `where` holds an `or`), the output columns, and keeping out of the subtable the
record's columns a narrowing subquery neither reads nor returns (our queries' `summarize`
bodies: it makes their SQL half the size and three times faster to run).

Output columns follow Kusto.Language's result type (checked in tests/test_engine_conformance.py):
the input columns that were not expanded, in order, each replaced in place by the subquery's
column of that name when it has one, then the subquery's other columns in its order.

Kusto's documentation does not say what a record whose subtable is empty yields when the
subquery would produce a row from nothing (`summarize count()`); it says the subquery is
applied "for each of the subtables" and the results unioned. We take it that no subtable means
no rows, the behaviour the compiler's empty-array guard (`iff(array_length(…) > 0, …,
dynamic([null]))`, docs/semantics.md) is written against; with the guard our queries never
depend on it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from duckdb_kql import ir
from duckdb_kql.errors import KqlUnsupportedError

KEYWORD = "mv-apply"


@dataclass(frozen=True)
class Subtable(ir.Source):
    """Where the subquery of an `mv-apply` reads from: the record's expanded subtable."""


@dataclass(frozen=True)
class MvApply(ir.Operator):
    """`mv-apply [with_itemindex=I] Targets [limit N] on (Body)`."""

    targets: tuple[ir.MvExpandTarget, ...]
    body: ir.Query
    item_index: str | None = None
    limit: int | None = None
    # `name = expr` targets: computed into the subtable as a column `name`, then expanded there
    computed: tuple[ir.NamedExpr, ...] = ()

    @property
    def removed(self) -> tuple[str, ...]:
        """The input columns the output leaves out: a column expanded under its own name. (An
        alias or a computed target leaves the input column of that name in place, as
        Kusto.Language types it: `mv-apply b = A on (summarize n = count())` keeps `b`.)"""
        computed = {e.name for e in self.computed}
        return tuple(t.column for t in self.targets if t.name is None and t.column not in computed)


# -- lowering -------------------------------------------------------------------------------------
def lower(node: Any) -> MvApply:
    """An `MvapplyOperator` parse node as IR."""
    from duckdb_kql import lower as L

    item_index: str | None = None
    limit: int | None = None
    targets: list[ir.MvExpandTarget] = []
    computed: list[ir.NamedExpr] = []
    body: ir.Query | None = None
    for kid in L._rule_children(node):
        kind, text = L._cls(kid), kid.getText()
        if kind == "MvapplyOperatorLimitClause":
            try:
                limit = int(text[len("limit"):])
            except ValueError:
                raise L._unsupported(kid, f"{KEYWORD} limit") from None
        elif "Parameter" in kind:
            key, _, value = text.partition("=")
            if key.strip().lower() != "with_itemindex" or not value.strip():
                raise L._unsupported(kid, f"{KEYWORD} parameter {text}")
            item_index = value.strip()
        elif kind == "MvapplyOperatorExpression":
            target, prelude = L._lower_mv_expand_target(kid)
            targets.append(target)
            if prelude is not None:
                computed.append(prelude)
        elif kind == "ContextualSubExpression":
            body = ir.Query(Subtable(), _body_operators(kid))
        else:
            raise L._unsupported(kid, KEYWORD)
    if not targets or body is None:
        raise L._unsupported(node, KEYWORD)
    return MvApply(tuple(targets), body, item_index, limit, tuple(computed))


def _body_operators(node: Any) -> list[ir.Operator]:
    """The operators of `( op | op ... )`, the subquery's pipeline without a source."""
    from duckdb_kql import lower as L

    kids = L._rule_children(node)
    if len(kids) != 1 or L._cls(kids[0]) != "PipeSubExpression":
        raise L._unsupported(node, f"{KEYWORD} subquery")
    return L._lower_operators(L._rule_children(kids[0]))


def substitute(op: MvApply, scalars: dict) -> MvApply:
    """`let` values in the computed targets and inside the subquery, as the pipeline around
    them gets them."""
    from duckdb_kql import lower as L

    if not scalars:
        return op
    computed = tuple(L._substitute(e, scalars) for e in op.computed)
    return MvApply(op.targets, L._substitute_query(op.body, scalars), op.item_index, op.limit, computed)


# -- output columns -------------------------------------------------------------------------------
def record_columns(op: MvApply, cols: list[str]) -> list[str]:
    """The record's columns with the computed targets (a computed target replaces a column of
    its name in the subtable, as `extend` does)."""
    return cols + [e.name for e in op.computed if e.name not in cols]


def subtable_columns(op: MvApply, cols: list[str]) -> list[str]:
    from duckdb_kql.schema import mv_expand_output_columns

    return mv_expand_output_columns(_expansion(op), record_columns(op, cols))


def output_columns(op: MvApply, cols: list[str], body_cols: list[str]) -> list[str]:
    """The input columns but those expanded in place (the subquery's value replacing one it
    outputs too), then the subquery's other columns."""
    kept = [c for c in cols if c not in op.removed]
    return kept + [c for c in body_cols if c not in kept]


def body_query(op: MvApply, source: ir.Source) -> ir.Query:
    return ir.Query(source, list(op.body.operators), list(op.body.lets), list(op.body.parameters))


def columns(op: MvApply, cols: list[str], schema) -> list[str]:
    from duckdb_kql.schema import output_columns as query_columns

    sub = subtable_columns(op, cols)
    body = body_query(op, ir.CommandSource("", tuple(sub), KEYWORD))
    return output_columns(op, cols, query_columns(body, schema))


# -- rendering ------------------------------------------------------------------------------------
def render(op: MvApply, prev: str, cols: list[str] | None, schema) -> str:
    """One SELECT: the input joined LATERAL to the subquery over each row's subtable."""
    from duckdb_kql.schema import output_columns as query_columns
    from duckdb_kql.translate import quote_ident, render_mv_expand, render_operator, to_sql

    if cols is None:
        raise KqlUnsupportedError(KEYWORD, hint="the input's columns must be known to build each row's subtable")
    outer, inner, table = f"{prev}_mva_o", f"{prev}_mva_s", f"{prev}_mva_t"
    body_cols = query_columns(body_query(op, ir.CommandSource("", tuple(subtable_columns(op, cols)), KEYWORD)), schema)
    # the record's columns the subtable needs (all, unless the subquery visibly reads and returns fewer)
    used = [c for c in cols if c in _needed(op, body_cols, cols)]
    record = f"(SELECT {', '.join(f'{outer}.{quote_ident(c)} AS {quote_ident(c)}' for c in used)}) AS {prev}_mva_r"
    if op.computed:
        record = f"({render_operator(ir.Extend(op.computed), record, used)}) AS {prev}_mva_x"
    subtable = render_mv_expand(_expansion(op), record, record_columns(op, used))
    body = body_query(op, ir.CommandSource(subtable_rows(table), tuple(subtable_columns(op, used)), KEYWORD))
    body_sql = to_sql(body, schema)
    if query_columns(body, schema) != body_cols:  # a subquery whose columns depend on more than it names
        raise KqlUnsupportedError(KEYWORD, hint="the subquery's columns depend on columns it does not name")
    select = [f"{inner if c in body_cols else outer}.{quote_ident(c)}" for c in output_columns(op, cols, body_cols)]
    return (
        f"SELECT {', '.join(select)} FROM {prev} AS {outer}, LATERAL ("
        f"WITH {table} AS ({subtable}) "
        f"SELECT {prev}_mva_b.* FROM ({body_sql}) AS {prev}_mva_b, (SELECT 1 FROM {table} LIMIT 1) AS {prev}_mva_g"
        f") AS {inner}"
    )


# subquery operators whose result depends only on the columns they name (with every expression
# named: an unnamed one is named after the columns around it)
NARROW = (ir.Where, ir.Summarize, ir.Project, ir.Take, ir.Top, ir.Sort, ir.Count, ir.Extend, ir.Distinct)


def _needed(op: MvApply, body_cols: list[str], cols: list[str]) -> set[str]:
    """The record's columns the subtable must carry: those the subquery or a computed target
    names, those the subquery returns, and the expanded ones. Every column when that cannot be
    told from the query: an operator outside NARROW, `*`, pack_all(), an unnamed expression, or
    with_itemindex (whose name steps past the columns it would collide with)."""
    if op.item_index or not all(isinstance(o, NARROW) for o in op.body.operators):
        return set(cols)
    named: set[str] = set()
    stack: list[object] = [list(op.body.operators), list(op.computed)]
    while stack:
        node = stack.pop()
        if isinstance(node, (list, tuple)):
            stack.extend(node)
        elif isinstance(node, ir.Wildcard) or (isinstance(node, ir.FunctionCall) and node.name.lower() == "pack_all") \
                or (isinstance(node, ir.NamedExpr) and node.name is None):
            return set(cols)
        elif isinstance(node, (ir.ColumnRef, ir.LetRef)):
            named.add(node.name)
        elif dataclasses.is_dataclass(node) and not isinstance(node, (type, ir.Query)):
            stack.extend(getattr(node, f.name) for f in dataclasses.fields(node))
    return named | set(body_cols) | {t.column for t in op.targets}


def subtable_rows(table: str) -> str:
    """The rows the subquery reads: the whole subtable. (tests/test_engine_mutations.py
    replaces this with no rows, to show the rule cases notice.)"""
    return f"SELECT * FROM {table}"


def _expansion(op: MvApply) -> ir.MvExpand:
    return ir.MvExpand(op.targets, op.item_index, op.limit, False)

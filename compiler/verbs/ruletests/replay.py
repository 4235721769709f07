"""Replay: run a shipped query over sample rows with a real local KQL engine (duckdb-kql).

The query text is the one the compiler ships, byte for byte; nothing is rewritten for the
engine. The engine is duckdb-kql with our extension (engine/: `mv-apply` and the IP range
functions, switched on only where the installed duckdb-kql is the one it was written against).
What the engine cannot run is reported as not replayed, naming the construct and its line in
the query, and never as a pass. Kusto.Language remains the authority on validity; this is the
check on meaning. Known differences from Kusto: duckdb-kql merges `union` columns of different
types (Kusto splits them into _string/_dynamic twins) and casts when a string is compared with a
number (Kusto does not) — our queries avoid both, and Kusto.Language checks that they do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from ...map.tables import Registry

DUCKDB_TYPES = {
    "string": "VARCHAR", "dynamic": "JSON", "datetime": "TIMESTAMP", "bool": "BOOLEAN",
    "int": "INTEGER", "long": "BIGINT", "real": "DOUBLE", "guid": "VARCHAR", "timespan": "INTERVAL",
}


@dataclass(frozen=True)
class Replayed:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class NotReplayed:
    """Why the local engine gave no result for a query, in the query's terms.

    `construct` is what it could not run, as KQL spells it (`mv-apply`, `ipv4_is_match()`), or
    `query` when the whole query is at stake; `line` is where the construct is in the shipped
    query (1-based), when that is one place; `reason` says why. `failed` is set when the engine
    took the query and then failed while running it (a finding), not when it refused it."""

    construct: str
    line: int | None
    reason: str
    failed: bool = False

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.construct}: {self.reason}"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# Microsoft Sentinel's `_GetWatchlist(alias)`, a function of the workspace, defined here as a
# stored function over a table the cases' watchlists are written to (duckdb-kql expands a stored
# function where the query calls it, as Kusto does). Its columns are Sentinel's, plus one per
# watchlist column a query reads other than SearchKey.
WATCHLIST_TABLE = "Watchlist"
WATCHLIST_COLUMNS = {"WatchlistAlias": "VARCHAR", "_DTItemId": "VARCHAR", "LastUpdatedTimeUTC": "TIMESTAMP",
                     "SearchKey": "VARCHAR", "WatchlistItem": "JSON"}
GET_WATCHLIST = (f"function _GetWatchlist(watchlistAlias:string) {{ {WATCHLIST_TABLE} "
                 "| where WatchlistAlias == watchlistAlias | project-away WatchlistAlias }")


class LocalEngine:
    """One in-memory DuckDB with every table of the registry, emptied between cases."""

    def __init__(self, registry: Registry):
        import duckdb_kql  # heavy (DuckDB, ANTLR): loaded only by the `test` verb

        from .engine import install

        install()
        self._kql = duckdb_kql
        self.connection = duckdb_kql.connect()
        self.tables = registry.tables
        for table in self.tables.values():
            columns = ", ".join(f"{_quote(c)} {DUCKDB_TYPES.get(t, 'VARCHAR')}" for c, t in table.columns.items())
            self.connection.execute(f"CREATE TABLE {_quote(table.name)} ({columns})")
        columns = ", ".join(f"{_quote(c)} {t}" for c, t in WATCHLIST_COLUMNS.items())
        self.connection.execute(f"CREATE TABLE {_quote(WATCHLIST_TABLE)} ({columns})")
        self._watchlist_columns = set(WATCHLIST_COLUMNS)
        self._translated: dict[str, str | NotReplayed] = {}
        self._filled: set[str] = set()

    def translate(self, query: str) -> str | NotReplayed:
        """The engine's SQL for a query, once per query text (tables change shape only when a
        watchlist column is added, which forgets every translation)."""
        if query not in self._translated:
            from duckdb_kql.engine import schema

            try:
                sql = self._kql.to_sql(query, schema=schema(self.connection), functions=[GET_WATCHLIST])
                self._translated[query] = str(sql)
            except self._kql.KqlError as error:
                self._translated[query] = refusal(error, query)
            except Exception as error:  # the engine (or our extension of it) broke on the query: say so, go on
                self._translated[query] = NotReplayed("query", None, f"the local engine failed on it ({_what(error)})", True)
        return self._translated[query]

    def load(self, rows: dict[str, list[dict[str, Any]]], watchlists: dict[str, tuple[str, tuple[str, ...]]] | None = None) -> None:
        """The case's rows, and its watchlists' values (alias → (column, values))."""
        self._seed(watchlists or {})
        for name in self._filled:
            self.connection.execute(f"DELETE FROM {_quote(name)}")
        self._filled = set(rows)
        for name, table_rows in rows.items():
            for row in table_rows:
                columns = list(row)
                self.connection.execute(
                    f"INSERT INTO {_quote(name)} ({', '.join(map(_quote, columns))}) VALUES ({', '.join('?' * len(columns))})",
                    [_stored(row[c]) for c in columns],
                )

    def _seed(self, watchlists: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        import json

        self.connection.execute(f"DELETE FROM {_quote(WATCHLIST_TABLE)}")
        for alias, (column, values) in sorted(watchlists.items()):
            if column not in self._watchlist_columns:
                self.connection.execute(f"ALTER TABLE {_quote(WATCHLIST_TABLE)} ADD COLUMN {_quote(column)} VARCHAR")
                self._watchlist_columns.add(column)
                self._translated.clear()
            for number, value in enumerate(values):
                row = {"WatchlistAlias": alias, "_DTItemId": f"{alias}-{number}", "SearchKey": value,
                       "WatchlistItem": json.dumps({column: value}), column: value}
                names = ", ".join(map(_quote, row))
                self.connection.execute(f"INSERT INTO {_quote(WATCHLIST_TABLE)} ({names}) VALUES ({', '.join('?' * len(row))})",
                                        list(row.values()))

    def run(self, query: str) -> Replayed | NotReplayed:
        sql = self.translate(query)
        if isinstance(sql, NotReplayed):
            return sql
        try:
            relation = self.connection.sql(sql)
            return Replayed(tuple(relation.columns), tuple(relation.fetchall()))
        except Exception as error:  # the engine's own failure on SQL it generated: not a verdict on the rule
            return NotReplayed("query", None, f"the local engine failed to run it ({_what(error)})", True)


def _stored(value: Any) -> Any:
    """Datetimes as naive UTC: Log Analytics keeps UTC, and the engine runs in UTC."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


# -- refusals, in the query's terms ---------------------------------------------------------------
# duckdb-kql's grammar names operators by parse-node class (MvapplyOperator); KQL spells them so
OPERATOR_SPELLINGS = {"mvapply": "mv-apply", "mvexpand": "mv-expand", "makeseries": "make-series"}
# hints that speak of the engine's own code or plans, not of the query
ENGINE_INTERNALS = re.compile(r"\bwave\b|\.py\b|\binternal\b", re.IGNORECASE)


def refusal(error: Exception, query: str) -> NotReplayed:
    """A duckdb-kql error (KqlError) on `query` as a NotReplayed: construct, line, reason."""
    from .engine import off_reason
    from .engine.seams import installed_version

    kind = type(error).__name__
    if kind == "KqlSyntaxError":
        diagnostics = getattr(error, "diagnostics", None) or []
        line = diagnostics[0].span.line if diagnostics else None
        return NotReplayed("query", line, f"the local engine could not parse it ({_first_line(error)})")
    if kind == "KqlSchemaError":
        return NotReplayed(str(getattr(error, "name", "query")), None,
                           f"the local engine could not work out the columns ({_useful_hint(error) or 'unknown name'})")
    construct = construct_name(str(getattr(error, "construct", "query")))
    span = getattr(error, "span", None)
    line = span.line if span is not None else line_of(construct, query)
    off = off_reason(construct)
    if off:
        return NotReplayed(construct, line, f"not run here: the local engine's extension for it is off, because {off}")
    hint = _useful_hint(error)
    reason = f"the local engine (duckdb-kql {installed_version()}) does not run it"
    return NotReplayed(construct, line, reason + (f": {hint}" if hint else ""))


def construct_name(construct: str) -> str:
    """duckdb-kql's name for a construct as KQL spells it: 'function:ipv4_is_match' is
    'ipv4_is_match()', 'MvapplyOperator' is 'mv-apply'."""
    family, _, name = construct.partition(":")
    if name and family == "function":
        return f"{name}()"
    if name and family in ("operator", "expression", "unary", "source"):
        return name
    if construct.endswith("Operator") and construct[:1].isupper():
        spelled = re.sub(r"(?<=[a-z])(?=[A-Z])", "-", construct.removesuffix("Operator")).lower()
        return OPERATOR_SPELLINGS.get(spelled.replace("-", ""), spelled)
    return construct


def line_of(construct: str, query: str) -> int | None:
    """The first line of `query` (1-based) where `construct` appears as an operator or a call."""
    if construct.endswith("()"):
        pattern = rf"(?<![\w.]){re.escape(construct[:-2])}\s*\("
    else:
        pattern = rf"\|\s*{re.escape(construct)}(?![\w-])"
    found = re.search(pattern, query, re.IGNORECASE)
    return query.count("\n", 0, found.start()) + 1 if found else None


def _useful_hint(error: Exception) -> str | None:
    hint = getattr(error, "hint", None)
    if not hint or ENGINE_INTERNALS.search(hint):
        return None
    return hint


def _what(error: Exception) -> str:
    return f"{type(error).__name__}: {_first_line(error)}"


def _first_line(error: Exception, limit: int = 200) -> str:
    lines = str(error).strip().splitlines()
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."

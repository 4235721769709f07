"""Replay: run a shipped query over sample rows with a real local KQL engine (duckdb-kql).

The query text is the one the compiler ships, byte for byte; nothing is rewritten for the
engine. What the engine cannot run is reported as not replayed, with its reason, and never
as a pass. Kusto.Language remains the authority on validity; this is the check on meaning.
Known differences from Kusto: duckdb-kql merges `union` columns of different types (Kusto
splits them into _string/_dynamic twins) and casts when a string is compared with a number
(Kusto does not) — our queries avoid both, and Kusto.Language checks that they do.
"""

from __future__ import annotations

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
    reason: str


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
                self._translated[query] = NotReplayed(_reason(error))
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
            return NotReplayed(f"the local engine failed to run it: {type(error).__name__}: {_first_line(error)}")


def _stored(value: Any) -> Any:
    """Datetimes as naive UTC: Log Analytics keeps UTC, and the engine runs in UTC."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _reason(error: Exception) -> str:
    text = _first_line(error)
    if type(error).__name__ == "KqlUnsupportedError":
        return f"the local engine does not support it: {text}"
    return f"the local engine refused it: {text}"


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__

"""Map step data: table schemas, beta-path mappings, and which tables a rule reads.

Everything here is loaded from `schemas/` (or a user's `getschema` export); the code only
knows how to resolve a beta path to a column by its longest mapped prefix.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

from ..paths import SCHEMAS_DIR

TABLES_DIR = SCHEMAS_DIR / "tables"
MAPPINGS_DIR = SCHEMAS_DIR / "mappings"
TARGETS_PATH = SCHEMAS_DIR / "targets.json"

# getschema reports .NET or Kusto type names; both map to Log Analytics types.
_GETSCHEMA_TYPES = {
    "system.string": "string", "system.int32": "int", "system.int64": "long",
    "system.double": "real", "system.boolean": "bool", "system.datetime": "datetime",
    "system.object": "dynamic", "system.guid": "guid", "system.timespan": "timespan",
    "system.sbyte": "bool", "system.data.sqltypes.sqldecimal": "decimal",
}


@dataclass(frozen=True)
class Table:
    name: str
    platform: str
    time_column: str
    columns: dict[str, str]

    def column_type(self, column: str) -> str | None:
        return self.columns.get(column)


@dataclass(frozen=True)
class Constant:
    """The field has the same value on every row of the table."""

    value: Any


@dataclass(frozen=True)
class Absent:
    """The table has no column for the field: Sigma treats it as a missing field."""

    reason: str
    deliberate: bool = False  # the mapping leaves it out on purpose (the reason says why)


@dataclass(frozen=True)
class ColumnAccess:
    """Where a beta path lives: a column, a path inside it, and how values are encoded."""

    column: str
    column_type: str
    path: tuple[str, ...] = ()
    encoding: tuple[tuple[str, Any], ...] | None = None

    @property
    def is_json(self) -> bool:
        """Structured data stored as text must be parsed before we can look inside it."""
        return self.column_type != "dynamic" and bool(self.path)

    def encoded(self, key: str) -> Any:
        if self.encoding is None:
            return None
        return dict(self.encoding).get(key)


Resolution = Union[ColumnAccess, Constant, Absent]


@dataclass(frozen=True)
class TableMapping:
    table: Table
    fields: dict[str, dict] = field(hash=False)
    # resolutions are immutable and asked for again and again (every catalog path, per rule)
    _resolved: dict[str, "Resolution"] = field(default_factory=dict, init=False, repr=False, compare=False, hash=False)

    def resolve(self, path: str) -> Resolution:
        """Resolve a beta path by its longest mapped prefix; the rest becomes the inner path."""
        resolved = self._resolved.get(path)
        if resolved is None:
            resolved = self._resolved[path] = self._resolve(path)
        return resolved

    def _resolve(self, path: str) -> Resolution:
        parts = path.split(".")
        for end in range(len(parts), 0, -1):
            target = self.fields.get(".".join(parts[:end]))
            if target is None:
                continue
            if "constant" in target:
                return Constant(target["constant"])
            if "absent" in target:
                return Absent(target["absent"], deliberate=True)
            column = target["column"]
            column_type = self.table.column_type(column)
            if column_type is None:
                return Absent(f"column {column} is not in {self.table.name}")
            inner = tuple(p for p in str(target.get("path") or "").split(".") if p)
            encoding = target.get("encoding")
            return ColumnAccess(
                column,
                column_type,
                inner + tuple(parts[end:]),
                tuple(sorted(encoding.items())) if encoding else None,
            )
        return Absent(f"{self.table.name} has no column for {path}")


def _load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def table_from_file(path: Path) -> Table:
    data = _load_json(path)
    return Table(
        data["name"], data["platform"], data["timeColumn"],
        {c["name"]: c["type"] for c in data["columns"]},
    )


def table_from_getschema(path: Path, base: Table) -> Table:
    """A user's `<Table> | getschema` export (JSON rows or CSV) replaces the bundled columns."""
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not JSON ({error})") from None
        rows = data if isinstance(data, list) else (data.get("columns") or data.get("rows") or []) if isinstance(data, dict) else None
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(
            f"{path}: expected rows with ColumnName and ColumnType (the output of '{base.name} | getschema' as JSON or CSV)"
        )
    columns: dict[str, str] = {}
    for row in rows:
        name = row.get("ColumnName") or row.get("name")
        kind = (row.get("ColumnType") or row.get("type") or "").lower()
        kind = _GETSCHEMA_TYPES.get(kind, kind) or _GETSCHEMA_TYPES.get(
            str(row.get("DataType", "")).lower(), "string"
        )
        if name:
            columns[str(name)] = kind
    if not columns:
        raise ValueError(f"{path}: no columns found (expected the output of '{base.name} | getschema')")
    return Table(base.name, base.platform, base.time_column, columns)


class Registry:
    """All tables and mappings a compilation may use, after user overrides."""

    def __init__(self, tables: dict[str, Table], mappings: dict[str, dict], targets: dict):
        self.tables = tables
        self._mappings = mappings
        self.targets = targets
        self._mapping_cache: dict[str, TableMapping] = {}

    @classmethod
    def bundled(cls) -> "Registry":
        tables = {p.stem: table_from_file(p) for p in sorted(TABLES_DIR.glob("*.json"))}
        mappings = {p.stem: _load_json(p)["fields"] for p in sorted(MAPPINGS_DIR.glob("*.json"))}
        return cls(tables, mappings, _load_json(TARGETS_PATH))

    def with_workspace_schemas(self, paths: list[Path]) -> "Registry":
        """Override table columns with `getschema` exports named after their table (SigninLogs.json)."""
        tables = dict(self.tables)
        for path in paths:
            if path.stem not in tables:
                known = ", ".join(sorted(tables))
                raise ValueError(f"{path}: file name must be a table name ({known})")
            tables[path.stem] = table_from_getschema(path, tables[path.stem])
        return Registry(tables, self._mappings, self.targets)

    def mapping(self, table: str) -> TableMapping:
        """One TableMapping per table, so that its resolutions are computed once per run."""
        if table not in self._mapping_cache:
            self._mapping_cache[table] = TableMapping(self.tables[table], self._mappings.get(table, {}))
        return self._mapping_cache[table]

    def tables_for(self, platform: str, service: str) -> list[str]:
        return list(self.targets.get(platform, {}).get(service, []))

    def choices_for(self, platform: str, service: str) -> list[str]:
        """The tables a rule of this service may choose on this platform (defaults first)."""
        defaults = self.tables_for(platform, service)
        alternatives = self.targets.get(f"{platform}Alternatives", {})
        return defaults + [t for table in defaults for t in alternatives.get(table, [])]

    def row_filter(self, platform: str, service: str, table: str) -> tuple[str, object] | None:
        """(column, value) that picks this service's rows out of a table that mixes services."""
        found = self.targets.get("rowFilters", {}).get(platform, {}).get(service, {}).get(table)
        return (found["column"], found["equals"]) if found else None

    def services(self, platform: str) -> list[str]:
        return sorted(self.targets.get(platform, {}))


@lru_cache(maxsize=1)
def bundled_registry() -> Registry:
    return Registry.bundled()

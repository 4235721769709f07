"""Rule test rows in shapes Entra never writes (W503).

A case that passes on a row real data cannot contain proves nothing: `"isManaged": false`
inside DeviceDetail (Entra leaves the key out), a Conditional Access condition written as a
name (the tables hold the bitmask number), a never-filled column with a value. The catalog
says which paths behave so (`realData`, with the evidence); this checks a case's rows
against it, through the same mapping the queries use.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, Iterator

from ...map.tables import ColumnAccess, Registry
from ...validate.catalog import Catalog, Field


@lru_cache(maxsize=4)
def _flagged(catalog: Catalog) -> tuple[Field, ...]:
    """The catalog paths whose real shape a row can get wrong (a never-filled array once, not
    each of its keys)."""
    return tuple(
        f for f in catalog.fields.values()
        if f.false_when_absent or f.bitmask or (f.never_filled and (not f.arrays or f.path == f.array_root))
    )


def _values(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    """The values at `path` inside a column's value, through arrays."""
    if not path:
        yield node
        return
    if isinstance(node, list):
        for element in node:
            yield from _values(element, path)
        return
    if isinstance(node, dict) and path[0] in node:
        yield from _values(node[path[0]], path[1:])


def parsed(value: Any) -> Any:
    """JSON text (a string column holding an object or array) as the object it holds."""
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def shape_problems(table: str, row: dict[str, Any], registry: Registry, catalog: Catalog) -> list[tuple[str, str, str]]:
    """(column, what is wrong, how to write it) for each value of `row` (as written in the
    case, column → value) that real rows of `table` never hold."""
    mapping = registry.mapping(table)
    problems = []
    for field in _flagged(catalog):
        access = mapping.resolve(field.path)
        if not isinstance(access, ColumnAccess) or access.column not in row:
            continue
        where = ".".join((access.column, *access.path))
        for value in _values(parsed(row[access.column]), access.path):
            if field.false_when_absent and value is False:
                key = access.path[-1] if access.path else access.column
                problems.append((access.column, f"{where} is false, but Entra leaves the key out when it is false",
                                 f"remove '{key}'; see `entra-sigma fields {field.path}`"))
            elif field.bitmask and isinstance(value, str):
                enum = catalog.enum_of(field)
                number = enum.number(value) if enum else None
                problems.append((access.column, f"{where} is {value!r}, but the tables hold its number (a bitmask)",
                                 f"write {number}" if number is not None else "write the bitmask number"))
            elif field.never_filled and value not in (None, "", [], {}, "[]"):
                problems.append((access.column, f"{where} has a value, but the tables never fill it",
                                 f"put the value in {field.never_filled} instead"))
    return problems

"""`entra-sigma fields`: the beta signIn catalog as a reader browses it.

For each path: its type, description, enum members, what real rows show, and how each
bundled table reads it (a column, a path inside one, numbers, a constant, or nothing).
"""

from __future__ import annotations

from ..map.tables import Absent, Constant, Registry, Resolution
from ..validate.catalog import Catalog, real_data_notes


def describe_fields(catalog: Catalog, registry: Registry, text: str | None) -> list[str]:
    """The lines `fields` prints for the paths containing `text` (all when None); [] if none."""
    tables = sorted(registry.tables, key=lambda t: (registry.tables[t].platform != "sentinel", t))
    lines = []
    for path in sorted(catalog.fields):
        if text is not None and text.lower() not in path.lower():
            continue
        spec = catalog.fields[path]
        kind = spec.enum if spec.enum else spec.type
        extras = []
        if spec.collection:
            extras.append("array")
        elif spec.arrays:
            extras.append(f"in array {spec.array_root}")
        if spec.format:
            extras.append(spec.format)
        lines.append(f"{path}  ({kind}{', ' + ', '.join(extras) if extras else ''})")
        if spec.description:
            lines.append(f"    {' '.join(spec.description.split())}")
        enum = catalog.enum_of(spec)
        if enum:
            lines.append(f"    members{' (flags)' if enum.flags else ''}: {', '.join(enum.members)}")
        lines += [f"    real rows: {note}" for note in real_data_notes(spec)]
        lines += [f"    {table}: {describe_resolution(registry.mapping(table).resolve(path))}" for table in tables]
    return lines


def describe_resolution(resolved: Resolution) -> str:
    if isinstance(resolved, Absent):
        return f"— (not read: {resolved.reason})" if resolved.deliberate else "—"
    if isinstance(resolved, Constant):
        return f"constant {resolved.value!r}"
    text = resolved.column + "".join(f".{p}" for p in resolved.path)
    kind = "dynamic" if resolved.column_type == "dynamic" else ("JSON text" if resolved.path else resolved.column_type)
    encoding = f", numbers: {', '.join(f'{k}={v}' for k, v in resolved.encoding)}" if resolved.encoding else ""
    return f"{text} ({kind}{encoding})"

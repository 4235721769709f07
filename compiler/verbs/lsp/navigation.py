"""Go to definition (a correlation's `rules:` entry → that rule) and document symbols (each
rule with its selections and condition, each correlation with its parts)."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types

from .project import Project
from .text import block_end, context_at, documents, read_line, token_at

Kind = types.SymbolKind
CORRELATION_PARTS = ("type", "rules", "group-by", "timespan", "condition", "aliases", "generate")


def definition(project: Project, path: Path, lines: list[str], line: int, column: int) -> types.Location | None:
    if line >= len(lines):
        return None
    context = context_at(lines, line, column)
    full = context.keys + ((context.key,) if context.key else ())
    if not context.in_value or full != ("correlation", "rules"):
        return None
    start, end = token_at(lines[line], column)
    reference = lines[line][start:end]
    found = project.find_definition(path, reference) if reference else None
    if found is None:
        return None
    source, document = found
    where = document.location("name") if "name" in (document.data or {}) else document.location()
    position = types.Position(where.line - 1, where.column - 1)
    return types.Location(source.path.as_uri(), types.Range(position, position))


def _symbol(lines: list[str], index: int, name: str, kind, detail: str | None = None, children=None) -> types.DocumentSymbol:
    read = read_line(lines[index])
    end = block_end(lines, index)
    whole = types.Range(types.Position(index, read.indent), types.Position(end, len(lines[end])))
    key = types.Range(types.Position(index, read.column), types.Position(index, read.key_end if read.key else len(lines[index])))
    return types.DocumentSymbol(name=name or "(empty)", kind=kind, range=whole, selection_range=key, detail=detail, children=children or None)


def document_symbols(lines: list[str]) -> list[types.DocumentSymbol]:
    symbols = []
    for start, first, end in documents(lines):
        title, children, kind = None, [], Kind.Class
        index = first
        while index <= end:
            read = read_line(lines[index])
            if read.key is None or read.indent != 0:
                index += 1
                continue
            last = block_end(lines, index)
            if read.key == "title":
                title = read.value.strip("'\"")
            elif read.key == "detection":
                children.append(_symbol(lines, index, "detection", Kind.Namespace, children=_parts(lines, index, last, Kind.Variable)))
            elif read.key == "correlation":
                kind = Kind.Event
                parts = [p for p in _parts(lines, index, last, Kind.Property) if p.name in CORRELATION_PARTS]
                children.append(_symbol(lines, index, "correlation", Kind.Namespace, children=parts))
            elif read.key in ("logsource", "fields", "sentinel", "defender", "tags"):
                children.append(_symbol(lines, index, read.key, Kind.Property, read.value or None))
            index = last + 1
        whole = types.Range(types.Position(start, 0), types.Position(end, len(lines[end]) if end < len(lines) else 0))
        head = types.Range(types.Position(first, 0), types.Position(first, len(lines[first])))
        symbols.append(types.DocumentSymbol(name=title or f"rule {len(symbols) + 1}", kind=kind, range=whole,
                                            selection_range=head, children=children or None))
    return symbols


def _parts(lines: list[str], index: int, last: int, kind) -> list[types.DocumentSymbol]:
    """The keys one level below the key on line `index`: a detection's selections and condition."""
    parts, column = [], None
    for below in range(index + 1, last + 1):
        read = read_line(lines[below])
        if read.blank or read.key is None or read.dash is not None:
            continue
        column = read.column if column is None else column
        if read.column == column:
            is_condition = read.key == "condition"
            parts.append(_symbol(lines, below, read.key, Kind.Boolean if is_condition else kind, read.value or None))
    return parts

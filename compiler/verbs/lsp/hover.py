"""Hover: what a field, a modifier or a tag means here.

A field: its type, enum members, documentation, what real rows show (the catalog's
`realData`), and the column each table the rule reads keeps it in (as `entra-sigma fields`
says it). A modifier: its meaning, and the KQL the key under the cursor becomes, compiled for
real from that one key. A tag: the ATT&CK tactic or technique it names. A correlation's rule
reference: the rule's title and file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from lsprotocol import types

from ...build import Compiler
from ...load.loader import parse_documents
from ...validate.catalog import real_data_notes
from ..fields import describe_resolution
from .completion import field_detail
from .project import Project, is_tests_file
from .text import block_end, context_at, document_bounds, read_line, token_at
from .vocabulary import describe_tag, modifiers

SERVICE = re.compile(r"\bservice:\s*['\"]?([A-Za-z]+)")
DEFENDER_TABLE = re.compile(r"^\s+table:\s*['\"]?([A-Za-z]+)")
FIELD_PLACES = {("fields",), ("correlation", "fields"), ("correlation", "group-by"), ("correlation", "condition", "field")}
PROBE_ID = "00000000-0000-4000-8000-000000000000"


@dataclass
class Hoverer:
    compiler: Compiler
    project: Project

    def hover(self, path: Path, lines: list[str], line: int, column: int) -> types.Hover | None:
        if line >= len(lines):
            return None
        text = lines[line]
        context = context_at(lines, line, column)
        keys = context.keys
        read = read_line(text)
        start, end = token_at(text, column, " \t:,[]{}'\"#")
        word = text[start:end]
        if not word or is_tests_file(path):
            return None
        found: str | None = None
        if len(keys) >= 2 and keys[0] == "detection" and keys[1] != "condition" and read.key is not None \
                and read.column <= column <= read.key_end:
            found, start, end = self._selection_key(lines, line, column, read)
        elif len(keys) >= 2 and keys[0] == "detection" and keys[1] != "condition" and "fieldref" in (context.key or keys[-1]).split("|"):
            found = self.field(word, lines, line)
        elif context.in_value and (keys + ((context.key,) if context.key else ())) in FIELD_PLACES:
            found = self.field(word, lines, line)
        elif context.in_value and keys[:2] == ("correlation", "aliases") and len(keys) + bool(context.key) == 4:
            found = self.field(word, lines, line)
        elif context.in_value and keys + ((context.key,) if context.key else ()) == ("tags",):
            found = describe_tag(word)
        elif context.in_value and keys + ((context.key,) if context.key else ()) == ("correlation", "rules"):
            found = self._reference(path, word)
        elif context.in_value and keys + ((context.key,) if context.key else ()) == ("logsource", "service"):
            tables = {p: self.compiler.registry.tables_for(p, word) for p in ("sentinel", "defender")}
            found = f"`service: {word}` reads " + "; ".join(f"{p}: {', '.join(t) or 'no table'}" for p, t in tables.items())
        if not found:
            return None
        return types.Hover(types.MarkupContent(types.MarkupKind.Markdown, found),
                           types.Range(types.Position(line, start), types.Position(line, end)))

    # -- a selection key: its field, or one of its modifiers --------------------------------
    def _selection_key(self, lines: list[str], line: int, column: int, read) -> tuple[str | None, int, int]:
        key = read.key
        offset = read.column
        parts = key.split("|")
        for index, part in enumerate(parts):
            if offset <= column <= offset + len(part):
                if index == 0:
                    return self.field(part, lines, line), offset, offset + len(part)
                return self.modifier(part, lines, line), offset, offset + len(part)
            offset += len(part) + 1
        return None, column, column

    def field(self, path: str, lines: list[str], line: int) -> str | None:
        catalog = self.compiler.catalog
        spec = catalog.get(path)
        if spec is None:
            return None
        parts = [f"**{path}**: {field_detail(catalog, spec)}"]
        if spec.description:
            parts.append(" ".join(spec.description.split()))
        notes = real_data_notes(spec)
        if notes:
            parts.append("What real rows show:\n" + "\n".join(f"- {note}" for note in notes))
        rows = [f"| {table} | {describe_resolution(self.compiler.registry.mapping(table).resolve(path))} |"
                for table in self.tables_read(lines, line)]
        parts.append("| table | column |\n|---|---|\n" + "\n".join(rows))
        parts.append("docs/reference/fields.md; `entra-sigma fields " + path + "`")
        return "\n\n".join(parts)

    def tables_read(self, lines: list[str], line: int) -> list[str]:
        """The tables the rule under the cursor reads: its service's, on both platforms."""
        first, last = document_bounds(lines, line)
        text = "\n".join(lines[first:last + 1])
        service = SERVICE.search(text)
        registry = self.compiler.registry
        if service is None or service.group(1) not in registry.services("sentinel"):
            return sorted(registry.tables, key=lambda t: (registry.tables[t].platform != "sentinel", t))
        name = service.group(1)
        defender = registry.tables_for("defender", name)
        chosen = self._defender_table(lines[first:last + 1])
        if chosen and chosen in registry.choices_for("defender", name):
            defender = [chosen]
        return registry.tables_for("sentinel", name) + defender

    @staticmethod
    def _defender_table(lines: list[str]) -> str | None:
        inside = False
        for text in lines:
            read = read_line(text)
            if read.key is not None and read.indent == 0:
                inside = read.key == "defender"
            elif inside and (found := DEFENDER_TABLE.match(text)):
                return found.group(1)
        return None

    def modifier(self, name: str, lines: list[str], line: int) -> str | None:
        spec = modifiers().get(name)
        if spec is None:
            return None
        text = f"**`{name}`**: {spec['meaning']}"
        kql = self.kql_of_key(lines, line)
        if kql:
            text += "\n\nThis key becomes:\n```kql\n" + kql + "\n```"
        return text

    def kql_of_key(self, lines: list[str], line: int) -> str | None:
        """The `where` steps the key on `line` (with its value) compiles to on the rule's first
        Sentinel table: a rule of that one key, compiled by the compiler itself."""
        read = read_line(lines[line])
        last = block_end(lines, line)
        block = [lines[line][read.column:]] + [text[read.column:] if len(text) > read.column else text.strip() for text in lines[line + 1:last + 1]]
        try:
            written = yaml.safe_load("\n".join(block))
        except yaml.YAMLError:
            return None
        if not isinstance(written, dict) or len(written) != 1:
            return None
        first, end = document_bounds(lines, line)
        service = SERVICE.search("\n".join(lines[first:end + 1]))
        probe = {
            "title": "hover", "id": PROBE_ID,
            "logsource": {"product": "entra", "service": service.group(1) if service else "signins"},
            "detection": {"key": written, "condition": "key"},
        }
        documents, problems = parse_documents(yaml.safe_dump(probe, sort_keys=False), Path("hover.yml"), "hover.yml")
        if problems or not documents:
            return None
        result = self.compiler.compile_documents(documents, [], ("sentinel",))
        if not result.compiled or "sentinel" not in result.compiled[0].texts:
            problem = next((d for d in result.diagnostics if d.severity == "error"), None)
            return f"// {problem.message}" if problem else None
        return first_leg(result.compiled[0].texts["sentinel"], set(self.compiler.registry.tables))

    def _reference(self, path: Path, name: str) -> str | None:
        found = self.project.find_definition(path, name)
        if found is None:
            return f"no rule named or with id '{name}' in the files checked with this one"
        source, document = found
        body = document.data if isinstance(document.data, dict) else {}
        kind = "correlation" if "correlation" in body else "rule"
        return f"**{body.get('title', name)}** ({kind}, {source.display}:{document.location().line})"


def first_leg(query: str, tables: set[str]) -> str | None:
    """The first table's steps of a query, without its `project` and `extend` (what a key becomes)."""
    table, steps = None, []
    for text in query.splitlines():
        stripped = text.strip().lstrip("(").strip()
        if stripped in tables:
            if table is not None:
                break
            table = stripped
            continue
        if table is None or stripped.startswith("//"):
            continue
        extra = stripped.count(")") - stripped.count("(")  # the parenthesis that closes a union's leg
        if extra > 0:
            stripped = stripped.removesuffix(",")[: -extra]
        if stripped.startswith(("| project ", "| extend ")):
            continue
        steps.append(stripped)
    return f"{table}\n" + "\n".join(steps) if table and steps else None

"""Completion: what may be written where the cursor is, from the catalog, the tables and the schemas.

In a selection: beta paths (with their type and enum), then after `|` the modifiers the
field's type takes, and as values its enum members or true/false (a field after `fieldref`,
a project placeholder after `expand`). Elsewhere: `fields`, `group-by` and a correlation's
`condition.field` take paths; `tags` ATT&CK tactics and techniques; `rules:` the names of the
rules beside; every other key and value the rule schema lists (`logsource.service`, `level`,
`correlation.type`, the `sentinel:` settings, …). In a tests file: tables, their columns,
`expect` and the rules of the file beside.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types

from ...map.tables import Registry
from ...validate.catalog import Catalog, Field
from .placeholders import PlaceholderSource
from .project import Project, is_tests_file
from .text import Context, context_at, document_bounds, read_line
from .vocabulary import attack_tags, json_schema, modifiers, modifiers_for, schema_keys, schema_values

# where a list or value names beta paths → which paths fit there
RETURNABLE = lambda spec: not (spec.arrays and not spec.collection)  # `fields`: a whole array, not a path inside one (E108)
ONE_VALUE = lambda spec: spec.type != "object" and not spec.arrays  # one value per sign-in (E403)
FIELD_LISTS = {("fields",): RETURNABLE, ("correlation", "fields"): ONE_VALUE, ("correlation", "group-by"): ONE_VALUE,
               ("correlation", "condition", "field"): ONE_VALUE}
Kind = types.CompletionItemKind


@dataclass
class Completer:
    catalog: Catalog
    registry: Registry
    project: Project
    placeholders: PlaceholderSource

    def complete(self, path: Path, lines: list[str], line: int, column: int) -> list[types.CompletionItem]:
        context = context_at(lines, line, column)
        edit = (line, context.start, line, column)
        if is_tests_file(path):
            items = self._tests(path, context, edit)
        else:
            items = self._rule(path, lines, context, edit, line)
        return items

    # -- rule files -------------------------------------------------------------------------
    def _rule(self, path: Path, lines: list[str], context: Context, edit, line: int) -> list[types.CompletionItem]:
        keys, where = context.keys, context.path
        in_selection = len(keys) >= 2 and keys[0] == "detection" and keys[1] != "condition"
        if in_selection and not context.in_value and len(keys) == 2:
            return self._selection_key(context, edit)
        if in_selection and context.in_value and context.key is None and where[-2:] != ("-", "-") and len(keys) == 2:
            return self._selection_key(context, edit)  # `- userAg` in a list of maps
        if in_selection and context.in_value:
            written = context.key or keys[-1]
            return self._selection_value(path, written, context, edit)
        full = keys + ((context.key,) if context.key else ())
        if context.in_value and full in FIELD_LISTS:
            return self._fields(edit, FIELD_LISTS[full])
        if context.in_value and len(full) == 4 and full[:2] == ("correlation", "aliases"):
            return self._fields(edit, ONE_VALUE)
        if context.in_value and full == ("tags",):
            return [self._item(tag, edit, Kind.EnumMember, detail) for tag, detail in attack_tags()]
        if context.in_value and full == ("correlation", "rules"):
            return [self._item(name, edit, Kind.Reference, f"{title} ({source.display})")
                    for name, title, source in self.project.rule_names(path)]
        if context.in_value and full == ("logsource", "service"):
            return [self._item(service, edit, Kind.EnumMember, "reads " + ", ".join(self.registry.tables_for("sentinel", service)))
                    for service in schema_values(json_schema("rule.schema.json"), ("logsource", "service"))]
        if context.in_value and full == ("detection", "condition"):
            return self._condition(lines, line, edit)
        schema = json_schema("rule.schema.json")
        return self._from_schema(schema, where, context, edit)

    def _selection_key(self, context: Context, edit) -> list[types.CompletionItem]:
        typed = context.typed
        if "|" in typed:
            field_path, *written = typed.split("|")
            spec = self.catalog.get(field_path)
            if spec is None:
                return []
            start = edit[1] + typed.rfind("|") + 1
            meanings = modifiers()
            return [self._item(name, (edit[0], start, edit[2], edit[3]), Kind.Operator, meanings[name]["meaning"])
                    for name in modifiers_for(spec, written[:-1])]
        return self._fields(edit, lambda spec: True)

    def _selection_value(self, path: Path, written: str, context: Context, edit) -> list[types.CompletionItem]:
        field_path, *mods = written.split("|")
        if "fieldref" in mods:
            return self._fields(edit, ONE_VALUE)
        if "expand" in mods or context.typed.startswith("%"):
            return [self._item(f"%{p.name}%", edit, Kind.Variable, "placeholder in " + ", ".join(p.environments))
                    for p in self.placeholders.placeholders(path.parent)]
        spec = self.catalog.get(field_path)
        if "exists" in mods:
            return [self._item(word, edit, Kind.Value, "exists") for word in ("true", "false")]
        if spec is None or not set(mods) <= {"all", "neq", "cased"}:  # other modifiers take other values
            return []
        enum = self.catalog.enum_of(spec)
        if enum is not None:
            return [self._item(member, edit, Kind.EnumMember, f"{enum.name}{' (flags)' if enum.flags else ''}") for member in enum.members]
        if spec.type == "bool":
            return [self._item(word, edit, Kind.Value, "bool") for word in ("true", "false")]
        return []

    def _condition(self, lines: list[str], line: int, edit) -> list[types.CompletionItem]:
        """The selections of the rule's detection, and the words of Sigma's condition language."""
        first, last = document_bounds(lines, line)
        selections = []
        inside, column = False, None
        for index in range(first, last + 1):
            read = read_line(lines[index])
            if read.key is not None and read.indent == 0:
                inside = read.key == "detection"
                column = None
            elif inside and read.key is not None and read.dash is None and read.key != "condition":
                column = column if column is not None else read.column
                if read.column == column:
                    selections.append(read.key)
        words = ["and", "or", "not", "1 of", "all of", "them"]
        return [self._item(s, edit, Kind.Variable, "selection") for s in selections] + \
            [self._item(w, edit, Kind.Keyword, "condition") for w in words]

    def _fields(self, edit, fits) -> list[types.CompletionItem]:
        items = []
        for path, spec in sorted(self.catalog.fields.items()):
            if not fits(spec):
                continue
            items.append(self._item(path, edit, Kind.Module if spec.type == "object" else Kind.Field, field_detail(self.catalog, spec),
                                    spec.description))
        return items

    def _from_schema(self, schema: dict, where: tuple[str, ...], context: Context, edit) -> list[types.CompletionItem]:
        if context.in_value:
            target = where + ((context.key,) if context.key else ())
            return [self._item(value, edit, Kind.EnumMember, None) for value in schema_values(schema, target)]
        return [self._item(key, edit, Kind.Property, None, description or None, insert=f"{key}: ")
                for key, description in schema_keys(schema, where).items()]

    # -- tests files ------------------------------------------------------------------------
    def _tests(self, path: Path, context: Context, edit) -> list[types.CompletionItem]:
        keys, where = context.keys, context.path
        if where == ("cases", "-", "rows") and not context.in_value:
            return [self._item(table, edit, Kind.Class, f"{spec.platform} table", insert=f"{table}: ")
                    for table, spec in sorted(self.registry.tables.items())]
        flow_key = _flow_key(context)
        if flow_key is not None:
            edit = (edit[0], flow_key, edit[2], edit[3])
        if len(where) == 5 and where[:3] == ("cases", "-", "rows") and where[4] == "-" and \
                (not context.in_value or context.key is None or flow_key is not None):
            table = self.registry.tables.get(where[3])
            if table is not None:
                return [self._item(column, edit, Kind.Field, kind, insert=f"{column}: ")
                        for column, kind in sorted(table.columns.items())]
        full = keys + ((context.key,) if context.key else ())
        if context.in_value and full == ("cases", "rule"):
            from .checks import rule_file_of

            rule_file = rule_file_of(path)
            source = self.project.source(rule_file) if rule_file is not None else None
            names = []
            for document in source.documents if source else []:
                body = document.data if isinstance(document.data, dict) else {}
                label = body.get("name") if isinstance(body.get("name"), str) else body.get("id")
                if isinstance(label, str):
                    names.append(self._item(label, edit, Kind.Reference, str(body.get("title") or "")))
            return names
        return self._from_schema(json_schema("rule-tests.schema.json"), context.path, context, edit)

    @staticmethod
    def _item(label: str, edit, kind, detail: str | None, documentation: str | None = None,
              insert: str | None = None) -> types.CompletionItem:
        line, start, end_line, end = edit
        return types.CompletionItem(
            label=label,
            kind=kind,
            detail=detail,
            documentation=types.MarkupContent(types.MarkupKind.Markdown, documentation) if documentation else None,
            text_edit=types.TextEdit(types.Range(types.Position(line, start), types.Position(end_line, end)), insert or label),
            filter_text=label,
        )


def field_detail(catalog: Catalog, spec: Field) -> str:
    """`int`, `enum riskLevel`, `string, ip`, `bool, in array authenticationDetails`."""
    kind = f"enum {spec.enum}" if spec.enum else spec.type
    extras = [spec.format] if spec.format else []
    if spec.collection:
        extras.append("array")
    elif spec.arrays:
        extras.append(f"in array {spec.array_root}")
    enum = catalog.enum_of(spec)
    members = f": {', '.join(enum.members)}" if enum else ""
    return kind + (", " + ", ".join(extras) if extras else "") + members


def _flow_key(context: Context) -> int | None:
    """Where a key being typed in a flow map (`- {TimeGenerated: …, Res`) starts, or None."""
    text = context.line.text[: context.start + len(context.typed)]
    opened = text.rfind("{")
    if opened < 0 or "}" in text[opened:]:
        return None
    start = max(opened, text.rfind(",")) + 1
    if ":" in text[start:]:
        return None
    return start + len(text[start:]) - len(text[start:].lstrip())

"""Rule test cases: `<name>.tests.yml` beside `<name>.yml`, loaded and checked against the tables.

Rows are written the way the tables store them (Log Analytics column names; JSON-text
columns as text), so replaying them exercises the same parsing the shipped query does.
Every value is checked against its column's type here, before any engine sees it, so a
mistake in a case is reported as one, located, and not as a rule that "does not match".
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from ...diagnostics import Diagnostic, SourceLocation
from ...load.limits import MAX_FILE_BYTES
from ...load.loader import TEST_SUFFIXES, RuleDocument, parse_yaml, read_rule_bytes
from ...map.tables import Registry
from ...project.environment import Placeholder, placeholder_from
from ...validate.catalog import default_catalog
from ...validate.schema import describe_error, schema_validator
from .shapes import shape_problems

DEFAULT_TIME = datetime(2026, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Case:
    name: str
    expect: str  # "match", "no match" or "groups"
    groups: tuple[tuple[tuple[str, Any], ...], ...] | None  # for "groups": each group's (name, value) pairs
    rows: dict[str, list[dict[str, Any]]]  # table → rows of typed values, every column present
    rule: str | None  # which rule of the file, when it holds several
    location: SourceLocation

    @property
    def kind(self) -> str:
        """'match' or 'no match': expected groups count as a match unless there are none."""
        if self.expect == "groups":
            return "match" if self.groups else "no match"
        return self.expect


def tests_file_for(rule_file: Path) -> Path | None:
    """The test cases beside a rule file, if any."""
    for suffix in TEST_SUFFIXES:
        candidate = rule_file.with_name(rule_file.name.rsplit(".", 1)[0] + suffix)
        if candidate.is_file():
            return candidate
    return None


def tests_validator() -> Draft202012Validator:
    """The tests file schema (its placeholders refer to the project file's watchlist)."""
    return schema_validator("rule-tests.schema.json")


@dataclass(frozen=True)
class TestsFile:
    cases: list[Case]
    placeholders: dict[str, Placeholder]  # what the rule's placeholders take in these cases
    diagnostics: list[Diagnostic]


def load_cases(path: Path, display: str, registry: Registry) -> tuple[list[Case], list[Diagnostic]]:
    """Every case of one tests file, with its rows typed for the tables; or why not."""
    loaded = load_tests(path, display, registry)
    return loaded.cases, loaded.diagnostics


def load_tests(path: Path, display: str, registry: Registry) -> TestsFile:
    """A tests file: its cases and the placeholder values they run with; or why not."""
    try:
        data = read_rule_bytes(path)  # no more than the bound on a rule file, plus one byte
        if len(data) > MAX_FILE_BYTES:
            return TestsFile([], {}, [Diagnostic("E501", "cannot read test cases: the file is larger than 1 MiB, the most it may hold",
                                                 SourceLocation(display))])
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return TestsFile([], {}, [Diagnostic("E501", f"cannot read test cases: {error}", SourceLocation(display))])
    return cases_from_text(text, path, display, registry)


def cases_from_text(text: str, path: Path, display: str, registry: Registry) -> TestsFile:
    """A tests file's text as `load_tests` reads the file (an editor has its buffer)."""
    document, diagnostics = parse_yaml(text, path, display)
    if document is None:
        return TestsFile([], {}, diagnostics)
    errors = list(tests_validator().iter_errors(document.data))
    diagnostics = [Diagnostic("E501", _describe(error), document.location(*error.absolute_path)) for error in errors]
    if not isinstance(document.data, dict) or not isinstance(document.data.get("cases"), list):
        return TestsFile([], {}, diagnostics)
    placeholders = {}
    if not any(e.absolute_path and e.absolute_path[0] == "placeholders" for e in errors):
        for name, raw in (document.data.get("placeholders") or {}).items():
            where = document.location("placeholders", name)
            placeholders[name] = placeholder_from(raw, (where.line, where.column, where.path))
    # a schema error in one case leaves the others to be checked: every problem of the file at once
    broken = {e.absolute_path[1] for e in errors if len(e.absolute_path) >= 2 and e.absolute_path[0] == "cases"}
    cases, problems = _cases(document, registry, broken)
    diagnostics += problems
    failed = any(d.severity == "error" for d in diagnostics)
    return TestsFile([] if failed else cases, placeholders, diagnostics)


def _cases(document: RuleDocument, registry: Registry, broken: set[int]) -> tuple[list[Case], list[Diagnostic]]:
    diagnostics: list[Diagnostic] = []
    cases, seen = [], set()
    for index, raw in enumerate(document.data["cases"]):
        where = ("cases", index)
        if index in broken:
            continue
        if raw["name"] in seen:
            diagnostics.append(Diagnostic("E501", f"two cases are named {raw['name']!r}", document.location(*where, "name")))
            continue
        seen.add(raw["name"])
        rows, problems = _typed_rows(document, where, raw, registry)
        diagnostics += problems
        expect = raw["expect"]
        groups = None
        if isinstance(expect, dict):
            groups = tuple(tuple(sorted(group.items())) for group in expect["groups"])
            expect = "groups"
        cases.append(Case(raw["name"], expect, groups, rows, raw.get("rule"), document.location(*where)))
    return (cases if not any(d.severity == "error" for d in diagnostics) else []), diagnostics


def _describe(error) -> str:
    path = [str(p) for p in error.absolute_path]
    if path and path[-1] == "expect":
        return f"'expect' must be 'match', 'no match' or {{groups: [...]}}, not {error.instance!r}"
    return describe_error(error)


def _typed_rows(document: RuleDocument, where: tuple, raw: dict, registry: Registry):
    rows: dict[str, list[dict[str, Any]]] = {}
    diagnostics: list[Diagnostic] = []
    label = f"case {raw['name']!r}"
    for table_name, table_rows in raw["rows"].items():
        table = registry.tables.get(table_name)
        if table is None:
            close = difflib.get_close_matches(table_name, list(registry.tables), n=1, cutoff=0.5)
            diagnostics.append(Diagnostic(
                "E502", f"{label}: unknown table '{table_name}'", document.location(*where, "rows", table_name), None,
                f"did you mean '{close[0]}'?" if close else f"tables: {', '.join(sorted(registry.tables))}",
            ))
            continue
        rows[table_name] = []
        for number, row in enumerate(table_rows):
            typed = {column: None for column in table.columns}
            typed.update({"Type": table_name} if "Type" in table.columns else {})
            typed[table.time_column] = DEFAULT_TIME
            for column, value in row.items():
                location = document.location(*where, "rows", table_name, number, column)
                kind = table.columns.get(column)
                if kind is None:
                    close = difflib.get_close_matches(column, list(table.columns), n=1, cutoff=0.6)
                    diagnostics.append(Diagnostic(
                        "E502", f"{label}: {table_name} has no column '{column}'", location, None,
                        f"did you mean '{close[0]}'?" if close else f"see schemas/tables/{table_name}.json",
                    ))
                    continue
                converted, problem = convert_value(value, kind)
                if problem:
                    diagnostics.append(Diagnostic(
                        "E503", f"{label}: {table_name}.{column} is {kind}; {problem}", location, None,
                    ))
                typed[column] = converted
            for column, problem, fix in shape_problems(table_name, row, registry, default_catalog()):
                diagnostics.append(Diagnostic(
                    "W503", f"{label}: {problem}", document.location(*where, "rows", table_name, number, column), None, fix,
                    severity="warning",
                ))
            rows[table_name].append(typed)
    return rows, diagnostics


def convert_value(value: Any, kind: str) -> tuple[Any, str | None]:
    """A YAML value as the column stores it: (value, None), or (None, what is wrong)."""
    if value is None:
        return None, None
    if kind == "string":
        if isinstance(value, str):
            return value, None
        if isinstance(value, (dict, list)):  # JSON-text columns hold the JSON of the value
            return json.dumps(value, ensure_ascii=False), None
        return None, f"quote the value: '{value}'"
    if kind == "dynamic":
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError:
                return None, "give a YAML mapping or list, or JSON text"
            return value, None
        return json.dumps(value, ensure_ascii=False), None
    if kind == "datetime":
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            return None, f"{value!r} is not an ISO 8601 date-time (e.g. 2026-03-01T10:00:00Z)"
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)), None
    if kind == "bool":
        return (value, None) if isinstance(value, bool) else (None, "use true or false")
    if kind in ("int", "long"):
        return (value, None) if isinstance(value, int) and not isinstance(value, bool) else (None, f"{value!r} is not a whole number")
    if kind == "real":
        return (float(value), None) if isinstance(value, (int, float)) and not isinstance(value, bool) else (None, f"{value!r} is not a number")
    return str(value), None

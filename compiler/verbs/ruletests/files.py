"""Tests files as `validate` and `test` find them: beside their rules, and alone.

`validate` checks each tests file as `test` does before it replays anything (its schema, tables,
columns and value types: E501 to E503, W503), so a broken case is found by the same command
that finds a broken rule. A tests file whose rule file is gone (renamed, deleted) would be
ignored for ever: both verbs report it (W505).
"""

from __future__ import annotations

import os
from pathlib import Path

from ...diagnostics import Diagnostic, SourceLocation
from ...load.loader import TEST_SUFFIXES, rule_display_path, rule_file_beside
from ...map.tables import Registry

ORPHAN = "W505"


def tests_files(paths: list[Path]) -> list[tuple[Path, str]]:
    """Every tests file below the folders of `paths`, and each one given itself: (file, display
    path as diagnostics name it), sorted. Links to folders are not followed."""
    found: dict[Path, str] = {}
    for path in paths:
        if path.is_dir():
            name = path.resolve().name
            for folder, _, names in os.walk(path):
                for file_name in names:
                    file = Path(folder) / file_name
                    if file_name.endswith(TEST_SUFFIXES) and file.is_file():
                        found.setdefault(file, rule_display_path(file, path, name))
        elif path.is_file() and path.name.endswith(TEST_SUFFIXES):
            found.setdefault(path, rule_display_path(path, None))
    return sorted(found.items(), key=lambda item: item[1])


def orphans(paths: list[Path]) -> list[Diagnostic]:
    """A warning for each tests file found in a folder with no rule file beside it (one given
    itself names its rule: a missing one is an error of `discover`)."""
    return [
        Diagnostic(ORPHAN, "a tests file with no rule file beside it: its cases run for no rule", SourceLocation(display),
                   hint=f"rename it after its rule ({display.rsplit('/', 1)[-1].split('.tests.')[0]}.yml is missing), "
                        "or delete it", severity="warning")
        for file, display in tests_files([p for p in paths if p.is_dir()]) if rule_file_beside(file) is None
    ]


def check_tests_files(paths: list[Path], registry: Registry) -> list[Diagnostic]:
    """What `test` finds in the tests files before replaying (E501 to E503, W503), and the orphans."""
    found = tests_files(paths)
    if not found:
        return []
    from .cases import load_cases  # jsonschema and the catalog: only when there are tests files

    diagnostics = []
    for file, display in found:
        if rule_file_beside(file) is not None:
            diagnostics += load_cases(file, display, registry)[1]
    return diagnostics + orphans(paths)

"""The project file, `entra-sigma.toml`: found, read and checked against its schema.

It is found in the working directory or the nearest folder above it that has one (as ruff
and pre-commit find theirs); `--config FILE` names another. tomllib reads it; the locator in
load/toml_positions.py gives every key its line and column, so each problem is a located
diagnostic (E701 the file, E702 its schema, with a did-you-mean for a misspelt key).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..diagnostics import Diagnostic, SourceLocation
from ..load.limits import bracket_depth
from ..load.loader import display_path_for
from ..load.toml_positions import KeyPath, Position, key_positions

PROJECT_FILE = "entra-sigma.toml"
MAX_PROJECT_BYTES = 1 << 20  # a project file is a page or two; a larger one is a mistake
MAX_NESTING = 32  # tomllib (and the locator) recurse once per level: a hostile file could exhaust the stack
TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)$")


@dataclass(frozen=True)
class ProjectFile:
    """The parsed file, with the position of every key."""

    path: Path  # resolved
    display: str  # how diagnostics name it
    data: dict[str, Any]
    positions: dict[KeyPath, Position] = field(default_factory=dict, compare=False)

    @property
    def root(self) -> Path:
        """Paths in the file (filters, the rules folder) are relative to its folder."""
        return self.path.parent

    def location(self, *key_path: Any) -> SourceLocation:
        for end in range(len(key_path), -1, -1):
            position = self.positions.get(tuple(key_path[:end]))
            if position:
                return SourceLocation(self.display, *position)
        return SourceLocation(self.display, 1, 1)

    def position(self, *key_path: Any) -> tuple[int, int, str]:
        """A key's position as an environment writes it into a rule document (loader.Position)."""
        location = self.location(*key_path)
        return location.line, location.column, self.display

    @property
    def environments(self) -> list[str]:
        return sorted(self.data.get("environments") or {})


def find_project(start: Path) -> Path | None:
    """`entra-sigma.toml` in `start` or the nearest folder above it."""
    folder = start.resolve()
    for candidate in (folder, *folder.parents):
        path = candidate / PROJECT_FILE
        if path.is_file():
            return path
    return None


def read_project(path: Path) -> tuple[ProjectFile | None, list[Diagnostic]]:
    """The project file, or the located reasons it cannot be used."""
    display = display_path_for(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PROJECT_BYTES + 1)
    except OSError as error:
        return None, [Diagnostic("E701", f"cannot read the project file: {error.strerror or error}", SourceLocation(display))]
    if len(data) > MAX_PROJECT_BYTES:
        return None, [Diagnostic("E701", f"the project file is larger than {MAX_PROJECT_BYTES >> 20} MiB", SourceLocation(display))]
    try:
        text = data.decode("utf-8")
        depth = bracket_depth(text)
        if depth > MAX_NESTING:
            return None, [Diagnostic("E701", f"the project file nests {depth} levels deep (arrays and inline tables); at most {MAX_NESTING}",
                                     SourceLocation(display))]
        parsed = tomllib.loads(text)
    except UnicodeDecodeError as error:
        return None, [Diagnostic("E701", f"the project file is not UTF-8: {error.reason} at byte {error.start}", SourceLocation(display))]
    except tomllib.TOMLDecodeError as error:
        message = str(error)
        found = TOML_POSITION.search(message)
        line, column = (int(found.group(1)), int(found.group(2))) if found else (0, 0)
        return None, [Diagnostic("E701", f"invalid TOML: {TOML_POSITION.sub('', message).strip()}", SourceLocation(display, line, column))]
    project = ProjectFile(path.resolve(), display, parsed, key_positions(text))
    from ..validate.schema import schema_problems

    problems = [
        Diagnostic("E702", message, project.location(*where), hint=hint)
        for where, message, hint in schema_problems(parsed, "project.schema.json")
    ]
    return (None if problems else project), problems

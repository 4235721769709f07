"""The seam for environments: which `%placeholder%` names a project defines, for completion.

Environments and placeholders (`entra-sigma.toml`, `|expand`) are being added by another
piece of work (issue 21). The server asks one `PlaceholderSource` for the names; this module
holds the default one, which reads only the names and the environments defining them from the
project file's documented shape (`[defaults.placeholders]`, `[environments.NAME.placeholders]`)
and nothing else: no values, no validation, no effect on a compile. When the project file's
own loader lands, `ProjectFilePlaceholders.read` should call it instead, and its diagnostics
flow to the editor through `validate` like every other check.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

PROJECT_FILE = "entra-sigma.toml"


@dataclass(frozen=True)
class Placeholder:
    name: str
    environments: tuple[str, ...]  # where it has a value ("defaults" for every environment)


class PlaceholderSource(Protocol):
    def placeholders(self, near: Path) -> list[Placeholder]:
        """The placeholders a rule at `near` may use."""


class ProjectFilePlaceholders:
    """Names from the nearest `entra-sigma.toml` at or above a rule, as ruff and pre-commit
    find their files; none when there is no such file or it does not parse."""

    def placeholders(self, near: Path) -> list[Placeholder]:
        project = find_project_file(near)
        return self.read(project) if project is not None else []

    @staticmethod
    def read(project: Path) -> list[Placeholder]:
        try:
            data = tomllib.loads(project.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return []
        where: dict[str, list[str]] = {}
        sections = [("defaults", data.get("defaults"))]
        environments = data.get("environments")
        if isinstance(environments, dict):
            sections += sorted(environments.items())
        for environment, section in sections:
            values = section.get("placeholders") if isinstance(section, dict) else None
            for name in values if isinstance(values, dict) else {}:
                where.setdefault(str(name), []).append(str(environment))
        return [Placeholder(name, tuple(envs)) for name, envs in sorted(where.items())]


def find_project_file(near: Path) -> Path | None:
    for folder in [near, *near.parents] if near.is_dir() else near.parents:
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None

"""Which `%placeholder%` names a project defines, for completion after `expand`.

The names come from the nearest `entra-sigma.toml` at or above a rule, read by the project
file's own loader (compiler/project/file.py: the same bounds and checks as every verb), with
the environments that give each a value ("defaults" for all of them). A file that cannot be
read gives no names; its problems reach the editor through `validate` like every other check.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ...project.file import find_project, read_project


@dataclass(frozen=True)
class Placeholder:
    name: str
    environments: tuple[str, ...]  # where it has a value ("defaults" for every environment)


class PlaceholderSource(Protocol):
    def placeholders(self, near: Path) -> list[Placeholder]:
        """The placeholders a rule at `near` may use."""


class ProjectFilePlaceholders:
    """Names from the nearest `entra-sigma.toml` at or above a rule; none when there is no
    such file or it cannot be used."""

    def placeholders(self, near: Path) -> list[Placeholder]:
        found = find_project(near if near.is_dir() else near.parent)
        if found is None:
            return []
        project, _ = read_project(found)
        return self.names(project.data) if project is not None else []

    @staticmethod
    def names(data: dict) -> list[Placeholder]:
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

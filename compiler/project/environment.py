"""An environment: what one workspace needs of the shared rules, from the project file.

`[defaults]` and `[environments.<name>]` merge into one `Environment`: the placeholders' values
(a list, or a Sentinel watchlist), the Sigma filters (files read here, checked when rules are
compiled), the overrides of rules' settings, and where it deploys. Everything keeps where it
was written, so a problem it causes in a rule is located in the project file.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any, Mapping

from ..diagnostics import Diagnostic, SourceLocation
from ..load.loader import RuleDocument, discover, inside, read_documents
from ..model.ir import Watchlist
from .file import PROJECT_FILE, ProjectFile


@dataclass(frozen=True)
class Values:
    """A list placeholder: the same comparison over every value."""

    values: tuple[str | int, ...]
    position: tuple[int, int, str] | None = None  # where it is defined (line, column, file)


@dataclass(frozen=True)
class WatchlistValues:
    """A watchlist placeholder. `values`: its rows, given by a tests file for the replay."""

    watchlist: Watchlist
    position: tuple[int, int, str] | None = None
    values: tuple[str, ...] | None = None


Placeholder = Values | WatchlistValues


def placeholder_from(raw: Any, position: tuple[int, int, str] | None) -> Placeholder:
    """A placeholder as the project file (or a tests file) writes it, already schema-checked."""
    if isinstance(raw, dict):
        values = raw.get("values")
        return WatchlistValues(
            Watchlist(str(raw["watchlist"]), str(raw.get("column") or "SearchKey")), position,
            tuple(str(v) for v in values) if isinstance(values, list) else None,
        )
    return Values(tuple(raw) if isinstance(raw, list) else (raw,), position)


@dataclass(frozen=True, eq=False)
class Filter:
    """A Sigma filter document, as read from its file (checked when rules are compiled)."""

    display: str  # below the project's folder: 'filters/prod/mf_x.yml'
    document: RuleDocument

    @property
    def data(self) -> dict:
        return self.document.data

    @property
    def title(self) -> str:
        return str(self.data.get("title") or self.display)

    @property
    def rules(self) -> tuple[str, ...] | None:
        """The ids or names it names; None for `any`."""
        rules = (self.data.get("filter") or {}).get("rules")
        if isinstance(rules, str):
            return None if rules.strip().lower() == "any" else (rules,)
        return tuple(str(r) for r in rules or ())

    @property
    def label(self) -> str:
        """How outputs name it: its file, and its document when the file holds several."""
        return self.display + (f"#{self.document.index + 1}" if self.document.index else "")


@dataclass(frozen=True)
class Override:
    """`[environments.<name>.rules."<id or name>"]`: settings replacing the rule's own."""

    reference: str
    settings: Mapping[str, Any]
    positions: Mapping[tuple, tuple[int, int, str]]  # settings key path → where it is written
    location: SourceLocation  # the table's header


@dataclass(frozen=True)
class Environment:
    """What the verbs compile, test and deploy for one environment (name None: none chosen)."""

    name: str | None
    project: ProjectFile | None = None
    placeholders: Mapping[str, Placeholder] = field(default_factory=dict)
    filters: tuple[Filter, ...] = ()
    overrides: tuple[Override, ...] = ()
    sentinel: Mapping[str, str] = field(default_factory=dict)
    defender: bool = True
    by_file: Mapping[Path, Mapping[str, Placeholder]] = field(default_factory=dict)  # a tests file's, by rule file
    problems: tuple[Diagnostic, ...] = ()  # its filter files' (reported with the rules' findings)

    @property
    def rules_folder(self) -> Path | None:
        """Where the rules the environment names are looked for (inside the project's folder)."""
        if self.project is None:
            return None
        relative = PurePosixPath(str(self.project.data.get("rules") or "rules").replace("\\", "/"))
        if relative.is_absolute() or ".." in relative.parts:
            return None
        return self.project.root / relative

    @property
    def platforms(self) -> tuple[str, ...]:
        return ("sentinel", "defender") if self.defender else ("sentinel",)

    def placeholders_for(self, path: Path) -> Mapping[str, Placeholder]:
        """The values a rule file's placeholders take: the environment's, and its tests file's."""
        extra = self.by_file.get(path.resolve())
        return {**self.placeholders, **extra} if extra else self.placeholders

    def with_file_placeholders(self, by_file: Mapping[Path, Mapping[str, Placeholder]]) -> "Environment":
        return replace(self, by_file={**self.by_file, **by_file})

    def with_problems(self, problems: list[Diagnostic]) -> "Environment":
        return replace(self, problems=self.problems + tuple(problems))

    @property
    def label(self) -> str:
        return self.name or "(no environment)"

    def where_to_define(self, name: str) -> str:
        """Where a placeholder's value goes, for the message when it has none."""
        if self.name is not None:
            where = self.project.display if self.project is not None else PROJECT_FILE
            return f"define it under [environments.{self.name}.placeholders] or [defaults.placeholders] in {where}"
        if self.project is None:
            return f"give it a value in an environment of {PROJECT_FILE} and choose it with --env, see docs/environments.md; or in the rule's tests file"
        return f"choose an environment with --env: {self.project.display} defines {', '.join(self.project.environments)}"


NO_ENVIRONMENT = Environment(None)


def build_environment(project: ProjectFile, name: str) -> tuple[Environment, list[Diagnostic]]:
    """One environment of a checked project file, its filters read."""
    data = project.data
    defaults = data.get("defaults") or {}
    own = (data.get("environments") or {})[name]
    placeholders: dict[str, Placeholder] = {}
    for section, key in ((defaults, ("defaults",)), (own, ("environments", name))):
        for placeholder, raw in (section.get("placeholders") or {}).items():
            placeholders[placeholder] = placeholder_from(raw, project.position(*key, "placeholders", placeholder))
    filters, diagnostics = [], []
    for section, key in ((defaults, ("defaults",)), (own, ("environments", name))):
        for index, entry in enumerate(section.get("filters") or ()):
            found, problems = read_filters(project, entry, project.location(*key, "filters", index))
            filters += found
            diagnostics += problems
    overrides: dict[str, Override] = {}
    for section, key in ((defaults, ("defaults",)), (own, ("environments", name))):
        for reference, settings in (section.get("rules") or {}).items():
            where = key + ("rules", reference)
            positions = {(k,): project.position(*where, k) for k in settings}
            positions.update({(k, inner): project.position(*where, k, inner)
                              for k, v in settings.items() if isinstance(v, dict) for inner in v})
            earlier = overrides.get(reference)
            if earlier is not None:  # the environment's keys replace the defaults' one by one
                settings = {**earlier.settings, **settings}
                positions = {**earlier.positions, **positions}
            overrides[reference] = Override(reference, settings, positions, project.location(*where))
    unique = tuple({(f.display, f.document.index): f for f in filters}.values())  # a file named twice applies once
    environment = Environment(
        name, project, placeholders, unique, tuple(overrides.values()),
        dict(own.get("sentinel") or {}), bool(own.get("defender", False)),
    )
    return environment, diagnostics


def read_filters(project: ProjectFile, entry: str, where: SourceLocation) -> tuple[list[Filter], list[Diagnostic]]:
    """The filter documents of one `filters` entry (a file, or a folder of them), named below
    the project's folder as the entry writes it (so outputs do not depend on the machine)."""
    relative = PurePosixPath(entry.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts:
        return [], [Diagnostic("E702", f"filter path '{entry}' is outside the folder of {project.display}", where,
                               hint="filters live in the repository, beside entra-sigma.toml")]
    path = project.root / relative
    if not path.exists():
        return [], [Diagnostic("E702", f"filter path '{entry}' does not exist", where,
                               hint=f"paths are relative to the folder of {project.display}")]
    if not inside(os.path.realpath(path), os.path.realpath(project.root)):  # a link out of the repository
        return [], [Diagnostic("E702", f"filter path '{entry}' leads outside the folder of {project.display} (a symbolic link)",
                               where, hint="filters live in the repository, beside entra-sigma.toml")]
    filters, diagnostics = [], []
    files, problems = discover([path])
    diagnostics += [replace(d, location=replace(d.location, path=_below(relative, d.location.path, path)))
                    for d in problems]
    documents, problems = read_documents([(file, _below(relative, found, path)) for file, found in files])
    diagnostics += problems
    for document in documents:
        shape = filter_shape_problems(document)
        diagnostics += shape
        if not shape:
            filters.append(Filter(document.display_path, document))
    return filters, diagnostics


def _below(relative: PurePosixPath, found: str, path: Path) -> str:
    """A filter file's name as the project file writes its folder (`filters/x.yml`), whatever
    the folder is called on disk."""
    return (relative / found.split("/", 1)[1]).as_posix() if path.is_dir() and "/" in found else relative.as_posix()


def filter_shape_problems(document: RuleDocument) -> list[Diagnostic]:
    """A filter document against schemas/filter.schema.json (E708)."""
    from ..validate.schema import schema_problems

    data = document.data
    if not isinstance(data, dict):
        return [Diagnostic("E708", "a filter must be a YAML mapping with title, logsource and filter", document.location())]
    title = data.get("title") if isinstance(data.get("title"), str) else None
    return [Diagnostic("E708", message, document.location(*where), title, hint)
            for where, message, hint in schema_problems(data, "filter.schema.json")]


def unknown_environment(project: ProjectFile, name: str) -> Diagnostic:
    known = project.environments
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else (f"environments: {', '.join(known)}" if known else "it defines none")
    return Diagnostic("E703", f"unknown environment '{name}'", project.location("environments"), hint=hint)

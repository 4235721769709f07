"""The rule files the server knows: open buffers over the files on disk, read as `validate` reads them.

`validate rules` checks each file with every other file of the folder: ids and titles used
twice (E005), correlations and the rules they name (E401, and a building block is compiled
only inside its correlation). The server does the same for the file being edited, cheaply:
the other files of its rules folder are parsed once and again only when their bytes change,
their ids, titles and names feed the check for duplicates, and only the files joined to the
edited one by a correlation (either way, to any depth) are compiled with it.

A file inside a rules folder of the workspace (by default `rules/`) is named as `validate
rules` names it (`rules/identity/x.yml`); any other file as its path below the workspace
(`validate path/x.yml` from there), and checked with the rule files beside it.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from ...across_files import DocumentKeys, duplicates_among
from ...diagnostics import Diagnostic
from ...load.loader import RuleDocument, TEST_SUFFIXES, discover, documents_from_bytes, is_rule_file, read_rule_bytes

DEFAULT_RULE_FOLDERS = ("rules",)
RULE_KEYS = ("detection", "correlation", "logsource")  # a YAML file with one of these at the top is a rule


@dataclass
class Source:
    """One rule file as last read: its documents, and the facts the checks across files need."""

    path: Path  # resolved
    display: str
    stamp: object  # what it was read from: (mtime, size) on disk, or ("open", version)
    documents: list[RuleDocument]
    problems: list[Diagnostic]  # E001: it did not parse
    keys: list[DocumentKeys] = field(default_factory=list)
    defines: frozenset[str] = frozenset()  # ids and names, lower-cased
    names: tuple[str, ...] = ()  # names as written, and ids lower-cased (how `bind_correlations` suggests them)
    references: frozenset[str] = frozenset()  # what its correlations name in `rules:`, lower-cased

    @classmethod
    def read(cls, path: Path, display: str, data: bytes, stamp: object) -> "Source":
        documents, problems = documents_from_bytes(data, path, display)
        defines, references, names = set(), set(), []
        for document in documents:
            body = document.data if isinstance(document.data, dict) else {}
            defines |= {str(body[k]).lower() for k in ("id", "name") if isinstance(body.get(k), (str, int))}
            names += [str(body["name"])] if isinstance(body.get("name"), str) else []
            correlation = body.get("correlation")
            named = correlation.get("rules") if isinstance(correlation, dict) else None
            references |= {str(r).lower() for r in ([named] if isinstance(named, str) else named if isinstance(named, list) else [])}
        keys = [DocumentKeys.of(d) for d in documents]
        return cls(path, display, stamp, documents, problems, keys, frozenset(defines), tuple(names), frozenset(references))


def is_tests_file(path: Path) -> bool:
    return path.name.endswith(TEST_SUFFIXES)


class Project:
    """The workspace's rule files; `open_text(path)` gives an open buffer's text (or None)."""

    def __init__(self, root: Path | None, open_text: Callable[[Path], tuple[str, int] | None],
                 rule_folders: tuple[str, ...] = DEFAULT_RULE_FOLDERS):
        self.root = root.resolve() if root is not None else None
        self.open_text = open_text
        self.folders = [(self.root / name).resolve() for name in rule_folders] if self.root else []
        self._sources: dict[Path, Source] = {}

    # -- naming -----------------------------------------------------------------------------
    def scope_of(self, path: Path) -> Path | None:
        """The rules folder `path` lies in (the deepest, if they nest), or None."""
        path = path.resolve()
        inside = [folder for folder in self.folders if folder.is_dir() and folder in path.parents]
        return max(inside, key=lambda folder: len(folder.parts)) if inside else None

    def display_path(self, path: Path) -> str:
        path = path.resolve()
        scope = self.scope_of(path)
        if scope is not None:
            return f"{scope.name}/{path.relative_to(scope).as_posix()}"
        if self.root is not None and self.root in path.parents:
            return path.relative_to(self.root).as_posix()
        return path.name

    def roots_of(self, path: Path) -> list[Path]:
        """The folders `validate` was given, as far as output names go (build.rule_output_name)."""
        scope = self.scope_of(path)
        return [scope] if scope is not None else []

    def is_rule_document(self, path: Path, text: str) -> bool:
        """Whether the server should check this YAML file: any rule file in a rules folder, and
        elsewhere one that looks like a rule (a workflow or a compose file is left alone)."""
        if is_tests_file(path):
            return self.scope_of(path) is not None or _top_level_key(text, ("cases",))
        if not is_rule_file(path):
            return False
        return self.scope_of(path) is not None or _top_level_key(text, RULE_KEYS)

    # -- reading ----------------------------------------------------------------------------
    def source(self, path: Path) -> Source | None:
        """The file as it is now: its open buffer, else its bytes on disk (None if unreadable)."""
        path = path.resolve()
        opened = self.open_text(path)
        cached = self._sources.get(path)
        if opened is not None:
            text, version = opened
            stamp = ("open", version, hash(text))
            if cached is None or cached.stamp != stamp:
                cached = Source.read(path, self.display_path(path), text.encode("utf-8", "surrogatepass"), stamp)
                self._sources[path] = cached
            return cached
        try:
            status = os.stat(path)
        except OSError:
            self._sources.pop(path, None)
            return None
        stamp = (status.st_mtime_ns, status.st_size)
        if cached is None or cached.stamp != stamp:
            try:
                data = read_rule_bytes(path)
            except OSError:
                return None
            cached = Source.read(path, self.display_path(path), data, stamp)
            self._sources[path] = cached
        return cached

    def neighbours(self, path: Path) -> list[Path]:
        """The rule files checked with `path`: its rules folder, or the folder it lies in."""
        path = path.resolve()
        scope = self.scope_of(path)
        if scope is not None:
            found, _ = discover([scope])
            files = [file for file, _ in found]
        else:
            files = sorted(p.resolve() for p in path.parent.glob("*") if is_rule_file(p) and p.is_file())
        if path not in files and is_rule_file(path):
            files.append(path)
        return files

    def sources_with(self, path: Path) -> list[Source]:
        """Every source checked with `path` (itself included), in the order `validate` reads them."""
        sources = [s for s in (self.source(p) for p in self.neighbours(path)) if s is not None]
        return sorted(sources, key=lambda s: (s.display, s.path.as_posix()))

    def component(self, path: Path, sources: list[Source]) -> list[Source]:
        """`path`'s source and every source joined to it by correlation references, either way,
        to any depth (what binding its correlations, or correlations of its rules, needs)."""
        path = path.resolve()
        chosen = [s for s in sources if s.path == path]
        names = set().union(*(s.defines | s.references for s in chosen)) if chosen else set()
        rest = [s for s in sources if s.path != path]
        while True:
            joined = [s for s in rest if (s.references & names) or (s.defines & names)]
            if not joined:
                joined = self._suggested(chosen, rest)
                if not joined:
                    break
            for source in joined:
                chosen.append(source)
                rest.remove(source)
                names |= source.defines | source.references
        return sorted(chosen, key=lambda s: (s.display, s.path.as_posix()))

    @staticmethod
    def _suggested(chosen: list[Source], rest: list[Source]) -> list[Source]:
        """The files whose names are closest to a reference nothing chosen defines: E401's
        "did you mean" is drawn from every rule `validate` reads (three, in case one is broken)."""
        defined = set().union(*(s.defines for s in chosen)) if chosen else set()
        missing = {r for s in chosen for r in s.references if r not in defined}
        names = {name: source for source in rest for name in source.names}
        wanted = set()
        for reference in sorted(missing):
            wanted |= set(difflib.get_close_matches(reference, list(names), n=3, cutoff=0.6))
            wanted |= set(difflib.get_close_matches(reference, [n.lower() for n in names], n=3, cutoff=0.6)) & set(names)
        found = {names[name].path: names[name] for name in sorted(wanted)}
        return list(found.values())

    def duplicates(self, sources: list[Source], display: str) -> list[Diagnostic]:
        """E005 for the file `display`, over every file checked with it (as `validate` finds it)."""
        keys = [key for source in sources for key in source.keys]
        return [d for d in duplicates_among(keys) if d.location.path == display]

    def find_definition(self, path: Path, reference: str) -> tuple[Source, RuleDocument] | None:
        """The rule a correlation in `path` names (by `name`, else by id), as `bind_correlations` looks it up."""
        sources = self.sources_with(path)
        wanted = reference.lower()
        for exact in (True, False):
            for source in sources:
                for document in source.documents:
                    body = document.data if isinstance(document.data, dict) else {}
                    name, rule_id = body.get("name"), body.get("id")
                    if exact and name == reference:
                        return source, document
                    if not exact and ((isinstance(rule_id, str) and rule_id.lower() == wanted)
                                      or (isinstance(name, str) and name.lower() == wanted)):
                        return source, document
        return None

    def rule_names(self, path: Path) -> list[tuple[str, str, Source]]:
        """(name or id, title, file) of every rule a correlation in `path` could name."""
        found = []
        for source in self.sources_with(path):
            for document in source.documents:
                body = document.data if isinstance(document.data, dict) else {}
                label = body.get("name") if isinstance(body.get("name"), str) else body.get("id")
                if isinstance(label, str):
                    found.append((label, str(body.get("title") or ""), source))
        return found


def _top_level_key(text: str, keys: tuple[str, ...]) -> bool:
    return any(line.split(":", 1)[0].strip() in keys for line in text.splitlines() if line[:1].isalpha() and ":" in line)

"""Load: rule files → plain dicts plus the line:column of every key.

PyYAML's safe loader forgets where things were; we compose the node graph ourselves so
that every later diagnostic can point at the exact key the user typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from .diagnostics import Diagnostic, SourceLocation

RULE_SUFFIXES = (".yml", ".yaml")
TEST_SUFFIXES = (".tests.yml", ".tests.yaml")  # rule test cases live beside rules; not rules


def is_rule_file(path: Path) -> bool:
    return path.suffix in RULE_SUFFIXES and not path.name.endswith(TEST_SUFFIXES)

Position = tuple[int, int]
KeyPath = tuple[Any, ...]


@dataclass
class RuleDocument:
    """One YAML rule as data, with the position of every key and list item."""

    path: Path
    display_path: str
    data: Any
    positions: dict[KeyPath, Position] = field(default_factory=dict)
    index: int = 0  # which document of its file (Sigma keeps a correlation and its rules in one file)

    def location(self, *key_path: Any) -> SourceLocation:
        """The location of the deepest known prefix of `key_path` (the document's start if none)."""
        for end in range(len(key_path), -1, -1):
            position = self.positions.get(tuple(key_path[:end]))
            if position:
                return SourceLocation(self.display_path, *position)
        return SourceLocation(self.display_path, 1, 1)

    @property
    def title(self) -> str | None:
        if isinstance(self.data, dict) and isinstance(self.data.get("title"), str):
            return self.data["title"]
        return None


_TEXT_DATES = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class _RuleLoader(yaml.SafeLoader):
    """Safe loader that keeps dates as text (Sigma writes `date: 2024-01-31` unquoted, and the
    schema and outputs want the string); `_construct` refuses duplicate keys. Pure Python:
    used to word syntax errors the same way on every machine."""

    yaml_implicit_resolvers = _TEXT_DATES


class _FastRuleLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The same, on libyaml when PyYAML has it (4x faster); its error texts vary, so a file it
    refuses is parsed again by `_RuleLoader` for the message."""

    yaml_implicit_resolvers = _TEXT_DATES


def _construct(node: yaml.Node, path: KeyPath, positions: dict[KeyPath, Position], loader) -> Any:
    positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            # Keys are names in a rule: keep the text the user wrote (so `1` and `true` stay
            # distinct keys, and nothing is converted behind their back).
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:null":
                raise yaml.constructor.ConstructorError(
                    None, None, "mapping keys must be plain scalars", key_node.start_mark
                )
            key = key_node.value
            if key in result:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            child = path + (key,)
            positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _construct(value_node, child, positions, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, path + (index,), positions, loader)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def parse_yaml(text: str, path: Path, display_path: str) -> tuple[RuleDocument | None, list[Diagnostic]]:
    """Parse a file that must hold one YAML document; a syntax error becomes a located diagnostic."""
    documents, diagnostics = parse_documents(text, path, display_path, single=True)
    return (documents[0] if documents else None), diagnostics


def parse_documents(
    text: str, path: Path, display_path: str, single: bool = False
) -> tuple[list[RuleDocument], list[Diagnostic]]:
    """Parse every `---`-separated document of a file (empty ones are skipped)."""
    documents, diagnostics = _parse(text, path, display_path, _FastRuleLoader, single)
    if diagnostics and _FastRuleLoader is not _RuleLoader:
        documents, diagnostics = _parse(text, path, display_path, _RuleLoader, single)
    return documents, diagnostics


def _parse(
    text: str, path: Path, display_path: str, loader_class, single: bool
) -> tuple[list[RuleDocument], list[Diagnostic]]:
    loader = loader_class(text)
    try:
        if single:
            node = loader.get_single_node()
            nodes = [node] if node is not None else []
        else:
            nodes = []
            while loader.check_node():
                node = loader.get_node()
                if not (isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null"):
                    nodes.append(node)
        if not nodes:
            return [], [
                Diagnostic("E001", "the file is empty", SourceLocation(display_path, 1, 1))
            ]
        documents = []
        for index, node in enumerate(nodes):
            positions: dict[KeyPath, Position] = {}
            data = _construct(node, (), positions, loader)
            documents.append(RuleDocument(path, display_path, data, positions, index))
        return documents, []
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(
            part for part in (error.context, error.problem) if part
        ) or "invalid YAML"
        return [], [
            Diagnostic("E001", f"invalid YAML: {problem}", SourceLocation(display_path, line, column))
        ]
    except yaml.YAMLError as error:
        return [], [Diagnostic("E001", f"invalid YAML: {error}", SourceLocation(display_path, 1, 1))]
    finally:
        loader.dispose()


def display_path_for(path: Path, base: Path | None = None) -> str:
    """A path for messages: relative to the working directory when it lies below it."""
    base = base or Path.cwd()
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def rule_display_path(file: Path, root: Path | None) -> str:
    """How a rule file is named in diagnostics and in generated files: under its folder's name
    (`rules/prt.yml`) when found in a folder, else as given (its name when given absolute). It
    never depends on the working directory, so outputs are the same wherever you run."""
    if root is not None:
        name = root.resolve().name
        return f"{name}/{file.resolve().relative_to(root.resolve()).as_posix()}"
    return file.name if file.is_absolute() else file.as_posix()


def discover(paths: Iterable[Path]) -> tuple[list[tuple[Path, str]], list[Diagnostic]]:
    """Expand files and folders into a sorted list of (rule file, display path)."""
    found: dict[Path, str] = {}
    diagnostics: list[Diagnostic] = []
    for path in paths:
        if path.is_dir():
            for file in path.rglob("*"):
                if file.is_file() and is_rule_file(file):
                    found.setdefault(file.resolve(), rule_display_path(file, path))
        elif path.is_file():
            found.setdefault(path.resolve(), rule_display_path(path, None))
        else:
            diagnostics.append(
                Diagnostic("E000", "no such file or folder", SourceLocation(path.as_posix()))
            )
    ordered = sorted(found.items(), key=lambda item: (item[1], item[0].as_posix()))
    return ordered, diagnostics


def load_documents(paths: Iterable[Path]) -> tuple[list[RuleDocument], list[Diagnostic]]:
    """Read every rule file under `paths`; unreadable files become diagnostics, not exceptions."""
    files, diagnostics = discover(paths)
    documents: list[RuleDocument] = []
    for file, display in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            diagnostics.append(
                Diagnostic("E001", f"cannot read file: {error}", SourceLocation(display))
            )
            continue
        parsed, problems = parse_documents(text, file, display)
        diagnostics.extend(problems)
        documents.extend(parsed)
    return documents, diagnostics

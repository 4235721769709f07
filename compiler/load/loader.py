"""Load: rule files → plain dicts plus the line:column of every key.

PyYAML's safe loader forgets where things were; we compose the node graph ourselves so
that every later diagnostic can point at the exact key the user typed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import yaml

from ..diagnostics import Diagnostic, SourceLocation
from .limits import MAX_DEPTH, MAX_FILE_BYTES, MAX_NODES, WORDING_LIMIT, bracket_depth
from .yaml_words import explain as explain_yaml_error
from .yaml_words import unreadable_character

RULE_SUFFIXES = (".yml", ".yaml")
TEST_SUFFIXES = (".tests.yml", ".tests.yaml")  # rule test cases live beside rules; not rules


def is_rule_file(path: Path) -> bool:
    return path.suffix in RULE_SUFFIXES and not path.name.endswith(TEST_SUFFIXES)

Position = tuple[int, int] | tuple[int, int, str]  # line, column (and the file, when another one: an environment's part)
KeyPath = tuple[Any, ...]


@dataclass
class RuleDocument:
    """One YAML rule as data, with the position of every key and list item."""

    path: Path
    display_path: str
    data: Any
    positions: dict[KeyPath, Position] = field(default_factory=dict)
    index: int = 0  # which document of its file (Sigma keeps a correlation and its rules in one file)
    # What an environment put in (project/apply.py): the filters merged into the detection, and
    # the marker value standing for each watchlist placeholder → (ir.Watchlist, its operator).
    filters: tuple[str, ...] = ()
    watchlists: dict[str, Any] = field(default_factory=dict)

    def location(self, *key_path: Any) -> SourceLocation:
        """The location of the deepest known prefix of `key_path` (the document's start if none).
        A key an environment put in (an override, a filter's selection) is located in its file."""
        for end in range(len(key_path), -1, -1):
            position = self.positions.get(tuple(key_path[:end]))
            if position:
                return SourceLocation(position[2] if len(position) > 2 else self.display_path, position[0], position[1])
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
    used to word syntax errors the same way on every machine. Its composer recurses once per
    level, so it stops at MAX_DEPTH instead of at Python's recursion limit."""

    yaml_implicit_resolvers = _TEXT_DATES
    _depth = 0

    def compose_node(self, parent, index):
        if self._depth > MAX_DEPTH:
            raise _too_deep(self.peek_event().start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _FastRuleLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """The same, on libyaml when PyYAML has it (4x faster); its error texts vary, so a file it
    refuses is parsed again by `_RuleLoader` for the message."""

    yaml_implicit_resolvers = _TEXT_DATES


class _RuleError(yaml.constructor.ConstructorError):
    """A problem our own checks find (duplicate keys, limits): worded the same by both loaders."""


def _too_large() -> str:
    return f"the file is larger than {MAX_FILE_BYTES / (1 << 20):g} MiB, the most a rule file may hold"


def _too_deep(mark) -> yaml.MarkedYAMLError:
    return _RuleError(None, None, f"nested more than {MAX_DEPTH} levels deep", mark)


class _Budget:
    """Values left to construct in one file: aliases are expanded, so a few lines of anchors
    could otherwise stand for billions of values ("billion laughs")."""

    def __init__(self) -> None:
        self.left = MAX_NODES

    def spend(self, node: yaml.Node) -> None:
        self.left -= 1
        if self.left < 0:
            raise _RuleError(
                None, None, f"more than {MAX_NODES} values (aliases count as often as they are used)",
                node.start_mark,
            )


def _text(value: str, node: yaml.Node) -> str:
    """Refuse lone surrogates (`"\\ud800"`): no file, JSON or YAML output could hold them."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as error:
            raise _RuleError(
                None, None, f"{value[error.start]!r} is not a Unicode character (a lone surrogate)", node.start_mark
            ) from None
    return value


def _construct(
    node: yaml.Node, path: KeyPath, positions: dict[KeyPath, Position], loader, budget: _Budget | None = None
) -> Any:
    budget = budget or _Budget()
    budget.spend(node)
    if len(path) > MAX_DEPTH:
        raise _too_deep(node.start_mark)
    positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            # Keys are names in a rule: keep the text the user wrote (so `1` and `true` stay
            # distinct keys, and nothing is converted behind their back).
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:null":
                raise _RuleError(
                    None, None, "mapping keys must be plain scalars", key_node.start_mark
                )
            key = _text(key_node.value, key_node)
            if key in result:
                raise _RuleError(
                    None, None, f"duplicate key '{key}'", key_node.start_mark
                )
            child = path + (key,)
            positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _construct(value_node, child, positions, loader, budget)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _construct(item, path + (index,), positions, loader, budget)
            for index, item in enumerate(node.value)
        ]
    value = loader.construct_object(node, deep=True)
    return _text(value, node) if isinstance(value, str) else value


def parse_yaml(text: str, path: Path, display_path: str) -> tuple[RuleDocument | None, list[Diagnostic]]:
    """Parse a file that must hold one YAML document; a syntax error becomes a located diagnostic."""
    documents, diagnostics = parse_documents(text, path, display_path, single=True)
    return (documents[0] if documents else None), diagnostics


def parse_documents(
    text: str, path: Path, display_path: str, single: bool = False
) -> tuple[list[RuleDocument], list[Diagnostic]]:
    """Parse every `---`-separated document of a file. Empty documents before the first rule
    and after the last are skipped; one between two rules is an error (a rule lost in editing)."""
    if len(text) > MAX_FILE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_FILE_BYTES:
        return [], [Diagnostic("E001", _too_large(), SourceLocation(display_path))]
    if found := unreadable_character(text):
        message, line, column = found
        return [], [Diagnostic("E001", message, SourceLocation(display_path, line, column))]
    try:
        return _parse(text, path, display_path, _FastRuleLoader, single, reword=True)
    except _Reword:
        return _parse(text, path, display_path, _RuleLoader, single)


class _Reword(Exception):
    """libyaml refused the file: parse it again in pure Python, whose wording is the same on every machine."""


def _parse(
    text: str, path: Path, display_path: str, loader_class, single: bool, reword: bool = False
) -> tuple[list[RuleDocument], list[Diagnostic]]:
    """Parse with one loader. With `reword`, a syntax error libyaml words raises _Reword when the
    pure-Python parser can word it instead in bounded time (small, shallow files)."""
    try:
        loader = loader_class(text)
    except yaml.YAMLError as error:  # the reader refused a character (unreadable_character words them first)
        return [], [Diagnostic("E001", f"invalid YAML: {error}".splitlines()[0], SourceLocation(display_path, 1, 1))]
    try:
        if single:
            node = loader.get_single_node()
            nodes = [node] if node is not None else []
        else:
            nodes, empty = [], []
            while loader.check_node():
                node = loader.get_node()
                if isinstance(node, yaml.ScalarNode) and node.tag == "tag:yaml.org,2002:null" and not node.value:
                    empty.append((len(nodes), node))
                else:
                    nodes.append(node)
            between = [node for count, node in empty if 0 < count < len(nodes)]
            if between:
                mark = between[0].start_mark
                return [], [Diagnostic(
                    "E001", "an empty document between two rules (two '---' in a row?)",
                    SourceLocation(display_path, mark.line + 1, mark.column + 1),
                )]
        if not nodes:
            return [], [
                Diagnostic("E001", "the file is empty", SourceLocation(display_path, 1, 1))
            ]
        documents = []
        budget = _Budget()
        for index, node in enumerate(nodes):
            positions: dict[KeyPath, Position] = {}
            data = _construct(node, (), positions, loader, budget)
            documents.append(RuleDocument(path, display_path, data, positions, index))
        return documents, []
    except yaml.YAMLError as error:
        if reword and _rewordable(error, text, loader_class):
            raise _Reword from error
        if not isinstance(error, yaml.MarkedYAMLError):
            return [], [Diagnostic("E001", f"invalid YAML: {error}", SourceLocation(display_path, 1, 1))]
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = " ".join(
            part for part in (error.context, error.problem) if part
        ) or "invalid YAML"
        plain = None if isinstance(error, _RuleError) else explain_yaml_error(error, text)
        if plain:
            problem, line, column = plain
        return [], [
            Diagnostic("E001", f"invalid YAML: {problem}", SourceLocation(display_path, line, column))
        ]
    finally:
        loader.dispose()


def _rewordable(error: yaml.YAMLError, text: str, loader_class) -> bool:
    return (
        not isinstance(error, _RuleError)
        and loader_class is not _RuleLoader
        and len(text) <= WORDING_LIMIT
        and bracket_depth(text) <= MAX_DEPTH  # PyYAML's pure-Python scanner is quadratic in flow nesting
    )


def display_path_for(path: Path, base: Path | None = None) -> str:
    """A path for messages: relative to the working directory when it lies below it."""
    base = base or Path.cwd()
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def rule_display_path(file: Path, root: Path | None, root_name: str | None = None) -> str:
    """How a rule file is named in diagnostics and in generated files: under its folder's name
    (`rules/prt.yml`) when found in a folder, else as given (its name when given absolute). It
    never depends on the working directory, so outputs are the same wherever you run.
    `root_name`: `root.resolve().name`, when the caller has it already."""
    if root is not None:
        name = root_name if root_name is not None else root.resolve().name
        # the path as found below the folder, not resolved: a symbolic link may lead elsewhere
        return f"{name}/{file.relative_to(root).as_posix()}"
    return file.name if file.is_absolute() else file.as_posix()


def inside(path: str, folder: str) -> bool:
    """Whether the real path `path` is `folder` or lies below it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _walk(root: Path, root_name: str, problems: list[Diagnostic]) -> Iterable[Path]:
    """Every rule file below `root`, and every broken link named like one (reading it then
    says why). Symbolic links are followed only where they stay inside `root` (a pull request
    can add a link to / or to a file of the machine); each real folder is entered once, so a
    link loop ends; pipes, sockets and devices are skipped (reading one could block forever).
    A link that leaves, and a folder or entry that cannot be read, is a diagnostic."""
    boundary = os.path.realpath(root)
    seen: set[str] = set()
    stack = [root]

    def problem(entry: Path, message: str) -> None:
        display = root_name if entry == root else rule_display_path(entry, root, root_name)
        problems.append(Diagnostic("E001", message, SourceLocation(display)))

    while stack:
        folder = stack.pop()
        real = os.path.realpath(folder)
        if real in seen:
            continue
        seen.add(real)
        try:
            names = sorted(os.listdir(folder), reverse=True)
        except OSError as error:
            problem(folder, f"cannot read folder: {error.strerror or error}")
            continue
        for name in names:
            entry = folder / name
            try:
                if entry.is_symlink() and not inside(os.path.realpath(entry), boundary):
                    if is_rule_file(entry) or os.path.isdir(entry):  # other files were never read
                        problem(entry, f"not followed: a symbolic link that leads outside {root_name}")
                    continue
                if entry.is_dir():
                    stack.append(entry)
                elif is_rule_file(entry) and (entry.is_file() or (entry.is_symlink() and not entry.exists())):
                    yield entry
            except OSError as error:  # e.g. a folder that may be listed but not searched
                if is_rule_file(entry) or not entry.suffix:
                    problem(entry, f"cannot read: {error.strerror or error}")


def rule_file_beside(tests: Path) -> Path | None:
    """The rule file a tests file belongs to (`x.tests.yml` → `x.yml` or `x.yaml`), if it exists."""
    for suffix in TEST_SUFFIXES:
        if tests.name.endswith(suffix):
            stem = tests.name[: -len(suffix)]
            for candidate in (tests.with_name(stem + ".yml"), tests.with_name(stem + ".yaml")):
                if candidate.is_file():
                    return candidate
    return None


def discover(paths: Iterable[Path]) -> tuple[list[tuple[Path, str]], list[Diagnostic]]:
    """Expand files and folders into a sorted list of (rule file, display path)."""
    found: dict[Path, str] = {}
    diagnostics: list[Diagnostic] = []
    for path in paths:
        if path.is_dir():
            name = path.resolve().name
            for file in _walk(path, name, diagnostics):
                found.setdefault(Path(os.path.realpath(file)), rule_display_path(file, path, name))
        elif path.is_file():
            if path.name.endswith(TEST_SUFFIXES):  # a rule's test cases name the rule
                rule = rule_file_beside(path)
                if rule is None:
                    stem = path.name[: -len(next(s for s in TEST_SUFFIXES if path.name.endswith(s)))]
                    diagnostics.append(Diagnostic(
                        "E000", f"a tests file, and no rule file beside it ({stem}.yml or {stem}.yaml)",
                        SourceLocation(path.as_posix())))
                    continue
                path = rule
            found.setdefault(Path(os.path.realpath(path)), rule_display_path(path, None))
        else:
            diagnostics.append(
                Diagnostic("E000", "no such file or folder", SourceLocation(path.as_posix()))
            )
    ordered = sorted(found.items(), key=lambda item: (item[1], item[0].as_posix()))
    return ordered, diagnostics


def load_documents(paths: Iterable[Path]) -> tuple[list[RuleDocument], list[Diagnostic]]:
    """Read every rule file under `paths`; unreadable files become diagnostics, not exceptions."""
    files, diagnostics = discover(paths)
    documents, problems = read_documents(files)
    return documents, diagnostics + problems


def read_documents(files: list[tuple[Path, str]]) -> tuple[list[RuleDocument], list[Diagnostic]]:
    """The documents of files found by `discover`."""
    diagnostics: list[Diagnostic] = []
    documents: list[RuleDocument] = []
    for file, display in files:
        try:
            data = read_rule_bytes(file)
        except OSError as error:
            diagnostics.append(Diagnostic("E001", f"cannot read file: {error}", SourceLocation(display)))
            continue
        parsed, problems = documents_from_bytes(data, file, display)
        diagnostics.extend(problems)
        documents.extend(parsed)
    return documents, diagnostics


def read_rule_bytes(file: Path) -> bytes:
    """A rule file's bytes, and no more than one past the limit, whatever the file claims."""
    with open(file, "rb") as handle:
        return handle.read(MAX_FILE_BYTES + 1)


def documents_from_bytes(data: bytes, file: Path, display: str) -> tuple[list[RuleDocument], list[Diagnostic]]:
    """The rule documents of a file's bytes (`read_rule_bytes`): too large, not UTF-8 or not
    YAML are diagnostics. The incremental build reads files through this too."""
    if len(data) > MAX_FILE_BYTES:
        return [], [Diagnostic("E001", _too_large(), SourceLocation(display))]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        return [], [Diagnostic("E001", f"cannot read file: {error}", SourceLocation(display))]
    return parse_documents(text, file, display)

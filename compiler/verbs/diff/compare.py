"""Diff step: how the deployable outputs change between a git revision and the working tree.

Reviewers of a pull request see YAML; production runs the KQL compiled from it. `diff_rules`
compiles the rules folder twice — as it is at a git revision (materialised into a temporary
folder, no worktree) and as it is on disk — with the same compiler, and compares the two
builds per rule id: added, removed, changed (an output file or the rule's diagnostics
differ) and unchanged. `diff_report` prints the result; `gitrev` reads the old side.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path

from ...build import Compiler, OutputSet, build_outputs
from ...diagnostics import Diagnostic, sort_key
from ...load.loader import RuleDocument
from ...render.formats import ALL_FORMATS, BY_NAME, FORMATS, KQL_FORMATS, formats_for
from .gitrev import Base, DiffError, choose_base, repository_root, rules_at_revision
from .settings import SettingChange, deployed_severities, setting_changes


# -- building one side -------------------------------------------------------------------------
@dataclass
class _RecordingCompiler(Compiler):
    """The caller's compiler, also remembering every parsed document (rules with errors are
    in no manifest, yet a diff must still match them up by id)."""

    documents: list[RuleDocument] = field(default_factory=list)

    def rules(self, documents):
        self.documents = list(documents)
        return super().rules(documents)


@dataclass
class Side:
    outputs: OutputSet
    documents: list[RuleDocument]


def build_side(compiler: Compiler, folder: Path, environment=None) -> Side:
    """Build every format of the rules in `folder` (in `environment`, default the compiler's).
    Display paths depend only on the folder's name, so the base side's temporary copy reads
    like the working tree."""
    options = {f.name: getattr(compiler, f.name) for f in fields(Compiler) if f.init}
    if environment is not None:
        options["environment"] = environment
    recording = _RecordingCompiler(**options)
    chosen = recording.environment
    formats = formats_for(chosen.platforms) if chosen is not None else ALL_FORMATS
    outputs = build_outputs(recording, [folder], formats)
    return Side(outputs, recording.documents)


EMPTY = Side(OutputSet({}, {"rules": []}, []), [])  # an environment that did not exist at the base


# -- comparing ---------------------------------------------------------------------------------
@dataclass
class RuleState:
    key: str  # the rule id, or 'file:<path>' for a file without one
    id: str | None = None
    title: str | None = None
    source: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # output path → sha256
    diagnostics: list[Diagnostic] = field(default_factory=list)
    level: object = None  # the rule's `level`, as written

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)


@dataclass
class FileDiff:
    old: str | None  # output path on the base side (None: new file)
    new: str | None  # output path in the working tree (None: file gone)
    text: str  # unified diff
    environments: tuple[str, ...] = ()  # diff --env: where this file changes like this


@dataclass
class RuleChange:
    kind: str  # 'added' | 'removed' | 'changed'
    id: str | None
    title: str | None
    source: str | None
    diffs: list[FileDiff] = field(default_factory=list)  # shown
    hidden: list[str] = field(default_factory=list)  # changed output files not shown (not KQL)
    settings: list[SettingChange] = field(default_factory=list)  # what changed in the deployable files besides the KQL
    notes: list[str] = field(default_factory=list)  # what a change means when it deploys nothing new
    new_diagnostics: list[Diagnostic] = field(default_factory=list)
    resolved_diagnostics: list[Diagnostic] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)  # all of the rule's, in the working tree
    has_errors: bool = False  # in the working tree
    not_built: bool = False  # errors in the working tree left the rule without outputs
    environments: tuple[str, ...] = ()  # the environments the change reaches (diff --env)

    @property
    def name(self) -> str:
        return " ".join((self.title or self.source or self.id or "?").split())

    @property
    def outputs_changed(self) -> bool:
        return bool(self.diffs or self.hidden)


@dataclass
class RuleDiff:
    rules_dir: str  # as the user gave it, '/'-separated
    base: Base
    added: list[RuleChange]
    removed: list[RuleChange]
    changed: list[RuleChange]
    unchanged: int
    diagnostics: list[Diagnostic]  # all of the working tree's
    documents: list[RuleDocument]  # the working tree's
    environments: tuple[str, ...] = ()  # compared in these environments (diff --env)

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")

    @property
    def any_change(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def reported_diagnostics(self) -> list[Diagnostic]:
        """What the command prints on stderr: every error (the build would fail on it), and
        warnings only for the rules in the diff (not every unchanged rule's Defender gaps)."""
        in_diff = [d for change in (*self.added, *self.changed) for d in change.diagnostics if d.severity != "error"]
        return sorted([d for d in self.diagnostics if d.severity == "error"] + in_diff, key=sort_key)


def _document_keys(side: Side) -> dict[tuple[str, int], str]:
    """(display path, document index) → rule id, for every document that has one."""
    return {
        (document.display_path, document.index): document.data["id"]
        for document in side.documents
        if isinstance(document.data, dict) and isinstance(document.data.get("id"), str)
    }


def _document_starts(side: Side) -> dict[str, list[tuple[int, int]]]:
    """display path → [(first line, document index)], in file order."""
    starts: dict[str, list[tuple[int, int]]] = {}
    for document in side.documents:
        line = document.positions.get((), (1, 1))[0]
        starts.setdefault(document.display_path, []).append((line, document.index))
    return {path: sorted(found) for path, found in starts.items()}


def rule_states(side: Side, other: Side) -> dict[str, RuleState]:
    """Every rule of a side by key: its id, so that the rules of one file are told apart. A
    document without an id takes the id the other side has for the same place, so that a rule
    which stopped parsing shows as changed, not removed. Rules that output nothing on either
    side and have no findings (a correlation's `generate: false` rules) are left out."""
    own, theirs = _document_keys(side), _document_keys(other)
    starts = _document_starts(side)

    def key_for(path: str, index: int) -> str:
        return own.get((path, index)) or theirs.get((path, index)) or f"file:{path}" + (f"#{index}" if index else "")

    def index_at(path: str, line: int) -> int:
        """The document of `path` that a finding on `line` belongs to (the first for file-level ones)."""
        found = [index for start, index in starts.get(path, []) if start <= line]
        return found[-1] if found else 0

    states: dict[str, RuleState] = {}

    def state(key: str, path: str) -> RuleState:
        if key not in states:
            states[key] = RuleState(key, None if key.startswith("file:") else key, source=path)
        return states[key]

    for document in side.documents:
        item = state(key_for(document.display_path, document.index), document.display_path)
        item.title = item.title or document.title
        if isinstance(document.data, dict):
            item.level = document.data.get("level")
    for entry in side.outputs.manifest.get("rules", []):
        item = state(entry["id"], entry["source"])
        item.title = item.title or entry.get("title")
        item.files.update(entry.get("files", {}))
    for diagnostic in side.outputs.diagnostics:
        path = diagnostic.location.path
        state(key_for(path, index_at(path, diagnostic.location.line)), path).diagnostics.append(diagnostic)
    return states


def _outputs_nothing(state: RuleState | None) -> bool:
    """No output files and no errors: a correlation's `generate: false` rule, or nothing at all."""
    return state is None or not (state.files or state.has_errors)


def output_format(path: str) -> str:
    """Which format an output path belongs to (by the layouts in render.formats.FORMATS)."""
    best, length = path, -1
    for spec in FORMATS:
        head, _, tail = spec.layout.partition("{name}")
        if path.startswith(head) and path.endswith(tail) and len(head) > length:
            best, length = spec.name, len(head)
    return best


def _format_order(fmt: str) -> tuple[int, str]:
    return (ALL_FORMATS.index(fmt) if fmt in ALL_FORMATS else len(ALL_FORMATS), fmt)


def _split_lines(text: str) -> list[str]:
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def unified_diff(old_text: str, new_text: str, old: str | None, new: str | None) -> str:
    """git-style unified diff with a/ and b/ paths and 3 lines of context."""
    lines = difflib.unified_diff(
        _split_lines(old_text), _split_lines(new_text),
        fromfile=f"a/{old}" if old else "/dev/null", tofile=f"b/{new}" if new else "/dev/null", n=3,
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _pair_files(old: dict[str, str], new: dict[str, str]) -> list[tuple[str, str | None, str | None]]:
    """(format, old path, new path) for every output file of a rule; a renamed rule file pairs
    its outputs by format."""
    by_format: dict[str, tuple[list[str], list[str]]] = {}
    for path in old:
        by_format.setdefault(output_format(path), ([], []))[0].append(path)
    for path in new:
        by_format.setdefault(output_format(path), ([], []))[1].append(path)
    pairs = []
    for fmt in sorted(by_format, key=_format_order):
        before, after = sorted(by_format[fmt][0]), sorted(by_format[fmt][1])
        if len(before) == 1 and len(after) == 1:
            pairs.append((fmt, before[0], after[0]))
            continue
        for path in sorted(set(before) | set(after)):
            pairs.append((fmt, path if path in before else None, path if path in after else None))
    return pairs


def _diagnostic_key(d: Diagnostic) -> tuple:
    return (d.severity, d.code, d.message, d.target or "", d.hint or "")


def _missing_from(reference: list[Diagnostic], candidates: list[Diagnostic]) -> list[Diagnostic]:
    """The candidates with no counterpart in `reference` (as a multiset, ignoring lines)."""
    remaining = Counter(_diagnostic_key(d) for d in reference)
    missing = []
    for d in sorted(candidates, key=sort_key):
        if remaining[_diagnostic_key(d)] > 0:
            remaining[_diagnostic_key(d)] -= 1
        else:
            missing.append(d)
    return missing


def _diagnostic_changes(old: list[Diagnostic], new: list[Diagnostic]) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """(new, resolved), ignoring line numbers: an edit above a warning does not make it new."""
    return _missing_from(old, new), _missing_from(new, old)


def compare(base: Side, current: Side, all_formats: bool = False) -> tuple[list[RuleChange], list[RuleChange], list[RuleChange], int]:
    """(added, removed, changed, number unchanged) between two built sides."""
    before, after = rule_states(base, current), rule_states(current, base)
    added, removed, changed, unchanged = [], [], [], 0
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        silent = _outputs_nothing(old) and _outputs_nothing(new)  # counted only if its findings change
        if silent and (old is None or new is None):
            continue  # a rule that outputs nothing came or went: its correlation shows the change
        if old is None:
            change = RuleChange(
                "added", new.id, new.title, new.source, new_diagnostics=sorted(new.diagnostics, key=sort_key),
                diagnostics=sorted(new.diagnostics, key=sort_key), has_errors=new.has_errors,
            )
            for fmt, _old_path, new_path in _pair_files({}, new.files):
                if all_formats or fmt in KQL_FORMATS:  # a reviewer reads the new rule's KQL
                    change.diffs.append(FileDiff(None, new_path, unified_diff("", current.outputs.files[new_path], None, new_path)))
            added.append(change)
            continue
        if new is None:
            removed.append(RuleChange("removed", old.id, old.title, old.source))
            continue
        change = RuleChange("changed", new.id, new.title or old.title, new.source, has_errors=new.has_errors,
                            diagnostics=sorted(new.diagnostics, key=sort_key))
        change.new_diagnostics, change.resolved_diagnostics = _diagnostic_changes(old.diagnostics, new.diagnostics)
        change.not_built = new.has_errors and not new.files
        deployable = []  # (format, old text, new text) of each changed file with settings
        for fmt, old_path, new_path in _pair_files(old.files, new.files):
            if old_path and new_path and old.files[old_path] == new.files[new_path]:
                continue
            if not change.not_built and fmt not in KQL_FORMATS:
                deployable.append((fmt, base.outputs.files.get(old_path) if old_path else None,
                                   current.outputs.files.get(new_path) if new_path else None))
            if change.not_built or (not all_formats and fmt not in KQL_FORMATS):
                change.hidden.append(new_path or old_path)
                continue
            text = unified_diff(
                base.outputs.files.get(old_path, "") if old_path else "",
                current.outputs.files.get(new_path, "") if new_path else "",
                old_path, new_path,
            )
            change.diffs.append(FileDiff(old_path, new_path, text))
        change.settings = setting_changes(deployable, _queries(old, base), _queries(new, current))
        change.notes = _level_notes(old, new, change.settings, current)
        if change.outputs_changed or change.new_diagnostics or change.resolved_diagnostics:
            changed.append(change)
        elif not silent:
            unchanged += 1

    def order(change: RuleChange) -> tuple:
        return (change.name.casefold(), change.id or "", change.source or "")

    return sorted(added, key=order), sorted(removed, key=order), sorted(changed, key=order), unchanged


def _queries(state: RuleState, side: Side) -> dict[str, str]:
    """platform → the rule's KQL on one side."""
    return {BY_NAME[fmt].platform: side.outputs.files[path] for path in state.files
            if (fmt := output_format(path)) in KQL_FORMATS and path in side.outputs.files}


def _level_notes(old: RuleState, new: RuleState, settings: list[SettingChange], current: Side) -> list[str]:
    """A changed `level` that deploys the same severity: say so, rather than let the query's
    `// level:` comment look like a change of the alert."""
    if old.level == new.level or not new.files or any(s.name.endswith("severity") for s in settings):
        return []
    files = {output_format(path): current.outputs.files[path] for path in new.files if path in current.outputs.files}
    severities = deployed_severities(files)
    if not severities:
        return []
    kept = ", ".join(f"{value} ({fmt})" for fmt, value in sorted(severities.items()))
    return [f"level {old.level} -> {new.level}: the deployed severity stays {kept}; only the query's comment changes"]


def diff_rules(compiler: Compiler, rules_dir: Path, base_rev: str | None = None, *, all_formats: bool = False) -> RuleDiff:
    """Compare the rules in `rules_dir` (a folder in a git working tree, as on disk) with the
    same folder at `base_rev` (default: see `choose_base`). Raises DiffError for usage problems."""
    if not rules_dir.is_dir():
        raise DiffError(f"{rules_dir.as_posix()}: not a folder")
    repo = repository_root(rules_dir)
    try:
        relative = rules_dir.resolve().relative_to(repo.resolve()).as_posix()
    except ValueError:
        raise DiffError(f"{rules_dir.as_posix()}: not inside the git working tree at {repo}") from None
    base = choose_base(repo, base_rev)
    current = build_side(compiler, rules_dir)
    from .environments import MISSING, environment_at_revision

    with rules_at_revision(repo, base.commit, relative, rules_dir.resolve().name) as folder, \
            environment_at_revision(repo, base.commit, compiler.environment) as then:
        previous = EMPTY if then is MISSING else build_side(compiler, folder, then)
    added, removed, changed, unchanged = compare(previous, current, all_formats)
    return RuleDiff(
        rules_dir.as_posix(), base, added, removed, changed, unchanged,
        current.outputs.diagnostics, current.documents,
    )

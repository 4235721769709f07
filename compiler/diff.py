"""Diff step: how the deployable outputs change between a git revision and the working tree.

Reviewers of a pull request see YAML; production runs the KQL compiled from it. `diff_rules`
compiles the rules folder twice — as it is at a git revision (materialised into a temporary
folder, no worktree) and as it is on disk — with the same compiler, and compares the two
builds per rule id: added, removed, changed (an output file or the rule's diagnostics
differ) and unchanged. `render_text` and `render_markdown` print the result; both are
deterministic (sorted, no timestamps, no temporary paths).
"""

from __future__ import annotations

import difflib
import html
import os
import re
import subprocess
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path, PurePosixPath
from typing import Iterator

from .build import ALL_FORMATS, Compiler, OutputSet, build_outputs
from .diagnostics import Diagnostic, SourceLocation, sort_key
from .loader import RuleDocument, discover, display_path_for
from .outputs import FORMATS

KQL_FORMATS = ("kql", "defender-hunting")
DEFAULT_BRANCHES = ("origin/HEAD", "main", "master")


class DiffError(Exception):
    """A usage problem (not a git repository, unknown revision, ...); one line, no traceback."""


# -- git ---------------------------------------------------------------------------------------
def git(repo: Path, *args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run a read-only git command in `repo`; output as bytes."""
    try:
        process = subprocess.run(
            ["git", "--literal-pathspecs", *args], cwd=repo, input=input, capture_output=True,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise DiffError("git is not installed (or not on PATH)") from None
    except NotADirectoryError:
        raise DiffError(f"{repo}: not a folder") from None
    if check and process.returncode != 0:
        message = process.stderr.decode("utf-8", "replace").strip().splitlines()
        raise DiffError(f"git {args[0]} failed: {message[-1] if message else f'exit {process.returncode}'}")
    return process


def repository_root(path: Path) -> Path:
    """The top folder of the git working tree that holds `path` (a folder)."""
    process = git(path, "rev-parse", "--show-toplevel", check=False)
    top = process.stdout.decode("utf-8", "surrogateescape").strip()
    if process.returncode != 0 or not top:
        raise DiffError(f"{display_path_for(path)}: not inside a git working tree")
    return Path(top)


def resolve_commit(repo: Path, rev: str) -> str | None:
    """The full commit id `rev` names, or None."""
    if not rev or rev.startswith("-"):
        return None
    process = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    text = process.stdout.decode("ascii", "replace").strip()
    return text if process.returncode == 0 and text else None


def short_commit(repo: Path, commit: str) -> str:
    return git(repo, "rev-parse", "--short", commit).stdout.decode("ascii").strip()


@dataclass(frozen=True)
class Base:
    """The revision to compare with: its commit and how to name it to people."""

    commit: str
    short: str
    rev: str  # as given ('main', 'HEAD~2'), or 'HEAD', or the default branch merged with
    merge_base: bool = False  # the commit is the merge base of HEAD and `rev`

    def describe(self, quote=lambda text: text) -> str:
        if self.merge_base:
            return f"the merge base of {quote('HEAD')} and {quote(self.rev)} ({quote(self.short)})"
        return f"{quote(self.rev)} ({quote(self.short)})"


def choose_base(repo: Path, rev: str | None = None) -> Base:
    """`rev` if given; else the merge base of HEAD with the default branch (origin/HEAD, main or
    master, the first that exists), or HEAD itself when HEAD is that branch."""
    if rev is not None:
        commit = resolve_commit(repo, rev)
        if commit is None:
            raise DiffError(f"unknown revision {rev!r} (not a commit in this repository)")
        return Base(commit, short_commit(repo, commit), rev)
    head = resolve_commit(repo, "HEAD")
    if head is None:
        raise DiffError("HEAD has no commit yet; commit first or give BASE_REV")
    branch = git(repo, "symbolic-ref", "--quiet", "--short", "HEAD", check=False).stdout.decode("utf-8", "replace").strip()
    for candidate in DEFAULT_BRANCHES:
        commit = resolve_commit(repo, candidate)
        if commit is None:
            continue
        name = candidate
        if candidate == "origin/HEAD":  # origin/HEAD → origin/main → main
            target = git(repo, "symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD", check=False)
            name = target.stdout.decode("utf-8", "replace").strip().removeprefix("origin/") or candidate
        if commit == head or (branch and branch == name):
            return Base(head, short_commit(repo, head), "HEAD")
        process = git(repo, "merge-base", "HEAD", commit, check=False)
        merge_base = process.stdout.decode("ascii", "replace").strip()
        if process.returncode != 0 or not merge_base:
            raise DiffError(f"HEAD and {candidate} have no common history here (shallow clone?); give BASE_REV")
        return Base(merge_base, short_commit(repo, merge_base), candidate, merge_base=True)
    raise DiffError(f"cannot find the default branch (tried {', '.join(DEFAULT_BRANCHES)}); give BASE_REV")


@contextmanager
def rules_at_revision(repo: Path, rev: str, rules_dir: str) -> Iterator[Path]:
    """The folder `rules_dir` (relative to the top of `repo`, '/'-separated) as it is at `rev`,
    materialised from git objects into a temporary folder that is removed afterwards.

    Raw blobs are written (no checkout filters; `read_text` normalises line endings anyway).
    A folder that does not exist at `rev` comes out empty."""
    commit = resolve_commit(repo, rev)
    if commit is None:
        raise DiffError(f"unknown revision {rev!r} (not a commit in this repository)")
    prefix = PurePosixPath(rules_dir).as_posix().strip("/")
    prefix = "" if prefix == "." else prefix
    listing = git(repo, "ls-tree", "-r", "-z", "--full-tree", commit, *(["--", prefix] if prefix else [])).stdout
    entries = []
    for item in listing.split(b"\0"):
        if not item:
            continue
        meta, _, name = item.partition(b"\t")
        mode, kind, obj = meta.decode("ascii").split()
        path = name.decode("utf-8", "surrogateescape")
        if kind != "blob" or (prefix and not path.startswith(prefix + "/")):
            continue  # submodules; a file named like the folder
        entries.append((mode, obj, path[len(prefix) + 1:] if prefix else path))
    blobs = read_blobs(repo, [obj for _, obj, _ in entries])
    with tempfile.TemporaryDirectory(prefix="entra-sigma-diff-") as temporary:
        root = Path(temporary) / "tree" / prefix if prefix else Path(temporary) / "tree"
        root.mkdir(parents=True)
        for mode, obj, relative in entries:
            target = root.joinpath(*relative.split("/"))
            if ".." in relative.split("/") or not target.resolve().is_relative_to(root.resolve()):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            if mode == "120000":  # a symbolic link, as a checkout would make it
                try:
                    os.symlink(os.fsdecode(blobs[obj]), target)
                except OSError:
                    pass
                continue
            target.write_bytes(blobs[obj])
        yield root


def read_blobs(repo: Path, objects: list[str]) -> dict[str, bytes]:
    """The content of each blob, in one `git cat-file --batch` call."""
    wanted = sorted(set(objects))
    if not wanted:
        return {}
    output = git(repo, "cat-file", "--batch", input="".join(f"{o}\n" for o in wanted).encode("ascii")).stdout
    blobs: dict[str, bytes] = {}
    position = 0
    for obj in wanted:
        end = output.index(b"\n", position)
        header = output[position:end].decode("ascii").split()
        if len(header) != 3:
            raise DiffError(f"git cat-file: cannot read object {obj}")
        size = int(header[2])
        blobs[obj] = output[end + 1:end + 1 + size]
        position = end + 1 + size + 1
    return blobs


# -- building one side -------------------------------------------------------------------------
@dataclass
class _RecordingCompiler(Compiler):
    """The caller's compiler, also remembering every parsed document and, for the base side,
    showing each file under the path it has in the working tree (not the temporary one)."""

    shown: dict[str, str] = field(default_factory=dict)
    documents: list[RuleDocument] = field(default_factory=list)

    def rules(self, documents):
        for document in documents:
            document.display_path = self.shown.get(document.display_path, document.display_path)
        self.documents = list(documents)
        return super().rules(documents)


@dataclass
class Side:
    outputs: OutputSet
    documents: list[RuleDocument]


def build_side(compiler: Compiler, folder: Path, shown_as: Path | None = None) -> Side:
    """Build every format of the rules in `folder`. With `shown_as`, paths in rule sources and
    diagnostics read as if the files were under `shown_as` (the working-tree folder)."""
    shown: dict[str, str] = {}
    if shown_as is not None:
        for file, display in discover([folder])[0]:
            shown[display] = f"{shown_as.resolve().name}/{file.relative_to(folder.resolve()).as_posix()}"
    options = {f.name: getattr(compiler, f.name) for f in fields(Compiler) if f.init}
    recording = _RecordingCompiler(**options, shown=shown)
    outputs = build_outputs(recording, [folder], ALL_FORMATS)
    if shown:
        temporary = str(folder)
        replacement = shown_as.as_posix()

        def relocate(d: Diagnostic) -> Diagnostic:
            path = shown.get(d.location.path, d.location.path)
            return Diagnostic(
                d.code, d.message.replace(temporary, replacement), SourceLocation(path, d.location.line, d.location.column),
                d.rule, d.hint, d.severity, d.target,
            )

        outputs.diagnostics = [relocate(d) for d in outputs.diagnostics]
    return Side(outputs, recording.documents)


# -- comparing ---------------------------------------------------------------------------------
@dataclass
class RuleState:
    key: str  # the rule id, or 'file:<path>' for a file without one
    id: str | None = None
    title: str | None = None
    source: str | None = None
    files: dict[str, str] = field(default_factory=dict)  # output path → sha256
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def has_errors(self) -> bool:
        return any(d.severity == "error" for d in self.diagnostics)


@dataclass
class FileDiff:
    old: str | None  # output path on the base side (None: new file)
    new: str | None  # output path in the working tree (None: file gone)
    text: str  # unified diff


@dataclass
class RuleChange:
    kind: str  # 'added' | 'removed' | 'changed'
    id: str | None
    title: str | None
    source: str | None
    diffs: list[FileDiff] = field(default_factory=list)  # shown
    hidden: list[str] = field(default_factory=list)  # changed output files not shown (not KQL)
    new_diagnostics: list[Diagnostic] = field(default_factory=list)
    resolved_diagnostics: list[Diagnostic] = field(default_factory=list)
    has_errors: bool = False  # in the working tree
    not_built: bool = False  # errors in the working tree left the rule without outputs

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

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)

    @property
    def errors(self) -> int:
        return sum(1 for d in self.diagnostics if d.severity == "error")

    @property
    def any_change(self) -> bool:
        return bool(self.added or self.removed or self.changed)


def _document_ids(side: Side) -> dict[str, str]:
    """display path → rule id, from parsed documents and from the manifest."""
    ids: dict[str, str] = {}
    for document in side.documents:
        if isinstance(document.data, dict) and isinstance(document.data.get("id"), str):
            ids[document.display_path] = document.data["id"]
    for entry in side.outputs.manifest.get("rules", []):
        ids[entry["source"]] = entry["id"]
    return ids


def rule_states(side: Side, other: Side) -> dict[str, RuleState]:
    """Every rule of a side by key. A file without an id takes the id the other side has for
    the same path, so that a rule which stopped parsing shows as changed, not removed."""
    own, theirs = _document_ids(side), _document_ids(other)

    def key_for(path: str) -> str:
        return own.get(path) or theirs.get(path) or f"file:{path}"

    states: dict[str, RuleState] = {}

    def state(path: str) -> RuleState:
        key = key_for(path)
        if key not in states:
            states[key] = RuleState(key, None if key.startswith("file:") else key, source=path)
        return states[key]

    for document in side.documents:
        item = state(document.display_path)
        item.title = item.title or document.title
    for entry in side.outputs.manifest.get("rules", []):
        item = state(entry["source"])
        item.title = item.title or entry.get("title")
        item.files.update(entry.get("files", {}))
    for diagnostic in side.outputs.diagnostics:
        state(diagnostic.location.path).diagnostics.append(diagnostic)
    return states


def output_format(path: str) -> str:
    """Which format an output path belongs to (by the layouts in outputs.FORMATS)."""
    best, length = path, -1
    for fmt, (_platform, _template, layout) in FORMATS.items():
        head, _, tail = layout.partition("{name}")
        if path.startswith(head) and path.endswith(tail) and len(head) > length:
            best, length = fmt, len(head)
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


def _diagnostic_changes(old: list[Diagnostic], new: list[Diagnostic]) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """(new, resolved), ignoring line numbers: an edit above a warning does not make it new."""
    remaining = Counter(_diagnostic_key(d) for d in old)
    added = []
    for d in sorted(new, key=sort_key):
        if remaining[_diagnostic_key(d)] > 0:
            remaining[_diagnostic_key(d)] -= 1
        else:
            added.append(d)
    remaining = Counter(_diagnostic_key(d) for d in new)
    resolved = []
    for d in sorted(old, key=sort_key):
        if remaining[_diagnostic_key(d)] > 0:
            remaining[_diagnostic_key(d)] -= 1
        else:
            resolved.append(d)
    return added, resolved


def compare(base: Side, current: Side, all_formats: bool = False) -> tuple[list[RuleChange], list[RuleChange], list[RuleChange], int]:
    """(added, removed, changed, number unchanged) between two built sides."""
    before, after = rule_states(base, current), rule_states(current, base)
    added, removed, changed, unchanged = [], [], [], 0
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old is None:
            added.append(RuleChange(
                "added", new.id, new.title, new.source,
                new_diagnostics=sorted(new.diagnostics, key=sort_key), has_errors=new.has_errors,
            ))
            continue
        if new is None:
            removed.append(RuleChange("removed", old.id, old.title, old.source))
            continue
        change = RuleChange("changed", new.id, new.title or old.title, new.source, has_errors=new.has_errors)
        change.new_diagnostics, change.resolved_diagnostics = _diagnostic_changes(old.diagnostics, new.diagnostics)
        change.not_built = new.has_errors and not new.files
        for fmt, old_path, new_path in _pair_files(old.files, new.files):
            if old_path and new_path and old.files[old_path] == new.files[new_path]:
                continue
            if change.not_built or (not all_formats and fmt not in KQL_FORMATS):
                change.hidden.append(new_path or old_path)
                continue
            text = unified_diff(
                base.outputs.files.get(old_path, "") if old_path else "",
                current.outputs.files.get(new_path, "") if new_path else "",
                old_path, new_path,
            )
            change.diffs.append(FileDiff(old_path, new_path, text))
        if change.outputs_changed or change.new_diagnostics or change.resolved_diagnostics:
            changed.append(change)
        else:
            unchanged += 1

    def order(change: RuleChange) -> tuple:
        return (change.name.casefold(), change.id or "", change.source or "")

    return sorted(added, key=order), sorted(removed, key=order), sorted(changed, key=order), unchanged


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
    with rules_at_revision(repo, base.commit, relative) as folder:
        previous = build_side(compiler, folder, shown_as=rules_dir)
    added, removed, changed, unchanged = compare(previous, current, all_formats)
    return RuleDiff(
        rules_dir.as_posix(), base, added, removed, changed, unchanged,
        current.outputs.diagnostics, current.documents,
    )


# -- printing ----------------------------------------------------------------------------------
def _counts(result: RuleDiff) -> str:
    return (
        f"{len(result.changed)} changed, {len(result.added)} added, {len(result.removed)} removed, "
        f"{result.unchanged} unchanged"
    )


def _rule_line(change: RuleChange) -> str:
    return f"{change.name} [{change.id}]" if change.id else change.name


def _hidden_note(change: RuleChange) -> str:
    if change.not_built:
        return "no outputs: the rule has errors in the working tree"
    return f"also changed: {', '.join(change.hidden)} (--all-formats shows them)"


def render_text(result: RuleDiff) -> str:
    out = [f"{result.rules_dir.rstrip('/')}/ at {result.base.describe()} -> working tree"]
    if not result.any_change:
        out.append(f"no changes ({result.unchanged} rule(s) unchanged)")
        return "\n".join(out) + "\n"
    out.append(_counts(result))
    for title, mark, items in (("added", "+", result.added), ("removed", "-", result.removed), ("changed", "~", result.changed)):
        if items:
            out.append("")
            out.append(f"{title}:")
            out += [f"  {mark} {_rule_line(c)}" for c in items]
    for change in result.added:
        if change.new_diagnostics:
            out += ["", f"+ {_rule_line(change)}"]
            out += [f"  {d}" for d in change.new_diagnostics]
    for change in result.changed:
        out += ["", f"~ {_rule_line(change)}"]
        out += [f"  new: {d}" for d in change.new_diagnostics]
        out += [f"  resolved: {d}" for d in change.resolved_diagnostics]
        if change.hidden:
            out.append(f"  {_hidden_note(change)}")
        for item in change.diffs:
            out.append(item.text.rstrip("\n"))
    return "\n".join(out) + "\n"


_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")


def markdown_text(text: str) -> str:
    """Plain text as one line of markdown, every character literal."""
    text = _MARKDOWN_INLINE.sub(r"\\\1", " ".join(text.split()))
    return re.sub(r"^([#+\-=>]|\d+(?=[.)]))", r"\\\1", text)


def code_span(text: str) -> str:
    text = " ".join(text.split())
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, info: str) -> str:
    """A fenced code block that no run of backticks inside can close."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


def _markdown_rule(change: RuleChange) -> str:
    name = markdown_text(change.name)
    return f"{name} ({code_span(change.id)})" if change.id else name


def render_markdown(result: RuleDiff) -> str:
    """A pull-request comment."""
    where = f"Rules in {code_span(result.rules_dir)} at {result.base.describe(code_span)} compared with the working tree"
    out: list[str] = []
    if not result.any_change:
        out += ["### entra-sigma diff: no rule changes", "", f"{where}; {result.unchanged} rule(s) unchanged."]
    else:
        out += [f"### entra-sigma diff: {_counts(result)}", "", f"{where}."]
    if result.errors:
        out += ["", f"**{result.errors} error(s)** in the working tree's rules: the build fails."]
    for title, items in (("Added", result.added), ("Removed", result.removed)):
        if items:
            out += ["", f"**{title}**", ""]
            for change in items:
                line = f"- {_markdown_rule(change)}"
                if change.has_errors:
                    line += " — **has errors**"
                out.append(line)
    added_diagnostics = [d for change in result.added for d in change.new_diagnostics]
    if added_diagnostics:
        out += ["", "<details>", "<summary>Diagnostics of the added rules</summary>", ""]
        out += [fenced("".join(f"{d}\n" for d in added_diagnostics), "text"), "", "</details>"]
    if result.changed:
        out += ["", "**Changed**"]
    for change in result.changed:
        out += ["", "<details>", f"<summary>{_summary(change)}</summary>", ""]
        if change.new_diagnostics or change.resolved_diagnostics:
            lines = [f"new: {d}\n" for d in change.new_diagnostics] + [f"resolved: {d}\n" for d in change.resolved_diagnostics]
            out += [fenced("".join(lines), "text"), ""]
        if change.not_built:
            out += [markdown_text(_hidden_note(change)), ""]
        elif change.hidden:
            paths = ", ".join(code_span(path) for path in change.hidden)
            out += [f"Also changed: {paths} ({code_span('--all-formats')} shows them).", ""]
        if change.diffs:
            out += [fenced("".join(item.text for item in change.diffs), "diff"), ""]
        out.append("</details>")
    return "\n".join(out) + "\n"


def _html_text(text: str) -> str:
    """Text inside an HTML block: escaped for HTML, and markdown's inline marks as entities
    (GitHub renders some markdown inside <summary>)."""
    return html.escape(text).translate({ord("`"): "&#96;", ord("*"): "&#42;", ord("_"): "&#95;"})


def _summary(change: RuleChange) -> str:
    text = _html_text(change.name)
    if change.id:
        text += f" (<code>{_html_text(change.id)}</code>)"
    if change.has_errors:
        text += " — <b>has errors</b>"
    return text

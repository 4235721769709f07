"""Git side of `diff`: pick the base revision and materialise a folder as it was there.

No worktree is created: the files are read with one `git cat-file --batch` into a temporary
folder that is removed afterwards. Every failure is a `DiffError` with a one-line message.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from ...load.loader import display_path_for

DEFAULT_BRANCHES = ("origin/HEAD", "origin/main", "origin/master", "main", "master")


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
def rules_at_revision(repo: Path, rev: str, rules_dir: str, folder_name: str | None = None) -> Iterator[Path]:
    """The folder `rules_dir` (relative to the top of `repo`, '/'-separated) as it is at `rev`,
    materialised from git objects into a temporary folder that is removed afterwards. The
    folder is called `folder_name` (default: the last part of `rules_dir`), so rules in it get the
    same display paths (`rules/x.yml`) as in the working tree.

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
        root = Path(temporary) / (folder_name or PurePosixPath(prefix).name or "tree")
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


def files_at_revision(repo: Path, rev: str, paths: list[str], into: Path) -> None:
    """The files at `paths` (files or folders, relative to the top of `repo`, '/'-separated) as
    they are at `rev`, written below `into` at the same relative paths. Paths that do not
    exist there are left out (an environment's filter added since)."""
    commit = resolve_commit(repo, rev)
    if commit is None:
        raise DiffError(f"unknown revision {rev!r} (not a commit in this repository)")
    wanted = [PurePosixPath(p).as_posix().strip("/") for p in paths]
    if not wanted:
        return
    listing = git(repo, "ls-tree", "-r", "-z", "--full-tree", commit, "--", *wanted).stdout
    entries = []
    for item in listing.split(b"\0"):
        if not item:
            continue
        meta, _, name = item.partition(b"\t")
        _, kind, obj = meta.decode("ascii").split()
        path = name.decode("utf-8", "surrogateescape")
        if kind == "blob" and any(path == w or path.startswith(w + "/") for w in wanted):
            entries.append((obj, path))
    blobs = read_blobs(repo, [obj for obj, _ in entries])
    for obj, relative in entries:
        target = into.joinpath(*relative.split("/"))
        if ".." in relative.split("/") or not target.resolve().is_relative_to(into.resolve()):
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(blobs[obj])

"""Write step: replace an output folder as a whole, atomically, with sorted LF UTF-8 files.

A reader (or a deploying pipeline) sees either the old folder or the new one, never a mix,
and nothing stale from an earlier run survives. A run that fails or is interrupted part-way
leaves the previous folder as it was.

The new folder is staged beside the old one and swapped in with two renames. A file whose
bytes are the same as in the previous folder is not written again: it is hard-linked from
there (a rebuild after a one-rule edit creates a handful of files, not thousands). Where the
file system has no hard links, the file is written instead. Linking never changes the old
folder: a link adds a name to a file, and nothing here ever writes into an existing file.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

MARKER = ".entra-sigma-output"
MARKER_TEXT = "This folder is replaced whole by every entra-sigma run.\n"
# link the file itself, never what a symbolic link points at, where the platform can say so
NO_FOLLOW = {"follow_symlinks": False} if os.link in os.supports_follow_symlinks else {}


class OutputError(Exception):
    """The output folder cannot be used (not ours, or not writable)."""


@dataclass
class WriteStats:
    """How the files of a `replace_folder` call got into the new folder."""

    linked: int = 0  # carried over from the previous folder (hard links)
    written: int = 0  # written out: new or changed, or the file system has no hard links


# What one process last wrote into an output folder, per file: its text and the (inode, size,
# modification time) it had then. A watching build keeps it between builds, so that a file
# it wrote and nobody touched since is carried over without reading it back.
Known = dict[str, tuple[str, int, int, int]]
TRUST_AFTER_NS = 2_000_000_000  # a stat taken this soon after the file changed is not trusted (racy-git rule)


def is_relative_path(path: str) -> bool:
    """A path that stays below the folder it is joined to: relative, with no empty, `.` or `..`
    part on either separator, no drive (`C:`), no NUL."""
    return (
        bool(path) and "\0" not in path and not re.match(r"[A-Za-z]:", path)
        and all(part not in ("", ".", "..") for part in re.split(r"[/\\]", path))
    )


def umask_mode(base: int = 0o666) -> int:
    """The mode a plain `open()` (base 0o666) or `mkdir` (base 0o777) gives under the process's
    umask. `mkstemp` and `mkdtemp` make files 0600 and folders 0700 whatever the umask; what
    they make for the user to keep is set to this instead."""
    umask = os.umask(0o022)
    os.umask(umask)
    return base & ~umask


def replace_folder(out: Path, files: dict[str, str], stats: WriteStats | None = None, known: Known | None = None) -> None:
    """Write `files` (relative posix path → text) as the whole content of `out`; `stats`, if
    given, counts the files linked and written; `known`, if given, is what the previous call
    into `out` recorded, and is brought up to date. A path that would leave `out` is refused
    before anything is written, wherever it came from (a build cache entry names paths too)."""
    escaping = next((path for path in sorted(files) if not is_relative_path(path)), None)
    if escaping is not None:
        raise OutputError(f"refusing to write {escaping!r}: it is not a path inside {out}")
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        whose = " (it looks like setuptools' build folder, from `pip install .` or `python -m build`)" if \
            out.is_dir() and ((out / "lib").is_dir() or any(out.glob("bdist.*"))) else ""
        raise OutputError(
            f"{out} exists and was not written by entra-sigma{whose}; refusing to replace it (choose an empty or new folder)"
        )
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OutputError(f"cannot write {out}: {blocking} is not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        os.chmod(staging, umask_mode(0o777))  # it becomes the output folder: as `mkdir` would make it
    except OSError as error:
        raise OutputError(f"cannot write {out}: {error.strerror or error}") from error
    previous = None
    stats = stats if stats is not None else WriteStats()
    try:
        _stage(staging, out if out.is_dir() else None, files, stats, known)
        with open(staging / MARKER, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(MARKER_TEXT)
        if out.exists():
            previous = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, previous)
        os.replace(staging, out)
    except BaseException as error:
        if previous is not None and not out.exists():
            os.replace(previous, out)  # put the old output back before anything else
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(error, OSError):
            raise OutputError(f"cannot write {out}: {error.strerror or error}") from error
        raise
    if previous is not None:
        shutil.rmtree(previous, ignore_errors=True)  # the new output is in place; a leftover is only untidy


def _stage(staging: Path, old: Path | None, files: dict[str, str], stats: WriteStats, known: Known | None) -> None:
    """Fill the staging folder: unchanged files linked from `old`, the others written. (Plain
    string paths: thousands of pathlib joins cost more than the links.)"""
    made = {""}
    linking = old is not None
    root, previous = os.fspath(staging), os.fspath(old) if old is not None else ""
    records = known if known is not None else {}
    learnt: Known = {}
    for relative in sorted(files):
        text = files[relative]
        folder = relative.rpartition("/")[0]
        if folder not in made:
            os.makedirs(os.path.join(root, folder), exist_ok=True)
            made.add(folder)
        target, source = os.path.join(root, relative), os.path.join(previous, relative)
        record = records.get(relative)
        trusted = linking and record is not None and record[0] == text and _stat_of(source) == record[1:]
        if linking and (trusted or _same_file(source, text.encode("utf-8"))):
            try:
                os.link(source, target, **NO_FOLLOW)
                stats.linked += 1
                if trusted:
                    learnt[relative] = record
                elif known is not None:
                    _learn(learnt, relative, text, target)
                continue
            except OSError:
                linking = False  # no hard links here (FAT, some network shares): write every file
        with open(target, "wb") as handle:
            handle.write(text.encode("utf-8"))
        stats.written += 1
        if known is not None:
            _learn(learnt, relative, text, target)
    if known is not None:
        known.clear()
        known.update(learnt)


def _stat_of(path: str) -> tuple[int, int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_ino, info.st_size, info.st_mtime_ns) if stat.S_ISREG(info.st_mode) else None


def _learn(learnt: Known, relative: str, text: str, path: str) -> None:
    """Record `path`'s stat, unless it changed too recently for its time stamp to tell a later
    change of the same size apart (then the next build reads it once more)."""
    found = _stat_of(path)
    if found is not None and time.time_ns() - found[2] > TRUST_AFTER_NS:
        learnt[relative] = (text, *found)


def _same_file(path: str, data: bytes) -> bool:
    """Whether `path` is a regular file holding exactly `data` (anything unreadable: no)."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size != len(data):
            return False
        with open(path, "rb") as handle:
            return handle.read(len(data) + 1) == data
    except OSError:
        return False

"""`build --watch`: build again whenever a rule file changes, in one long-lived process.

A fresh `build --cache` of a 1,000-rule folder after a one-rule edit spends most of its time
starting up (Python, the CLI, importing pySigma and Jinja) and reading the cache's entries
from disk. A watching process pays those once: the compiler, its compiled templates and the
per-file results of the last build stay in memory (`MemoryCache`), so a one-rule edit costs
about the compile of that rule plus carrying the other outputs over (docs/benchmark.md).

Changes are found by polling: every `interval` seconds the watched files' sizes, change
times and inode numbers are compared with the last look (a `stat` per file; no new
dependency, and it works on network shares and in containers where inotify does not). An
edit is built once it has held still for one more look, so an editor that writes a file in
two steps is not built half-way. Each look that starts a build is taken before it, so a file
saved while a build runs is built again after it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Iterable

from .cache import Cache, FileResult, entry_key

Fingerprint = frozenset[tuple[str, int, int, int]]


class MemoryCache:
    """Per-file results kept in memory between builds, over an optional on-disk cache.

    Only the entries the latest build used are kept (`settle`), so a long session of edits
    holds one build's worth of results, not one per edit."""

    def __init__(self, context: str, disk: Cache | None = None):
        """`context`: as the on-disk cache's (`cache.context_key`); `disk`: read through and written to."""
        self.context = context
        self.disk = disk
        self.entries: dict[str, FileResult] = {}
        self.used: set[str] = set()

    def key(self, display: str, data: bytes) -> str:
        return entry_key(self.context, display, data)

    def get(self, key: str, display: str) -> FileResult | None:
        self.used.add(key)
        found = self.entries.get(key)
        if found is None and self.disk is not None:
            found = self.disk.get(key, display)
            if found is not None:
                self.entries[key] = found
        return found

    def put(self, key: str, result: FileResult) -> None:
        self.used.add(key)
        self.entries[key] = result
        if self.disk is not None:
            self.disk.put(key, result)

    @property
    def rejected(self) -> list[str]:
        return self.disk.rejected if self.disk is not None else []

    def settle(self) -> None:
        """Forget the entries the build that just ended did not use."""
        self.entries = {key: value for key, value in self.entries.items() if key in self.used}
        self.used = set()


def fingerprint(paths: Iterable[Path], ignore: Iterable[Path] = ()) -> Fingerprint:
    """(path, size, change time, inode) of every file under `paths` (folders walked; a missing
    path counts as a change when it comes back). Hidden folders (.git) and the folders in
    `ignore` (the build's own output and cache, should they lie inside) are not walked."""
    skip = {os.path.realpath(p) for p in ignore}
    seen: set[tuple[str, int, int, int]] = set()
    for root in paths:
        if root.is_file():
            _add(seen, os.fspath(root))
            continue
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = sorted(
                name for name in subfolders
                if not name.startswith(".") and os.path.realpath(os.path.join(folder, name)) not in skip
            )
            for name in names:
                _add(seen, os.path.join(folder, name))
    return frozenset(seen)


def _add(seen: set, path: str) -> None:
    try:
        info = os.stat(path)
    except OSError:
        return  # removed while we looked: the next look sees it gone
    seen.add((path, info.st_size, info.st_mtime_ns, info.st_ino))


def watch(
    paths: Callable[[], list[Path]],
    rebuild: Callable[[], None],
    *,
    ignore: Iterable[Path] = (),
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
    rounds: int | None = None,
) -> int:
    """Call `rebuild()` now and after every change to the files under `paths()` (asked again
    each look, so that a new --templates folder is followed), until interrupted or, for
    tests, until `rounds` rebuilds after the first. Returns the number of rebuilds."""
    ignore = list(ignore)
    last = fingerprint(paths(), ignore)  # taken before building: an edit saved during a build is built next
    rebuild()
    done = 0
    while rounds is None or done < rounds:
        sleep(interval)
        now = fingerprint(paths(), ignore)
        if now == last:
            continue
        while True:  # let the edit settle: build what held still for one look
            sleep(interval)
            settled = fingerprint(paths(), ignore)
            if settled == now:
                break
            now = settled
        last = now
        rebuild()
        done += 1
    return done

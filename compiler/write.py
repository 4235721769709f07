"""Write step: replace an output folder as a whole, atomically, with sorted LF UTF-8 files.

A reader (or a deploying pipeline) sees either the old folder or the new one, never a mix,
and nothing stale from an earlier run survives. A run that fails or is interrupted part-way
leaves the previous folder as it was.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

MARKER = ".entra-sigma-output"


class OutputError(Exception):
    """The output folder cannot be used (not ours, or not writable)."""


def replace_folder(out: Path, files: dict[str, str]) -> list[Path]:
    """Write `files` (relative posix path → text) as the whole content of `out`."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise OutputError(
            f"{out} exists and was not written by entra-sigma; refusing to replace it (choose an empty or new folder)"
        )
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise OutputError(f"cannot write {out}: {blocking} is not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    except OSError as error:
        raise OutputError(f"cannot write {out}: {error.strerror or error}") from error
    previous = None
    try:
        for relative in sorted(files):
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(files[relative])
        (staging / MARKER).write_text("This folder is replaced whole by every entra-sigma run.\n", encoding="utf-8")
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
    return [out / relative for relative in sorted(files)]

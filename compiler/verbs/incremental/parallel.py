"""Spread independent work over the machine's cores, keeping results in input order.

Worker processes are forked, so they start with everything the parent has already
imported and built (the compiler, its tables and templates) and only the work items
and results travel between processes. Where fork is unavailable (Windows) or unsafe
(macOS), or the work is too small to pay for the processes, everything runs in this one.
"""

from __future__ import annotations

import os
import sys
from typing import Callable, Sequence, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Below this many items per worker, starting processes costs more than it saves
# (a rule takes ~2 ms; forking and collecting a worker ~50 ms).
MIN_ITEMS_PER_WORKER = 100

_task: Callable | None = None  # the function the forked workers run (inherited, never pickled)


def cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def can_fork() -> bool:
    import multiprocessing  # here, not at the top: most runs never start a process

    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


def workers_for(items: int, jobs: int | None = None) -> int:
    """How many processes to use: `jobs` if given, else one per core while each gets enough work."""
    if not can_fork():
        return 1
    wanted = jobs if jobs is not None else min(cores(), items // MIN_ITEMS_PER_WORKER)
    return max(1, min(wanted, items))


def _run_chunk(chunk: Sequence) -> list:
    assert _task is not None
    return _task(chunk)


def map_chunks(task: Callable[[Sequence[Item]], list[Result]], items: Sequence[Item], workers: int) -> list[Result]:
    """`task(chunk)` returns one result per item of its chunk; the results of all chunks come
    back concatenated in input order, however the work was spread."""
    if workers <= 1 or len(items) < 2:
        return task(items)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    global _task
    chunk_count = min(len(items), workers * 4)  # several chunks per worker even out slow rules
    bounds = [round(i * len(items) / chunk_count) for i in range(chunk_count + 1)]
    chunks = [items[bounds[i]:bounds[i + 1]] for i in range(chunk_count)]
    _task = task
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            parts = list(pool.map(_run_chunk, chunks))
    finally:
        _task = None
    return [result for part in parts for result in part]

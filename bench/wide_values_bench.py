"""Benchmark: how compile time grows with the number of values in one rule.

A hostile pull request can hand the compiler one rule with thousands of values (the bound is
MAX_VALUES, compiler/load/limits.py). Each shape below is timed at several sizes up to that
bound, doing what `entra-sigma validate` does on one file (load, validate, map, convert and
render every format, both platforms, in process; the CLI's start-up is left out). Two figures
tell linear from quadratic:

- **growth**: how the time grows per doubling of the values (the time at N over the time at
  N/2, for sizes that double). About 2 is linear; 4 is quadratic.
- **x peer**: the time over the peer's on the same rule. The peer is pySigma's reference text
  backend (`sigma.backends.test.TextQueryTestBackend`) converting the same file: it parses
  with the same pySigma and prints one query, without entra-sigma's catalog checks, mapping
  and formats. A ratio that stays level across sizes means entra-sigma grows as pySigma does.

`--tree DIR` runs another checkout's compiler (its `compiler/`, `schemas/`, `templates/`) in the
same way, for a before/after comparison in one run, e.g. main's:

    git archive main | tar -x -C /tmp/main-tree
    .venv/bin/python bench/wide_values_bench.py --tree /tmp/main-tree --sizes 1250 2500 5000
    .venv/bin/python bench/wide_values_bench.py

Usage: python bench/wide_values_bench.py [--sizes 1250 2500 5000 10000] [--repeat 3]
       [--shapes wildcards "maps on an array" ...] [--tree DIR] [--json FILE]
Speed is measured here, never in timed tests (tests/test_hostile.py only catches hangs).
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SIZES = [1250, 2500, 5000, 10000]  # doublings, up to MAX_VALUES

HEAD = """title: Wide {shape}
id: 1b4e28ba-2fa1-4d2b-9a3e-0c1d2e3f4a5b
logsource:
  product: entra
  service: signins
detection:
"""


def wide_rule(shape: str, values: int) -> str:
    """One rule holding `values` values (the same layouts tests/test_hostile.py uses)."""
    if shape == "wildcards":  # `*text*` values: an `or` of `contains`
        body = "  sel:\n    userAgent:\n" + "".join(f"      - '*v{i:05d}x*'\n" for i in range(values)) + "  condition: sel\n"
    elif shape == "middle wildcards":  # patterns: regular expressions
        body = "  sel:\n    userAgent:\n" + "".join(f"      - 'a{i:05d}*b?c'\n" for i in range(values)) + "  condition: sel\n"
    elif shape == "contains all":  # an `and` of `contains`
        body = "  sel:\n    userAgent|contains|all:\n" + "".join(f"      - 'v{i:05d}x'\n" for i in range(values)) + "  condition: sel\n"
    elif shape == "maps on an array":  # each map bound to one element of an array
        body = "  sel:\n" + "".join(
            f"    - authenticationDetails.authenticationMethod: m{i}\n      authenticationDetails.succeeded: true\n"
            for i in range(values // 2)
        ) + "  condition: sel\n"
    elif shape == "maps":
        body = "  sel:\n" + "".join(f"    - userAgent|contains: v{i:05d}\n      appId: a{i}\n" for i in range(values // 2)) + "  condition: sel\n"
    elif shape == "selections":
        body = "".join(f"  sel{i}:\n    userAgent|contains: v{i:05d}\n" for i in range(values)) + "  condition: 1 of sel*\n"
    else:
        raise SystemExit(f"unknown shape {shape!r}")
    return HEAD.format(shape=shape) + body


SHAPES = ["wildcards", "middle wildcards", "contains all", "maps on an array", "maps", "selections"]


def load_compiler(tree: Path):
    """`build.Compiler` and `build.build_outputs` of the checkout at `tree`, imported as `compiler`."""
    sys.path.insert(0, str(tree))
    build = importlib.import_module("compiler.build")
    assert Path(build.__file__).resolve().is_relative_to(tree.resolve()), build.__file__
    return build.Compiler, build.build_outputs


def best(repeat: int, work) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES)
    parser.add_argument("--shapes", nargs="+", default=SHAPES, choices=SHAPES)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tree", type=Path, default=ROOT, help="the checkout whose compiler runs (default: this one)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    compiler_class, build_outputs = load_compiler(args.tree)
    from sigma.backends.test import TextQueryTestBackend
    from sigma.collection import SigmaCollection

    compiler = compiler_class()
    with tempfile.TemporaryDirectory(prefix="entra-sigma-wide-") as scratch:  # warm caches (catalog, tables, templates)
        (Path(scratch) / "r.yml").write_text(wide_rule("wildcards", 10), encoding="utf-8")
        build_outputs(compiler, [Path(scratch)])
    results = []
    print(f"compiler: {args.tree}; best of {args.repeat}; seconds")
    print(f"{'shape':18s} {'values':>7s} {'entra-sigma':>12s} {'growth':>7s} {'peer':>8s} {'x peer':>7s}")
    with tempfile.TemporaryDirectory(prefix="entra-sigma-wide-") as scratch:
        for shape in args.shapes:
            previous = None
            for size in args.sizes:
                folder = Path(scratch) / f"{shape.replace(' ', '-')}-{size}"
                folder.mkdir()
                (folder / "r.yml").write_text(wide_rule(shape, size), encoding="utf-8")

                def ours():
                    outputs = build_outputs(compiler, [folder])
                    # what a rule this wide gets: E306 (Sentinel's 10,000 characters), or E008 past the bound
                    assert {d.code for d in outputs.diagnostics if d.severity == "error"} <= {"E306", "E008"}, outputs.diagnostics

                def peer():
                    assert TextQueryTestBackend().convert(SigmaCollection.load_ruleset([folder]))

                seconds, peer_seconds = best(args.repeat, ours), best(args.repeat, peer)
                growth = f"{(seconds / previous[1]) ** (math.log(2) / math.log(size / previous[0])):7.2f}" if previous else " " * 7
                print(f"{shape:18s} {size:7d} {seconds:12.3f} {growth} {peer_seconds:8.3f} {seconds / peer_seconds:7.2f}", flush=True)
                results.append({"shape": shape, "values": size, "seconds": round(seconds, 4),
                                "peer seconds": round(peer_seconds, 4)})
                previous = (size, seconds)
    if args.json:
        args.json.write_text(json.dumps({"tree": str(args.tree), "results": results}, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

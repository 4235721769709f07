"""Benchmark: how fast entra-sigma compiles rules, against a peer measured in the same run.

Peer: pySigma's own reference text backend (`sigma.backends.test.TextQueryTestBackend`)
converting the same rules. It parses with the same pySigma and prints a query string, but
does no catalog validation, table mapping or templating, so the ratio is the price of
everything entra-sigma adds on top of pySigma.

Measured (best of --repeat runs, each compiling the corpus --copies times):
  1. entra-sigma: load + validate + map + convert + render, Sentinel KQL only
  2. entra-sigma: every output format (build_outputs, without writing)
  3. peer: pySigma parse + TextQueryTestBackend.convert

Usage: python bench/compile_bench.py [--copies 20] [--repeat 5]
Speed is measured here, never in timed tests.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from corpus import bundled_rules  # bench/corpus.py (the script's own folder is on sys.path)
from entra_sigma.build import Compiler, build_outputs
from sigma.backends.test import TextQueryTestBackend
from sigma.collection import SigmaCollection


def make_corpus(folder: Path, copies: int) -> int:
    """`copies` renamed copies of every bundled single-event rule (unique ids and titles)."""
    count = 0
    for copy in range(copies):
        for index, rule in enumerate(bundled_rules()):
            data = dict(rule)
            data["id"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"bench/{copy}/{index}"))
            data["title"] = f"{data['title']} ({copy})"
            text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
            (folder / f"{index:03d}-{copy}.yml").write_text(text, encoding="utf-8")
            count += 1
    return count


def best_of(repeat: int, work) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        timings.append(time.perf_counter() - start)
    return min(timings), statistics.median(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="entra-sigma-bench-"))
    try:
        rules = make_corpus(folder, args.copies)
        compiler = Compiler()

        def ours_kql():
            result = compiler.compile_paths([folder], ("sentinel",))
            assert result.ok and len(result.compiled) == rules

        def ours_all():
            outputs = build_outputs(compiler, [folder])
            assert outputs.ok

        def peer():
            collection = SigmaCollection.load_ruleset([folder])
            queries = TextQueryTestBackend().convert(collection)
            assert len(queries) == rules

        ours_kql()  # warm caches (catalog, tables, templates) the way a long build would
        results = {
            "entra-sigma, KQL only": best_of(args.repeat, ours_kql),
            "entra-sigma, all formats": best_of(args.repeat, ours_all),
            "peer: pySigma TextQueryTestBackend": best_of(args.repeat, peer),
        }
        peer_best = results["peer: pySigma TextQueryTestBackend"][0]
        print(f"{rules} rules, best and median of {args.repeat} runs")
        for name, (best, median) in results.items():
            print(f"{name:38s} best {best * 1000:8.1f} ms  median {median * 1000:8.1f} ms  "
                  f"{rules / best:8.0f} rules/s  {best / peer_best:5.2f}x peer")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()

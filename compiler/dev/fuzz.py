"""Fuzz the compiler with random valid rules: it must never crash, and every query it writes
must pass Kusto.Language.

    python -m compiler.dev.fuzz --rules 10000 --seed 1
    python -m compiler.dev.fuzz --rules 500 --seed 7 --keep fuzz-failures

Rules come from compiler/dev/fuzz_rules.py (a seed always gives the same rules). They are
written as rule files, in batches, and built with `build_outputs`, the code `entra-sigma build`
runs. Then every output is checked: each query (Sentinel and Defender) with Kusto.Language in one
long-lived checker process, each JSON file parsed back, and the outputs that are not KQL as their
readers read them (compiler/dev/fuzz_checks.py): ARM templates (no expression from rule text,
the text back exactly after ARM's unescaping), Sentinel YAML (the rule's title, description,
query, entity mappings and custom details back), a plan and a diff of the batch in Markdown (no
live mention) and as text (no line a CI runner takes as a command, no hidden character). A rule
the compiler refuses with a code in EXPECTED_REFUSALS is counted, not failed: the generator
reaches fields only some tables have on purpose. Any other refusal, any exception, any query
with a diagnostic, any output that does not read back and any unsafe text is a finding;
`--keep DIR` copies each such rule file there with a note. Exit status 1 on findings.
With `--replay`, every query also runs on the local engine `entra-sigma test` uses (over empty
tables): a query it does not run is a finding ("not-replayed"), since a user's cases on such a
rule could not be replayed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..build import Compiler, build_outputs
from ..map.tables import bundled_registry
from ..render.renderer import yaml_quoted
from ..validate.catalog import default_catalog
from .fuzz_checks import deployable_problems, reader_problems
from .fuzz_rules import RuleGenerator
from .kusto_language import KustoSession

# E201/E202: a field only some tables have can leave no table where the rule matches.
# E406: a correlated rule's tables may lack a group-by column. E204: Defender has no table for
# the service (a warning in builds, counted here only if an error). E306: a correlation of three
# generated rules can pass the 10,000 characters Sentinel accepts.
# E205: when those fields drop a table from the query, a `fields` entry only that table had goes too.
EXPECTED_REFUSALS = {"E201", "E202", "E204", "E205", "E306", "E406"}
BATCH = 250  # rule files per build; one checker request per batch


@dataclass
class Finding:
    kind: str  # crash | refused | invalid-query | broken-output | unsafe-text | not-replayed | harness
    file: str
    detail: str


@dataclass
class FuzzReport:
    seed: int
    rules: int = 0  # documents generated (single-event and correlation rules)
    files: int = 0
    correlations: int = 0
    wide: int = 0  # rules given a long value list (30 to 1,500 values)
    outputs: int = 0  # rules with outputs (correlated building blocks have none)
    queries: int = 0  # queries checked with Kusto.Language
    replayed: int = 0  # queries run on the local engine (--replay)
    refused: Counter = field(default_factory=Counter)  # expected refusals, by code
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, kind: str) -> int:
        return sum(1 for f in self.findings if f.kind == kind)

    def summary(self) -> dict:
        return {
            "seed": self.seed, "rules": self.rules, "files": self.files, "correlations": self.correlations,
            "wide value lists": self.wide,
            "rules with outputs": self.outputs, "queries checked": self.queries, "queries replayed": self.replayed,
            "expected refusals": dict(sorted(self.refused.items())),
            "crashes": self.count("crash"), "unexpected refusals": self.count("refused"),
            "invalid queries": self.count("invalid-query"), "broken outputs": self.count("broken-output"),
            "unsafe text": self.count("unsafe-text"), "not replayed": self.count("not-replayed"),
            "harness problems": self.count("harness"), "seconds": round(self.seconds, 1),
        }


def to_yaml(value, indent: int = 0) -> str:
    """Block YAML whose strings are double-quoted with every hidden character escaped: PyYAML's
    emitter folds some line breaks (runs of U+0085), and a generated value must arrive intact."""
    pad = "  " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines.append(f"{pad}{yaml_quoted(str(key))}:\n{to_yaml(item, indent + 1)}")
            else:
                lines.append(f"{pad}{yaml_quoted(str(key))}: {to_yaml(item)}\n")
        return "".join(lines)
    if isinstance(value, list):
        if not value:
            return "[]"
        return "".join(
            f"{pad}-\n{to_yaml(item, indent + 1)}" if isinstance(item, (dict, list)) and item else f"{pad}- {to_yaml(item).strip()}\n"
            for item in value
        )
    if isinstance(value, str):
        return yaml_quoted(value)
    return yaml.safe_dump(value).removesuffix("\n...\n").strip()


def write_batch(generator: RuleGenerator, first: int, count: int, folder: Path, report: FuzzReport) -> dict[str, str]:
    """Generate `count` files into `folder`; returns file name → text."""
    texts = {}
    for index in range(first, first + count):
        documents = generator.documents(index)
        text = "---\n".join(to_yaml(d) for d in documents)
        name = f"f{index:05d}.yml"
        if list(yaml.safe_load_all(text)) != documents:
            report.findings.append(Finding("harness", name, "the generated YAML does not load back as generated"))
            continue
        (folder / name).write_text(text, encoding="utf-8")
        texts[name] = text
        report.rules += len(documents)
        report.correlations += sum(1 for d in documents if "correlation" in d)
    report.files += len(texts)
    report.wide = generator.widened
    return texts


def build_batch(compiler: Compiler, folder: Path, texts: dict[str, str], report: FuzzReport):
    """Build the batch; on an exception, build each file alone to name the ones that crash."""
    try:
        return build_outputs(compiler, [folder])
    except Exception:
        survivors = []
        for name in sorted(texts):
            alone = folder.parent / "alone"
            alone.mkdir(exist_ok=True)
            for old in alone.iterdir():
                old.unlink()
            (alone / name).write_text(texts[name], encoding="utf-8")
            try:
                build_outputs(compiler, [alone])
                survivors.append(name)
            except Exception:
                report.findings.append(Finding("crash", name, traceback.format_exc(limit=8)))
                (folder / name).unlink()
        return build_outputs(compiler, [folder])


def sources(outputs) -> dict[str, str]:
    """Output path → the rule file it came from."""
    return {path: entry["source"].split("/")[-1] for entry in outputs.manifest["rules"] for path in entry["files"]}


def check_batch(outputs, report: FuzzReport, texts: dict[str, str]) -> list[tuple[str, str]]:
    """Record refusals, outputs that do not read back and text unsafe for its reader; return
    the queries to check."""
    for d in outputs.diagnostics:
        if d.severity != "error":
            continue
        if d.code in EXPECTED_REFUSALS:
            report.refused[d.code] += 1
        else:
            report.findings.append(Finding("refused", d.location.path.split("/")[-1], str(d)))
    report.outputs += len(outputs.manifest["rules"])
    source = sources(outputs)
    for path, text in sorted(outputs.files.items()):
        try:
            if path.endswith(".json"):
                json.loads(text)
        except Exception as error:  # any failure to read an output back is a finding
            report.findings.append(Finding("broken-output", source.get(path, path), f"{path}: {error}"))
    documents = {d["id"]: d for text in texts.values() for d in yaml.safe_load_all(text) if isinstance(d, dict)}
    for path, problem in deployable_problems(outputs, documents):  # ARM and YAML as their readers read them
        report.findings.append(Finding("broken-output", source.get(path, path), f"{path}: {problem}"))
    for where, problem in reader_problems(outputs, documents):  # Markdown and console lines
        report.findings.append(Finding("unsafe-text", where, problem))
    return [(path, text) for path, text in sorted(outputs.files.items()) if path.endswith(".kql")]


def replay_batch(engine, queries: list[tuple[str, str]], source: dict[str, str], report: FuzzReport) -> None:
    """Run every query on the local engine (empty tables): each must be one it runs."""
    from ..verbs.ruletests.replay import NotReplayed

    for path, text in queries:
        report.replayed += 1
        result = engine.run(text)
        if isinstance(result, NotReplayed):
            report.findings.append(Finding("not-replayed", source.get(path, path), f"{path}: {result}"))


def record_queries(results: dict, source: dict[str, str], report: FuzzReport) -> None:
    report.queries += len(results)
    for path, analysis in results.items():
        if analysis.diagnostics:
            detail = "; ".join(str(d) for d in analysis.diagnostics[:3])
            report.findings.append(Finding("invalid-query", source.get(path, path), f"{path}: {detail}"))


def check_queries(sessions: list[KustoSession], queries: list[tuple[str, str]], pool: ThreadPoolExecutor,
                  tables: dict | None = None) -> dict:
    """Split the queries over the checker processes; each thread only waits for its process."""
    chunks = [queries[i::len(sessions)] for i in range(len(sessions))]
    results: dict = {}
    for future in [pool.submit(session.analyze, chunk, False, tables) for session, chunk in zip(sessions, chunks)]:
        results.update(future.result())
    return results


def fuzz(rules: int, seed: int, keep: Path | None = None, progress=None, checkers: int = 1,
         sessions: list[KustoSession] | None = None, replay: bool = False) -> FuzzReport:
    """Generate and build files until `rules` rule documents were made; check every output.

    `sessions`: checker processes to reuse (the test suite passes its one session) instead of
    starting `checkers` new ones; each is asked against the bundled tables. `replay`: also run
    every query on the local engine."""
    started = time.perf_counter()
    report = FuzzReport(seed)
    catalog, registry = default_catalog(), bundled_registry()
    compiler = Compiler(registry=registry, catalog=catalog)
    generator = RuleGenerator(catalog, registry, seed)
    tables = {name: list(table.columns.items()) for name, table in registry.tables.items()}
    kept: dict[str, str] = {}
    engine = None
    if replay:
        from ..verbs.ruletests.replay import LocalEngine

        engine = LocalEngine(registry)
        engine.load({})
    # Kusto.Language checks one batch (in node, through a thread that only waits) while the
    # next batch is generated and built: the two take about as long, on two cores.
    with (
        ExitStack() as stack,
        ThreadPoolExecutor(max_workers=1) as checker,
        ThreadPoolExecutor(max_workers=len(sessions) if sessions else checkers) as pool,
        tempfile.TemporaryDirectory(prefix="entra-sigma-fuzz-") as work,
    ):
        if not sessions:
            sessions = [stack.enter_context(KustoSession(tables)) for _ in range(checkers)]
        index = 0
        pending = None
        while report.rules < rules or pending is not None:
            texts, outputs = {}, None
            if report.rules < rules:
                folder = Path(work) / f"batch{index:05d}" / "rules"
                folder.mkdir(parents=True)
                texts = write_batch(generator, index, min(BATCH, rules), folder, report)
                index += BATCH
                outputs = build_batch(compiler, folder, texts, report)
                queries = check_batch(outputs, report, texts)
                if engine is not None:
                    replay_batch(engine, queries, sources(outputs), report)
            if pending is not None:
                future, source, batch_texts = pending
                record_queries(future.result(), source, report)
                kept.update({f.file: batch_texts[f.file] for f in report.findings if f.file in batch_texts})
                pending = None
            if outputs is not None:
                pending = (checker.submit(check_queries, sessions, queries, pool, tables), sources(outputs), texts)
                kept.update({f.file: texts[f.file] for f in report.findings if f.file in texts})
            if progress:
                progress(report)
    report.seconds = time.perf_counter() - started
    if keep is not None and report.findings:
        keep.mkdir(parents=True, exist_ok=True)
        for finding in report.findings:
            if finding.file in kept:
                (keep / finding.file).write_text(kept[finding.file], encoding="utf-8")
            with open(keep / "findings.txt", "a", encoding="utf-8") as notes:
                notes.write(f"{finding.kind} {finding.file}: {finding.detail}\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m compiler.dev.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rules", type=int, default=1000, help="how many rule documents to generate (default 1000)")
    parser.add_argument("--seed", type=int, default=1, help="the seed; the same seed gives the same rules")
    parser.add_argument("--keep", type=Path, help="copy every rule file with a finding here, with findings.txt")
    parser.add_argument("--checkers", type=int, default=max(1, min(4, (os.cpu_count() or 2) - 1)),
                        help="Kusto.Language processes checking in parallel (default: CPUs - 1, at most 4)")
    parser.add_argument("--replay", action="store_true", help="also run every query on the local engine of `entra-sigma test`")
    args = parser.parse_args(argv)

    def progress(report: FuzzReport) -> None:
        print(f"  {report.rules} rules, {report.queries} queries, {report.replayed} replayed, {len(report.findings)} findings", file=sys.stderr)

    report = fuzz(args.rules, args.seed, args.keep, progress, args.checkers, replay=args.replay)
    for finding in report.findings[:20]:
        print(f"{finding.kind}: {finding.file}: {finding.detail.strip().splitlines()[-1]}", file=sys.stderr)
    print(json.dumps(report.summary(), indent=2))
    return 1 if report.findings else 0


if __name__ == "__main__":
    sys.exit(main())

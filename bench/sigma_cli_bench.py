"""Benchmark: entra-sigma against sigma-cli (pySigma-backend-kusto) on the same 1,000 rules.

What it does, in one run:

1. Installs sigma-cli 3.1.0 with pySigma-backend-kusto 1.0.1 (every package pinned in
   bench/sigma-cli-requirements.txt) into bench/.venv-sigma-cli, once.
2. Writes two corpora into bench/.corpus/ (bench/corpus.py): 1,000 variants of SigmaHQ's Azure
   sign-in rules that both tools compile, and 1,000 rules in entra-sigma's own beta format.
   The SigmaHQ variants are given to entra-sigma as the very same files when it reads SigmaHQ's
   spelling (compiler/model/sigmahq.py); otherwise as the same rules in beta spelling (it says which).
3. Times every command in a fresh process, --repeat times, in rotating order, and reports
   medians, ratios and the peak resident memory of each process tree:
   `sigma convert -t kusto -p bench/signinlogs-pipeline.yml -p azure_monitor`,
   `entra-sigma compile` (KQL), `entra-sigma build` from cold (every format; --jobs 1 and the
   default), the incremental rebuild after one rule changes (`build --cache`, and under
   `build --watch` from the edit to the rebuilt folder), start-up
   (`entra-sigma --version`, `validate` and `compile` of one rule, against `sigma --help` and
   `sigma convert` of one rule: sigma-cli has no offline version flag, its `version` verb asks
   PyPI), and Kusto.Language's check time per query (compiler/dev/kusto_language.py).
4. With --busy N, N processes spin on the CPU (a `while True: pass` loop each, at the same
   priority as the benchmark) from before the first timed command to after the last: the
   figures of a machine that other jobs keep busy.

Usage: .venv/bin/python bench/sigma_cli_bench.py [--rules 1000] [--repeat 5] [--busy N] [--json results.json]
Speed is measured here, never in timed tests. The machine is shared by whatever else runs:
the load average before and after is printed with the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import queue
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CORPUS = BENCH / ".corpus"
SNAPSHOT = CORPUS / "entra-sigma"  # the compiler as it was when the run started


def take_snapshot() -> None:
    """Copy compiler/, schemas/ and templates/ aside and run that copy: the build cache keys on
    the compiler's code, so an edit to the working tree during the run would empty it."""
    shutil.rmtree(CORPUS, ignore_errors=True)
    for name in ("compiler", "schemas", "templates"):
        shutil.copytree(ROOT / name, SNAPSHOT / name, ignore=shutil.ignore_patterns("__pycache__"))
    (SNAPSHOT / "tools").symlink_to(ROOT / "tools")


sys.path.insert(0, str(BENCH))

import corpus  # noqa: E402  (bench/corpus.py)

VENV = BENCH / ".venv-sigma-cli"
REQUIREMENTS = BENCH / "sigma-cli-requirements.txt"
PIPELINE = BENCH / "signinlogs-pipeline.yml"
SIGMA = VENV / "bin" / "sigma"
# what the `entra-sigma` console script does, on the snapshot
ENTRA_SIGMA = [sys.executable, "-c", "import sys; from compiler.cli import main; sys.argv[0] = 'entra-sigma'; main()"]
GOALS = {"compile_ratio": 2.0, "incremental_share": 0.10, "peak_mb": 300}  # issue 14: incremental ≤ 10 % of cold
BUSY_LOOP = "while True: pass"


# -- set-up ------------------------------------------------------------------------------------
def ensure_sigma_cli() -> None:
    """The pinned sigma-cli in its own venv; reinstalled only when the pins change."""
    stamp = VENV / ".installed"
    wanted = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and SIGMA.exists():
        return
    print("installing sigma-cli into", VENV.relative_to(ROOT), flush=True)
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    pip = subprocess.run([str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "-r", str(REQUIREMENTS)], capture_output=True, text=True)
    if pip.returncode != 0:
        sys.exit(f"pip install failed:\n{pip.stdout}{pip.stderr}")
    stamp.write_text(wanted)


def beta_validator():
    """names of the files in a folder that entra-sigma builds without an error."""
    from compiler.build import Compiler, build_outputs

    compiler = Compiler()

    def valid(folder: Path) -> set[str]:
        outputs = build_outputs(compiler, [folder])
        bad = {d.location.path.split("/", 1)[1] for d in outputs.diagnostics if d.severity == "error"}
        return {p.name for p in folder.glob("*.yml")} - bad

    return valid


def make_corpora(count: int) -> tuple[Path, Path, Path, str]:
    """(sigma-cli's corpus, entra-sigma's copy of it, the beta corpus, which spelling)."""
    sigmahq = CORPUS / "sigmahq"
    corpus.write_sigmahq(sigmahq, count, beta=False)
    probe = run(es("validate", sigmahq), capture=True)
    if probe.returncode == 0:
        ours, spelling = sigmahq, "identical files (entra-sigma reads SigmaHQ's spelling)"
    else:
        ours = CORPUS / "sigmahq-beta"
        corpus.write_sigmahq(ours, count, beta=True)
        first = probe.stderr.splitlines()[0] if probe.stderr else "?"
        spelling = f"the same rules in beta spelling (entra-sigma refused SigmaHQ's: {first})"
    beta = CORPUS / "beta"
    dropped = corpus.write_beta(beta, count, beta_validator())
    print(f"corpora: {count} SigmaHQ-style rules; {count} beta rules ({dropped} refused candidates dropped)", flush=True)
    return sigmahq, ours, beta, spelling


# -- measuring ---------------------------------------------------------------------------------
class Run:
    def __init__(self, seconds: float, peak_mb: float, cpu: float, returncode: int, stdout: str, stderr: str):
        self.seconds, self.peak_mb, self.cpu = seconds, peak_mb, cpu
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def run(command: list[str], capture: bool = False) -> Run:
    """One fresh process: wall time, peak RSS of it and its waited-for children, CPU seconds."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=out if capture else subprocess.DEVNULL, stderr=err, cwd=ROOT,
                                   env=child_env())
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime, process.returncode,
                   out.read().decode() if capture else "", err.read().decode())


def checked(command: list[str], capture: bool = False) -> Run:
    result = run(command, capture)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-2000:]}")
    return result


class Series:
    def __init__(self, label: str):
        self.label, self.runs = label, []

    def add(self, result: Run) -> None:
        self.runs.append(result)

    @property
    def median(self) -> float:
        return statistics.median(r.seconds for r in self.runs)

    @property
    def best(self) -> float:
        return min(r.seconds for r in self.runs)

    @property
    def peak_mb(self) -> float:
        return max(r.peak_mb for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)


def sigma_convert(folder: Path) -> list[str]:
    return [str(SIGMA), "convert", "-t", "kusto", "-p", str(PIPELINE), "-p", "azure_monitor", str(folder)]


def es(*arguments) -> list[str]:
    return [*ENTRA_SIGMA, *map(str, arguments)]


def one_rule_folder(source: Path) -> Path:
    folder = CORPUS / "one" / source.name
    folder.mkdir(parents=True, exist_ok=True)
    first = sorted(source.glob("*.yml"))[0]
    shutil.copy(first, folder / first.name)
    return folder


EDITS = iter(range(1, 1 << 30))


def toggle(rule: Path) -> None:
    """Change one rule: its level becomes the next one, and its description says which edit
    this is (so no edit brings back bytes the cache has seen)."""
    lines = rule.read_text(encoding="utf-8").splitlines()
    for index, line in enumerate(lines):
        if line.startswith("level:"):
            level = corpus.LEVELS[(corpus.LEVELS.index(line.split(":", 1)[1].strip()) + 1) % len(corpus.LEVELS)]
            lines[index] = f"level: {level}"
        elif line.startswith("description:"):
            lines[index] = f"description: Edited for the benchmark ({next(EDITS)})."
    rule.write_text("\n".join(lines) + "\n", encoding="utf-8")


def watch_incremental(folder: Path, repeat: int) -> tuple[list[float], list[float]]:
    """The same one-rule edit under `entra-sigma build --watch` (one long-lived process, imports
    and the last build kept): (seconds from the edit to the watcher's "built" line, polling at
    0.05 s included; the build's own seconds as the watcher reports them)."""
    out = CORPUS / "out-watch"
    process = subprocess.Popen(
        [*es("build", folder, "--out", out, "--watch", "--interval", "0.05")], cwd=ROOT, env=child_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()

    def next_built() -> str:
        while True:
            line = lines.get(timeout=300)
            if line.startswith("built "):
                return line

    rule = sorted(folder.glob("*.yml"))[len(list(folder.glob("*.yml"))) // 3]  # not the rule the CLI runs change
    latencies, own = [], []
    try:
        next_built()
        time.sleep(2.5)  # the write step trusts its record of a file once that file is 2 s old
        toggle(rule)
        next_built()  # the first edit reads every output file back once, then records it
        for _ in range(repeat):
            time.sleep(1.0)  # an edit a second: faster than anyone edits rules
            toggle(rule)
            start = time.perf_counter()
            line = next_built()
            latencies.append(time.perf_counter() - start)
            if "(1 compiled, " not in line:
                print(f"warning: the watcher compiled more than the changed rule: {line.strip()}")
            own.append(float(line.rsplit(", ", 1)[1].split(" s)")[0]))
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    return latencies, own


def child_env() -> dict[str, str]:
    """The snapshot on the path; bytecode caches allowed (an installed package has them: pip
    compiles them when it installs, as it did for sigma-cli's venv)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(SNAPSHOT)}


def kusto_check(folder: Path, sigma_cli_output: str) -> dict:
    """Kusto.Language on every query entra-sigma compiles from `folder`, and on sigma-cli's."""
    from compiler.build import Compiler
    from compiler.dev.kusto_language import check_queries
    from compiler.map.tables import bundled_registry

    result = Compiler().compile_paths([folder], ("sentinel",))
    queries = [(c.rule.id, c.texts["sentinel"]) for c in result.compiled]
    schema = {name: list(t.columns.items()) for name, t in bundled_registry().tables.items()}
    start = time.perf_counter()
    check_queries(queries[:1], schema)
    one = time.perf_counter() - start
    start = time.perf_counter()
    verdicts = check_queries(queries, schema)
    everything = time.perf_counter() - start
    theirs = [q.strip() for q in sigma_cli_output.split("\n\n") if q.strip()]
    their_verdicts = check_queries([(str(i), q) for i, q in enumerate(theirs)], schema)
    return {
        "queries": len(queries),
        "node_and_one_query_s": one,
        "all_queries_s": everything,
        "per_query_ms": (everything - one) / max(1, len(queries) - 1) * 1000,
        "ours_with_diagnostics": sum(1 for d in verdicts.values() if d),
        "sigma_cli_queries": len(theirs),
        "sigma_cli_with_diagnostics": sum(1 for d in their_verdicts.values() if d),
        "sigma_cli_example": next((f"{theirs[int(k)].splitlines()[-1]}: {d[0]}" for k, d in their_verdicts.items() if d), None),
    }


# -- reporting ---------------------------------------------------------------------------------
def machine() -> dict:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(), "system": platform.platform()}


class Load:
    """`count` processes spinning on the CPU while the benchmark runs (--busy)."""

    def __init__(self, count: int):
        self.count, self.processes = count, []

    def __enter__(self):
        self.processes = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(self.count)]
        if self.processes:
            time.sleep(5)  # let the load average see them
        return self

    def __exit__(self, *exc):
        for process in self.processes:
            process.kill()
            process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--busy", type=int, default=0, metavar="N", help="keep N processes spinning on the CPU meanwhile")
    parser.add_argument("--skip-kusto", action="store_true", help="leave out the Kusto.Language check (half a minute)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    ensure_sigma_cli()
    take_snapshot()
    sys.path.insert(0, str(SNAPSHOT))  # before anything imports `compiler`
    sigmahq, ours, beta, spelling = make_corpora(args.rules)
    out = CORPUS / "out"  # a cold build writes here, into no folder: removed before each run
    rebuilt = CORPUS / "out-incremental"  # the incremental builds' own folder: each starts from the last one
    cache = CORPUS / "cache"  # inside this repository, and written only by this run: hence --cache-in-repo

    # correctness first: both tools convert every rule
    theirs = checked(sigma_convert(sigmahq), capture=True)
    count = len([q for q in theirs.stdout.split("\n\n") if q.strip()])
    if count != args.rules:
        sys.exit(f"sigma-cli converted {count} of {args.rules} rules")
    checked(es("compile", ours), capture=True)
    checked(es("build", beta, "--out", out))
    one_sigmahq, one_ours = one_rule_folder(sigmahq), one_rule_folder(ours)
    one_rule = next(one_ours.glob("*.yml"))

    commands = {
        "sigma-cli convert": sigma_convert(sigmahq),
        "entra-sigma compile": es("compile", ours),
        "entra-sigma build (cold)": es("build", ours, "--out", out),
        "entra-sigma build --jobs 1 (cold)": es("build", ours, "--out", out, "--jobs", "1"),
        "beta: entra-sigma compile": es("compile", beta),
        "beta: entra-sigma build (cold)": es("build", beta, "--out", out),
        "start-up: sigma --help": [str(SIGMA), "--help"],
        "start-up: entra-sigma --version": es("--version"),
        "start-up: sigma-cli convert, 1 rule": sigma_convert(one_sigmahq),
        "start-up: entra-sigma compile, 1 rule": es("compile", one_ours),
        "start-up: entra-sigma validate, 1 rule": es("validate", one_rule),
    }
    incremental_labels = ["entra-sigma build --cache, 1 rule changed", "entra-sigma build --cache, nothing changed"]
    series = {label: Series(label) for label in [*commands, *incremental_labels]}
    changed = sorted(ours.glob("*.yml"))[args.rules // 2]
    with Load(args.busy):
        load_before = os.getloadavg()
        checked(es("build", ours, "--out", rebuilt, "--cache", cache, "--cache-in-repo"))  # fill the cache
        for round_number in range(args.repeat):
            labels = list(commands)
            shift = round_number % len(labels)
            for label in labels[shift:] + labels[:shift]:  # rotate: drift in machine load hits every command alike
                shutil.rmtree(out, ignore_errors=True)  # cold: no earlier output to carry files over from
                series[label].add(checked(commands[label]))
            toggle(changed)
            series[incremental_labels[0]].add(checked(es("build", ours, "--out", rebuilt, "--cache", cache, "--cache-in-repo")))
            series[incremental_labels[1]].add(checked(es("build", ours, "--out", rebuilt, "--cache", cache, "--cache-in-repo")))
            print(f"round {round_number + 1}/{args.repeat} done", flush=True)
        watched, watched_own = watch_incremental(ours, args.repeat)
        load_after = os.getloadavg()
    kusto = None if args.skip_kusto else kusto_check(ours, theirs.stdout)

    peer = series["sigma-cli convert"].median
    peers = {label: "sigma-cli convert" for label in series}  # what each command is held against
    peers.update({"start-up: entra-sigma --version": "start-up: sigma --help",
                  "start-up: entra-sigma compile, 1 rule": "start-up: sigma-cli convert, 1 rule",
                  "start-up: entra-sigma validate, 1 rule": "start-up: sigma-cli convert, 1 rule"})
    print()
    print(f"machine: {machine()}")
    print(f"load: {args.busy} spinning process(es) ({BUSY_LOOP!r} each); load average before {load_before[0]:.2f}, "
          f"after {load_after[0]:.2f}")
    print(f"rules: {args.rules} SigmaHQ-style (entra-sigma got {spelling}); {args.rules} beta rules")
    print(f"{args.repeat} runs each, fresh process per run; median, best, CPU (median), peak RSS (max)\n")
    print(f"| {'command':44s} | median s | best s | CPU s | peak MB | vs sigma-cli (median) |")
    print(f"|{'-' * 46}|---------:|-------:|------:|--------:|----------------------:|")
    for s in series.values():
        versus = "" if s.label.startswith(("sigma-cli", "start-up: sig")) else f"{series[peers[s.label]].median / s.median:.2f}x"
        print(f"| {s.label:44s} | {s.median:8.2f} | {s.best:6.2f} | {s.cpu:5.2f} | {s.peak_mb:7.0f} | {versus:>21s} |")
    print(f"\nbuild --watch, 1 rule changed ({args.rules} rules): from the edit to the 'built' line median "
          f"{statistics.median(watched):.3f} s (best {min(watched):.3f} s, polling every 0.05 s); the build itself "
          f"median {statistics.median(watched_own):.3f} s (best {min(watched_own):.3f} s)")
    if kusto:
        print(f"Kusto.Language: {kusto['queries']} queries in {kusto['all_queries_s']:.2f} s "
              f"(Node start-up and one query {kusto['node_and_one_query_s']:.2f} s): {kusto['per_query_ms']:.2f} ms per query; "
              f"{kusto['ours_with_diagnostics']} of ours with diagnostics; sigma-cli's: {kusto['sigma_cli_with_diagnostics']} of "
              f"{kusto['sigma_cli_queries']} (e.g. {kusto['sigma_cli_example']})")
    compile_ratio = peer / series["entra-sigma compile"].median
    cold = series["entra-sigma build (cold)"].median
    incremental = series[incremental_labels[0]].median
    share = incremental / cold
    peak = max(s.peak_mb for label, s in series.items() if label.startswith(("entra", "beta")))
    print("\ngoals:")
    print(f"  compile at least {GOALS['compile_ratio']}x faster than sigma-cli: {compile_ratio:.2f}x "
          f"{'met' if compile_ratio >= GOALS['compile_ratio'] else 'NOT met'}")
    print(f"  incremental build (1 rule changed) at most {GOALS['incremental_share']:.0%} of the cold build: "
          f"{incremental:.2f} s of {cold:.2f} s = {share:.1%} {'met' if share <= GOALS['incremental_share'] else 'NOT met'}; "
          f"build --watch: {statistics.median(watched):.2f} s from the edit = {statistics.median(watched) / cold:.1%} "
          f"{'met' if statistics.median(watched) / cold <= GOALS['incremental_share'] else 'NOT met'}")
    print(f"  peak memory under {GOALS['peak_mb']} MB: {peak:.0f} MB {'met' if peak < GOALS['peak_mb'] else 'NOT met'}")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine(), "busy_processes": args.busy, "load_before": load_before, "load_after": load_after,
            "rules": args.rules, "spelling": spelling, "repeat": args.repeat,
            "series": {s.label: {"median_s": s.median, "best_s": s.best, "cpu_s": s.cpu, "peak_mb": s.peak_mb,
                                 "runs_s": [r.seconds for r in s.runs]} for s in series.values()},
            "watch_edit_to_built_s": watched, "watch_build_s": watched_own, "kusto": kusto,
            "goals": {"compile_ratio": compile_ratio, "incremental_share": share, "peak_mb": peak},
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()

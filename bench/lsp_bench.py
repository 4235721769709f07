"""Benchmark: how soon `entra-sigma lsp` shows diagnostics for a 200-line rule, against its peers.

A 200-line rule (a long description, thirty selections, deployment settings) is edited a
character at a time; each edit is timed from the change to the diagnostics. Measured, in one
run, on the same rule:

  1. the server, end to end: the real `entra-sigma lsp` process driven over standard input and
     output by pygls' client, debounce 0: from `didChange` to the `publishDiagnostics` of that
     version (the first, cold, on its own; then the median of the rest);
  2. the server's check in process (`checks.check_rule_file`: what it runs per change);
  3. peer: the `validate` path itself in process (`build.build_outputs` of the file, from disk);
  4. peer: the JSON-Schema-only check an editor makes today with the YAML language server
     (PyYAML + jsonschema against schemas/rule.schema.json): fewer checks, for scale;
  5. peer: `entra-sigma validate FILE` as a process, what a detection engineer runs today.

Usage: python bench/lsp_bench.py [--edits 30]. Speed is measured here, never in timed tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from entra_sigma.build import Compiler, build_outputs
from entra_sigma.validate.schema import rule_validator
from entra_sigma.verbs.lsp.checks import check_rule_file
from entra_sigma.verbs.lsp.project import Project
from lsprotocol import types
from pygls.lsp.client import LanguageClient

SELECTIONS = 30


def long_rule() -> str:
    """A valid rule of 200 lines."""
    lines = [
        "title: A long rule for the language server benchmark",
        "id: 0b4f3a52-7c1e-4d9a-8f60-2e5b9c7d1a34",
        "status: experimental",
        "description: |",
        *[f"  Line {n} of a description that explains what the rule finds and why it matters to an analyst." for n in range(40)],
        "author: entra-sigma",
        "date: '2026-12-01'",
        "tags:",
        "  - attack.credential_access",
        "  - attack.t1110.003",
        "  - attack.initial_access",
        "  - attack.t1078.004",
        "logsource:",
        "  product: entra",
        "  service: signins",
        "detection:",
    ]
    for n in range(SELECTIONS):
        lines += [f"  client_{n}:", f"    userAgent|contains: tool-{n}/", f"    appDisplayName: App {n}", f"    status.errorCode: {50000 + n}"]
    lines.append("  condition: 1 of client_*")
    lines += ["fields:", "  - userPrincipalName", "  - ipAddress", "  - appDisplayName", "  - status.errorCode",
              "falsepositives:", "  - Administrators testing their own scripts", "level: medium",
              "sentinel:", "  queryFrequency: 1h", "  queryPeriod: 1h"]
    lines += [f"# padding comment {n}" for n in range(200 - len(lines))]
    assert len(lines) == 200
    return "\n".join(lines) + "\n"


def edited(text: str, n: int) -> str:
    """The rule after the n-th keystroke: the first selection's value grows by a letter."""
    return text.replace("tool-0/", "tool-0/" + "x" * n, 1)


def timed(work, repeat: int) -> tuple[float, float, list[float]]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:] or times), times


async def server_latencies(root: Path, path: Path, text: str, edits: int) -> tuple[float, list[float]]:
    """(first diagnostics after opening, then each edit's) through the real server process."""
    client = LanguageClient("lsp-bench", "1")
    arrived: dict[int, float] = {}
    waiting: dict[int, asyncio.Future] = {}

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
        arrived[params.version] = time.perf_counter()
        if params.version in waiting and not waiting[params.version].done():
            waiting[params.version].set_result(params)

    await client.start_io(sys.executable, "-c", "from entra_sigma.entry import main; main()", "lsp")
    await client.initialize_async(types.InitializeParams(
        capabilities=types.ClientCapabilities(), root_uri=root.as_uri(),
        initialization_options={"debounce": 0}))
    client.initialized(types.InitializedParams())
    uri = path.as_uri()
    loop = asyncio.get_running_loop()

    async def send(version: int, body: str, opening: bool) -> float:
        waiting[version] = loop.create_future()
        start = time.perf_counter()
        if opening:
            client.text_document_did_open(types.DidOpenTextDocumentParams(types.TextDocumentItem(uri, "yaml", version, body)))
        else:
            client.text_document_did_change(types.DidChangeTextDocumentParams(
                types.VersionedTextDocumentIdentifier(version=version, uri=uri), [types.TextDocumentContentChangeWholeDocument(text=body)]))
        params = await asyncio.wait_for(waiting[version], 60)
        assert not [d for d in params.diagnostics if d.severity == types.DiagnosticSeverity.Error], params.diagnostics
        return arrived[version] - start

    first = await send(1, text, True)
    latencies = [await send(n + 1, edited(text, n), False) for n in range(1, edits + 1)]
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return first, latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=30)
    parser.add_argument("--json", type=Path, help="Also write the figures here.")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="entra-sigma-lsp-bench-"))
    (root / "rules").mkdir()
    path = root / "rules" / "long.yml"
    text = long_rule()
    path.write_text(text, encoding="utf-8")
    compiler = Compiler()
    snapshot: dict[Path, tuple[str, int]] = {}
    project = Project(root, lambda p: snapshot.get(p))
    counter = iter(range(10**6))

    def lsp_check():
        snapshot[path.resolve()] = (edited(text, next(counter) % 50), next(counter))
        findings = check_rule_file(project, compiler, path)
        assert not [d for d in findings.diagnostics if d.severity == "error"], findings.diagnostics

    def validate_path():
        outputs = build_outputs(compiler, [path])
        assert outputs.ok

    validator = rule_validator()

    def schema_only():
        errors = list(validator.iter_errors(yaml.safe_load(text)))
        assert not errors

    def validate_process():
        done = subprocess.run([sys.executable, "-c", "from entra_sigma.entry import main; main()", "validate", str(path)],
                              capture_output=True, text=True, env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})
        assert done.returncode == 0, done.stderr

    results = {}
    first, latencies = asyncio.run(server_latencies(root, path, text, args.edits))
    results["server, end to end (didChange → publishDiagnostics)"] = (first, statistics.median(latencies), latencies)
    results["server's check, in process"] = timed(lsp_check, args.edits + 1)
    results["peer: the validate path, in process"] = timed(validate_path, args.edits + 1)
    results["peer: JSON Schema only (YAML language server)"] = timed(schema_only, args.edits + 1)
    results["peer: `entra-sigma validate FILE`, a process"] = timed(validate_process, 5)
    load = os.getloadavg()
    print(f"a {len(text.splitlines())}-line rule, {args.edits} edits; load average {load[0]:.2f}")
    peer = results["peer: the validate path, in process"][1]
    for name, (cold, median, times) in results.items():
        print(f"{name:54s} first {cold * 1000:7.1f} ms  then median {median * 1000:7.1f} ms  "
              f"(max {max(times[1:] or times) * 1000:6.1f})  {median / peer:5.2f}x validate path")
    if args.json:
        args.json.write_text(json.dumps({k: {"first_ms": v[0] * 1000, "median_ms": v[1] * 1000} for k, v in results.items()},
                                        indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

"""Check emitted KQL with Microsoft's own Kusto.Language parser and analyzer.

Our own tests can only show that the compiler emits the text we expect; they
cannot show that Sentinel accepts it. So every query is also run through
``@kusto/language-service-next`` (the official parser, semantic analyzer and
best-practice analyzers) by ``tools/kusto-check/check.js``. That script adds a
strict comparison check ("ES-TYPE"), because Kusto.Language accepts
``ResultType == 50126`` on a string column, which would silently never match.

Node takes about two seconds to load the library, so queries are checked in
batches: one ``node`` process per :func:`check_queries` call.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "KustoCheckError",
    "KustoCheckUnavailable",
    "KustoDiagnostic",
    "check_queries",
    "ensure_available",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECKER_DIR = REPO_ROOT / "tools" / "kusto-check"
PACKAGE = "@kusto/language-service-next"
INSTALL_HINT = "run `npm ci --prefix tools/kusto-check` from the repository root"


class KustoCheckError(RuntimeError):
    """The checker could not produce a verdict (crash, bad input, bad output)."""


class KustoCheckUnavailable(KustoCheckError):
    """Node or the pinned npm package is missing, so nothing can be checked."""


@dataclass(frozen=True)
class KustoDiagnostic:
    """One Error or Warning about a query; any diagnostic means the query fails.

    ``line`` and ``column`` are 1-based; ``snippet`` is the offending text.
    """

    severity: str
    code: str
    message: str
    line: int
    column: int
    snippet: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.severity} {self.code}: {self.message}"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise KustoCheckUnavailable(
            f"`node` was not found on PATH; the KQL checker needs Node.js 18+ ({INSTALL_HINT})"
        )
    return node


def ensure_available() -> None:
    """Raise :class:`KustoCheckUnavailable` unless node and the pinned package are installed.

    Checks the installed version against ``package.json`` too, so a stale
    ``node_modules`` cannot silently validate against another Kusto.Language.
    """
    _node()
    installed = CHECKER_DIR / "node_modules" / PACKAGE / "package.json"
    if not installed.is_file():
        raise KustoCheckUnavailable(f"{PACKAGE} is not installed in {CHECKER_DIR}; {INSTALL_HINT}")
    wanted = json.loads((CHECKER_DIR / "package.json").read_text())["dependencies"][PACKAGE]
    found = json.loads(installed.read_text(encoding="utf-8-sig"))["version"]
    if found != wanted:
        raise KustoCheckUnavailable(f"{PACKAGE} {found} is installed but {wanted} is pinned; {INSTALL_HINT}")


def check_queries(
    queries: Sequence[tuple[str, str]],
    tables: Mapping[str, Sequence[tuple[str, str]]],
) -> dict[str, list[KustoDiagnostic]]:
    """Check ``(id, kql)`` pairs against ``tables`` (name -> ``(column, type)`` pairs).

    Column types are Log Analytics names: string, int, long, real, decimal,
    bool, datetime, dynamic, guid, timespan. Returns ``{id: diagnostics}`` in
    input order; an empty list means the query passed. Ids must be unique.
    """
    ids = [query_id for query_id, _ in queries]
    if len(set(ids)) != len(ids):
        raise ValueError("query ids must be unique")
    if not queries:
        return {}
    ensure_available()
    request = {
        "tables": {name: [[col, typ] for col, typ in columns] for name, columns in tables.items()},
        "queries": [{"id": query_id, "text": text} for query_id, text in queries],
    }
    proc = subprocess.run(
        [_node(), str(CHECKER_DIR / "check.js")],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=CHECKER_DIR,
        check=False,
    )
    if proc.returncode != 0:
        raise KustoCheckError(f"check.js exited with status {proc.returncode}: {proc.stderr.strip()}")
    try:
        results = json.loads(proc.stdout)["results"]
    except (ValueError, KeyError) as exc:
        raise KustoCheckError(f"check.js printed unexpected output: {proc.stdout[:200]!r}") from exc
    if [r["id"] for r in results] != ids:
        raise KustoCheckError("check.js returned results for different query ids")
    return {
        r["id"]: [
            KustoDiagnostic(d["severity"], d["code"], d["message"], d["line"], d["column"], d["snippet"])
            for d in r["diagnostics"]
        ]
        for r in results
    }

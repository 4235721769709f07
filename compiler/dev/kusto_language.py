"""Check emitted KQL with Microsoft's own Kusto.Language parser and analyzer.

Our own tests can only show that the compiler emits the text we expect; they
cannot show that Sentinel accepts it. So every query is also run through
``@kusto/language-service-next`` (the official parser, semantic analyzer and
best-practice analyzers) by ``tools/kusto-check/check.js``. That script adds a
strict comparison check ("ES-TYPE"), because Kusto.Language accepts
``ResultType == 50126`` on a string column, which would silently never match.

Node takes about two seconds to load the library, so queries are checked in
batches: one ``node`` process per :func:`check_queries` call, or one process for a
whole :class:`KustoSession` (the test suite keeps one per test session, and property
tests check one query per example through it).

:func:`analyze_queries` also returns what the parser read (literals, token kinds,
names, comments), so tests can prove that a rule's value reached the query as one
intact constant and injected nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "KustoAnalysis",
    "KustoCheckError",
    "KustoCheckUnavailable",
    "KustoDiagnostic",
    "KustoLiteral",
    "KustoSession",
    "analyze_queries",
    "check_queries",
    "ensure_available",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
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


@dataclass(frozen=True)
class KustoLiteral:
    """A literal as the parser read it: ``kind`` is String, Long, Int, Real, Boolean,
    DateTime, TimeSpan, ...; ``value`` is a string's unescaped value, or the raw text of
    any other literal (``12``, ``2025-01-31``)."""

    kind: str
    value: str | None


@dataclass(frozen=True)
class KustoAnalysis:
    """Diagnostics plus what the parser read from one query."""

    diagnostics: list[KustoDiagnostic]
    literals: list[KustoLiteral] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)  # token kinds, e.g. "StringLiteralToken"
    names: list[tuple[str, str]] = field(default_factory=list)  # (name, Column|Table|Function|...|Declaration)
    comments: list[str] = field(default_factory=list)  # "// ..." without the line end

    @property
    def strings(self) -> list[str]:
        """The values of the string literals, in order."""
        return [lit.value for lit in self.literals if lit.kind == "String"]


def _request(
    queries: Sequence[tuple[str, str]], tables: Mapping[str, Sequence[tuple[str, str]]], details: bool,
    watchlist_columns: Sequence[str] = (),
) -> str:
    """`watchlist_columns`: columns of Sentinel's `_GetWatchlist` beyond SearchKey and the
    other three every watchlist has (the checker always declares the function)."""
    ids = [query_id for query_id, _ in queries]
    if len(set(ids)) != len(ids):
        raise ValueError("query ids must be unique")
    return json.dumps({
        "tables": {name: [[col, typ] for col, typ in columns] for name, columns in tables.items()},
        "queries": [{"id": query_id, "text": text} for query_id, text in queries],
        "details": details,
        "watchlistColumns": list(watchlist_columns),
    })


def _results(queries: Sequence[tuple[str, str]], output: str) -> dict[str, KustoAnalysis]:
    try:
        document = json.loads(output)
    except ValueError as exc:
        raise KustoCheckError(f"check.js printed unexpected output: {output[:200]!r}") from exc
    if "error" in document:
        raise KustoCheckError(f"check.js refused the request: {document['error']}")
    results = document.get("results")
    if not isinstance(results, list) or [r["id"] for r in results] != [query_id for query_id, _ in queries]:
        raise KustoCheckError("check.js returned results for different query ids")
    return {
        r["id"]: KustoAnalysis(
            [
                KustoDiagnostic(d["severity"], d["code"], d["message"], d["line"], d["column"], d["snippet"])
                for d in r["diagnostics"]
            ],
            [KustoLiteral(lit["kind"], lit["value"]) for lit in r.get("literals", [])],
            r.get("tokens", []),
            [(n["name"], n["kind"]) for n in r.get("names", [])],
            r.get("comments", []),
        )
        for r in results
    }


def analyze_queries(
    queries: Sequence[tuple[str, str]],
    tables: Mapping[str, Sequence[tuple[str, str]]],
) -> dict[str, KustoAnalysis]:
    """Like :func:`check_queries`, with the literals, tokens, names and comments of each query."""
    if not queries:
        return {}
    return _results(queries, _run_checker(_request(queries, tables, details=True)))


def check_queries(
    queries: Sequence[tuple[str, str]],
    tables: Mapping[str, Sequence[tuple[str, str]]],
) -> dict[str, list[KustoDiagnostic]]:
    """Check ``(id, kql)`` pairs against ``tables`` (name -> ``(column, type)`` pairs).

    Column types are Log Analytics names: string, int, long, real, decimal,
    bool, datetime, dynamic, guid, timespan. Returns ``{id: diagnostics}`` in
    input order; an empty list means the query passed. Ids must be unique.
    """
    if not queries:
        _request(queries, tables, details=False)  # still refuse duplicate ids
        return {}
    output = _run_checker(_request(queries, tables, details=False))
    return {query_id: result.diagnostics for query_id, result in _results(queries, output).items()}


def _run_checker(request: str) -> str:
    """One Node process over one batch: the request on stdin, the results on stdout."""
    ensure_available()
    proc = subprocess.run(
        [_node(), str(CHECKER_DIR / "check.js")],
        input=request,
        capture_output=True,
        text=True,
        encoding="utf-8",
        cwd=CHECKER_DIR,
        check=False,
    )
    if proc.returncode != 0:
        raise KustoCheckError(f"check.js exited with status {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


class KustoSession:
    """One long-lived checker process (``check.js --serve``) for many small requests.

    Use as a context manager; :meth:`analyze` sends one request and waits for its line.
    """

    def __init__(self, tables: Mapping[str, Sequence[tuple[str, str]]]):
        self.tables = tables
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> "KustoSession":
        ensure_available()
        self._proc = subprocess.Popen(
            [_node(), str(CHECKER_DIR / "check.js"), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            cwd=CHECKER_DIR,
        )
        return self

    def __exit__(self, *exc_info) -> None:
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.wait(timeout=30)
            self._proc = None

    def analyze(
        self,
        queries: Sequence[tuple[str, str]],
        details: bool = True,
        tables: Mapping[str, Sequence[tuple[str, str]]] | None = None,
        watchlist_columns: Sequence[str] = (),
    ) -> dict[str, KustoAnalysis]:
        """Check ``(id, kql)`` pairs; without ``details`` only diagnostics are filled (faster).

        ``tables`` replaces the session's tables for this request only, so one process can
        serve checks against other schemas too (the checker rebuilds its symbols when they change).
        """
        if self._proc is None:
            raise KustoCheckError("KustoSession is not open (use it in a with block)")
        if not queries:
            _request(queries, self.tables, details=details)  # still refuse duplicate ids
            return {}
        request = _request(queries, self.tables if tables is None else tables, details=details, watchlist_columns=watchlist_columns)
        self._proc.stdin.write(request + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise KustoCheckError(f"check.js --serve stopped (status {self._proc.poll()})")
        return _results(queries, line)

    def analyze_one(self, query: str) -> KustoAnalysis:
        return self.analyze([("q", query)])["q"]

    def check(
        self,
        queries: Sequence[tuple[str, str]],
        tables: Mapping[str, Sequence[tuple[str, str]]] | None = None,
        watchlist_columns: Sequence[str] = (),
    ) -> dict[str, list[KustoDiagnostic]]:
        """:func:`check_queries` through this process: ``{id: diagnostics}`` in input order."""
        analyses = self.analyze(queries, False, tables, watchlist_columns)
        return {query_id: result.diagnostics for query_id, result in analyses.items()}

"""Benchmark: every correlation shape on a large synthetic sign-in table, old shape against new.

The data: --rows sign-ins (default 1,000,000) over 14 days, 60 % in SigninLogs and 40 % in
AADNonInteractiveUserSignInLogs; 5 % fail with a wrong password (50126); 20,000 users, skewed
(the busiest user has about 0.7 % of all sign-ins); 70 % of sign-ins come from the user's own
address, 30 % from 200 shared addresses, skewed again (the busiest, an office's NAT, carries
about 8 % of all sign-ins); 3 % from abroad. On top: 10 password sprays (40 users from one new
address in 8 minutes, then a success from it) and 30 brute-force bursts (8 wrong passwords of
one user in 4 minutes). Every value comes from a hash of the row number, so the data is the
same bytes on every run and machine.

The shapes: bench/correlations/*.yml (event_count, value_count, temporal, temporal_ordered,
value_avg) and the bundled chain and rare-country rules, compiled by this checkout; the old
shapes are bench/correlation_old_shapes/*.kql, the queries the compiler emitted before issue 12
(commit b4899c8). The chain and the metrics did not exist then; the chain is set against the
old temporal_ordered over the same two rules, the fallback a user had (it fires on any single
failure followed by a success from a shared address).

Each query runs --repeat times, each in a fresh process on the local engine (duckdb-kql on
DuckDB, 2 threads, --memory-limit), with --timeout; the median wall time and the largest peak
resident set of the process (`wait4`) are reported, with the rows the query's joins produced
(DuckDB's profile: the products a query builds, which Kusto builds too, whatever the local
engine's speed), the number of groups found, and whether old and new found the same groups. Usage: python bench/correlation_bench.py [--rows 1000000] [--json out.json].
Speed is measured here, never in timed tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CORPUS = BENCH / ".corpus"
SHAPES = [  # (name, new rule file, old query file or None, the old shape it is set against)
    ("event_count", BENCH / "correlations" / "event_count.yml", "event_count"),
    ("value_count", BENCH / "correlations" / "value_count.yml", "value_count"),
    ("temporal", BENCH / "correlations" / "temporal.yml", "temporal"),
    ("temporal_ordered", BENCH / "correlations" / "temporal_ordered.yml", "temporal_ordered"),
    ("chain: spray, then success", REPO / "rules" / "correlation" / "password-spray-then-success.yml", "temporal_ordered"),
    ("value_avg", BENCH / "correlations" / "value_avg.yml", None),
    ("value_percentile of text (rare country)", REPO / "rules" / "correlation" / "rare-country.yml", None),
]


def unit(salt: str) -> str:
    """A number in [0, 1) from the row number, the same on every run."""
    return f"((hash(i, '{salt}') % 1000003) / 1000003.0)"


def generate(path: Path, rows: int) -> None:
    """Write the synthetic tables into a DuckDB file, with the bundled tables' columns."""
    import duckdb_kql

    sys.path.insert(0, str(REPO))
    from entra_sigma.map.tables import bundled_registry
    from entra_sigma.verbs.ruletests.replay import DUCKDB_TYPES

    if path.exists():
        path.unlink()
    con = duckdb_kql.connect(str(path))
    registry = bundled_registry()
    for name in ("SigninLogs", "AADNonInteractiveUserSignInLogs"):
        table = registry.tables[name]
        columns = ", ".join(f'"{c}" {DUCKDB_TYPES.get(t, "VARCHAR")}' for c, t in table.columns.items())
        con.execute(f'CREATE TABLE "{name}" ({columns})')
    user = f"CAST(floor(20000 * pow({unit('user')}, 2)) AS INTEGER)"
    base = f"""
        SELECT i,
          TIMESTAMP '2026-03-01' + to_microseconds(CAST({unit('time')} * 14 * 86400e6 AS BIGINT)) AS t,
          {user} AS uid,
          CASE WHEN {unit('shared')} < 0.3
               THEN '203.0.113.' || CAST(floor(200 * pow({unit('nat')}, 4)) AS INTEGER)
               ELSE '198.18.' || CAST({user} // 250 AS INTEGER) || '.' || CAST({user} % 250 AS INTEGER) END AS ip,
          CASE WHEN {unit('fail')} < 0.05 THEN '50126' ELSE '0' END AS code,
          CASE WHEN {unit('country')} < 0.97 THEN 'US' WHEN {unit('country')} < 0.99 THEN 'GB'
               ELSE ['BR', 'NG', 'IN', 'JP', 'ZA'][1 + CAST(floor(5 * {unit('abroad')}) AS INTEGER)] END AS country,
          CAST(50 + floor(3000 * {unit('ms')}) AS INTEGER) AS ms,
          {unit('table')} < 0.6 AS interactive
        FROM range({rows}) t(i)
        UNION ALL  -- sprays: 40 users from one address in 8 minutes, then a success 15 minutes later
        SELECT 10000000 + s * 100 + k,
          TIMESTAMP '2026-03-02 09:55' + INTERVAL (s * 31) HOUR + INTERVAL (k * 12) SECOND,
          1000 + s * 50 + k, '192.0.2.' || s, CASE WHEN k < 40 THEN '50126' ELSE '0' END, 'US', 300, true
        FROM range(10) a(s), range(41) b(k)
        UNION ALL  -- brute force: 8 wrong passwords of one user in 4 minutes
        SELECT 20000000 + b * 100 + k,
          TIMESTAMP '2026-03-03 07:58' + INTERVAL (b * 9) HOUR + INTERVAL (k * 30) SECOND,
          5000 + b, '198.51.100.' || b, '50126', 'US', 300, true
        FROM range(30) a(b), range(8) c(k)
    """
    con.execute(f"CREATE TEMP TABLE base AS {base}")
    for name, location, ms, flag in (("SigninLogs", "to_json(struct_pack(countryOrRegion := country))", '"ProcessingTimeInMilliseconds"', "interactive"),
                                     ("AADNonInteractiveUserSignInLogs", "CAST(to_json(struct_pack(countryOrRegion := country)) AS VARCHAR)", '"ProcessingTimeInMs"', "NOT interactive")):
        con.execute(f"""
            INSERT INTO "{name}" ("TimeGenerated", "UserPrincipalName", "IPAddress", "ResultType", "LocationDetails", {ms}, "Type")
            SELECT t, 'user' || uid || '@contoso.com', ip, code, {location}, CAST(ms AS VARCHAR), '{name}'
            FROM base WHERE {flag} ORDER BY t
        """)
    con.close()


def run_one(database: str, query_file: str, memory_limit: str) -> None:
    """In a child process: run one query, print rows, groups and seconds as JSON."""
    import duckdb_kql
    from duckdb_kql.engine import schema

    con = duckdb_kql.connect(database, read_only=True)
    con.execute("SET threads = 2")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    text = Path(query_file).read_text(encoding="utf-8")
    sql = str(duckdb_kql.to_sql(text, schema=schema(con)))
    profile = Path(tempfile.mkstemp(suffix=".json")[1])
    con.execute("PRAGMA enable_profiling = 'json'")
    con.execute(f"PRAGMA profiling_output = '{profile}'")
    start = time.perf_counter()
    cursor = con.execute(sql)
    columns, rows = [d[0] for d in cursor.description], cursor.fetchall()
    seconds = time.perf_counter() - start
    con.execute("PRAGMA disable_profiling")
    joined = _joined_rows(json.loads(profile.read_text(encoding="utf-8")))
    profile.unlink()
    keys = [c for c in columns if c in ("userPrincipalName", "ipAddress", "location_countryOrRegion")]
    groups = sorted({"|".join(str(row[columns.index(k)]) for k in keys) for row in rows})
    print(json.dumps({"seconds": seconds, "rows": len(rows), "groups": groups, "joined": joined}))


def _joined_rows(node: dict) -> int:
    """Rows the joins of the plan produced (DuckDB's profile): the products a query builds,
    which Kusto builds too, whatever the local engine's speed at it."""
    kind = node.get("operator_type") or node.get("type") or ""
    rows = node.get("operator_cardinality") or node.get("intermediate_rows") or 0
    children = node.get("children", []) + node.get("operator", [])
    return (rows if "JOIN" in kind else 0) + sum(_joined_rows(child) for child in children)


def measure_median(database: Path, query: Path, timeout: int, memory_limit: str, repeat: int) -> dict:
    """`measure` `repeat` times: the median time, the largest peak; the rest from the first run."""
    runs = [measure(database, query, timeout, memory_limit) for _ in range(repeat)]
    result = dict(runs[0])
    if all(r["status"] == "ok" for r in runs):
        result["seconds"] = statistics.median(r["seconds"] for r in runs)
        result["runs"] = [round(r["seconds"], 3) for r in runs]
    result["peak_mb"] = max(r["peak_mb"] for r in runs)
    return result


def measure(database: Path, query: Path, timeout: int, memory_limit: str) -> dict:
    """Run one query in a fresh process: wall time, rows and groups from the child, its peak
    resident set from `wait4`; stopped (and reported so) after `timeout` seconds."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen(
            [sys.executable, __file__, "--run", str(query), "--database", str(database), "--memory-limit", memory_limit],
            stdout=out, stderr=err, text=True,
        )
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        _, status, usage = os.wait4(process.pid, 0)
        timer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        peak = round(usage.ru_maxrss / 1024)
        if process.returncode == -9:
            return {"status": f"stopped after {timeout} s", "peak_mb": peak}
        if process.returncode != 0:
            last = (err.read().strip().splitlines() or ["?"])[-1]
            return {"status": f"failed: {last[:160]}", "peak_mb": peak}
        result = json.loads(out.read())
    result.update(status="ok", peak_mb=peak)
    return result


def compile_new(rule_file: Path, folder: Path) -> Path:
    """The correlation query this checkout compiles for `rule_file` (Sentinel)."""
    sys.path.insert(0, str(REPO))
    from entra_sigma.build import Compiler

    result = Compiler().compile_paths([rule_file])
    texts = [c.texts["sentinel"] for c in result.compiled if c.rule.correlation is not None]
    if len(texts) != 1:
        raise SystemExit(f"{rule_file}: expected one correlation query, got {len(texts)}")
    path = folder / f"{rule_file.stem}.new.kql"
    path.write_text(texts[0], encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--timeout", type=int, default=300, help="seconds per query")
    parser.add_argument("--memory-limit", default="8GB", help="DuckDB's memory_limit per query")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each query (the median time is shown)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_one(args.database, args.run, args.memory_limit)
        return
    CORPUS.mkdir(exist_ok=True)
    database = CORPUS / f"correlations-{args.rows}.duckdb"
    started = time.perf_counter()
    generate(database, args.rows)
    print(f"data: {args.rows:,} rows (+ attacks) in {database.relative_to(REPO)} ({time.perf_counter() - started:.1f} s)", flush=True)
    results = []
    print("| shape | old s | old peak MB | old rows joined | new s | new peak MB | new rows joined | groups old / new | same groups |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, rule_file, old_name in SHAPES:
        new = measure_median(database, compile_new(rule_file, CORPUS), args.timeout, args.memory_limit, args.repeat)
        old_file = BENCH / "correlation_old_shapes" / f"{old_name}.kql"
        old = measure_median(database, old_file, args.timeout, args.memory_limit, args.repeat) if old_name else None
        same = ""
        if old and old_name == name and old["status"] == "ok" and new["status"] == "ok":
            same = "yes" if old["groups"] == new["groups"] else f"no ({len(set(old['groups']) ^ set(new['groups']))} differ)"
        results.append({"shape": name, "old_shape": old_name, "old": old, "new": new})
        print(f"| {name} | {_cell(old, 'seconds')} | {_cell(old, 'peak_mb')} | {_cell(old, 'joined')} "
              f"| {_cell(new, 'seconds')} | {_cell(new, 'peak_mb')} | {_cell(new, 'joined')} "
              f"| {_cell(old, 'groups')} / {_cell(new, 'groups')} | {same} |", flush=True)
    if args.json:
        for result in results:
            for side in ("old", "new"):
                if result[side] and "groups" in result[side]:
                    result[side]["groups"] = len(result[side]["groups"])
        args.json.write_text(json.dumps({"rows": args.rows, "results": results}, indent=2) + "\n", encoding="utf-8")


def _cell(result: dict | None, key: str) -> str:
    if result is None:
        return "—"
    if result["status"] != "ok":
        return result["status"] if key == "seconds" else (f"{result['peak_mb']}" if key == "peak_mb" else "")
    value = result[key]
    if key == "seconds":
        return f"{value:.2f}"
    if key == "joined":
        return f"{value:,}"
    return str(len(value) if key == "groups" else value)


if __name__ == "__main__":
    main()

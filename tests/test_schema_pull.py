"""`entra-sigma schema pull` against the loopback Log Analytics query API, and `compile --table-schema` with what it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from entra_sigma.map.tables import bundled_registry, table_from_getschema

from tests.deploy_helpers import fake, run  # noqa: F401 - fixture
from tests.helpers import PRT_RULE

REGISTRY = bundled_registry()
SIGNIN_TABLES = sorted(t for t, table in REGISTRY.tables.items() if table.platform == "sentinel")


def workspace_tables() -> dict[str, list[tuple[str, str]]]:
    """The bundled columns; this workspace's SigninLogs also has IncomingTokenType."""
    tables = {name: list(REGISTRY.tables[name].columns.items()) for name in SIGNIN_TABLES}
    if "IncomingTokenType" not in dict(tables["SigninLogs"]):
        tables["SigninLogs"].append(("IncomingTokenType", "string"))
    return tables


def pull(fake, out: Path, *extra: str):
    return run(["schema", "pull", "--workspace-id", fake.workspace_id, "--out", out, "--logs-endpoint", fake.url,
                "--max-wait", "0.02", *extra])


def test_pull_writes_every_sign_in_table_as_the_workspace_has_it(fake, tmp_path):
    fake.tables = workspace_tables()
    result = pull(fake, tmp_path / "schemas")
    assert result.exit_code == 0, result.stderr
    written = sorted(p.name for p in (tmp_path / "schemas").iterdir())
    assert written == sorted(f"{t}.json" for t in SIGNIN_TABLES)
    for table in SIGNIN_TABLES:
        path = tmp_path / "schemas" / f"{table}.json"
        rows = json.loads(path.read_text(encoding="utf-8"))
        assert list(rows[0]) == ["ColumnName", "ColumnOrdinal", "DataType", "ColumnType"]
        assert [(r["ColumnName"], r["ColumnType"]) for r in rows] == fake.tables[table]
        assert table_from_getschema(path, REGISTRY.tables[table]).columns == dict(fake.tables[table])
    queries = [r.body["query"] for r in fake.requests]
    assert queries == [f"{t} | getschema" for t in SIGNIN_TABLES]
    assert all(r.path == f"/v1/workspaces/{fake.workspace_id}/query" for r in fake.requests)


def test_compile_reads_the_pulled_files(fake, tmp_path, monkeypatch, kusto):
    fake.tables = workspace_tables()
    monkeypatch.chdir(tmp_path)
    assert pull(fake, Path("schemas"), "--tables", "SigninLogs").exit_code == 0
    Path("prt.yml").write_text(PRT_RULE, encoding="utf-8")
    result = run(["compile", "prt.yml", "--table-schema", "schemas/SigninLogs.json"])
    assert (result.exit_code, result.stderr) == (0, "")
    assert "    (SigninLogs\n    | where IncomingTokenType has \"primaryRefreshToken\")," in result.stdout
    schema = {"SigninLogs": dict(fake.tables["SigninLogs"])}
    assert kusto.check([("prt", result.stdout)], {**{n: list(t.columns.items()) for n, t in REGISTRY.tables.items()},
                                                 **{k: list(v.items()) for k, v in schema.items()}}) == {"prt": []}


def test_a_table_the_workspace_lacks_is_reported_and_left_out(fake, tmp_path):
    fake.tables = {k: v for k, v in workspace_tables().items() if k != "AADManagedIdentitySignInLogs"}
    result = pull(fake, tmp_path)
    assert result.exit_code == 0
    assert "warning: the workspace has no table AADManagedIdentitySignInLogs: not written" in result.stderr
    assert not (tmp_path / "AADManagedIdentitySignInLogs.json").exists()
    assert (tmp_path / "SigninLogs.json").exists()


def test_a_failure_writes_nothing(fake, tmp_path):
    fake.tables = workspace_tables()
    fake.fault("POST", "/query", "500", times=2, skip=1)  # the first table is read, the second fails twice
    result = pull(fake, tmp_path / "out", "--retries", "1")
    assert result.exit_code == 1
    assert len(fake.requests) == 3
    assert "getschema failed, nothing written: POST" in result.stderr and "HTTP 500" in result.stderr
    assert not (tmp_path / "out").exists()


def test_faults_are_retried(fake, tmp_path):
    fake.tables = workspace_tables()
    fake.fault("POST", "/query", "429", retry_after="1")
    fake.fault("POST", "/query", "drop")
    result = pull(fake, tmp_path, "--tables", "SigninLogs")
    assert result.exit_code == 0, result.stderr
    assert len(fake.requests) == 3


@pytest.mark.parametrize("args, message", [
    (["--tables", "SignInLogs"], "--tables: unknown sign-in table 'SignInLogs' (did you mean 'SigninLogs'?)"),
    (["--tables", "EntraIdSignInEvents"], "--tables: unknown sign-in table 'EntraIdSignInEvents'"),
    (["--tables", ","], "--tables: name at least one table"),
])
def test_unknown_tables_are_usage_errors(fake, tmp_path, args, message):
    result = pull(fake, tmp_path, *args)
    assert result.exit_code == 2 and message in result.stderr
    assert fake.requests == []


def test_the_workspace_id_is_a_guid(fake, tmp_path):
    result = run(["schema", "pull", "--workspace-id", "law-sentinel", "--out", tmp_path, "--logs-endpoint", fake.url])
    assert result.exit_code == 2 and "expected the workspace's id (a GUID)" in result.stderr


# -- a broken or hostile service ----------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    [1, 2, 3], "text", {"tables": "x"}, {"tables": [{"name": "t", "columns": 5, "rows": []}]},
    {"tables": [{"name": "t", "columns": [{"name": n, "type": "string"} for n in ("ColumnName", "ColumnOrdinal", "DataType", "ColumnType")],
                 "rows": [[{"x": 1}, 0, "System.String", "string"]]}]},
    {"tables": [{"name": "t", "columns": [{"name": "ColumnName", "type": "string"}], "rows": [[1, 2]]}]},
], ids=["list", "text", "tables as text", "columns as a number", "a name that is an object", "a short row"])
def test_an_answer_of_the_wrong_shape_writes_nothing(fake, tmp_path, body):
    """`[1, 2, 3]` and its like crashed the command (AttributeError, IndexError: internal errors)."""
    fake.fault("POST", "/query", "body", body=body, times=10)
    result = pull(fake, tmp_path / "out", "--tables", "SigninLogs")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "getschema failed, nothing written: POST" in result.stderr and "HTTP 200 InvalidResponse: " in result.stderr
    assert not (tmp_path / "out").exists() and len(fake.requests) == 1


def test_an_answer_past_the_size_bound_is_not_read_further(fake, tmp_path):
    from entra_sigma.verbs.deploy.answers import MAX_ANSWER_BYTES

    fake.fault("POST", "/query", "huge", size=400 << 20)
    result = pull(fake, tmp_path / "out", "--tables", "SigninLogs")
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert f"AnswerTooLarge: the answer is larger than {MAX_ANSWER_BYTES} bytes: not read further" in result.stderr
    assert fake.sent < 2 * MAX_ANSWER_BYTES and len(fake.requests) == 1

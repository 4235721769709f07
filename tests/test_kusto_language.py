"""Prove the Kusto.Language checker both rejects bad KQL and accepts good KQL.

All single-query cases go through one request to the session's checker (the ``kusto``
fixture of conftest.py, asked against this module's own tables) and each test then reads its
own result. ``check_queries``, one Node process per call, is checked to agree with it.
"""

from __future__ import annotations

import pytest
from entra_sigma.dev import kusto_language
from entra_sigma.dev.kusto_language import KustoCheckUnavailable, KustoDiagnostic, check_queries, ensure_available

TABLES = {
    "SigninLogs": [
        ("ResultType", "string"),
        ("Status", "dynamic"),
        ("TimeGenerated", "datetime"),
        ("X", "int"),
        ("S", "string"),
    ],
    "AADNonInteractiveUserSignInLogs": [
        ("ResultType", "string"),
        ("TimeGenerated", "datetime"),
    ],
}

# id -> (query, expected diagnostic codes; () means the query must pass)
CASES: dict[str, tuple[str, tuple[str, ...]]] = {
    "unknown_column": ("SigninLogs | where Foo == 1", ("KS142",)),
    "string_vs_number": ("SigninLogs | where ResultType == 50126", ("ES-TYPE",)),
    "string_vs_string": ('SigninLogs | where ResultType == "50126"', ()),
    "int_in_strings": ('SigninLogs | where X in ("a", "b")', ("ES-TYPE",)),
    "int_in_numbers": ("SigninLogs | where X in (1, 2)", ()),
    "tostring_dynamic": ('SigninLogs | where tostring(Status.errorCode) == "1"', ()),
    "toint_dynamic": ("SigninLogs | where toint(Status.errorCode) == 1", ()),
    "dynamic_vs_number": ("SigninLogs | where Status.errorCode == 1", ("ES-TYPE",)),
    "toint_ordering": ("SigninLogs | where toint(ResultType) > 50000", ()),
    "datetime_ago": ("SigninLogs | where TimeGenerated > ago(1d)", ()),
    "bool_vs_int": ("SigninLogs | where (X > 1) == 1", ("ES-TYPE",)),
    "union": (
        'union (SigninLogs | where ResultType == "50126"),'
        ' (AADNonInteractiveUserSignInLogs | where ResultType == "50126")',
        (),
    ),
    # A predicate over an aggregate inside summarize is accepted by the analyzer.
    "mv_apply": (
        'SigninLogs | mv-apply x = todynamic(S) on (summarize m = countif(tostring(x.a) =~ "b") > 0)',
        (),
    ),
    # Best-practice analyzer warnings count as failures.
    "join_without_kind": (
        "SigninLogs | join (AADNonInteractiveUserSignInLogs) on ResultType",
        ("KS508",),
    ),
}


@pytest.fixture(scope="session", autouse=True)
def checker_installed() -> None:
    """Fail loudly (never skip) when the checker is not installed."""
    try:
        ensure_available()
    except KustoCheckUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def results(kusto) -> dict[str, list[KustoDiagnostic]]:
    return kusto.check([(case_id, query) for case_id, (query, _) in CASES.items()], TABLES)


@pytest.mark.parametrize("case_id", list(CASES))
def test_case(case_id: str, results: dict[str, list[KustoDiagnostic]]) -> None:
    query, expected = CASES[case_id]
    diagnostics = results[case_id]
    assert tuple(d.code for d in diagnostics) == expected, "\n".join([query, *map(str, diagnostics)])


def test_syntax_error(kusto) -> None:
    (diagnostics,) = kusto.check([("q", "SigninLogs | where ResultType ==")], TABLES).values()
    assert diagnostics and all(d.severity == "Error" for d in diagnostics)


def test_type_mismatch_diagnostic_details(results: dict[str, list[KustoDiagnostic]]) -> None:
    (diag,) = results["string_vs_number"]
    assert diag == KustoDiagnostic(
        "Error", "ES-TYPE", "'==' compares string with long", 1, 20, "ResultType == 50126"
    )
    assert str(diag) == "1:20: Error ES-TYPE: '==' compares string with long"


def test_unknown_column_position(kusto) -> None:
    query = "SigninLogs\n| where TimeGenerated > ago(1d)\n| where Foo == 1"
    (diag,) = kusto.check([("q", query)], TABLES)["q"]
    assert (diag.code, diag.line, diag.column, diag.snippet) == ("KS142", 3, 9, "Foo")


def test_batch_keeps_input_order(kusto) -> None:
    """Both ways to run the checker: a process per call, and the session's long-lived one."""
    queries = [
        ("third", "SigninLogs | where Foo == 1"),
        ("first", "SigninLogs | take 1"),
        ("second", "SigninLogs | where ResultType == 1"),
    ]
    results = check_queries(queries, TABLES)
    assert list(results) == ["third", "first", "second"]
    assert [[d.code for d in diags] for diags in results.values()] == [["KS142"], [], ["ES-TYPE"]]
    assert kusto.check(queries, TABLES) == results


def test_a_session_checks_against_the_tables_a_request_names(kusto) -> None:
    """The session's own tables are the bundled ones; a request may name others, for itself only."""
    query = [("q", "SigninLogs | where X == 1")]  # X is a column of this module's SigninLogs only
    assert kusto.check(query, TABLES) == {"q": []}
    assert [d.code for d in kusto.check(query)["q"]] == ["KS142"]
    assert kusto.check(query, TABLES) == {"q": []}


def test_a_session_refuses_duplicate_ids(kusto) -> None:
    with pytest.raises(ValueError, match="unique"):
        kusto.check([("q", "print 1"), ("q", "print 2")])


def test_missing_install_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(kusto_language, "CHECKER_DIR", tmp_path)
    with pytest.raises(KustoCheckUnavailable, match="npm ci --prefix tools/kusto-check"):
        check_queries([("q", "print 1")], TABLES)


def test_missing_node_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(KustoCheckUnavailable, match="npm ci --prefix tools/kusto-check"):
        ensure_available()

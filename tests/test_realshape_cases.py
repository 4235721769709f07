"""Every bundled rule is tested on at least one row shaped as Entra writes it.

A case that passes on a row no tenant produces proves little (issue 10: rules that passed their
cases could never fire). So each bundled tests file outside `rules/correlation/` holds a case
named `... (real shape)` whose rows are written like real rows of their table: the columns every
real sign-in of that table fills, failures with their description, `IsInteractive` as the table
holds it, and no value in a shape Entra never writes (W503). Which columns those are comes from
the real rows in tests/realdata and the diagnostic records described in its README.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from entra_sigma.verbs.ruletests.cases import load_cases

from .helpers import REGISTRY, REPO

SUFFIX = " (real shape)"
EXEMPT = ("correlation",)  # folders under rules/ whose cases are correlation windows, not row shapes

USER_COLUMNS = (
    "UserPrincipalName", "UserType", "AppId", "AppDisplayName", "IPAddress", "ResultType", "ClientAppUsed",
    "ConditionalAccessStatus", "AuthenticationRequirement", "IsInteractive", "DeviceDetail", "LocationDetails", "Status",
)
WORKLOAD_COLUMNS = (
    "ServicePrincipalName", "ServicePrincipalId", "AppId", "IPAddress", "ResultType", "ResourceIdentity",
    "ResourceDisplayName", "ConditionalAccessStatus", "LocationDetails",
)
REAL_COLUMNS = {
    "SigninLogs": USER_COLUMNS,
    "AADNonInteractiveUserSignInLogs": USER_COLUMNS,
    "AADServicePrincipalSignInLogs": WORKLOAD_COLUMNS,
    "AADManagedIdentitySignInLogs": WORKLOAD_COLUMNS,
}
INTERACTIVE = {"SigninLogs": True, "AADNonInteractiveUserSignInLogs": False}


def real_shape_problems(tests_file: Path) -> list[str]:
    """What keeps one tests file from having a real-shape case: empty when it has one and every
    real-shape row is written as its table's real rows are."""
    data = yaml.safe_load(tests_file.read_text(encoding="utf-8"))
    cases = [case for case in data["cases"] if case["name"].endswith(SUFFIX)]
    if not cases:
        return [f"{tests_file.name}: no case named '...{SUFFIX}'"]
    problems = []
    for case in cases:
        label = f"{tests_file.name}: {case['name']!r}"
        if not set(case["rows"]) & set(REAL_COLUMNS):
            problems.append(f"{label}: no rows in a Log Analytics table (there are no real Defender rows to model)")
        for table, rows in case["rows"].items():
            for number, row in enumerate(rows):
                where = f"{label}: {table} row {number}"
                missing = [column for column in REAL_COLUMNS.get(table, ()) if column not in row]
                if missing:
                    problems.append(f"{where} lacks {', '.join(missing)}")
                if table in REAL_COLUMNS and row.get("ResultType", "0") != "0" and "ResultDescription" not in row:
                    problems.append(f"{where} is a failure without ResultDescription")
                if table in INTERACTIVE and row.get("IsInteractive", INTERACTIVE[table]) is not INTERACTIVE[table]:
                    problems.append(f"{where} has IsInteractive {row['IsInteractive']}, the table holds {INTERACTIVE[table]}")
    _, diagnostics = load_cases(tests_file, tests_file.name, REGISTRY)
    labels = tuple(f"case {case['name']!r}: " for case in cases)
    problems += [d.message for d in diagnostics if d.code == "W503" and d.message.startswith(labels)]
    return problems


def bundled_tests_files() -> list[Path]:
    rules = REPO / "rules"
    return sorted(
        path for path in rules.rglob("*.tests.yml")
        if path.relative_to(rules).parts[0] not in EXEMPT
    )


def test_every_bundled_rule_outside_correlations_has_a_real_shape_case():
    files = bundled_tests_files()
    assert len(files) >= 30
    problems = [problem for path in files for problem in real_shape_problems(path)]
    assert problems == []


def test_a_tests_file_without_a_real_shape_case_or_with_thin_rows_is_reported(tmp_path):
    none = tmp_path / "none.tests.yml"
    none.write_text("""cases:
  - name: a device code sign-in
    expect: match
    rows: {SigninLogs: [{UserPrincipalName: alice@contoso.com, AuthenticationProtocol: deviceCode, ResultType: "0"}]}
""", encoding="utf-8")
    assert real_shape_problems(none) == [f"none.tests.yml: no case named '...{SUFFIX}'"]

    thin = tmp_path / "thin.tests.yml"
    thin.write_text("""cases:
  - name: a refused sign-in (real shape)
    expect: no match
    rows:
      AADNonInteractiveUserSignInLogs:
        - {UserPrincipalName: alice@contoso.com, ResultType: "50126", IsInteractive: true, DeviceDetail: {isManaged: false}}
  - name: a Defender row (real shape)
    expect: match
    rows: {EntraIdSignInEvents: [{AccountUpn: alice@contoso.com, ErrorCode: 0}]}
""", encoding="utf-8")
    problems = real_shape_problems(thin)
    row = "thin.tests.yml: 'a refused sign-in (real shape)': AADNonInteractiveUserSignInLogs row 0"
    assert problems[0].startswith(f"{row} lacks UserType, AppId, AppDisplayName, IPAddress, ClientAppUsed,")
    assert problems[1:] == [
        f"{row} is a failure without ResultDescription",
        f"{row} has IsInteractive True, the table holds False",
        "thin.tests.yml: 'a Defender row (real shape)': no rows in a Log Analytics table (there are no real Defender rows to model)",
        "case 'a refused sign-in (real shape)': DeviceDetail.isManaged is false, but Entra leaves the key out when it is false",
    ]

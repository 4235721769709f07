"""cli.py: the typer verbs, end to end on small rule folders: exit codes, output, files.

Every test works in its own temporary folder (as the working directory), so paths in
messages and in the `// source:` line are short and stable.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from entra_sigma import __version__
from entra_sigma.cli import app
from typer.testing import CliRunner

from .helpers import MISSPELT_RULE, PRT_RULE, REGISTRY, REPO

GOOD = """title: Legacy protocol sign-in
id: 0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c
logsource: {product: entra, service: interactive}
detection:
  sel:
    clientAppUsed: [IMAP4, POP3]
  condition: sel
"""
GOOD_QUERY = (
    "// Legacy protocol sign-in\n// id: 0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c\n// level: medium\n// source: rules/good.yml\n"
    'SigninLogs\n| where ClientAppUsed in~ ("IMAP4", "POP3")\n'
)


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    """A working directory with rules/good.yml."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "good.yml").write_text(GOOD, encoding="utf-8")
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(app, list(args))


# -- exit codes and diagnostics ------------------------------------------------------------------------------


def test_version():
    result = run("--version")
    assert (result.exit_code, result.stdout) == (0, f"{__version__}\n")


def test_validate_clean(work):
    result = run("validate", "rules")
    # validate checks what build would: a rule Defender cannot run is a warning, not an error
    assert (result.exit_code, result.stdout, result.stderr) == (0, "", (
        "rules/good.yml:3:29: warning: service 'interactive' has no defender sign-in table in rule 'Legacy protocol sign-in' [defender]\n"
        "1 rule file(s) OK\n"
    ))


def test_validate_reports_the_bad_rule_and_exits_1(work):
    (work / "rules" / "bad.yml").write_text(MISSPELT_RULE, encoding="utf-8")
    result = run("validate", "rules")
    assert result.exit_code == 1
    assert result.stderr == (
        "rules/bad.yml:6:5: error: unknown field 'incomingTokenTyp' in rule 'Misspelt field' (did you mean 'incomingTokenType'?)\n"
        "rules/good.yml:3:29: warning: service 'interactive' has no defender sign-in table in rule 'Legacy protocol sign-in' [defender]\n"
        "1 error(s) in 1 of 2 file(s)\n"
    )


def test_json_diagnostics_parse_and_are_located(work):
    (work / "rules" / "bad.yml").write_text(MISSPELT_RULE, encoding="utf-8")
    result = run("validate", "rules", "--format", "json")
    assert result.exit_code == 1
    errors = [d for d in json.loads(result.stderr)["diagnostics"] if d["severity"] == "error"]
    assert {"diagnostics": errors} == {"diagnostics": [{
        "code": "E101",
        "message": "unknown field 'incomingTokenTyp'",
        "location": {"path": "rules/bad.yml", "line": 6, "column": 5},
        "rule": "Misspelt field",
        "hint": "did you mean 'incomingTokenType'?",
        "severity": "error",
        "target": None,
    }]}


def test_json_with_no_findings_is_an_empty_list(work):
    result = run("compile", "rules", "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.stderr) == {"diagnostics": []}
    assert result.stdout == GOOD_QUERY


@pytest.mark.parametrize(
    "args, message",
    [
        (["compile", "rules", "--templates", "nope"], "entra-sigma: error: --templates nope: not a folder\n"),
        (["compile", "rules", "--table-schema", "Signins.json"],
         "entra-sigma: error: Signins.json: file name must be a table name (AADManagedIdentitySignInLogs, "),
        (["compile", "rules", "--target", "splunk"], None),
        (["compile", "rules", "--no-such-option"], None),
    ],
    ids=["templates-not-a-folder", "schema-not-named-after-a-table", "unknown-target", "unknown-option"],
)
def test_usage_errors_exit_2(work, args, message):
    (work / "Signins.json").write_text("[]", encoding="utf-8")
    result = run(*args)
    assert result.exit_code == 2
    assert result.stdout == ""
    if message:
        assert result.stderr.startswith(message)


def test_a_rule_a_target_cannot_express_exits_1_with_the_target_named(work):
    (work / "rules" / "prt.yml").write_text(PRT_RULE, encoding="utf-8")
    result = run("compile", "rules/prt.yml", "--target", "defender")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "rules/prt.yml:6:5: error: field 'incomingTokenType' has no column in EntraIdSignInEvents "
        "in rule 'PRT from an unmanaged device' [defender]\n1 error(s) in 1 of 1 file(s)\n"
    )


# -- compile ---------------------------------------------------------------------------------------------------


def test_compile_to_standard_output(work):
    (work / "rules" / "prt.yml").write_text(PRT_RULE, encoding="utf-8")
    result = run("compile", "rules")
    assert (result.exit_code, result.stderr) == (0, "")
    queries = result.stdout.split("\n\n")
    assert queries[0] == GOOD_QUERY.rstrip("\n")
    assert queries[1].startswith("// PRT from an unmanaged device\n")
    assert '\nunion\n    (SigninLogs\n    | where IncomingTokenType has "primaryRefreshToken"),\n' in queries[1]


REFUSED_CHAIN = """title: Spray, then a success
id: 0c6f2a10-5d3e-4b7a-8e91-2f4a6b8c0d13
correlation:
  type: temporal_ordered
  rules: [spray, success]
  group-by: ipAddress
  timespan: 1h
---
title: Spray
id: 0c6f2a10-5d3e-4b7a-8e91-2f4a6b8c0d14
name: spray
correlation:
  type: value_count
  rules: wrong_password
  group-by: ipAddress
  timespan: 10m
  condition: {field: userPrincipalNam, gte: 20}
---
title: Wrong password
id: 0c6f2a10-5d3e-4b7a-8e91-2f4a6b8c0d15
name: wrong_password
logsource: {product: entra, service: signins}
detection:
  sel:
    status.errorCode: 50126
  condition: sel
---
title: Successful sign-in
id: 0c6f2a10-5d3e-4b7a-8e91-2f4a6b8c0d16
name: success
logsource: {product: entra, service: signins}
detection:
  sel:
    status.errorCode: 0
  condition: sel
"""


def test_compile_prints_nothing_of_a_file_with_an_error(work):
    """A refused correlation must not leave its building blocks (the bare 'Successful
    sign-in') on standard output, where a pipeline would ship them; other files print as usual."""
    (work / "rules" / "chain.yml").write_text(REFUSED_CHAIN, encoding="utf-8")
    result = run("compile", "rules")
    assert result.exit_code == 1
    assert result.stderr.startswith("rules/chain.yml:17:")
    assert "did you mean 'userPrincipalName'?" in result.stderr
    assert result.stdout == GOOD_QUERY
    (work / "rules" / "chain.yml").unlink()
    (work / "rules" / "pair.yml").write_text(PRT_RULE + "---\n" + MISSPELT_RULE, encoding="utf-8")
    result = run("compile", "rules")
    assert result.exit_code == 1 and "incomingTokenTyp" in result.stderr
    assert result.stdout == GOOD_QUERY  # the PRT_RULE rule is fine, but its file has an error
    forked = run("compile", "rules", "--jobs", "2")  # the same when the files are compiled in two processes
    assert (forked.exit_code, forked.stdout) == (1, GOOD_QUERY)
    fixed = REFUSED_CHAIN.replace("userPrincipalNam,", "userPrincipalName,")
    (work / "rules" / "chain.yml").write_text(fixed, encoding="utf-8")
    result = run("compile", "rules/chain.yml")
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout.count("// id: ") == 1 and result.stdout.startswith("// Spray, then a success\n")


def test_compile_out_writes_one_file_per_rule_and_replaces_the_last_run(work):
    (work / "rules" / "identity").mkdir()
    (work / "rules" / "identity" / "prt.yml").write_text(PRT_RULE, encoding="utf-8")
    first = run("compile", "rules", "--out", "build")
    assert (first.exit_code, first.stdout, first.stderr) == (0, "", "wrote 2 queries to build\n")
    assert sorted(p.relative_to(work / "build").as_posix() for p in (work / "build").rglob("*.kql")) == [
        "good.kql", "identity/prt.kql",
    ]
    assert (work / "build" / "good.kql").read_text(encoding="utf-8") == GOOD_QUERY

    (work / "rules" / "identity" / "prt.yml").unlink()
    second = run("compile", "rules", "--out", "build")
    assert (second.exit_code, second.stderr) == (0, "wrote 1 query to build\n")
    assert sorted(p.relative_to(work / "build").as_posix() for p in (work / "build").rglob("*.kql")) == ["good.kql"]


def test_compile_out_refuses_a_folder_it_did_not_write(work):
    (work / "src").mkdir()
    (work / "src" / "keep.txt").write_text("mine\n", encoding="utf-8")
    result = run("compile", "rules", "--out", "src")
    assert result.exit_code == 2
    assert result.stderr.startswith("entra-sigma: error: src exists and was not written by entra-sigma")
    assert [p.name for p in (work / "src").iterdir()] == ["keep.txt"]


def test_two_compiles_are_byte_identical(work):
    (work / "rules" / "prt.yml").write_text(PRT_RULE, encoding="utf-8")
    first, second = run("compile", "rules"), run("compile", "rules")
    assert first.stdout_bytes == second.stdout_bytes and first.stdout
    run("compile", "rules", "--out", "a")
    run("compile", "rules", "--out", "b")
    files = sorted(p.name for p in (work / "a").iterdir())
    assert files == sorted(p.name for p in (work / "b").iterdir()) == [".entra-sigma-output", "good.kql", "prt.kql"]
    assert all((work / "a" / f).read_bytes() == (work / "b" / f).read_bytes() for f in files)


def test_two_rules_with_one_output_name_are_not_silently_merged(work):
    for folder, text in (("a", GOOD), ("b", PRT_RULE)):
        (work / folder).mkdir()
        (work / folder / "x.yml").write_text(text, encoding="utf-8")
    result = run("compile", "a/x.yml", "b/x.yml", "--out", "build")
    written = sorted(p.name for p in (work / "build").glob("**/*.kql")) if (work / "build").exists() else []
    assert result.exit_code != 0 or len(written) == 2


def test_output_does_not_depend_on_the_working_directory(work, monkeypatch):
    here = run("compile", "rules").stdout
    monkeypatch.chdir(work / "rules")
    assert run("compile", str(work / "rules")).stdout == here


# -- workspace schemas -------------------------------------------------------------------------------------------


EVENT_TYPES = """title: Sign-in event types
id: 6a1f3c2e-8b4d-4f0a-9c61-2d7e5b9a0c12
logsource: {product: entra, service: signins}
detection:
  sel:
    signInEventTypes: interactiveUser
  condition: sel
"""


def test_a_workspace_schema_brings_back_a_table_the_bundled_schema_leaves_out(work):
    """SignInEventTypes is in the non-interactive table's schema, not yet in the SigninLogs
    documentation: the table is left out with a warning naming the fix, and the fix works."""
    (work / "rules" / "types.yml").write_text(EVENT_TYPES, encoding="utf-8")
    before = run("compile", "rules/types.yml")
    assert before.exit_code == 0
    assert before.stdout.splitlines()[4] == "AADNonInteractiveUserSignInLogs"  # alone: no union
    assert before.stderr == (
        "rules/types.yml:6:5: warning: SigninLogs is left out: 'signInEventTypes' has no column there in rule 'Sign-in event types' "
        "[sentinel] (if your workspace has the column, pass its 'SigninLogs | getschema' export with --table-schema SigninLogs.json)\n"
    )
    strict = run("compile", "rules", "--strict")  # a warning is an error: that file prints nothing
    assert (strict.exit_code, strict.stdout) == (1, GOOD_QUERY)

    rows = [{"ColumnName": name, "ColumnOrdinal": i, "ColumnType": kind}
            for i, (name, kind) in enumerate(REGISTRY.tables["SigninLogs"].columns.items())]
    rows.append({"ColumnName": "SignInEventTypes", "ColumnOrdinal": len(rows), "DataType": "System.String", "ColumnType": "string"})
    (work / "SigninLogs.json").write_text(json.dumps(rows), encoding="utf-8")
    after = run("compile", "rules/types.yml", "--table-schema", "SigninLogs.json")
    assert (after.exit_code, after.stderr) == (0, "")
    lines = after.stdout.splitlines()
    assert lines[4:7] == ["union", "    (SigninLogs", "    | mv-apply _signInEventTypes = iff(array_length(todynamic(SignInEventTypes)) > 0, "
                          "todynamic(SignInEventTypes), dynamic([null])) on (summarize _any1 = countif(isnotnull(_signInEventTypes) and "
                          '(tostring(_signInEventTypes) =~ "interactiveUser")) > 0)']
    assert lines[-1].startswith("    | extend ") and lines[-1].endswith(")")  # the union normalisation (test_convert)
    assert "DeviceDetail = todynamic(DeviceDetail)" in lines[-1]


# -- fields ------------------------------------------------------------------------------------------------------


def test_fields_shows_type_members_and_the_column_in_every_table():
    result = run("fields", "incomingTokenType")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "incomingTokenType  (incomingTokenType)"
    assert lines[2] == ("    members (flags): none, primaryRefreshToken, saml11, saml20, unknownFutureValue, "
                        "remoteDesktopToken, refreshToken")
    sentinel = sorted(t for t, table in REGISTRY.tables.items() if table.platform == "sentinel")
    defender = sorted(t for t, table in REGISTRY.tables.items() if table.platform == "defender")
    assert [line.split(":")[0].strip() for line in lines[3:]] == sentinel + defender
    assert "    AADNonInteractiveUserSignInLogs: IncomingTokenType (string)" in lines
    assert "    EntraIdSignInEvents: —" in lines


def test_fields_describes_paths_inside_json_text_and_encodings():
    result = run("fields", "deviceDetail.isManaged")
    assert result.exit_code == 0
    assert "    SigninLogs: DeviceDetail.isManaged (dynamic)" in result.stdout
    assert "    AADNonInteractiveUserSignInLogs: DeviceDetail.isManaged (JSON text)" in result.stdout
    assert "    EntraIdSignInEvents: IsManaged (int, numbers: false=0, true=1)" in result.stdout


def test_fields_without_a_match_exits_1():
    result = run("fields", "noSuchThing")
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "no field matches 'noSuchThing'\n")


def test_a_broken_user_template_is_a_usage_error_not_a_crash(work):
    (work / "tpl" / "kql").mkdir(parents=True)
    (work / "tpl" / "kql" / "query.kql.j2").write_text("{{ rule.title }} {{ nope }}\n", encoding="utf-8")
    result = run("compile", "rules", "--templates", "tpl")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == "entra-sigma: error: template kql/query.kql.j2:1: UndefinedError: 'nope' is undefined\n"


def test_build_with_errors_writes_nothing_and_keeps_the_previous_build(work):
    assert run("build", "rules", "--out", "out").exit_code == 0
    before = sorted(p.relative_to(work).as_posix() for p in (work / "out").rglob("*"))
    (work / "rules" / "bad.yml").write_text(MISSPELT_RULE, encoding="utf-8")
    result = run("build", "rules", "--out", "out")
    assert result.exit_code == 1
    assert result.stderr.endswith("nothing written to out: fix the errors above\n")
    assert sorted(p.relative_to(work).as_posix() for p in (work / "out").rglob("*")) == before


def test_sarif_diagnostics_for_code_scanning(work):
    (work / "rules" / "bad.yml").write_text(MISSPELT_RULE, encoding="utf-8")
    result = run("validate", "rules", "--format", "sarif")
    assert result.exit_code == 1
    log = json.loads(result.stderr)
    assert log["version"] == "2.1.0"
    (run_,) = log["runs"]
    rules = [r["id"] for r in run_["tool"]["driver"]["rules"]]
    error = next(r for r in run_["results"] if r["level"] == "error")
    assert error == {
        "ruleId": "E101",
        "ruleIndex": rules.index("E101"),
        "level": "error",
        "message": {"text": "unknown field 'incomingTokenTyp' in rule 'Misspelt field' (did you mean 'incomingTokenType'?)"},
        "locations": [{"physicalLocation": {"artifactLocation": {"uri": "rules/bad.yml"}, "region": {"startLine": 6, "startColumn": 5}}}],
    }
    assert {r["level"] for r in run_["results"]} <= {"error", "warning"}


def test_ctrl_c_ends_the_command_quietly_with_130(monkeypatch, capsys):
    """Even while the command line is still being imported (most of a second)."""
    import entra_sigma.cli
    from entra_sigma.entry import main

    def interrupted():
        raise KeyboardInterrupt

    monkeypatch.setattr(entra_sigma.cli, "main", interrupted)
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 130
    assert capsys.readouterr().err == "entra-sigma: interrupted\n"


# -- build: warnings summarised by cause -------------------------------------------------------------------
def device_code_rule(number: int) -> str:
    return (f"title: Device code sign-in {number}\nid: 3c1d7e2a-0b4f-4e6a-9c3d-5f8e1a2b7c{number:02d}\n"
            "logsource: {product: entra, service: signins}\n"
            "detection:\n  sel:\n    authenticationProtocol: deviceCode\n  condition: sel\n")


@pytest.fixture
def gaps(work) -> Path:
    """Three rules Defender cannot run for one cause, one for another, and good.yml for a third."""
    for number in (1, 2, 3):
        (work / "rules" / f"device-code-{number}.yml").write_text(device_code_rule(number), encoding="utf-8")
    (work / "rules" / "prt.yml").write_text(PRT_RULE, encoding="utf-8")
    return work


NO_PROTOCOL = "field 'authenticationProtocol' has no column in EntraIdSignInEvents"
NO_TOKEN_TYPE = "field 'incomingTokenType' has no column in EntraIdSignInEvents"
NO_INTERACTIVE = "service 'interactive' has no defender sign-in table"


def test_build_prints_one_line_per_warning_cause_with_a_count(gaps):
    result = run("build", "rules", "--out", "build")
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines() == [
        f"warning: {NO_PROTOCOL} [defender]: 3 rule(s) (E201, e.g. rules/device-code-1.yml:6:5)",
        f"warning: {NO_TOKEN_TYPE} [defender]: 1 rule(s) (E201, e.g. rules/prt.yml:6:5)",
        f"warning: {NO_INTERACTIVE} [defender]: 1 rule(s) (E204, e.g. rules/good.yml:3:29)",
        "5 warning(s) of 3 kind(s) in 5 file(s); --verbose lists each one",
        "built 5 rule file(s) into 16 file(s) in build",
    ]


def test_build_verbose_lists_every_warning(gaps):
    result = run("build", "rules", "--out", "build", "--verbose")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[:3] == [
        f"rules/device-code-{n}.yml:6:5: warning: {NO_PROTOCOL} in rule 'Device code sign-in {n}' [defender]" for n in (1, 2, 3)
    ]
    assert lines[3] == f"rules/good.yml:3:29: warning: {NO_INTERACTIVE} in rule 'Legacy protocol sign-in' [defender]"
    assert lines[4] == f"rules/prt.yml:6:5: warning: {NO_TOKEN_TYPE} in rule 'PRT from an unmanaged device' [defender]"
    assert len(lines) == 6


def test_build_summary_keeps_errors_in_full(gaps):
    (gaps / "rules" / "bad.yml").write_text(MISSPELT_RULE, encoding="utf-8")
    result = run("build", "rules", "--out", "build")
    assert result.exit_code == 1
    assert "rules/bad.yml:6:5: error: unknown field 'incomingTokenTyp' in rule 'Misspelt field'" in result.stderr
    assert f"warning: {NO_PROTOCOL} [defender]: 3 rule(s)" in result.stderr


def test_machine_formats_keep_every_warning(gaps):
    result = run("build", "rules", "--out", "build", "--format", "json")
    assert len(json.loads(result.stderr.split("\nbuilt ")[0])["diagnostics"]) == 5


def test_no_module_imports_the_cli_but_the_console_script():
    """`cli.py` imports the verbs; a verb module that imported it back would make a circle
    (deploy did): what verbs share lives in `cli_common.py`."""
    import ast

    importers = []
    for source in sorted((REPO / "compiler").rglob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module is not None and node.module.split(".")[-1] == "cli":
                importers.append(source.relative_to(REPO).as_posix())
    assert importers == ["compiler/entry.py"]

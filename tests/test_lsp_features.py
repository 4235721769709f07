"""The language server's features, in process (tests/test_lsp_server.py drives the real process).

Each feature module is called with a file's lines and a cursor, the way the server calls it.
The modifiers the server offers are checked against what the compiler accepts, field type by
field type, so completion never offers what `validate` refuses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from entra_sigma.build import Compiler, build_outputs, validate_documents
from entra_sigma.load.loader import load_documents, parse_documents
from entra_sigma.model.rule import KNOWN_MODIFIERS
from entra_sigma.verbs.lsp.checks import check_rule_file, check_tests_file
from entra_sigma.verbs.lsp.completion import Completer
from entra_sigma.verbs.lsp.fixes import fixes_for
from entra_sigma.verbs.lsp.hover import Hoverer
from entra_sigma.verbs.lsp.navigation import definition, document_symbols
from entra_sigma.verbs.lsp.placeholders import ProjectFilePlaceholders
from entra_sigma.verbs.lsp.project import DEFAULT_RULE_FOLDERS, Project
from entra_sigma.verbs.lsp.query import COMMAND, code_lenses
from entra_sigma.verbs.lsp.server import DEBOUNCE
from entra_sigma.verbs.lsp.text import context_at, document_index
from entra_sigma.verbs.lsp.vocabulary import modifiers, modifiers_for
from entra_sigma.verbs.ruletests.cases import cases_from_text, load_tests
from entra_sigma.verbs.scaffold import scaffold

from .helpers import REGISTRY, REPO

COMPILER = Compiler()
CATALOG = COMPILER.catalog

RULE = """title: Example
id: 2b0c4f5e-9d1a-4e7b-8c3f-6a5d0e9b1c27
tags:
  - attack.credential_access
  - attack.t1110.003
logsource:
  product: entra
  service: signins
detection:
  wrong_password:
    status.errorCode: 50126
  tools:
    - userAgent|contains: curl
      ipAddress|cidr: 10.0.0.0/8
    - userAgent|contains|all:
        - python
        - requests
  condition: wrong_password and tools
fields:
  - userPrincipalName
level: low
"""
LINES = RULE.split("\n")


def at(needle: str, offset: int = 0, lines: list[str] = LINES) -> tuple[int, int]:
    """(line, column) of `needle` (plus `offset`) in `lines`."""
    index = next(i for i, line in enumerate(lines) if needle in line)
    return index, lines[index].index(needle) + offset


def workspace(tmp_path: Path, files: dict[str, str]) -> Project:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return Project(tmp_path, lambda path: None)


def complete(project: Project, path: Path, text: str, needle: str, offset: int) -> dict:
    lines = text.split("\n")
    line, column = at(needle, offset, lines)
    items = Completer(CATALOG, REGISTRY, project, ProjectFilePlaceholders()).complete(path, lines, line, column)
    return {item.label: item for item in items}


# -- the modifiers offered are the modifiers the compiler accepts --------------------------------
def test_every_modifier_the_compiler_knows_is_described():
    assert set(modifiers()) == set(KNOWN_MODIFIERS)


SAMPLES = {  # one field of each kind, and a value of its type
    "string": ("userAgent", "abc"), "ip": ("ipAddress", "10.0.0.1"), "enum": ("incomingTokenType", "primaryRefreshToken"),
    "int": ("status.errorCode", 5), "double": ("location.geoCoordinates.latitude", 5), "bool": ("deviceDetail.isManaged", True),
    "dateTime": ("createdDateTime", "2025-01-01"), "object": ("deviceDetail", True),
    "in an array": ("authenticationDetails.authenticationMethod", "x"),
}
VALUES = {"gt": 5, "gte": 5, "lt": 5, "lte": 5, "cidr": "10.0.0.0/8", "exists": True, "re": "a.*"}


def accepted(field: str, modifier: str, value) -> bool:
    """Whether the compiler compiles `field|modifier` (after `re` for a regex flag) without an error."""
    chain = ["re", modifier] if modifiers()[modifier]["applies"] == "regexFlag" else [modifier]
    value = field if modifier == "fieldref" else VALUES.get(modifier, value)
    body = {"title": "probe", "id": "7f0a2d1c-3b4e-4c5d-8e9f-0a1b2c3d4e5f",
            "logsource": {"product": "entra", "service": "signins"},
            "detection": {"sel": {f"{field}|{'|'.join(chain)}": [value, value] if modifier == "all" else value}, "condition": "sel"}}
    documents, problems = parse_documents(json.dumps(body), Path("probe.yml"), "probe.yml")
    result = COMPILER.compile_documents(documents, problems, ("sentinel",))
    return not any(d.severity == "error" for d in result.diagnostics)


@pytest.mark.parametrize("kind", list(SAMPLES))
def test_the_modifiers_offered_for_a_field_are_those_the_compiler_accepts(kind):
    field, value = SAMPLES[kind]
    spec = CATALOG.get(field)
    offered = set(modifiers_for(spec)) | set(modifiers_for(spec, written=["re"]))  # regex flags: after `re`
    assert offered == {m for m in KNOWN_MODIFIERS if accepted(field, m, value)}


def test_regex_flags_only_after_re():
    spec = CATALOG.get("userAgent")
    assert "i" not in modifiers_for(spec) and "i" in modifiers_for(spec, ["re"])
    assert "contains" not in modifiers_for(spec, ["contains"])


# -- where the cursor is -------------------------------------------------------------------------
@pytest.mark.parametrize("needle, offset, path, in_value, key, typed", [
    ("status.errorCode", 6, ("detection", "wrong_password"), False, None, "status"),
    ("50126", 2, ("detection", "wrong_password"), True, "status.errorCode", "50"),
    ("ipAddress|cidr", 3, ("detection", "tools", "-"), False, None, "ipA"),
    ("userAgent|contains: curl", 22, ("detection", "tools", "-"), True, "userAgent|contains", "cu"),
    ("- python", 4, ("detection", "tools", "-", "userAgent|contains|all", "-"), True, None, "py"),
    ("- attack.t1110", 8, ("tags", "-"), True, None, "attack"),
    ("service: signins", 12, ("logsource",), True, "service", "sig"),
    ("- userPrincipalName", 6, ("fields", "-"), True, None, "user"),
])
def test_the_context_of_the_cursor(needle, offset, path, in_value, key, typed):
    line, column = at(needle, offset)
    context = context_at(LINES, line, column)
    assert (context.path, context.in_value, context.key, context.typed) == (path, in_value, key, typed)


def test_a_half_typed_key_still_has_its_place():
    lines = ["title: x", "detection:", "  sel:", "    deviceDetail.", "  condition: sel"]
    context = context_at(lines, 3, len(lines[3]))
    assert (context.path, context.in_value, context.typed) == (("detection", "sel"), False, "deviceDetail.")


def test_the_document_of_a_line():
    lines = ["title: a", "correlation: {}", "---", "title: b", "---", "title: c"]
    assert [document_index(lines, i) for i in range(len(lines))] == [0, 0, 0, 1, 1, 2]
    assert [lens.range.start.line for lens in code_lenses("file:///x.yml", lines)] == [0, 0, 3, 3, 5, 5]


# -- completion ----------------------------------------------------------------------------------
def test_completion_in_fields_group_by_tags_and_logsource(tmp_path):
    project = workspace(tmp_path, {})
    path = tmp_path / "rules" / "x.yml"
    fields = complete(project, path, RULE, "- userPrincipalName", 2)
    assert "authenticationDetails" in fields and "authenticationDetails.succeeded" not in fields  # E108
    tags = complete(project, path, RULE, "- attack.t1110", 2)
    assert tags["attack.t1110.003"].detail == "Password Spraying (T1110.003)"
    assert tags["attack.credential_access"].detail.endswith("tactic)")
    services = complete(project, path, RULE, "service: signins", 9)
    assert services["serviceprincipal"].detail == "reads AADServicePrincipalSignInLogs"
    assert set(complete(project, path, RULE, "level: low", 7)) == {"informational", "low", "medium", "high", "critical"}
    condition = complete(project, path, RULE, "condition: wrong", 11)
    assert {"wrong_password", "tools", "1 of", "not"} <= set(condition)
    top = complete(project, path, RULE + "sent\n", "sent", 4)
    assert {"sentinel", "defender", "correlation", "falsepositives"} <= set(top) and "timeframe" not in top


def test_completion_in_a_correlation(tmp_path):
    base = "title: Base\nid: 5d1c8f0e-2a7b-4c39-9e64-0b3f6a2d9c11\nname: failed_logins\nlogsource: {product: entra, service: signins}\n" \
           "detection:\n  sel:\n    status.errorCode: 50126\n  condition: sel\n"
    project = workspace(tmp_path, {"rules/base.yml": base})
    text = "title: C\nid: 3a9e5c27-6f1d-4b80-8c42-d7e0b1a4f963\ncorrelation:\n  type: \n  rules:\n    - fa\n  group-by:\n    - user\n"
    path = tmp_path / "rules" / "c.yml"
    assert {"event_count", "value_count", "temporal", "temporal_ordered"} <= set(complete(project, path, text, "type: ", 6))
    rules = complete(project, path, text, "- fa", 4)
    assert rules["failed_logins"].detail == "Base (rules/base.yml)"
    group = complete(project, path, text, "- user", 6)
    assert "userPrincipalName" in group and "deviceDetail" not in group and "authenticationDetails.succeeded" not in group


def test_completion_in_a_tests_file(tmp_path):
    project = workspace(tmp_path, {"rules/x.yml": RULE})
    tests = ("cases:\n  - name: a\n    expect: \n    rows:\n      Sign\n"
             "  - name: b\n    rows:\n      SigninLogs:\n        - ResultT\n          UserPrinc\n"
             "        - {ResultType: '50126', IPAdd\n")
    path = tmp_path / "rules" / "x.tests.yml"
    assert set(complete(project, path, tests, "expect: ", 8)) == {"match", "no match"}
    tables = complete(project, path, tests, "Sign", 4)
    assert "SigninLogs" in tables and tables["SigninLogs"].text_edit.new_text == "SigninLogs: "
    for needle, typed in (("- ResultT", 9), ("UserPrinc", 9), ("IPAdd", 5)):
        columns = complete(project, path, tests, needle, typed)
        assert columns["ResultType"].detail == "string" and "IPAddress" in columns, needle
    edit = complete(project, path, tests, "IPAdd", 5)["IPAddress"].text_edit
    line, column = at("IPAdd", 0, tests.split("\n"))
    assert (edit.range.start.line, edit.range.start.character, edit.range.end.character) == (line, column, column + 5)


def test_placeholders_come_from_the_project_file(tmp_path):
    project = workspace(tmp_path, {"entra-sigma.toml": (
        "[defaults.placeholders]\nadmin_tools = ['a']\n[environments.prod.placeholders]\ncorporate_egress = ['10.0.0.0/8']\n"
        "admin_tools = ['b']\n[environments.test]\nsentinel = {workspace = 'law-test'}\n")})
    text = RULE.replace("ipAddress|cidr: 10.0.0.0/8", "ipAddress|cidr|expand: %")
    items = complete(project, tmp_path / "rules" / "x.yml", text, "expand: %", 9)
    assert {label: item.detail for label, item in items.items()} == {
        "%admin_tools%": "placeholder in defaults, prod", "%corporate_egress%": "placeholder in prod"}
    assert ProjectFilePlaceholders().placeholders(Path("/no/such/folder")) == []


# -- hover ---------------------------------------------------------------------------------------
def hover(text: str, needle: str, offset: int, path: Path = Path("rules/x.yml")) -> str | None:
    lines = text.split("\n")
    found = Hoverer(COMPILER, Project(None, lambda p: None)).hover(path, lines, *at(needle, offset, lines))
    return found.contents.value if found else None


def test_hover_on_a_modifier_shows_the_kql_the_key_becomes():
    text = hover(RULE, "ipAddress|cidr", 11)
    assert text.startswith("**`cidr`**: The address lies in the network")
    assert text.endswith('```kql\nSigninLogs\n| where coalesce(ipv4_is_in_range(IPAddress, "10.0.0.0/8"), false)\n```')
    listed = hover(RULE, "userAgent|contains|all", 20)
    assert '| where UserAgent contains "python"\n| where UserAgent contains "requests"' in listed


def test_hover_on_fields_tags_and_the_service():
    assert hover(RULE, "- userPrincipalName", 4).startswith("**userPrincipalName**: string")
    assert "| AADNonInteractiveUserSignInLogs | ResultType (string) |" in hover(RULE, "status.errorCode", 3)
    assert hover(RULE, "attack.t1110.003", 9).startswith("**T1110.003: Password Spraying**, a sub-technique of T1110 Brute Force")
    assert hover(RULE.replace("t1110.003", "t9999"), "attack.t9999", 9) == "T9999: no such ATT&CK technique (E301)"
    assert hover(RULE, "service: signins", 11).startswith("`service: signins` reads sentinel: SigninLogs, AADNonInteractiveUserSignInLogs")
    assert hover(RULE, "title: Example", 9) is None


def test_hover_reads_the_tables_of_the_rule_and_its_defender_table():
    text = RULE.replace("service: signins", "service: serviceprincipal").replace("level: low", "level: low\ndefender:\n  table: EntraIdSpnSignInEvents")
    shown = hover(text, "status.errorCode", 3)
    assert "| AADServicePrincipalSignInLogs |" in shown and "| EntraIdSpnSignInEvents |" in shown and "SigninLogs |" not in shown


# -- checks, fixes and the compiler's seams ------------------------------------------------------
def test_validate_documents_is_what_validate_checks(tmp_path):
    rules = tmp_path / "rules"
    for name in ("bad/unknown_field.yml", "bad/gt_on_string.yml", "bad-correlations/unknown_reference.yml"):
        (rules / name).parent.mkdir(parents=True, exist_ok=True)
        (rules / name).write_text((REPO / "tests/cases" / name).read_text(encoding="utf-8"), encoding="utf-8")
    documents, problems = load_documents([rules])
    assert validate_documents(COMPILER, documents, problems, [rules]) == build_outputs(COMPILER, [rules])


def test_cases_from_text_is_load_tests():
    path = REPO / "rules/correlation/mfa-fatigue.tests.yml"
    assert cases_from_text(path.read_text(encoding="utf-8"), path, "x", REGISTRY) == load_tests(path, "x", REGISTRY)


def test_a_number_in_a_text_column_is_quoted_by_its_fix(tmp_path):
    rule = (REPO / "rules/failures/disabled-account-signin.yml").read_text(encoding="utf-8")
    tests = (REPO / "rules/failures/disabled-account-signin.tests.yml").read_text(encoding="utf-8")
    assert "ResultType: \"50057\"" in tests or "ResultType: '50057'" in tests
    broken = tests.replace("ResultType: \"50057\"", "ResultType: 50057", 1).replace("ResultType: '50057'", "ResultType: 50057", 1)
    project = workspace(tmp_path, {"rules/d.yml": rule, "rules/d.tests.yml": broken})
    path = tmp_path / "rules/d.tests.yml"
    findings = check_tests_file(project, COMPILER, path, broken, replay=False)
    [problem] = [d for d in findings.diagnostics if d.code == "E503"]
    [fix] = fixes_for(problem, broken.split("\n"))
    line, start, _, end, text = fix.edits[0]
    lines = broken.split("\n")
    lines[line] = lines[line][:start] + text + lines[line][end:]
    fixed = "\n".join(lines)
    assert check_tests_file(project, COMPILER, path, fixed, replay=False).diagnostics == []


def test_a_file_outside_the_rules_folder_is_checked_with_the_files_beside_it(tmp_path):
    base = (REPO / "tests/cases/bad-correlations/unknown_reference.yml").read_text(encoding="utf-8")
    project = workspace(tmp_path, {"drafts/r.yml": base, ".github/workflows/ci.yml": "on: push\njobs: {}\n"})
    findings = check_rule_file(project, COMPILER, tmp_path / "drafts/r.yml")
    assert findings.display == "drafts/r.yml" and [d.code for d in findings.diagnostics] == ["E401"]
    assert not project.is_rule_document(tmp_path / ".github/workflows/ci.yml", "on: push\njobs: {}\n")
    assert project.is_rule_document(tmp_path / "drafts/r.yml", base)


def test_definition_and_symbols(tmp_path):
    correlation = (REPO / "rules/correlation/password-spray-then-success.yml").read_text(encoding="utf-8")
    project = workspace(tmp_path, {"rules/chain.yml": correlation})
    lines = correlation.split("\n")
    found = definition(project, tmp_path / "rules/chain.yml", lines, *at("- success_after_spray", 4, lines))
    assert found.uri == (tmp_path / "rules/chain.yml").resolve().as_uri()
    assert lines[found.range.start.line] == "name: success_after_spray"
    symbols = document_symbols(lines)
    assert [s.name for s in symbols] == ["Password spray, then a successful sign-in from the same address",
                                         "Password spray - twenty users with a wrong password from one address in ten minutes",
                                         "Wrong password (spray)", "Successful sign-in (after a spray)"]
    assert [c.name for c in symbols[0].children[-1].children] == ["type", "rules", "group-by", "timespan"]
    assert [c.name for c in symbols[2].children[-1].children] == ["wrong_password", "condition"]


# -- docs/editor.md shows what init writes and what the server reads ------------------------------
EDITOR_PAGE = (REPO / "docs/editor.md").read_text(encoding="utf-8")


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", EDITOR_PAGE, re.MULTILINE | re.DOTALL)


def test_the_editor_page_shows_the_settings_init_writes():
    written = scaffold().files
    settings = json.loads(written[".vscode/settings.json"])
    shown = next(json.loads(b) for b in blocks("json") if "glspc.server.command" in b)
    assert shown == {key: value for key, value in settings.items() if key.startswith("glspc.")}
    assert blocks("toml") == [written[".helix/languages.toml"].split("\n", 2)[2]]  # less its two comment lines
    [lua] = blocks("lua")
    assert 'cmd = { "entra-sigma", "lsp" }' in lua and 'filetypes = { "yaml" }' in lua


def test_the_editor_page_shows_the_servers_options_and_defaults():
    shown = next(json.loads(b) for b in blocks("json") if "rulesFolders" in b)
    assert shown == {"rulesFolders": list(DEFAULT_RULE_FOLDERS), "debounce": DEBOUNCE, "replay": True}
    assert "`entra-sigma.showQuery`" in EDITOR_PAGE and COMMAND == "entra-sigma.showQuery"


def test_values_after_a_modifier(tmp_path):
    project = workspace(tmp_path, {})
    path = tmp_path / "rules" / "x.yml"
    text = RULE.replace("status.errorCode: 50126", "riskLevelDuringSignIn|neq: \n    deviceDetail|exists: \n    userAgent|contains: ")
    assert "high" in complete(project, path, text, "riskLevelDuringSignIn|neq: ", 27)
    assert set(complete(project, path, text, "deviceDetail|exists: ", 21)) == {"true", "false"}
    assert complete(project, path, text, "userAgent|contains: ", 20) == {}

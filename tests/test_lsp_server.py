"""End to end: pytest-lsp drives the real `entra-sigma lsp` process over standard input and output.

One server runs for the whole module, on a workspace of its own: a `rules/` folder with a
rule, a correlation file with its tests, and the files each test adds. What the server
publishes is compared with what `entra-sigma validate` and `compile` print for the same files
(run in process, from the workspace), and every quick fix it offers is applied and validated.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest
import pytest_lsp
from entra_sigma.cli import app
from lsprotocol import types
from pygls.protocol import default_converter
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features
from typer.testing import CliRunner

from .helpers import REPO

# The module starts the server once and runs in some 15 seconds: `slow` keeps it out of the edit loop
pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.slow]

SERVER = [sys.executable, "-c", "from entra_sigma.entry import main; main()", "lsp"]


def rule_text(title: str, detection: str, tags: str = "  - attack.credential_access\n  - attack.t1110.003\n",
              extra: str = "fields:\n  - userPrincipalName\n") -> str:
    """A rule with its own id (ids and titles must be unique in the rules folder)."""
    return (f"title: {title}\nid: {uuid.uuid5(uuid.NAMESPACE_URL, title)}\ntags:\n{tags}"
            f"logsource:\n  product: entra\n  service: signins\ndetection:\n{detection}{extra}level: low\n")


PRT_RULE = rule_text("PRT from an unmanaged device", (
    "  prt:\n    incomingTokenType: primaryRefreshToken\n"
    "  managed:\n    deviceDetail.isManaged: true\n  condition: prt and not managed\n"),
    extra="fields:\n  - userPrincipalName\n  - ipAddress\n")
BROKEN_RULE = rule_text("Scripting clients with a wrong password", (
    "  wrong_password:\n    status.errorCode: 50126\n"
    "  scripts:\n    userAgnt|contains: python\n"
    "  risky:\n    riskLevelDuringSignIn: hgh\n"
    "  condition: wrong_password and scripts and not risky\n"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lsp-workspace")
    (root / "rules" / "correlation").mkdir(parents=True)
    (root / "rules" / "prt.yml").write_text(PRT_RULE, encoding="utf-8")
    for name in ("mfa-fatigue.yml", "mfa-fatigue.tests.yml"):
        shutil.copy(REPO / "rules/correlation" / name, root / "rules/correlation" / name)
    return root


PUBLISHED: list[types.PublishDiagnosticsParams] = []  # every publication, in order (waits read from a mark)


def recording_client() -> LanguageClient:
    """pytest-lsp's client, keeping every publication of diagnostics (its own keeps the last per
    file, and a wait for a notification misses one that arrives with another)."""
    def record(client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        PUBLISHED.append(params)
        client.diagnostics[params.uri] = params.diagnostics

    client = LanguageClient(converter_factory=default_converter)
    register_lsp_features(client, {**DEFAULT_CLIENT_FEATURES, types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: record})
    return client


@pytest_lsp.fixture(scope="module", config=ClientServerConfig(server_command=SERVER, client_factory=recording_client))
async def client(lsp_client: LanguageClient, request):
    root = request.getfixturevalue("workspace")
    await lsp_client.initialize_session(types.InitializeParams(
        capabilities=types.ClientCapabilities(),
        root_uri=root.as_uri(),
        workspace_folders=[types.WorkspaceFolder(root.as_uri(), "workspace")],
        initialization_options={"debounce": 0},
    ))
    yield
    await lsp_client.shutdown_session()


VERSIONS: dict[str, int] = {}


async def publish(client: LanguageClient, path: Path, text: str, write: bool = True) -> list[types.Diagnostic]:
    """Open the file (or change it, the second time) and return the diagnostics of that version.
    `write`: save the text to disk too, so `validate` and `compile` read the same."""
    if write:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    uri = path.as_uri()
    version = VERSIONS[uri] = VERSIONS.get(uri, 0) + 1
    mark = len(PUBLISHED)
    if version == 1:
        client.text_document_did_open(types.DidOpenTextDocumentParams(
            types.TextDocumentItem(uri=uri, language_id="yaml", version=version, text=text)))
    else:
        client.text_document_did_change(types.DidChangeTextDocumentParams(
            types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            [types.TextDocumentContentChangeWholeDocument(text=text)]))
    return await published(mark, uri, version)


async def published(mark: int, uri: str, version: int | None = None) -> list[types.Diagnostic]:
    """The first diagnostics published for `uri` (of `version`) since `mark`, within half a minute."""
    async def wait() -> list[types.Diagnostic]:
        seen = mark
        while True:
            for params in PUBLISHED[seen:]:
                if params.uri == uri and (version is None or params.version == version):
                    return list(params.diagnostics)
            seen = len(PUBLISHED)
            await asyncio.sleep(0.01)

    return await asyncio.wait_for(wait(), 30)


async def close(client: LanguageClient, path: Path) -> None:
    """Close the file and delete it: its diagnostics are cleared."""
    path.unlink()
    mark = len(PUBLISHED)
    client.text_document_did_close(types.DidCloseTextDocumentParams(types.TextDocumentIdentifier(path.as_uri())))
    VERSIONS.pop(path.as_uri(), None)
    assert await published(mark, path.as_uri()) == []


@contextmanager
def working_directory(folder: Path):
    before = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(before)


def run(folder: Path, *arguments: str):
    with working_directory(folder):
        return CliRunner().invoke(app, list(arguments), catch_exceptions=False)


def validated(folder: Path, *paths: str) -> list[dict]:
    """`entra-sigma validate --format json` of `paths`, from `folder`: its diagnostics."""
    result = run(folder, "validate", "--format", "json", *paths)
    return json.loads(result.stderr or result.output)["diagnostics"] if (result.stderr or result.output).strip() else []


def as_validate_says(diagnostics: list[types.Diagnostic]) -> set[tuple]:
    return {(d.code, d.range.start.line + 1, d.range.start.character + 1,
             "error" if d.severity == types.DiagnosticSeverity.Error else "warning") for d in diagnostics}


# -- diagnostics ----------------------------------------------------------------------------------
async def test_a_broken_rule_gets_what_validate_reports_at_the_keys_at_fault(client, workspace):
    path = workspace / "rules" / "broken.yml"
    diagnostics = await publish(client, path, BROKEN_RULE)
    expected = validated(workspace, "rules")
    assert as_validate_says(diagnostics) == {
        (d["code"], d["location"]["line"], d["location"]["column"], d["severity"]) for d in expected
        if d["location"]["path"] == "rules/broken.yml"
    }
    by_code = {d.code: d for d in diagnostics}
    assert set(by_code) == {"E101", "E106"}
    unknown, member = by_code["E101"], by_code["E106"]
    lines = BROKEN_RULE.splitlines()
    assert (unknown.range.start.line, unknown.range.start.character, unknown.range.end.character) == (
        lines.index("    userAgnt|contains: python"), 4, 21)  # the key userAgnt|contains
    assert unknown.message == "unknown field 'userAgnt' (did you mean 'userAgent'?)"
    assert unknown.severity == types.DiagnosticSeverity.Error and unknown.source == "entra-sigma"
    assert (member.range.start.line, member.range.start.character, member.range.end.character) == (
        lines.index("    riskLevelDuringSignIn: hgh"), 4, 25)
    assert member.message == "'hgh' is not a member of enum riskLevel for 'riskLevelDuringSignIn' (did you mean high?)"
    await close(client, path)


async def test_warnings_come_with_their_code_and_target(client, workspace):
    rule = PRT_RULE.replace("PRT from an unmanaged device", "PRT, Defender warning")
    rule = rule.replace(str(uuid.uuid5(uuid.NAMESPACE_URL, "PRT from an unmanaged device")), str(uuid.uuid4()))
    diagnostics = await publish(client, workspace / "rules" / "warned.yml", rule)
    assert [(d.code, d.severity, d.message) for d in diagnostics] == [(
        "E201", types.DiagnosticSeverity.Warning,
        "field 'incomingTokenType' has no column in EntraIdSignInEvents [defender]",
    )]
    assert as_validate_says(diagnostics) == {
        (d["code"], d["location"]["line"], d["location"]["column"], d["severity"])
        for d in validated(workspace, "rules") if d["location"]["path"] == "rules/warned.yml"
    }


async def test_a_duplicate_id_in_another_file_of_the_folder_is_found(client, workspace):
    copy = PRT_RULE.replace("title: PRT from an unmanaged device", "title: A copy with the same id")
    diagnostics = await publish(client, workspace / "rules" / "zz-copy.yml", copy)
    assert [(d.code, d.message) for d in diagnostics if d.code == "E005"] == [
        ("E005", "duplicate id '" + str(uuid.uuid5(uuid.NAMESPACE_URL, "PRT from an unmanaged device")) + "': also used by rules/prt.yml"),
    ]
    assert as_validate_says(diagnostics) == {
        (d["code"], d["location"]["line"], d["location"]["column"], d["severity"])
        for d in validated(workspace, "rules") if d["location"]["path"] == "rules/zz-copy.yml"
    }
    await close(client, workspace / "rules" / "zz-copy.yml")


CHAIN_RULE = """title: Chain base
id: 5d1c8f0e-2a7b-4c39-9e64-0b3f6a2d9c11
name: chain_base
logsource:
  product: entra
  service: signins
detection:
  failed:
    status.errorCode: 50126
  condition: failed
"""
CHAIN = """title: Chain of failures
id: 3a9e5c27-6f1d-4b80-8c42-d7e0b1a4f963
tags:
  - attack.credential_access
  - attack.t1110
level: medium
correlation:
  type: event_count
  rules:
    - chain_base
  group-by:
    - userPrincipalName
  timespan: 10m
  condition:
    gte: 10
"""


async def test_a_correlation_is_checked_with_the_rule_it_names_in_another_file(client, workspace):
    chain = workspace / "rules" / "chain"
    (chain / "base.yml").parent.mkdir(parents=True, exist_ok=True)
    (chain / "base.yml").write_text(CHAIN_RULE, encoding="utf-8")  # on disk only
    assert await publish(client, chain / "correlation.yml", CHAIN) == []
    assert validated(workspace, "rules/chain") == []
    renamed = CHAIN_RULE.replace("name: chain_base", "name: chain_bas")
    mark = len(PUBLISHED)
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=(chain / "base.yml").as_uri(), language_id="yaml", version=1, text=renamed)))
    VERSIONS[(chain / "base.yml").as_uri()] = 1
    # the rename is unsaved: the correlation's diagnostics change all the same
    diagnostics = await published(mark, (chain / "correlation.yml").as_uri())
    assert [(d.code, d.message, d.range.start.line) for d in diagnostics] == [
        ("E401", "no rule named or with id 'chain_base' (did you mean 'chain_bas'?)", CHAIN.splitlines().index("    - chain_base"))]
    mark = len(PUBLISHED)
    await publish(client, chain / "base.yml", CHAIN_RULE, write=False)
    assert await published(mark, (chain / "correlation.yml").as_uri()) == []


@pytest.mark.replay
async def test_a_tests_file_gets_the_test_checks(client, workspace):
    path = workspace / "rules/correlation/mfa-fatigue.tests.yml"
    uri, text = path.as_uri(), path.read_text(encoding="utf-8")
    assert await publish(client, path, text, write=False) == []  # opened: checked and replayed
    misspelt = text.replace("UserPrincipalName: bob@contoso.com", "UserPrincipleName: bob@contoso.com", 1)
    diagnostics = await publish(client, path, misspelt, write=False)
    assert [(d.code, d.source, d.message) for d in diagnostics] == [(
        "E502", "entra-sigma", "case 'five denials in ten minutes, but of two users': SigninLogs has no column "
        "'UserPrincipleName' (did you mean 'UserPrincipalName'?)")]
    assert diagnostics[0].range.start.line == misspelt.splitlines().index(
        next(line for line in misspelt.splitlines() if "UserPrincipleName" in line))

    failing = text.replace("expect: no match\n", "expect: match\n", 1)
    assert await publish(client, path, failing, write=False) == []  # a change: the cases are not replayed
    mark = len(PUBLISHED)
    client.text_document_did_save(types.DidSaveTextDocumentParams(types.TextDocumentIdentifier(uri)))
    diagnostics = await published(mark, uri, VERSIONS[uri])  # saved: replayed
    assert [(d.source, d.message) for d in diagnostics] == [
        ("entra-sigma test", "the case fails: sentinel: expected a match; the query returned no rows")]
    assert diagnostics[0].range.start.line == failing.splitlines().index("  - name: five denials spread over ten minutes and one second")


# -- quick fixes ----------------------------------------------------------------------------------
def single_fault(title: str, detection: str, **changes) -> str:
    return rule_text(title, detection, **changes)


GOOD_DETECTION = "  sel:\n    userAgent|contains: python\n  condition: sel\n"
FAULTS = {
    "unknown field": single_fault("fix field", GOOD_DETECTION.replace("userAgent", "userAgnt")),
    "unknown modifier": single_fault("fix modifier", GOOD_DETECTION.replace("contains", "containz")),
    "enum member": single_fault("fix member", "  sel:\n    riskLevelDuringSignIn:\n      - medium\n      - hgh\n  condition: sel\n"),
    "a technique without its tactic": single_fault("fix tactic", GOOD_DETECTION, tags="  - attack.t1110.003\n"),
    "a tactic in a flow list": single_fault("fix flow tactic", GOOD_DETECTION, tags="").replace("tags:\n", "tags: [attack.t1078.004]\n"),
    "a value starting with *": single_fault("fix star", "  sel:\n    userAgent: *python*\n  condition: sel\n"),
    "a colon in a value": single_fault("fix colon", GOOD_DETECTION).replace("level: low\n", "level: low\ndescription: Failed: wrong password\n"),
    "a field in fields": single_fault("fix fields", GOOD_DETECTION, extra="fields:\n  - userPrinicpalName\n"),
    "a correlation reference": CHAIN.replace("title: Chain of failures", "title: fix reference")
    .replace("3a9e5c27-6f1d-4b80-8c42-d7e0b1a4f963", "3a9e5c27-6f1d-4b80-8c42-d7e0b1a4f964").replace("- chain_base", "- chain_bse"),
    "a group-by field": CHAIN.replace("title: Chain of failures", "title: fix group-by")
    .replace("3a9e5c27-6f1d-4b80-8c42-d7e0b1a4f963", "3a9e5c27-6f1d-4b80-8c42-d7e0b1a4f965").replace("- userPrincipalName", "- userPrincipleName"),
}


def apply(text: str, edits: list[types.TextEdit]) -> str:
    lines = text.split("\n")
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for edit in sorted(edits, key=lambda e: (e.range.start.line, e.range.start.character), reverse=True):
        start = offsets[edit.range.start.line] + edit.range.start.character
        end = offsets[edit.range.end.line] + edit.range.end.character
        text = text[:start] + edit.new_text + text[end:]
    return text


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_every_quick_fix_gives_a_rule_that_validates(client, workspace, tmp_path, fault):
    folder = workspace / "rules" / "chain"  # beside the rule the correlations name
    path = folder / f"fix-{fault.replace(' ', '-').replace('*', 'star')}.yml"
    text = FAULTS[fault]
    diagnostics = await publish(client, path, text)
    assert diagnostics, fault
    actions = await client.text_document_code_action_async(types.CodeActionParams(
        types.TextDocumentIdentifier(path.as_uri()), diagnostics[0].range, types.CodeActionContext(diagnostics)))
    assert actions, f"no quick fix for {diagnostics[0].code}: {diagnostics[0].message}"
    for action in actions:
        assert action.kind == types.CodeActionKind.QuickFix
        assert action.diagnostics and action.diagnostics[0].code == diagnostics[0].code
        fixed = apply(text, action.edit.changes[path.as_uri()])
        (tmp_path / "rules").mkdir(exist_ok=True)
        (tmp_path / "rules" / path.name).write_text(fixed, encoding="utf-8")
        shutil.copy(folder / "base.yml", tmp_path / "rules" / "base.yml")
        result = run(tmp_path, "validate", "rules")
        assert result.exit_code == 0, f"{action.title}:\n{fixed}\n{result.output}"
    await close(client, path)


# -- completion, hover, the query -------------------------------------------------------------------
async def complete(client: LanguageClient, path: Path, text: str, line: int, character: int) -> dict[str, types.CompletionItem]:
    await publish(client, path, text, write=False)
    result = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(path.as_uri()), types.Position(line, character)))
    items = result.items if isinstance(result, types.CompletionList) else result
    return {item.label: item for item in items}


async def test_completion_of_a_field_a_modifier_and_an_enum_member(client, workspace):
    path = workspace / "rules" / "typing.yml"
    typing = rule_text("Typing", "  sel:\n    deviceDetail.isMan\n  condition: sel\n")
    items = await complete(client, path, typing, 10, len("    deviceDetail.isMan"))
    assert items["deviceDetail.isManaged"].detail == "bool"
    assert items["status.errorCode"].detail == "int"
    edit = items["deviceDetail.isManaged"].text_edit
    assert (edit.range.start.character, edit.range.end.character, edit.new_text) == (4, 22, "deviceDetail.isManaged")

    typing = rule_text("Typing", "  sel:\n    status.errorCode|\n  condition: sel\n")
    items = await complete(client, path, typing, 10, len("    status.errorCode|"))
    assert set(items) == {"gt", "gte", "lt", "lte", "all", "neq", "exists", "expand", "fieldref"}
    typing = rule_text("Typing", "  sel:\n    userAgent|\n  condition: sel\n")
    items = await complete(client, path, typing, 10, len("    userAgent|"))
    assert {"contains", "startswith", "endswith", "re", "cased"} <= set(items) and "cidr" not in items and "gt" not in items
    assert items["contains"].detail.startswith("The value occurs anywhere in the text")

    typing = rule_text("Typing", "  sel:\n    riskLevelDuringSignIn: \n  condition: sel\n")
    items = await complete(client, path, typing, 10, len("    riskLevelDuringSignIn: "))
    assert set(items) == {"low", "medium", "high", "hidden", "none", "unknownFutureValue"}
    typing = rule_text("Typing", "  sel:\n    incomingTokenType:\n      - p\n  condition: sel\n")
    items = await complete(client, path, typing, 11, len("      - p"))
    assert "primaryRefreshToken" in items and items["primaryRefreshToken"].detail == "incomingTokenType (flags)"


async def test_hover_on_a_field_shows_its_columns_in_the_tables_the_rule_reads(client, workspace):
    path = workspace / "rules" / "prt.yml"
    await publish(client, path, PRT_RULE, write=False)
    line = PRT_RULE.splitlines().index("    deviceDetail.isManaged: true")
    hover = await client.text_document_hover_async(types.HoverParams(
        types.TextDocumentIdentifier(path.as_uri()), types.Position(line, 10)))
    text = hover.contents.value
    assert text.startswith("**deviceDetail.isManaged**: bool")
    assert "| SigninLogs | DeviceDetail.isManaged (dynamic) |" in text
    assert "| AADNonInteractiveUserSignInLogs | DeviceDetail.isManaged (JSON text) |" in text
    assert "| EntraIdSignInEvents | IsManaged (int, numbers: false=0, true=1) |" in text
    assert "AADServicePrincipalSignInLogs" not in text  # a table this rule does not read
    assert (hover.range.start.character, hover.range.end.character) == (4, 26)


SCRIPT_RULE = rule_text("Scripting client with a wrong password", (
    "  sel:\n    userAgent|contains: python\n    status.errorCode: 50126\n  condition: sel\n"),
    extra="fields:\n  - userPrincipalName\n  - ipAddress\n")


@pytest.mark.parametrize("platform, name", [
    ("sentinel", "script.yml"), ("defender", "script.yml"), ("sentinel", "correlation/mfa-fatigue.yml"),
])
async def test_the_query_command_prints_what_compile_prints(client, workspace, platform, name):
    (workspace / "rules" / "script.yml").write_text(SCRIPT_RULE, encoding="utf-8")
    if True:
        path = workspace / "rules" / name
        text = path.read_text(encoding="utf-8")
        await publish(client, path, text, write=False)
        lenses = await client.text_document_code_lens_async(types.CodeLensParams(types.TextDocumentIdentifier(path.as_uri())))
        lens = next(lens for lens in lenses if lens.command.arguments[2] == platform and lens.range.start.line == 0)
        assert lens.command.title == {"sentinel": "Sentinel KQL", "defender": "Defender KQL"}[platform]
        shown = await client.workspace_execute_command_async(types.ExecuteCommandParams(lens.command.command, lens.command.arguments))
        printed = run(workspace, "compile", "--target", platform, f"rules/{name}")
        assert printed.exit_code == 0
        assert shown == printed.stdout


async def test_the_query_command_refuses_what_compile_refuses(client, workspace):
    """Defender has no column for incomingTokenType: `compile --target defender` prints nothing."""
    path = workspace / "rules" / "prt.yml"
    await publish(client, path, PRT_RULE, write=False)
    printed = run(workspace, "compile", "--target", "defender", "rules/prt.yml")
    assert printed.exit_code == 1 and printed.stdout == ""
    with pytest.raises(Exception, match="rules/prt.yml has errors, so `compile` prints nothing for it: rules/prt.yml:11:5: "
                                        "error: field 'incomingTokenType' has no column in EntraIdSignInEvents"):
        await client.workspace_execute_command_async(types.ExecuteCommandParams(
            "entra-sigma.showQuery", [path.as_uri(), 0, "defender"]))


async def test_a_yaml_file_that_is_no_rule_is_left_alone(client, workspace):
    """A workflow gets no rule diagnostics, completion or hover (the YAML language server has it)."""
    path = workspace / ".github" / "workflows" / "ci.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
    path.write_text(text, encoding="utf-8")
    client.text_document_did_open(types.DidOpenTextDocumentParams(
        types.TextDocumentItem(uri=path.as_uri(), language_id="yaml", version=1, text=text)))
    items = await client.text_document_completion_async(types.CompletionParams(
        types.TextDocumentIdentifier(path.as_uri()), types.Position(2, 2)))
    assert items is None
    symbols = await client.text_document_document_symbol_async(types.DocumentSymbolParams(types.TextDocumentIdentifier(path.as_uri())))
    assert symbols == []
    assert not [p for p in PUBLISHED if p.uri == path.as_uri()]

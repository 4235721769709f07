"""Every diagnostics format (`--format text|json|sarif|github`), through the command line, on
the same findings: an error with a hint, a warning, a missing path with no line, and text
that needs escaping (a value with a line break, `%`, and a file name with `,` and `:`).

The GitHub form is read back with GitHub's own unescaping rules, written out independently
below, so a message that would end a workflow command early, or split it over two lines,
fails the test.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from entra_sigma import __version__
from entra_sigma.cli import app
from entra_sigma.diagnostics import Diagnostic, SourceLocation, format_github
from typer.testing import CliRunner

from .helpers import MISSPELT_RULE as UNKNOWN_FIELD  # the same misspelt field the other CLI tests use
from .helpers import REPO

ODD_VALUE = """title: "100% odd, really: yes"
id: 8a1b3e2d-4c5f-4d6e-9fa0-1b2c3d4e5f6a
logsource: {product: entra, service: interactive}
detection:
  sel:
    riskLevelDuringSignIn: "hi\\ngh, 50%: x"
  condition: sel
"""
WARNED = """title: Interactive only
id: 9b2c4f3e-5d6a-4e7f-8a0b-2c3d4e5f6a7b
logsource: {product: entra, service: interactive}
detection:
  sel:
    userAgent|contains: curl
  condition: sel
"""
MEMBERS = "(members: low, medium, high, hidden, none, unknownFutureValue)"


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "bad.yml").write_text(UNKNOWN_FIELD, encoding="utf-8")
    (tmp_path / "rules" / "we,ird:name.yml").write_text(ODD_VALUE, encoding="utf-8")
    (tmp_path / "rules" / "warned.yml").write_text(WARNED, encoding="utf-8")
    return tmp_path


def validate(fmt: str):
    result = CliRunner().invoke(app, ["validate", "rules", "missing.yml", "--format", fmt])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    return result.stderr


def test_text(work):
    lines = validate("text").splitlines()
    assert lines == [
        "missing.yml: error: no such file or folder",
        "rules/bad.yml:6:5: error: unknown field 'incomingTokenTyp' in rule 'Misspelt field' (did you mean 'incomingTokenType'?)",
        "rules/warned.yml:3:29: warning: service 'interactive' has no defender sign-in table in rule 'Interactive only' [defender]",
        # the value's line break is spelt out: a diagnostic is one line (see tests/test_console_lines.py)
        "rules/we,ird:name.yml:6:5: error: 'hi\\ngh, 50%: x' is not a member of enum riskLevel for 'riskLevelDuringSignIn' "
        f"in rule '100% odd, really: yes' {MEMBERS}",
        "3 error(s) in 3 of 4 file(s)",
    ]


def test_json(work):
    items = json.loads(validate("json"))["diagnostics"]
    assert [(d["code"], d["severity"], d["location"]["path"], d["location"]["line"], d["location"]["column"]) for d in items] == [
        ("E000", "error", "missing.yml", 0, 0),
        ("E101", "error", "rules/bad.yml", 6, 5),
        ("E204", "warning", "rules/warned.yml", 3, 29),
        ("E106", "error", "rules/we,ird:name.yml", 6, 5),
    ]
    assert items[3]["message"] == "'hi\ngh, 50%: x' is not a member of enum riskLevel for 'riskLevelDuringSignIn'"
    assert (items[1]["rule"], items[1]["hint"], items[2]["target"]) == ("Misspelt field", "did you mean 'incomingTokenType'?", "defender")
    assert items[3]["rule"] == "100% odd, really: yes"


def test_sarif(work):
    log = json.loads(validate("sarif"))
    assert log["version"] == "2.1.0" and log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    assert run["tool"]["driver"]["name"] == "entra-sigma" and run["tool"]["driver"]["version"] == __version__
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert rules == ["E000", "E101", "E106", "E204"]
    found = []
    for result in run["results"]:
        assert rules[result["ruleIndex"]] == result["ruleId"]
        physical = result["locations"][0]["physicalLocation"]
        region = physical.get("region", {})
        found.append((result["ruleId"], result["level"], physical["artifactLocation"]["uri"], region.get("startLine")))
    assert found == [
        ("E000", "error", "missing.yml", None),
        ("E101", "error", "rules/bad.yml", 6),
        ("E204", "warning", "rules/warned.yml", 3),
        ("E106", "error", "rules/we,ird:name.yml", 6),
    ]


# -- GitHub workflow commands ------------------------------------------------------------------------
COMMAND = re.compile(r"^::(error|warning|notice) ([^:]*)::(.*)$")


def github_unescape(text: str) -> str:
    """What the Actions runner does to a command's message and property values."""
    for escaped, raw in (("%0D", "\r"), ("%0A", "\n"), ("%3A", ":"), ("%2C", ","), ("%25", "%")):
        text = text.replace(escaped, raw)
    return text


def read_github(output: str) -> list[tuple[str, dict[str, str], str]]:
    commands = []
    for line in output.split("\n")[:-1]:
        match = COMMAND.match(line)
        assert match, f"not a workflow command: {line!r}"
        kind, properties, message = match.groups()
        pairs = dict(part.split("=", 1) for part in properties.split(","))
        commands.append((kind, {k: github_unescape(v) for k, v in pairs.items()}, github_unescape(message)))
    return commands


def test_github(work):
    output = validate("github")
    assert output.endswith("\n") and "\r" not in output
    assert read_github(output) == [
        ("error", {"file": "missing.yml", "title": "entra-sigma E000"}, "no such file or folder"),
        ("error", {"file": "rules/bad.yml", "line": "6", "col": "5", "title": "entra-sigma E101"},
         "unknown field 'incomingTokenTyp' in rule 'Misspelt field' (did you mean 'incomingTokenType'?)"),
        ("warning", {"file": "rules/warned.yml", "line": "3", "col": "29", "title": "entra-sigma E204"},
         "service 'interactive' has no defender sign-in table in rule 'Interactive only' [defender]"),
        ("error", {"file": "rules/we,ird:name.yml", "line": "6", "col": "5", "title": "entra-sigma E106"},
         f"'hi\ngh, 50%: x' is not a member of enum riskLevel for 'riskLevelDuringSignIn' in rule '100% odd, really: yes' {MEMBERS}"),
    ]


@pytest.mark.parametrize("text", ["%", "%25", "a\r\nb", "::error::x", "a,b:c", "%0A", "\n\n", "é😀"])
def test_github_escaping_round_trips_any_text(text):
    diagnostic = Diagnostic("E101", text, SourceLocation(text + ".yml", 2, 3), rule=text, hint=text)
    ((kind, properties, message),) = read_github(format_github([diagnostic]))
    assert (kind, properties["file"], properties["line"]) == ("error", text + ".yml", "2")
    assert message == f"{text} in rule '{text}' ({text})"


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "github"])
def test_no_findings(work, fmt):
    for bad in (work / "rules").iterdir():
        bad.unlink()
    (work / "rules" / "good.yml").write_text(UNKNOWN_FIELD.replace("incomingTokenTyp", "incomingTokenType"), encoding="utf-8")
    result = CliRunner().invoke(app, ["compile", "rules", "--format", fmt])
    assert result.exit_code == 0
    expected = {"text": "", "json": '{\n  "diagnostics": []\n}\n', "github": ""}
    if fmt == "sarif":
        assert json.loads(result.stderr)["runs"][0]["results"] == []
    else:
        assert result.stderr == expected[fmt]


def test_every_diagnostic_code_in_the_compiler_is_documented():
    """docs/errors.md has a section for each code the compiler can emit."""
    documented = set(re.findall(r"^### ([EW]\d{3})$", (REPO / "docs" / "errors.md").read_text(encoding="utf-8"), re.MULTILINE))
    emitted = set()
    for source in sorted((REPO / "compiler").rglob("*.py")):
        emitted |= set(re.findall(r"""["']([EW]\d{3})["']""", source.read_text(encoding="utf-8")))
    assert len(emitted) > 20
    assert sorted(emitted - documented) == []

"""What the verbs print cannot forge or silence CI annotations (issue 18, item 4).

GitHub Actions reads every line a step prints: a line that starts with `::` after leading
spaces is a workflow command, and so is `##[command]…` anywhere in a line (the runner's older
syntax, still parsed). A test case name, a row value, a rule title or description, a value in a
diagnostic, a title the service holds or the service's error code can hold a line break
followed by `::error file=…::` or `::stop-commands::`. Each test below puts such text where a
verb prints it and reads the output as the runner does (compiler/dev/readers.py).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from entra_sigma.cli import app
from entra_sigma.console import one_line
from entra_sigma.dev.readers import runner_commands
from typer.testing import CliRunner

from tests.deploy_helpers import SUBSCRIPTION, WRONG_PASSWORD, fake, rules, sentinel, workspace_rules  # noqa: F401

FORGED = "\n::error file=rules/other.yml,line=1::forged annotation"
SILENCE = "\r\n  ::stop-commands::silence"
LEGACY = " ##[error]forged by the old syntax"
HOSTILE = f"curl{FORGED}{SILENCE}{LEGACY}"


def genuine_annotations(text: str) -> list[str]:
    """The `--format github` lines entra-sigma writes on purpose (file, line, col, title)."""
    return [line for line in text.split("\n") if line.startswith(("::error file=", "::warning file="))
            and ",title=entra-sigma " in line]


# -- the helper ------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, shown", [
    ("plain title, 100% ordinary: é 东京 😀", "plain title, 100% ordinary: é 东京 😀"),
    ("a\nb\rc\td", "a\\nb\\rc\\td"),
    ("::error::x", "\\x3a:error::x"),
    ("   ::stop-commands::t", "   \\x3a:stop-commands::t"),
    ("x ##[error]y", "x ##\\x5berror]y"),
    ("esc \x1b[31m bidi \u202e nel \x85 ls \u2028 nbsp \xa0 tag \U000e0001", "esc \\x1b[31m bidi \\u202e nel \\x85 ls \\u2028 nbsp \\xa0 tag \\U000e0001"),
    ("lone \ud800 surrogate", "lone \\ud800 surrogate"),
])
def test_one_line(text, shown):
    assert one_line(text) == shown
    assert one_line(shown) == shown  # applying it twice changes nothing
    assert runner_commands(one_line(text)) == []


# -- entra-sigma test ----------------------------------------------------------------------------------
RULE = """title: Scripting client
id: 5d0e1f2a-3b4c-4d5e-8f6a-7b8c9d0e1f2a
logsource: {product: entra, service: interactive}
detection:
  sel:
    userAgent|contains: curl
  condition: sel
fields: [userPrincipalName, userAgent]
level: low
"""


def quoted(text: str) -> str:
    import json

    return json.dumps(text)  # a YAML double-quoted scalar


def test_test_verb_prints_case_names_and_row_values_on_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "curl.yml").write_text(RULE, encoding="utf-8")
    (tmp_path / "rules" / "curl.tests.yml").write_text(f"""cases:
  - name: {quoted("matches" + FORGED)}
    expect: match
    rows:
      SigninLogs:
        - {{UserPrincipalName: alice@contoso.com, UserAgent: curl/8.0}}
  - name: {quoted("::stop-commands::silence")}
    expect: no match
    rows:
      SigninLogs:
        - {{UserPrincipalName: bob@contoso.com, UserAgent: {quoted(HOSTILE)}}}
""", encoding="utf-8")
    result = CliRunner().invoke(app, ["test", "rules", "--verbose", "--format", "github"])
    assert result.exit_code == 1, result.output  # the second case fails: its row matches
    assert runner_commands(result.stdout) == []
    assert runner_commands(result.stderr) == genuine_annotations(result.stderr)
    assert "PASS  rules/curl.yml: matches\\n::error file=rules/other.yml,line=1::forged annotation" in result.stdout
    assert "FAIL  rules/curl.yml: ::stop-commands::silence" in result.stdout  # inside a line: no command
    assert "userAgent=curl\\n::error file=rules/other.yml,line=1::forged annotation\\r..." in result.stdout


# -- entra-sigma diff -----------------------------------------------------------------------------------
DIFF_RULE = """title: {title}
id: 0c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f
description: |
  A description whose lines land in the Sentinel YAML as they are.
  ::warning file=rules/other.yml::forged from a description line
  {legacy}
logsource: {{product: entra, service: interactive}}
detection:
  sel:
    userAgent|contains: {value}
  condition: sel
fields: [userPrincipalName]
level: low
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_diff_prints_titles_output_lines_and_diagnostics_safely(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "repo"
    (root / "rules").mkdir(parents=True)
    git(root, "init", "-q")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "start")
    rule = root / "rules" / "r.yml"
    rule.write_text(DIFF_RULE.format(title="Before", legacy="##[error]forged", value="curl"), encoding="utf-8")
    git(root, "add", "rules")
    git(root, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "rules")
    rule.write_text(DIFF_RULE.format(title=quoted("After" + FORGED), legacy="##[error]forged", value=quoted(HOSTILE)),
                    encoding="utf-8")
    (root / "rules" / "broken.yml").write_text(RULE.replace("Scripting client", "Broken").replace(
        "5d0e1f2a", "6e1f2a3b").replace("userAgent|contains: curl", f"riskLevelDuringSignIn: {quoted('high' + FORGED)}"),
        encoding="utf-8")
    monkeypatch.chdir(root)
    for fmt in ("text", "markdown"):
        result = CliRunner().invoke(app, ["diff", "HEAD", "--all-formats", "--format", fmt])
        assert result.exit_code == 1, result.output  # broken.yml has an error
        assert "is not a member of enum riskLevel" in result.stderr
        assert runner_commands(result.stderr) == [], fmt
        assert runner_commands(result.stdout) == [], fmt


def test_diff_report_lines():
    """The same, through the text renderer alone: the YAML diff's description lines are kept
    as they are (only what a runner would read as a command is spelt out)."""
    from entra_sigma.verbs.diff.report import render_markdown, render_text

    class Base:
        @staticmethod
        def describe(code=None):
            return "main"

    from entra_sigma.verbs.diff.compare import FileDiff, RuleChange, RuleDiff

    change = RuleChange(kind="changed", id="x", title="T" + FORGED, source="rules/x.yml",
                        diffs=[FileDiff("sentinel/x.yaml", "sentinel/x.yaml",
                                        "--- a/sentinel/x.yaml\n+++ b/sentinel/x.yaml\n@@ -1 +1 @@\n"
                                        "-name: old\n+name: new\n   ::warning::from a description\n   ##[error]x\n")])
    result = RuleDiff(rules_dir="rules", base=Base(), added=[], removed=[], changed=[change], unchanged=0,
                      diagnostics=[], documents=[])
    text = render_text(result)
    assert runner_commands(text) == []
    assert runner_commands(render_markdown(result)) == []
    assert "\n   \\x3a:warning::from a description\n   ##\\x5berror]x\n" in text
    assert "  ~ T ::error file=rules/other.yml,line=1::forged annotation [x]" in text  # a title is one line


# -- entra-sigma deploy ---------------------------------------------------------------------------------
def test_deploy_prints_service_titles_and_error_codes_on_one_line(fake, rules, monkeypatch):  # noqa: F811
    assert sentinel(fake, rules, "--apply").exit_code == 0
    deployed = workspace_rules(fake)
    # someone renames a rule in the portal; its file then leaves RULES: the plan shows the service's title
    fake.edit_sentinel(deployed, WRONG_PASSWORD, displayName="Renamed" + FORGED + LEGACY)
    (rules / "wrong-password.yml").unlink()
    # and the service refuses every write with a hostile error code and message
    real_route = fake.route

    def refuse_writes(method, path, query, headers, body):
        if method == "PUT":
            return 400, {}, {"error": {"code": "Bad" + FORGED, "message": "no" + SILENCE + LEGACY}}
        return real_route(method, path, query, headers, body)

    monkeypatch.setattr(fake, "route", refuse_writes)
    account = rules / "account-locked.yml"  # an update, which the service then refuses
    account.write_text(account.read_text(encoding="utf-8").replace("title: ", "title: Edited ", 1), encoding="utf-8")
    for fmt in ("text", "json", "markdown"):
        planned = sentinel(fake, rules, "--format", fmt)
        assert planned.exit_code == 0, planned.output
        assert runner_commands(planned.stdout + planned.stderr) == [], fmt
    applied = sentinel(fake, rules, "--apply")
    assert applied.exit_code == 1
    assert "  keep     Renamed\\n::error file=rules/other.yml,line=1::forged annotation ##\\x5berror]forged by the old syntax" \
        in applied.stdout
    assert "error E601: " in applied.stderr and "Bad\\n::error file=rules/other.yml" in applied.stderr
    assert runner_commands(applied.stdout + applied.stderr) == []

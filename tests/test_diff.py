"""`entra-sigma diff`: the KQL a pull request changes, rule by rule, against a git revision.

Each test builds a throwaway git repository holding a few of the bundled rules, commits,
then edits the working tree: one rule's detection changed, one rule added, one removed.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from entra_sigma.build import Compiler
from entra_sigma.cli import app
from entra_sigma.verbs.diff.compare import diff_rules
from entra_sigma.verbs.diff.gitrev import DiffError, rules_at_revision
from entra_sigma.verbs.diff.report import render_markdown, render_text
from typer.testing import CliRunner

from .helpers import REPO

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

RULES = REPO / "rules"
CHANGED = ("ropc-signin.yml", "2b7e9f1c-5d3a-4c8b-a1e6-9f0d3b5c7e33", "Sign-in with resource owner password credentials (ROPC)")
REMOVED = ("mfa-push-denied.yml", "9e4c1a7b-2f6d-4b3e-8c05-1a9d7f3b5e44", "MFA push notification denied by the user")
ADDED = ("federated-signin.yml", "7f3b5d9e-4a1c-4e2b-9d06-3c7a1e5f8b66", "Sign-in with a token issued by a federation server")
KEPT = ("device-code-flow.yml", "aadsts-failures.yml")


def bundled(name: str) -> Path:
    """A bundled rule by file name, wherever it sits under rules/ (the test repository is flat)."""
    (path,) = RULES.rglob(name)
    return path


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A committed repository with four rules on `main`; the working tree is then edited."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "repo"
    (root / "rules").mkdir(parents=True)
    git(root, "init", "-q")
    git(root, "symbolic-ref", "HEAD", "refs/heads/main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@example.com")
    git(root, "config", "commit.gpgsign", "false")
    for name in (CHANGED[0], REMOVED[0], *KEPT):
        shutil.copy(bundled(name), root / "rules" / name)
    git(root, "add", "rules")
    git(root, "commit", "-q", "-m", "rules")
    monkeypatch.chdir(root)
    return root


def edit(root: Path) -> None:
    rule = root / "rules" / CHANGED[0]
    text = rule.read_text(encoding="utf-8")
    assert "authenticationProtocol: ropc" in text
    rule.write_text(text.replace("authenticationProtocol: ropc", "authenticationProtocol: deviceCode"), encoding="utf-8")
    (root / "rules" / REMOVED[0]).unlink()
    shutil.copy(bundled(ADDED[0]), root / "rules" / ADDED[0])


def run(*args: str):
    return CliRunner().invoke(app, ["diff", *args])


def test_library_reports_exactly_the_three_rules(repo: Path) -> None:
    edit(repo)
    result = diff_rules(Compiler(), Path("rules"))
    assert [(c.id, c.title) for c in result.added] == [ADDED[1:]]
    assert [(c.id, c.title) for c in result.removed] == [REMOVED[1:]]
    assert [(c.id, c.title) for c in result.changed] == [CHANGED[1:]]
    assert result.unchanged == len(KEPT)
    assert result.base.rev == "HEAD" and not result.base.merge_base  # on main itself: uncommitted changes
    assert result.ok

    (change,) = result.changed
    # by default only the KQL formats; the Defender query does not exist for ROPC (no column)
    assert [(d.old, d.new) for d in change.diffs] == [("kql/ropc-signin.kql", "kql/ropc-signin.kql")]
    assert change.hidden == ["sentinel/ropc-signin.yaml", "arm/ropc-signin.json"]
    text = change.diffs[0].text
    assert text.startswith("--- a/kql/ropc-signin.kql\n+++ b/kql/ropc-signin.kql\n@@ ")
    assert '\n-    | where AuthenticationProtocol has "ropc"\n' in text
    assert '\n+    | where AuthenticationProtocol has "deviceCode"\n' in text

    everything = diff_rules(Compiler(), Path("rules"), "HEAD", all_formats=True)
    (change,) = everything.changed
    assert [d.new for d in change.diffs] == ["kql/ropc-signin.kql", "sentinel/ropc-signin.yaml", "arm/ropc-signin.json"]
    assert change.hidden == []


def test_text_output(repo: Path) -> None:
    edit(repo)
    result = run()
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0].startswith("rules/ at HEAD (")
    assert "1 changed, 1 added, 1 removed, 2 unchanged" in out
    assert f"  + {ADDED[2]} [{ADDED[1]}]\n" in out
    section = out.split(f"\n+ {ADDED[2]} [{ADDED[1]}]\n", 1)[1]
    assert section.startswith(f"  rules/{ADDED[0]}:23:5: warning: field 'tokenIssuerType' has no column in EntraIdSignInEvents")
    assert "\n--- /dev/null\n+++ b/kql/federated-signin.kql\n@@ -0,0 +1,11 @@\n+// " in section  # its KQL
    assert f"  - {REMOVED[2]} [{REMOVED[1]}]\n" in out
    assert f"  ~ {CHANGED[2]} [{CHANGED[1]}]\n" in out
    for other in KEPT:
        assert other.removesuffix(".yml") not in out
    assert "--- a/kql/ropc-signin.kql\n+++ b/kql/ropc-signin.kql\n" in out
    assert '\n-    | where AuthenticationProtocol has "ropc"\n' in out
    assert '\n+    | where AuthenticationProtocol has "deviceCode"\n' in out
    assert "/tmp" not in out and str(repo) not in out and "entra-sigma-diff-" not in out


def test_markdown_output(repo: Path) -> None:
    edit(repo)
    result = run("--format", "markdown")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith("### entra-sigma diff: 1 changed, 1 added, 1 removed, 2 unchanged\n")
    added = out.split("**Added**\n", 1)[1].split("**Removed**", 1)[0]
    removed = out.split("**Removed**\n\n", 1)[1].split("\n\n", 1)[0]
    assert added.count("<details>") == 1
    assert f"<summary>{ADDED[2]} (<code>{ADDED[1]}</code>)</summary>" in added
    kql = added.split("```diff\n", 1)[1].split("\n```\n", 1)[0]
    assert kql.startswith("--- /dev/null\n+++ b/kql/federated-signin.kql\n@@ -0,0 +1,")
    assert f"\n+// {ADDED[2]}\n" in kql and all(line[0] in "+-@" for line in kql.splitlines())
    assert removed == f"- {REMOVED[2]} (`{REMOVED[1]}`)"
    changed = out.split("**Changed**\n", 1)[1]
    assert changed.count("<details>") == 1 and changed.count("</details>") == 1
    assert f"<summary>{CHANGED[2]} (<code>{CHANGED[1]}</code>)</summary>" in changed
    block = changed.split("```diff\n", 1)[1].split("\n```\n", 1)[0]
    assert block.startswith("--- a/kql/ropc-signin.kql\n+++ b/kql/ropc-signin.kql\n@@ ")
    assert '\n-    | where AuthenticationProtocol has "ropc"\n' in block
    assert '\n+    | where AuthenticationProtocol has "deviceCode"\n' in block
    assert "/tmp" not in out and str(repo) not in out


def test_output_is_deterministic(repo: Path) -> None:
    edit(repo)
    for args in ((), ("--format", "markdown"), ("--all-formats",)):
        first, second = run(*args), run(*args)
        assert first.exit_code == second.exit_code == 0
        assert first.stdout_bytes == second.stdout_bytes
        assert first.stderr_bytes == second.stderr_bytes


def test_no_changes(repo: Path) -> None:
    result = run()
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1] == "no changes (4 rule(s) unchanged)"
    markdown = run("--format", "markdown")
    assert markdown.exit_code == 0
    assert markdown.stdout.startswith("### entra-sigma diff: no rule changes\n")
    assert "<details>" not in markdown.stdout


def test_branch_compares_with_the_merge_base(repo: Path) -> None:
    """On a feature branch the default base is where it left main, not main's newer commits."""
    git(repo, "checkout", "-q", "-b", "feature")
    edit(repo)
    git(repo, "add", "-A", "rules")
    git(repo, "commit", "-q", "-m", "feature")
    git(repo, "checkout", "-q", "main")
    (repo / "rules" / KEPT[0]).unlink()
    git(repo, "commit", "-q", "-am", "main moves on")
    git(repo, "checkout", "-q", "feature")
    result = diff_rules(Compiler(), Path("rules"))
    assert result.base.merge_base and result.base.rev == "main"
    assert [c.id for c in result.added] == [ADDED[1]]
    assert [c.id for c in result.removed] == [REMOVED[1]]  # not KEPT[0]: main deleted it after the branch
    assert [c.id for c in result.changed] == [CHANGED[1]]
    assert render_text(result).splitlines()[0].startswith("rules/ at the merge base of HEAD and main (")


def test_new_error_is_reported_and_fails(repo: Path) -> None:
    rule = repo / "rules" / KEPT[0]
    rule.write_text(rule.read_text(encoding="utf-8").replace("detection:", "detections:"), encoding="utf-8")
    result = run()
    assert result.exit_code == 1
    assert "1 changed, 0 added, 0 removed, 3 unchanged" in result.stdout
    assert "  new: rules/device-code-flow.yml:1:1: error: missing required key 'detection'" in result.stdout
    assert "no outputs: the rule has errors in the working tree" in result.stdout
    assert "error: missing required key 'detection'" in result.stderr


def test_unknown_revision_is_a_usage_error(repo: Path) -> None:
    result = run("no-such-revision")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == "entra-sigma: error: unknown revision 'no-such-revision' (not a commit in this repository)\n"
    with pytest.raises(DiffError):
        diff_rules(Compiler(), Path("rules"), "no-such-revision")


def test_not_a_git_repository(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "plain" / "rules").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "plain")
    result = run()
    assert result.exit_code == 2
    assert result.stderr == "entra-sigma: error: rules: not inside a git working tree\n"


def test_rules_at_revision_leaves_nothing_behind(repo: Path) -> None:
    edit(repo)
    with rules_at_revision(repo, "HEAD", "rules") as folder:
        assert sorted(p.name for p in folder.iterdir()) == sorted((CHANGED[0], REMOVED[0], *KEPT))
        assert (folder / CHANGED[0]).read_bytes() == bundled(CHANGED[0]).read_bytes()
    assert not folder.exists()
    assert git(repo, "worktree", "list").count("\n") == 1
    with rules_at_revision(repo, "HEAD", "not-there") as folder:
        assert list(folder.iterdir()) == []


def test_fence_outlasts_backticks_in_the_diff() -> None:
    from entra_sigma.verbs.diff.report import fenced

    assert fenced("a\n```\nb\n", "diff") == "````diff\na\n```\nb\n````"
    assert fenced("plain\n", "diff") == "```diff\nplain\n```"


# -- several rules in one file, and what goes to stderr -------------------------------------------
def two_rules(second_value: str) -> str:
    """One file, two output rules; the second has a `name`."""
    return (
        "title: First of two\nid: 1a2b3c4d-0000-4000-8000-000000000001\n"
        "logsource: {product: entra, service: interactive}\n"
        "detection:\n  sel:\n    clientAppUsed: IMAP4\n  condition: sel\n"
        "---\n"
        "title: Second of two\nname: second_of_two\nid: 1a2b3c4d-0000-4000-8000-000000000002\n"
        "logsource: {product: entra, service: interactive}\n"
        f"detection:\n  sel:\n    clientAppUsed: {second_value}\n  condition: sel\n"
    )


def test_a_change_to_the_second_rule_of_a_file_is_reported_under_that_rule(repo: Path) -> None:
    (repo / "rules" / "pair.yml").write_text(two_rules("POP3"), encoding="utf-8")
    git(repo, "add", "rules")
    git(repo, "commit", "-q", "-m", "pair")
    (repo / "rules" / "pair.yml").write_text(two_rules("Authenticated SMTP"), encoding="utf-8")
    result = diff_rules(Compiler(), Path("rules"))
    assert [(c.id, c.title) for c in result.changed] == [("1a2b3c4d-0000-4000-8000-000000000002", "Second of two")]
    assert result.unchanged == 5  # the four rules and the first of the pair
    (change,) = result.changed
    assert [d.new for d in change.diffs] == ["kql/pair.second_of_two.kql"]  # named by its `name`, not its id


def test_adding_a_second_rule_to_a_file_adds_that_rule(repo: Path) -> None:
    first = two_rules("POP3").split("---\n")[0]
    (repo / "rules" / "pair.yml").write_text(first, encoding="utf-8")
    git(repo, "add", "rules")
    git(repo, "commit", "-q", "-m", "pair")
    (repo / "rules" / "pair.yml").write_text(two_rules("POP3"), encoding="utf-8")
    result = diff_rules(Compiler(), Path("rules"))
    assert [(c.id, c.title) for c in result.added] == [("1a2b3c4d-0000-4000-8000-000000000002", "Second of two")]
    assert result.changed == [] and result.unchanged == 5


def test_warnings_on_stderr_are_only_those_of_rules_in_the_diff(repo: Path) -> None:
    """Every rule here has a Defender gap; only the changed and added rules' gaps are printed."""
    edit(repo)
    result = run()
    assert result.exit_code == 0, result.output
    warned = sorted({line.split(":")[0] for line in result.stderr.splitlines()})
    assert warned == ["rules/federated-signin.yml", "rules/ropc-signin.yml"]
    everything = CliRunner().invoke(app, ["validate", "rules"])
    assert "rules/device-code-flow.yml" in everything.stderr  # an unchanged rule that does warn


@pytest.mark.parametrize("side", ["working tree", "base"])
def test_a_raw_control_character_in_a_rule_is_a_located_error_not_a_crash(repo: Path, side: str) -> None:
    """Even in a comment it was an internal error (exit status 3): no pull-request comment."""
    rule = repo / "rules" / CHANGED[0]
    good = rule.read_text(encoding="utf-8")
    rule.write_text("# \x01 in a comment\n" + good, encoding="utf-8")
    if side == "base":
        git(repo, "commit", "-q", "-am", "a control character")
        rule.write_text(good, encoding="utf-8")  # the pull request removes it
    result = run()
    assert "Traceback" not in result.output and "internal error" not in result.output
    if side == "working tree":
        assert result.exit_code == 1
        assert f"rules/{CHANGED[0]}:1:3: error: invalid YAML: the character U+0001 cannot appear" in result.stderr
    else:  # the pull request's fix shows as such
        assert result.exit_code == 0
        assert f"  resolved: rules/{CHANGED[0]}:1:3: error: invalid YAML: the character U+0001 cannot appear" in result.stdout


# -- settings in the comment (issue 20, items 1 and 2) ----------------------------------------------
def set_sentinel(root: Path, settings: str) -> None:
    rule = root / "rules" / CHANGED[0]
    rule.write_text(rule.read_text(encoding="utf-8") + settings, encoding="utf-8")


def test_a_threshold_change_shows_in_the_comment_once_as_a_setting(repo: Path) -> None:
    set_sentinel(repo, "sentinel:\n  triggerThreshold: 5\n  queryFrequency: 2h\n  queryPeriod: 2h\n")
    result = run("--format", "markdown")
    assert result.exit_code == 0, result.output
    comment = result.stdout
    assert "| `triggerThreshold` | `0` | `5` | sentinel-yaml, arm |" in comment
    assert '| `queryFrequency` | `"1h"` | `"2h"` | sentinel-yaml, arm |' in comment  # PT1H -> PT2H in ARM: one row
    assert comment.count("triggerThreshold") == 1 and "```diff" not in comment  # the KQL did not change
    text = run().stdout
    assert "    triggerThreshold: 0 -> 5  (sentinel-yaml, arm)" in text


def test_every_difference_in_a_deployable_file_is_a_setting(repo: Path) -> None:
    """Nothing changes unseen: settings the rule format reaches, and whatever a template writes."""
    from entra_sigma.verbs.diff.settings import setting_changes

    old = '{"resources": [{"properties": {"query": "Q", "severity": "Low", "customDetails": {"a": "x"}}}], "metadata": {"m": 1}}'
    new = '{"resources": [{"properties": {"query": "Q", "severity": "[[High]", "customDetails": {"a": "y"}}}], "metadata": {"m": 2}}'
    changes = setting_changes([("arm", old, new)], {"sentinel": "Q"}, {"sentinel": "Q"})
    assert [(c.name, c.before, c.after) for c in changes] == [
        ("customDetails.a", "x", "y"), ("metadata.m", 1, 2), ("severity", "Low", "[High]")]  # as ARM reads `[[`
    changed_query = setting_changes([("arm", old, new.replace('"Q"', '"Q2"'))], {"sentinel": "Q"}, {"sentinel": "Q"})
    assert "query" in [c.name for c in changed_query]  # a template's own change to the query shows too
    gone = setting_changes([("defender-detection", "{}", None)], {}, {})
    assert [(c.name, c.before, c.after) for c in gone] == [("(defender file)", "written", "not written")]


def test_a_level_with_the_same_severity_says_so(repo: Path) -> None:
    rule = repo / "rules" / CHANGED[0]
    text = rule.read_text(encoding="utf-8")
    assert "\nlevel: medium\n" in text
    rule.write_text(text.replace("\nlevel: medium\n", "\nlevel: high\n"), encoding="utf-8")
    git(repo, "commit", "-qam", "high")
    rule.write_text(text.replace("\nlevel: medium\n", "\nlevel: critical\n"), encoding="utf-8")
    assert ("  level high -> critical: the deployed severity stays High (arm); only the query's comment changes"
            in run().stdout)
    rule.write_text(text, encoding="utf-8")  # back to medium: the severity changes, and shows as a setting
    assert '| `severity` | `"High"` | `"Medium"` | sentinel-yaml, arm |' in run("--format", "markdown").stdout


def test_the_comment_carries_the_diagnostics_of_the_rules_in_the_diff_as_docs_deploy_md_says(repo: Path) -> None:
    """An added rule's warnings are in the report (for the reviewer) and on stderr (for the log);
    nothing of stderr is needed to read the comment, and stdout holds only the report."""
    edit(repo)
    result = run("--format", "markdown")
    warnings = [line for line in result.stderr.splitlines() if line.startswith("rules/federated-signin.yml")]
    assert warnings, result.stderr
    added = result.stdout.split("**Added**")[1].split("</details>")[0]
    assert all(line in added for line in warnings)
    assert result.stdout.startswith("### entra-sigma diff:") and "error(s) in" not in result.stdout
    doc = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "so a reviewer sees a new rule's warnings" in doc and "so only the report goes into the comment" not in doc

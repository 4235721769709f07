"""Rule text in our Markdown notifies no one (issue 18, item 11).

A title, a file name or what the service says reaches the pull-request comment (`diff` and
`deploy … --format markdown`) and the rule catalog (`coverage --markdown`). GitHub would turn
`@user`, `@org/team`, `#123` and `GH-123` there into mentions and references. Each test puts
them where a verb writes them and reads the Markdown as GitHub renders it
(`compiler/dev/readers.live_mentions`); the text must still read the same.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from entra_sigma.cli import app
from entra_sigma.dev.readers import live_mentions
from entra_sigma.render.markdown import code_span, html_text, markdown_text, table_cell
from typer.testing import CliRunner

from tests.deploy_helpers import ROPC, WRONG_PASSWORD, fake, rules, sentinel, workspace_rules  # noqa: F401

PINGS = "ping @octocat and @contoso/secops about #123, contoso/detections#45 and GH-7"


def visible(markdown: str) -> str:
    """What a reader sees of escaped text: entities decoded, the zero-width space gone."""
    import html

    return html.unescape(markdown).replace("\u200b", "").replace("\\", "")


@pytest.mark.parametrize("escape", [markdown_text, html_text, table_cell])
def test_each_escaper_breaks_mentions_and_reads_the_same(escape):
    assert len(live_mentions(PINGS)) == 5  # the oracle finds them in plain text
    escaped = escape(PINGS)
    assert live_mentions(escaped) == [] and live_mentions(f"<details>\n<summary>{escaped}</summary>\n\n</details>") == []
    assert visible(escaped) == PINGS


def test_ordinary_text_is_unchanged():
    title = "Sign-in with a token issued by a federation server (ADFS)"
    assert markdown_text(title) == title and table_cell(title) == title and html_text(title) == title
    assert code_span("@octocat") == "`@octocat`"  # GitHub links nothing inside code


# -- diff ------------------------------------------------------------------------------------------
RULE = """title: {title}
id: {id}
description: {title}
logsource: {{product: entra, service: interactive}}
detection:
  sel:
    userAgent|contains: {value}
  condition: sel
fields: [userPrincipalName]
level: low
"""


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args], cwd=repo, check=True,
                   capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_diff_comment_mentions_no_one(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    root = tmp_path / "repo"
    rules_dir = root / "rules"
    rules_dir.mkdir(parents=True)
    git(root, "init", "-q")
    ids = ["1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d", "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e", "3c4d5e6f-7a8b-4c9d-8e1f-2a3b4c5d6e7f"]
    (rules_dir / "changed.yml").write_text(RULE.format(title=f"Changed {PINGS}", id=ids[0], value="curl"), encoding="utf-8")
    (rules_dir / "@octocat #9.yml").write_text(RULE.format(title=f"Removed {PINGS}", id=ids[1], value="curl"), encoding="utf-8")
    git(root, "add", "rules")
    git(root, "commit", "-q", "-m", "rules")
    (rules_dir / "changed.yml").write_text(RULE.format(title=f"Changed {PINGS}", id=ids[0], value="wget @octocat #1"),
                                           encoding="utf-8")
    (rules_dir / "@octocat #9.yml").unlink()
    (rules_dir / "@contoso secops.yml").write_text(RULE.format(title=f"Added {PINGS}", id=ids[2], value="x"), encoding="utf-8")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["diff", "HEAD", "--format", "markdown"])
    assert result.exit_code == 0, result.output
    comment = result.stdout
    assert comment.count("Changed ping @&#8203;octocat") == 1 and "Removed ping @&#8203;octocat" in comment
    assert "Added ping @&#8203;octocat" in comment
    assert live_mentions(comment) == []


# -- deploy --------------------------------------------------------------------------------------
def test_deploy_plan_comment_mentions_no_one(fake, rules, monkeypatch):  # noqa: F811
    assert sentinel(fake, rules, "--apply").exit_code == 0
    deployed = workspace_rules(fake)
    fake.edit_sentinel(deployed, WRONG_PASSWORD, displayName=f"Kept {PINGS}")  # the service's title, for "keep"
    (rules / "wrong-password.yml").unlink()
    ropc = next(p for p in rules.glob("*.yml") if ROPC in p.read_text(encoding="utf-8"))
    ropc.write_text(ropc.read_text(encoding="utf-8").replace("title: ", f"title: Updated {PINGS} ", 1), encoding="utf-8")
    real_route = fake.route

    def refuse_writes(method, path, query, headers, body):
        if method == "PUT":
            return 400, {}, {"error": {"code": "BadRequest", "message": f"refused, ask @contoso/secops (see #99)"}}
        return real_route(method, path, query, headers, body)

    planned = sentinel(fake, rules, "--format", "markdown")
    assert planned.exit_code == 0, planned.output
    assert "Kept ping @&#8203;octocat" in planned.stdout and "Updated ping @&#8203;octocat" in planned.stdout
    assert live_mentions(planned.stdout) == []
    monkeypatch.setattr(fake, "route", refuse_writes)
    applied = sentinel(fake, rules, "--format", "markdown", "--apply")
    assert applied.exit_code == 1
    assert "ask @&#8203;contoso/secops (see #&#8203;99)" in applied.stdout
    assert live_mentions(applied.stdout) == []


# -- coverage --------------------------------------------------------------------------------------
def test_rule_catalog_mentions_no_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "a `@octocat` (#1).yml").write_text(
        RULE.format(title=f"Catalog {PINGS}", id="4d5e6f7a-8b9c-4d0e-9f1a-2b3c4d5e6f7a", value="curl"), encoding="utf-8")
    result = CliRunner().invoke(app, ["coverage", "rules", "--markdown", "catalog.md"])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "catalog.md").read_text(encoding="utf-8")
    assert "Catalog ping @&#8203;octocat" in page
    assert "](../rules/a%20%60%40octocat%60%20%28%231%29.yml)" in page or "](rules/a%20%60%40octocat%60%20%28%231%29.yml)" in page
    assert live_mentions(page) == []

"""docs/deploy.md stays true: its plan is real output, and its commands and workflow use options that exist."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import typer
import yaml
from entra_sigma.cli import app

from tests.deploy_helpers import (  # noqa: F401 - fixture
    RULES,
    SCOPE,
    WRONG_PASSWORD,
    fake,
    sentinel,
    workspace_rules,
)

DOC = Path(__file__).parent.parent / "docs" / "deploy.md"
TEXT = DOC.read_text(encoding="utf-8")


def blocks(info: str) -> list[str]:
    return re.findall(rf"^```{info}\n(.*?)^```$", TEXT, re.MULTILINE | re.DOTALL)


def test_the_plan_shown_is_what_deploy_prints(fake, tmp_path, monkeypatch):
    shown = next(b for b in blocks("text") if b.startswith("$ entra-sigma deploy sentinel"))
    command, expected = shown.split("\n", 1)
    shutil.copytree(RULES, tmp_path / "rules")
    monkeypatch.chdir(tmp_path)
    assert sentinel(fake, Path("rules"), "--apply").exit_code == 0
    fake.edit_sentinel(workspace_rules(fake), WRONG_PASSWORD, enabled=False)
    path = Path("rules/account-locked.yml")
    path.write_text(path.read_text(encoding="utf-8").replace("level: medium", "level: high"), encoding="utf-8")
    Path("rules/disabled-account.yml").unlink()
    assert command == "$ entra-sigma deploy sentinel rules " + " ".join(SCOPE) + " --prune"
    result = sentinel(fake, Path("rules"), "--prune")
    assert result.exit_code == 0
    assert result.stdout == expected


def command_options() -> dict[tuple[str, ...], set[str]]:
    root = typer.main.get_command(app)
    found: dict[tuple[str, ...], set[str]] = {}

    def walk(command, path):
        options = {o for p in getattr(command, "params", []) for o in p.opts if o.startswith("--")}
        found[path] = options
        for name, child in getattr(command, "commands", {}).items():
            walk(child, path + (name,))

    walk(root, ())
    return found


def invocations(text: str) -> list[list[str]]:
    """Each `entra-sigma …` command in shell text, continuation lines joined."""
    text = text.replace("\\\n", " ")
    return [line.split("entra-sigma", 1)[1].split() for line in text.splitlines()
            if re.search(r"(^|/)entra-sigma ", line) and not line.lstrip().startswith("#")]


def check(words: list[str], options: dict) -> list[str]:
    path, problems = (), []
    for word in words:
        if word.startswith("-"):
            break
        if path + (word,) in options:
            path += (word,)
    known = options[path] | options[()]
    for word in words:
        flag = word.split("=", 1)[0]
        if flag.startswith("--") and flag not in known and flag not in ("--help",):
            problems.append(f"{' '.join(path)}: {flag}")
    return problems


def test_every_command_on_the_page_uses_options_that_exist():
    options = command_options()
    assert check(["deploy", "sentinel", "rules", "--apply", "--bogus"], options) == ["deploy sentinel: --bogus"]
    commands = [words for block in blocks("sh") + blocks("text") for words in invocations(block)]
    workflow = yaml.safe_load(next(b for b in blocks("yaml") if "jobs:" in b))
    runs = [step["run"] for job in workflow["jobs"].values() for step in job["steps"] if "run" in step]
    commands += [words for run in runs for words in invocations(run)]
    assert len(commands) >= 8
    assert {tuple(w[:2]) for w in commands} >= {("deploy", "sentinel"), ("deploy", "defender"), ("schema", "pull")}
    assert [p for words in commands for p in check(words, options)] == []


def test_the_workflow_plans_on_pull_requests_and_applies_on_main():
    workflow = yaml.safe_load(next(b for b in blocks("yaml") if "jobs:" in b))
    jobs = workflow["jobs"]
    plan_runs = " ".join(s.get("run", "") for s in jobs["plan"]["steps"])
    apply_runs = " ".join(s.get("run", "") for s in jobs["apply"]["steps"])
    comment_runs = " ".join(s.get("run", "") for s in jobs["comment"]["steps"])
    assert "pull_request" in jobs["plan"]["if"] and "refs/heads/main" in jobs["apply"]["if"]
    assert "--format markdown" in plan_runs and "--apply" not in plan_runs and "gh pr comment" in comment_runs
    assert apply_runs.count("--apply") == 2
    assert all(any(s.get("uses", "").startswith("azure/login@") for s in jobs[j]["steps"]) for j in ("plan", "apply"))
    # which identity signs in where, and what each job may do: tests/test_ci_trust.py

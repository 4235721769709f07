"""What this repository publishes for other repositories: the pre-commit hooks
(.pre-commit-hooks.yaml) and the composite GitHub Action (action.yml).

The hooks' entry points run on good and bad rules; the action's script steps run in bash with
the environment GitHub would give them. Installing through the action is tested with the
built wheel in test_packaging.py.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import yaml

from .helpers import MISSPELT_RULE, REPO, VENV_BIN, command_env, shell

HOOKS = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
GOOD_RULE = REPO / "rules" / "legacy-auth" / "legacy-auth-signin.yml"
BAD_MESSAGE = "rules/misspelt.yml:6:5: error: unknown field 'incomingTokenTyp'"
HOOK_RUNS = [  # the test hook replays the rule's cases on the local engine
    pytest.param(hook, id=hook["id"], marks=[pytest.mark.replay] if hook["id"] == "entra-sigma-test" else [])
    for hook in HOOKS
]


@pytest.fixture
def rules_repo(tmp_path: Path) -> Path:
    """A repository with one good bundled rule and its test cases."""
    root = tmp_path / "repo"
    (root / "rules").mkdir(parents=True)
    shutil.copy(GOOD_RULE, root / "rules")
    shutil.copy(GOOD_RULE.with_suffix(".tests.yml"), root / "rules")
    return root


# -- pre-commit hooks -------------------------------------------------------------------------
@pytest.mark.slow  # runs pre-commit
def test_the_hooks_manifest_is_valid(tmp_path: Path):
    result = shell([str(VENV_BIN / "pre-commit"), "validate-manifest", ".pre-commit-hooks.yaml"], REPO, command_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [hook["id"] for hook in HOOKS] == ["entra-sigma-validate", "entra-sigma-test"]


@pytest.mark.parametrize("hook", HOOKS, ids=lambda h: h["id"])
def test_a_hook_is_triggered_by_rule_files_only(hook):
    files = re.compile(hook["files"])
    assert files.search("rules/mfa/mfa-push-denied.yml") and files.search("rules/a.tests.yaml")
    assert not files.search(".github/workflows/detections.yml")
    assert not files.search("docs/rules.md")
    assert hook["pass_filenames"] is False, "a correlation may name rules in other files: check the whole folder"


def hook_command(hook: dict) -> list[str]:
    """The command pre-commit runs: entry, then args (no file names, pass_filenames is false)."""
    return [*shlex.split(hook["entry"]), *hook.get("args", [])]


@pytest.mark.slow  # runs the hook's command in a subprocess
@pytest.mark.parametrize("hook", HOOK_RUNS)
def test_a_hooks_entry_passes_on_good_rules(hook, rules_repo: Path, tmp_path: Path):
    result = shell(hook_command(hook), rules_repo, command_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow  # runs the hook's command in a subprocess
@pytest.mark.parametrize("hook", HOOK_RUNS)
def test_a_hooks_entry_fails_on_a_bad_rule_with_its_location(hook, rules_repo: Path, tmp_path: Path):
    (rules_repo / "rules" / "misspelt.yml").write_text(MISSPELT_RULE, encoding="utf-8")
    result = shell(hook_command(hook), rules_repo, command_env(tmp_path))
    assert result.returncode == 1
    assert BAD_MESSAGE in result.stderr


# -- the composite action ---------------------------------------------------------------------
@pytest.mark.slow  # runs check-jsonschema
def test_the_action_is_valid_for_github(tmp_path: Path):
    result = shell([str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-actions", "action.yml"],
                   REPO, command_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


def action_step(name: str) -> dict:
    return next(step for step in ACTION["runs"]["steps"] if step.get("name") == name)


def test_the_action_scripts_take_inputs_only_through_env():
    scripts = [step for step in ACTION["runs"]["steps"] if "run" in step]
    assert [step["name"] for step in scripts] == ["Install entra-sigma", "Run entra-sigma"]
    for step in scripts:
        assert "${{" not in step["run"], f"{step['name']}: an input inside a script can inject shell code"
        assert step["shell"] == "bash"


def run_action(command: str, cwd: Path, tmp_path: Path):
    step = action_step("Run entra-sigma")
    assert step["env"] == {"ENTRA_SIGMA_COMMAND": "${{ inputs.command }}"}
    return shell(step["run"], cwd, {**command_env(tmp_path), "ENTRA_SIGMA_COMMAND": command})


@pytest.mark.slow  # runs the action's script in bash
def test_the_action_validates_good_rules(rules_repo: Path, tmp_path: Path):
    result = run_action(ACTION["inputs"]["command"]["default"], rules_repo, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr == ""  # --format github: annotations only, and the rule has no findings


@pytest.mark.slow  # runs the action's script in bash
def test_the_action_turns_diagnostics_into_annotations(rules_repo: Path, tmp_path: Path):
    (rules_repo / "rules" / "misspelt.yml").write_text(MISSPELT_RULE, encoding="utf-8")
    result = run_action("validate rules", rules_repo, tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("::error file=rules/misspelt.yml,line=6,col=5,")


@pytest.mark.slow  # runs the action's script in bash
def test_the_action_keeps_a_format_the_user_gave(rules_repo: Path, tmp_path: Path):
    (rules_repo / "rules" / "misspelt.yml").write_text(MISSPELT_RULE, encoding="utf-8")
    result = run_action("validate rules --format text", rules_repo, tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith(BAD_MESSAGE)


@pytest.mark.slow  # runs the action's script in bash
def test_the_action_does_not_expand_globs_or_variables(rules_repo: Path, tmp_path: Path):
    result = run_action("validate rules/* $HOME", rules_repo, tmp_path)
    assert result.returncode == 1
    assert "::error file=rules/*,title=entra-sigma E000::no such file or folder" in result.stderr
    assert "::error file=$HOME,title=entra-sigma E000::no such file or folder" in result.stderr


@pytest.mark.slow  # runs the action's script in bash
def test_the_action_runs_verbs_without_diagnostics_as_given(rules_repo: Path, tmp_path: Path):
    result = run_action("fields isManaged", rules_repo, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("deviceDetail.isManaged  (bool)")

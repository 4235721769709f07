"""`entra-sigma init`: a detection repository that works as written.

The repository it writes passes `validate` and `test --strict` straight away; its workflow is a
valid GitHub Actions workflow whose entra-sigma commands are real verbs and options, and whose
check steps pass when run in a shell; its pre-commit hooks run and catch a broken rule.
"""

from __future__ import annotations

import json
import shlex
import uuid
from pathlib import Path

import pytest
import typer
import yaml
from entra_sigma.cli import app
from entra_sigma.paths import RULE_PACK_DIR, SCHEMAS_DIR
from entra_sigma.verbs.scaffold import EXAMPLE_RULE, RENDERED, SCHEMAS, VERBATIM, scaffold
from typer.testing import CliRunner

from .helpers import REPO, VENV_BIN, command_env, git_init, shell

RUNNER = CliRunner()
COMMAND = typer.main.get_command(app)
WORKFLOW = ".github/workflows/detections.yml"


def init(*args: str):
    return RUNNER.invoke(app, ["init", *args])


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """One repository written by `init`, shared by the read-only tests below."""
    root = tmp_path_factory.mktemp("detections")
    result = init(str(root))
    assert result.exit_code == 0, result.output
    return root


def test_init_writes_the_documented_files(repo: Path):
    written = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
    assert written == sorted([*RENDERED, *VERBATIM, *SCHEMAS])
    assert {".github/workflows/detections.yml", ".pre-commit-config.yaml", ".vscode/settings.json", ".gitignore",
            "README.md", "rules/scripting-client-signin.yml", "rules/scripting-client-signin.tests.yml"} <= set(written)
    for path in written:
        text = (repo / path).read_text(encoding="utf-8")
        assert "\r" not in text and text.endswith("\n"), path
        if path in RENDERED:
            assert "[[" not in text and "]]" not in text, f"{path}: a template value was not filled in"


def test_the_example_rule_gets_a_fresh_id_each_time():
    first, second = (yaml.safe_load(scaffold().files[EXAMPLE_RULE])["id"] for _ in range(2))
    assert first != second
    assert uuid.UUID(first).version == 4


@pytest.mark.replay
def test_validate_and_strict_test_pass_in_the_new_repository(repo: Path, monkeypatch):
    monkeypatch.chdir(repo)
    validate = RUNNER.invoke(app, ["validate", "rules"])
    assert validate.exit_code == 0, validate.output
    assert validate.output == "1 rule file(s) OK\n"  # not even a warning
    tests = RUNNER.invoke(app, ["test", "--strict", "rules"])
    assert tests.exit_code == 0, tests.output
    assert "5 case(s) in 1 rule file(s): 5 passed, 0 failed, 0 not replayed" in tests.output


def test_the_editor_settings_point_at_the_copied_schemas(repo: Path):
    settings = json.loads((repo / ".vscode/settings.json").read_text(encoding="utf-8"))["yaml.schemas"]
    assert set(settings) == {f"./{path}" for path in SCHEMAS if path != "schemas/project.schema.json"}
    for target, source in SCHEMAS.items():
        assert (repo / target).read_text(encoding="utf-8") == (SCHEMAS_DIR / source).read_text(encoding="utf-8")
    assert "rules/**/*.yml" in settings["./schemas/rule.schema.json"]
    assert "rules/**/*.tests.yml" in settings["./schemas/rule-tests.schema.json"]
    assert "filters/**/*.yml" in settings["./schemas/filter.schema.json"]
    # TOML editors (taplo, Even Better TOML) read the schema the project file names on its first line
    assert (repo / "entra-sigma.toml").read_text(encoding="utf-8").startswith("#:schema ./schemas/project.schema.json\n")


def test_this_repository_s_project_file_is_the_one_init_with_pack_writes():
    """The pack's placeholders have one list of example values: entra-sigma.toml here, which
    `make build` and the tests use, is exactly what `init --with-pack` writes."""
    assert (REPO / "entra-sigma.toml").read_text(encoding="utf-8") == scaffold(with_pack=True).files["entra-sigma.toml"]


def test_the_project_file_lists_every_placeholder_of_the_pack_and_no_other():
    import re
    import tomllib

    used = {name for path in RULE_PACK_DIR.rglob("*.yml") if not path.name.endswith(".tests.yml")
            for name in re.findall(r"'%([^%]+)%'", path.read_text(encoding="utf-8"))}
    project = tomllib.loads(scaffold(with_pack=True).files["entra-sigma.toml"])
    assert len(used) == 11
    assert set(project["defaults"]["placeholders"]) == used
    assert tomllib.loads(scaffold(with_pack=False).files["entra-sigma.toml"])["defaults"]["placeholders"] == {}


def test_init_in_a_repository_keeps_its_files_and_says_so(tmp_path: Path):
    (tmp_path / "README.md").write_text("our own readme\n", encoding="utf-8")
    result = init(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "kept as they are (they exist; --force overwrites them): README.md" in result.output
    assert (tmp_path / "README.md").read_text(encoding="utf-8") == "our own readme\n"
    assert (tmp_path / WORKFLOW).is_file() and (tmp_path / EXAMPLE_RULE).is_file()  # the rest is written


EXISTING_PRE_COMMIT = """# our hooks
repos:
- repo: https://github.com/pre-commit/pre-commit-hooks
  rev: v4.6.0
  hooks:
  - id: trailing-whitespace  # keep this comment
"""


def test_init_merges_gitignore_lines_pre_commit_repos_and_editor_settings(tmp_path: Path):
    (tmp_path / ".gitignore").write_text("node_modules/\nbuild/\n", encoding="utf-8")
    (tmp_path / ".pre-commit-config.yaml").write_text(EXISTING_PRE_COMMIT, encoding="utf-8")
    (tmp_path / ".vscode").mkdir()
    (tmp_path / ".vscode" / "settings.json").write_text('{"editor.tabSize": 2, "yaml.schemas": {"x.json": "*.x.yml"}}\n',
                                                         encoding="utf-8")
    (tmp_path / ".vscode" / "extensions.json").write_text('{"recommendations": ["ms-python.python"]}', encoding="utf-8")
    result = init(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "added to .gitignore: .entra-sigma-cache/" in result.output
    assert "added to .pre-commit-config.yaml: the hooks entra-sigma-validate and entra-sigma-test" in result.output
    gitignore = (tmp_path / ".gitignore").read_text(encoding="utf-8")
    assert gitignore.startswith("node_modules/\nbuild/\n") and gitignore.count("build/") == 1
    text = (tmp_path / ".pre-commit-config.yaml").read_text(encoding="utf-8")
    assert text.startswith(EXISTING_PRE_COMMIT)  # their file, comments and all, then ours
    repos = yaml.safe_load(text)["repos"]
    assert [hook["id"] for repo in repos for hook in repo["hooks"]] == [
        "trailing-whitespace", "entra-sigma-validate", "entra-sigma-test"]
    settings = json.loads((tmp_path / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    assert settings["editor.tabSize"] == 2 and settings["glspc.server.command"] == "entra-sigma"
    ours = json.loads(scaffold().files[".vscode/settings.json"])["yaml.schemas"]
    assert set(settings["yaml.schemas"]) == {"x.json", *ours}
    recommended = json.loads((tmp_path / ".vscode" / "extensions.json").read_text(encoding="utf-8"))["recommendations"]
    assert recommended == ["ms-python.python", "redhat.vscode-yaml", "zsol.vscode-glspc"]
    again = init(str(tmp_path))  # a second run adds nothing, and says every file is kept
    assert again.exit_code == 0 and "added to" not in again.output and "wrote 0 file(s)" in again.output


@pytest.mark.slow  # runs pre-commit
def test_the_merged_pre_commit_config_is_valid(tmp_path: Path):
    (tmp_path / ".pre-commit-config.yaml").write_text(EXISTING_PRE_COMMIT, encoding="utf-8")
    assert init(str(tmp_path)).exit_code == 0
    result = shell([str(VENV_BIN / "pre-commit"), "validate-config", ".pre-commit-config.yaml"], tmp_path,
                   command_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path, text, why", [
    (".vscode/settings.json", '{\n  // ours\n  "editor.tabSize": 2\n}\n', "it is not plain JSON (comments?)"),
    (".pre-commit-config.yaml", "repos:\n- repo: local\n  hooks: []\nci:\n  autofix: false\n",
     "its repos list does not end the file"),
])
def test_a_file_that_cannot_take_ours_safely_is_kept_with_the_reason(tmp_path: Path, path, text, why):
    (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / path).write_text(text, encoding="utf-8")
    result = init(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert f"kept {path} as it is: {why}" in result.output
    assert (tmp_path / path).read_text(encoding="utf-8") == text


def test_force_overwrites(tmp_path: Path):
    (tmp_path / "README.md").write_text("our own readme\n", encoding="utf-8")
    result = init(str(tmp_path), "--force")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "README.md").read_text(encoding="utf-8").startswith("# Detection rules\n")


def test_a_folder_where_a_file_goes_is_never_replaced(tmp_path: Path):
    (tmp_path / "README.md").mkdir()
    result = init(str(tmp_path), "--force")
    assert result.exit_code == 2
    assert "cannot write README.md: a folder or file is in the way" in result.output
    assert [p.name for p in tmp_path.iterdir()] == ["README.md"]


def test_init_into_a_file_is_a_usage_error(tmp_path: Path):
    (tmp_path / "file").write_text("", encoding="utf-8")
    result = init(str(tmp_path / "file"))
    assert result.exit_code == 2
    assert "is not a folder" in result.output


def test_with_pack_copies_the_bundled_rules_and_they_validate(tmp_path: Path, monkeypatch):
    result = init(str(tmp_path), "--with-pack")
    assert result.exit_code == 0, result.output
    pack = sorted(p.relative_to(RULE_PACK_DIR).as_posix() for p in RULE_PACK_DIR.rglob("*.yml"))
    for relative in pack:
        assert (tmp_path / "rules" / relative).read_bytes() == (RULE_PACK_DIR / relative).read_bytes(), relative
    monkeypatch.chdir(tmp_path)
    validate = RUNNER.invoke(app, ["validate", "rules", "--all-envs"])
    assert validate.exit_code == 0, validate.output
    rules = sum(1 for name in pack if not name.endswith(".tests.yml")) + 1
    assert validate.output.endswith(f"{rules} rule file(s) OK in environments dev, prod\n")
    # without an environment the pack's placeholders have no value, and the error says how to give them one
    bare = RUNNER.invoke(app, ["validate", "rules/tokens/remote-desktop-token-external-network.yml"])
    assert bare.exit_code == 1
    assert ("error: placeholder '%corporate_egress%' has no value: no environment is chosen in rule "
            "'Remote desktop sign-in with Entra ID credentials from outside the corporate network' "
            "(choose an environment with --env: entra-sigma.toml defines dev, prod)") in bare.output


# -- the GitHub workflow ----------------------------------------------------------------------
def workflow(repo: Path) -> dict:
    return yaml.safe_load((repo / WORKFLOW).read_text(encoding="utf-8"))


@pytest.mark.slow  # runs check-jsonschema
def test_the_workflow_is_valid_for_github(repo: Path, tmp_path: Path):
    checked = shell([str(VENV_BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", WORKFLOW],
                    repo, command_env(tmp_path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_workflow_has_the_documented_jobs(repo: Path):
    jobs = workflow(repo)["jobs"]
    assert list(jobs) == ["check", "kql-diff", "kql-diff-comment", "sentinel-plan", "sentinel-apply", "defender-plan",
                          "defender-apply"]
    assert jobs["kql-diff"]["if"] == "github.event_name == 'pull_request'"
    assert next(s for s in jobs["kql-diff"]["steps"] if s.get("uses", "").startswith("actions/checkout"))["with"]["fetch-depth"] == 0
    assert jobs["kql-diff-comment"]["needs"] == "kql-diff"  # the trust properties: tests/test_ci_trust.py
    for name in ("sentinel-plan", "sentinel-apply", "defender-plan", "defender-apply"):
        job = jobs[name]
        assert "vars." in job["if"], f"{name} must stay off until the repository variables are set"
        assert job["permissions"]["id-token"] == "write", f"{name} logs in with OIDC"
        assert any(step.get("uses", "").startswith("azure/login@") for step in job["steps"])
        assert ("--apply" in json.dumps(job["steps"])) == name.endswith("apply")
        assert ("refs/heads/main" in job["if"]) == name.endswith("apply")


def entra_sigma_commands(repo: Path) -> list[tuple[str, list[str]]]:
    """(job/step, argv after `entra-sigma`) for every entra-sigma command in a `run:` script."""
    found = []
    for job_name, job in workflow(repo)["jobs"].items():
        for step in job["steps"]:
            script = step.get("run", "").replace("\\\n", " ")
            for line in script.splitlines():
                lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
                lexer.whitespace_split = True
                words = list(lexer)
                while "entra-sigma" in words:
                    words = words[words.index("entra-sigma") + 1:]
                    end = next((i for i, w in enumerate(words) if w in ("|", "||", "&&", ">", ">>", ";")), len(words))
                    found.append((f"{job_name}/{step.get('name', '')}", words[:end]))
    return found


def test_every_job_that_runs_entra_sigma_installs_it_first(repo: Path):
    for job_name, job in workflow(repo)["jobs"].items():
        runs = [step.get("run", "") for step in job["steps"]]
        uses = [i for i, run in enumerate(runs) if "entra-sigma " in run and "pip install" not in run]
        installs = [i for i, run in enumerate(runs) if "pip install" in run]
        assert not uses or (installs and installs[0] < uses[0]), job_name


def test_the_workflows_entra_sigma_commands_parse(repo: Path):
    """Each command names a real verb and real options (parsed by the CLI itself, not run)."""
    commands = entra_sigma_commands(repo)
    verbs = {argv[0] for _, argv in commands}
    assert {"validate", "test", "build", "diff", "deploy"} <= verbs
    missing_deploy = "deploy" not in COMMAND.commands
    for where, argv in commands:
        if argv[0] == "deploy" and missing_deploy:
            continue  # checked by test_the_deploy_commands_parse once the verb exists
        parse(where, argv)


def test_the_deploy_commands_parse(repo: Path):
    if "deploy" not in COMMAND.commands:
        pytest.skip("this build has no `deploy` verb yet (issue 11); the workflow's deploy steps are parsed once it does")
    for where, argv in entra_sigma_commands(repo):
        if argv[0] == "deploy":
            parse(where, argv)


def parse(where: str, argv: list[str]) -> None:
    command, args = COMMAND, list(argv)
    while hasattr(command, "commands"):  # a group: descend into the named verb
        assert args and args[0] in command.commands, f"{where}: no verb {args[:1]} in {sorted(command.commands)}"
        command, args = command.commands[args[0]], args[1:]
    try:
        command.make_context(argv[0], args)
    except Exception as error:  # click's UsageError and friends
        pytest.fail(f"{where}: entra-sigma {' '.join(argv)}: {error}")


def step_script(repo: Path, job: str, name: str) -> str:
    steps = workflow(repo)["jobs"][job]["steps"]
    return next(step["run"] for step in steps if step.get("name") == name)


@pytest.mark.replay
@pytest.mark.slow  # runs the verbs as subprocesses, `test` twice
def test_the_check_jobs_steps_pass_when_run_in_a_shell(repo: Path, tmp_path: Path):
    env = {**command_env(tmp_path), "RULES": workflow(repo)["env"]["RULES"]}
    for name in ("Validate", "Test", "Build"):
        result = shell(step_script(repo, "check", name), repo, env)
        assert result.returncode == 0, f"{name}: {result.stdout}{result.stderr}"
    # --all-envs: a folder per environment of the example entra-sigma.toml
    assert (repo / "build" / "dev" / "manifest.json").is_file() and (repo / "build" / "prod" / "manifest.json").is_file()
    assert not (repo / "build" / "dev" / "defender").exists() and (repo / "build" / "prod" / "defender").is_dir()


@pytest.mark.slow  # runs the workflow's step in bash
def test_the_diff_step_writes_the_pull_request_comment(tmp_path: Path):
    root = tmp_path / "repo"
    assert init(str(root)).exit_code == 0
    env = command_env(tmp_path)
    git_init(root, env)
    assert shell(["git", "update-ref", "refs/remotes/origin/main", "HEAD"], root, env).returncode == 0
    rule = root / EXAMPLE_RULE
    rule.write_text(rule.read_text(encoding="utf-8").replace("      - aiohttp/\n", "      - aiohttp/\n      - Wget/\n"),
                    encoding="utf-8")
    result = shell(step_script(root, "kql-diff", "Diff the KQL"), root, {**env, "RULES": "rules", "BASE_REF": "main"})
    assert result.returncode == 0, result.stderr
    comment = (root / "kql-diff.md").read_text(encoding="utf-8")
    assert comment.startswith("### entra-sigma diff: 1 changed, 0 added, 0 removed, 0 unchanged\n")
    assert "Wget/" in comment and "\n+" in comment
    assert "in environments `dev`, `prod`" in comment
    assert "# in prod\n--- a/defender/hunting/scripting-client-signin.kql" in comment  # dev has no Defender


# -- pre-commit -------------------------------------------------------------------------------
@pytest.mark.slow  # runs pre-commit
def test_the_pre_commit_config_is_valid(repo: Path, tmp_path: Path):
    result = shell([str(VENV_BIN / "pre-commit"), "validate-config", ".pre-commit-config.yaml"], repo, command_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.replay
@pytest.mark.slow  # runs the verbs as subprocesses, `test` twice
def test_the_pre_commit_hooks_pass_then_catch_a_broken_rule(tmp_path: Path):
    root = tmp_path / "repo"
    assert init(str(root)).exit_code == 0
    env = command_env(tmp_path)
    git_init(root, env)
    hooks = [str(VENV_BIN / "pre-commit"), "run", "--all-files"]
    passed = shell(hooks, root, env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "entra-sigma validate" in passed.stdout and "entra-sigma test" in passed.stdout
    rule = root / EXAMPLE_RULE
    rule.write_text(rule.read_text(encoding="utf-8").replace("status.errorCode:", "status.errorCod:"), encoding="utf-8")
    failed = shell(hooks, root, env)
    assert failed.returncode == 1
    assert "rules/scripting-client-signin.yml:28:5: error: unknown field 'status.errorCod'" in failed.stdout


def test_the_readme_mentions_the_packs_placeholders_only_with_the_pack():
    assert "%corporate_egress%" in scaffold(with_pack=True).files["README.md"]
    assert "%corporate_egress%" not in scaffold().files["README.md"]


def test_the_editor_settings_start_the_language_server(repo: Path):
    """VS Code (through the Generic LSP Client it recommends) and Helix start `entra-sigma lsp`."""
    import tomllib

    settings = json.loads((repo / ".vscode/settings.json").read_text(encoding="utf-8"))
    assert (settings["glspc.server.command"], settings["glspc.server.commandArguments"]) == ("entra-sigma", ["lsp"])
    assert settings["glspc.server.languageId"] == ["yaml"]
    recommended = json.loads((repo / ".vscode/extensions.json").read_text(encoding="utf-8"))["recommendations"]
    assert recommended == ["redhat.vscode-yaml", "zsol.vscode-glspc"]
    helix = tomllib.loads((repo / ".helix/languages.toml").read_text(encoding="utf-8"))
    assert helix["language-server"]["entra-sigma"] == {"command": "entra-sigma", "args": ["lsp"]}
    assert helix["language"] == [{"name": "yaml", "language-servers": ["yaml-language-server", "entra-sigma"]}]

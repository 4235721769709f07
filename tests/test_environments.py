"""One rule set, two environments, every verb: the worked example of docs/environments.md.

docs/examples/environments/ holds a project file with two environments (dev: Sentinel only;
prod: Sentinel and Defender, a filter of its own, a watchlist placeholder and overrides) and
three rules. Each verb with `--env`/`--all-envs` gives each environment exactly its own
queries and settings; deploy (against the local stand-in of the Azure APIs) sends each to its
own workspace, and a prune in one never touches another's rules.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from entra_sigma.cli import app
from entra_sigma.verbs.deploy.marker import split_marker
from typer.testing import CliRunner

from tests.deploy_helpers import FAST, fake  # noqa: F401 - the fixture

from .helpers import REPO

EXAMPLE = REPO / "docs" / "examples" / "environments"
SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
WRONG_PASSWORD, BREAK_GLASS, LEGACY = (
    "3f6c2a1e-7b4d-4c9e-9a2f-1d8e5b7c6a10", "5b0e6c2d-1f3a-4e8b-9c7d-2a6f4e1b8c30", "8d2f4a6c-3e5b-4c7d-9a1f-6b8e0c2d4f57",
)


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A copy of the example that a test may change, as the working directory."""
    root = tmp_path / "detections"
    shutil.copytree(EXAMPLE, root)
    monkeypatch.chdir(root)
    return root


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


# -- build, compile, validate, test, coverage -------------------------------------------------------
def test_build_writes_a_folder_per_environment_each_with_its_own_queries(project):
    result = run("build", "rules", "--all-envs", "--out", "build")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.endswith("built 3 rule file(s) in environments dev, prod into 24 file(s) in build\n")
    build = project / "build"
    assert not (build / "dev" / "defender").exists() and (build / "prod" / "defender").is_dir()  # defender = true in prod only
    dev, prod = (json.loads((build / e / "manifest.json").read_text(encoding="utf-8")) for e in ("dev", "prod"))
    assert (dev["environment"], prod["environment"]) == ("dev", "prod")
    filters = {e["id"]: e.get("filters") for e in prod["rules"]}
    assert filters[LEGACY] == ["filters/common/mf_known_scanner.yml", "filters/prod/mf_legacy_auth_printers.yml"]
    assert {e["id"]: e.get("filters") for e in dev["rules"]}[LEGACY] == ["filters/common/mf_known_scanner.yml"]

    def read(env, path):
        return (build / env / path).read_text(encoding="utf-8")

    # the filter of prod shapes prod's query only, and says so in its header
    assert "// filters: filters/common/mf_known_scanner.yml, filters/prod/mf_legacy_auth_printers.yml\n" in read("prod", "kql/legacy-auth.kql")
    assert 'not(UserPrincipalName startswith "scan-"' in read("prod", "kql/legacy-auth.kql")
    assert "scan-" not in read("dev", "kql/legacy-auth.kql")
    # placeholders: a list in dev, a watchlist in prod (and so no Defender outputs of that rule)
    assert 'UserPrincipalName in~ ("bg-admin1@contoso.com", "bg-admin2@contoso.com")' in read("dev", "kql/break-glass-signin.kql")
    assert 'UserPrincipalName in~ (_GetWatchlist("BreakGlassAccounts") | project SearchKey)' in read("prod", "kql/break-glass-signin.kql")
    assert "_GetWatchlist" in {e["id"]: e for e in prod["rules"]}[BREAK_GLASS]["skipped"]["defender-hunting"]
    assert '"203.0.113.0/24"' in read("prod", "kql/wrong-password.kql") and '"198.51.100.0/24"' in read("dev", "kql/wrong-password.kql")
    # overrides
    assert "severity: High" in read("prod", "sentinel/wrong-password.yaml") and "queryFrequency: 30m" in read("prod", "sentinel/wrong-password.yaml")
    assert "severity: Low" in read("dev", "sentinel/wrong-password.yaml") and "queryFrequency: 1h" in read("dev", "sentinel/wrong-password.yaml")
    assert json.loads(read("dev", "arm/legacy-auth.json"))["resources"][0]["properties"]["enabled"] is False
    assert json.loads(read("prod", "arm/legacy-auth.json"))["resources"][0]["properties"]["enabled"] is True


def test_one_environment_builds_into_out_itself_and_the_same_bytes_as_in_a_pair(project):
    assert run("build", "rules", "--env", "prod", "--out", "one").exit_code == 0
    assert run("build", "rules", "--all-envs", "--out", "both").exit_code == 0
    one = {p.relative_to(project / "one").as_posix(): p.read_bytes() for p in (project / "one").rglob("*") if p.is_file() and not p.name.startswith(".")}
    both = {p.relative_to(project / "both" / "prod").as_posix(): p.read_bytes() for p in (project / "both" / "prod").rglob("*") if p.is_file()}
    assert one == both


def test_compile_validate_and_coverage_in_several_environments(project):
    compiled = run("compile", "rules/legacy-auth.yml", "--all-envs")
    assert compiled.exit_code == 0, compiled.stderr
    assert compiled.stdout.startswith("// environment: dev\n// Successful legacy authentication\n")
    assert "\n// environment: prod\n// Successful legacy authentication\n" in compiled.stdout
    validated = run("validate", "rules", "--env", "dev", "--env", "prod")
    assert validated.exit_code == 0 and validated.stderr.endswith("3 rule file(s) OK in environments dev, prod\n")
    covered = run("coverage", "rules", "--all-envs")
    assert covered.exit_code == 0 and covered.stdout.startswith("dev: 3 rule(s)") and "\nprod: 3 rule(s)" in covered.stdout
    assert run("coverage", "rules", "--all-envs", "--markdown", "c.md").exit_code == 2
    no_env = run("validate", "rules")
    assert no_env.exit_code == 1
    assert ("rules/break-glass-signin.yml:13:5: error: placeholder '%break_glass_accounts%' has no value: no environment is chosen "
            "in rule 'Break-glass account signed in' (choose an environment with --env: entra-sigma.toml defines dev, prod)") in no_env.stderr


@pytest.mark.replay
def test_test_runs_the_cases_in_each_environment(project):
    result = run("test", "rules", "--all-envs")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("environment dev:\n") and "\nenvironment prod:\n" in result.stdout
    assert result.stdout.count("6 case(s) in 3 rule file(s): 4 passed, 0 failed, 2 not replayed") == 2
    # the tests file's placeholders are what its cases run with, with or without an environment
    bare = run("test", "rules/break-glass-signin.yml")
    assert bare.exit_code == 0 and "2 case(s) in 1 rule file(s): 2 passed, 0 failed, 0 not replayed" in bare.stdout


def test_a_watchlist_in_a_defender_query_is_an_error_when_compiling_for_defender(project):
    result = run("compile", "rules/break-glass-signin.yml", "--env", "prod", "--target", "defender")
    assert result.exit_code == 1
    assert result.stderr.startswith("rules/break-glass-signin.yml:13:5: error: the watchlist 'BreakGlassAccounts' is read by "
                                    "_GetWatchlist, which only Microsoft Sentinel has")


# -- diff --------------------------------------------------------------------------------------------
def git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True)


@pytest.fixture
def repository(project, tmp_path, monkeypatch) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "no-global-gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for args in (["init", "-q"], ["symbolic-ref", "HEAD", "refs/heads/main"], ["config", "user.name", "Test"],
                 ["config", "user.email", "test@example.com"], ["config", "commit.gpgsign", "false"], ["add", "-A"],
                 ["commit", "-q", "-m", "first"]):
        git(project, *args)
    return project


def test_diff_shows_which_environments_a_change_reaches(repository):
    printers = repository / "filters" / "prod" / "mf_legacy_auth_printers.yml"
    printers.write_text(printers.read_text(encoding="utf-8").replace("scan-", "mfp-"), encoding="utf-8")
    result = run("diff", "HEAD", "--all-envs")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("rules/ at HEAD (")
    assert "-> working tree in environments dev, prod\n1 changed, 0 added, 0 removed, 2 unchanged\n" in result.stdout
    assert "  ~ Successful legacy authentication [8d2f4a6c-3e5b-4c7d-9a1f-6b8e0c2d4f57] (in prod)\n" in result.stdout
    assert '-    | where not(UserPrincipalName startswith "scan-"' in result.stdout
    # a change to a rule reaches both; its Defender query exists in prod only
    rule = repository / "rules" / "legacy-auth.yml"
    rule.write_text(rule.read_text(encoding="utf-8").replace("      - POP3\n", ""), encoding="utf-8")
    both = run("diff", "HEAD", "--all-envs", "--format", "markdown")
    assert "Successful legacy authentication (<code>8d2f4a6c-3e5b-4c7d-9a1f-6b8e0c2d4f57</code>) in <code>dev</code>, <code>prod</code>" in both.stdout
    assert "# in prod\n--- a/defender/hunting/legacy-auth.kql" in both.stdout


def test_diff_of_an_environment_added_since_the_base(repository):
    toml = repository / "entra-sigma.toml"
    toml.write_text(toml.read_text(encoding="utf-8") + '\n[environments.staging]\n[environments.staging.placeholders]\n'
                    'break_glass_accounts = ["bg@contoso.com"]\n', encoding="utf-8")
    result = run("diff", "HEAD", "--env", "staging")
    assert result.exit_code == 0, result.stderr
    assert "0 changed, 3 added, 0 removed, 0 unchanged" in result.stdout


# -- deploy ---------------------------------------------------------------------------------------
def deploy(fake, *args):
    return run("deploy", "sentinel", "rules", "--arm-endpoint", fake.url, *FAST, *args)


def workspace(fake, name: str, group: str) -> dict:
    return fake.workspace(SUBSCRIPTION, group, name)


def test_deploy_sends_each_environment_to_its_own_workspace(project, fake):  # noqa: F811 - the fixture
    result = deploy(fake, "--all-envs", "--apply")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert result.stdout.startswith("== environment dev ==\nPlan for Sentinel workspace law-dev")
    assert "\n== environment prod ==\nPlan for Sentinel workspace law-prod" in result.stdout
    dev, prod = workspace(fake, "law-dev", "rg-sentinel-dev"), workspace(fake, "law-prod", "rg-sentinel")
    assert set(dev) == set(prod) == {WRONG_PASSWORD, BREAK_GLASS, LEGACY}
    assert dev[LEGACY]["properties"]["enabled"] is False and prod[LEGACY]["properties"]["enabled"] is True
    assert (dev[WRONG_PASSWORD]["properties"]["severity"], prod[WRONG_PASSWORD]["properties"]["severity"]) == ("Low", "High")
    assert "_GetWatchlist" in prod[BREAK_GLASS]["properties"]["query"] and "_GetWatchlist" not in dev[BREAK_GLASS]["properties"]["query"]
    markers = {name: split_marker(rule["properties"]["description"])[1].environment for name, rule in dev.items()}
    assert set(markers.values()) == {"dev"}
    again = deploy(fake, "--all-envs", "--detailed-exitcode", "--format", "json")
    assert again.exit_code == 0, again.stdout  # nothing left to do in either
    plans = json.loads(again.stdout)["environments"]
    assert [(p["environment"], p["summary"]["unchanged"], p["changes_pending"]) for p in plans] == [("dev", 3, False), ("prod", 3, False)]


def test_a_prune_in_one_environment_never_touches_another_s_workspace(project, fake):  # noqa: F811
    assert deploy(fake, "--all-envs", "--apply").exit_code == 0
    (project / "rules" / "break-glass-signin.yml").unlink()
    (project / "rules" / "break-glass-signin.tests.yml").unlink()
    pruned = deploy(fake, "--env", "dev", "--apply", "--prune")
    assert pruned.exit_code == 0, pruned.stdout + pruned.stderr
    assert BREAK_GLASS not in workspace(fake, "law-dev", "rg-sentinel-dev")
    assert BREAK_GLASS in workspace(fake, "law-prod", "rg-sentinel")
    assert all("law-prod" not in r.path for r in fake.requests if r.method == "DELETE")
    # two environments in one workspace: the dev deploy sent to prod's workspace takes nothing of prod's
    shared = deploy(fake, "--env", "dev", "--workspace", "law-prod", "--resource-group", "rg-sentinel", "--apply", "--prune")
    assert shared.exit_code == 1
    assert "the service holds this rule for environment 'prod'" in shared.stdout
    assert "deployed by entra-sigma for environment 'prod': this environment leaves it alone" in shared.stdout
    assert set(workspace(fake, "law-prod", "rg-sentinel")) == {WRONG_PASSWORD, BREAK_GLASS, LEGACY}


def test_deploy_keeps_going_when_an_environment_fails(project, fake):  # noqa: F811
    toml = project / "entra-sigma.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace('break_glass_accounts = ["bg-admin1@contoso.com", "bg-admin2@contoso.com"]\n', ""),
                    encoding="utf-8")
    result = deploy(fake, "--all-envs", "--apply")
    assert result.exit_code == 1
    assert "nothing sent to sentinel, environment dev: fix the errors above" in result.stderr
    assert workspace(fake, "law-dev", "rg-sentinel-dev") == {}
    assert set(workspace(fake, "law-prod", "rg-sentinel")) == {WRONG_PASSWORD, BREAK_GLASS, LEGACY}


def test_deploy_refuses_what_would_mix_environments(project, fake):  # noqa: F811
    one = deploy(fake, "--all-envs", "--workspace", "law-x")
    assert one.exit_code == 2 and "--workspace: with several environments each deploys to the workspace entra-sigma.toml gives it" in one.stderr
    toml = project / "entra-sigma.toml"
    toml.write_text(toml.read_text(encoding="utf-8").replace("law-dev", "law-prod").replace("rg-sentinel-dev", "rg-sentinel"), encoding="utf-8")
    same = deploy(fake, "--all-envs")
    assert same.exit_code == 2 and "environments dev and prod deploy to the same workspace law-prod" in same.stderr
    assert fake.requests == []


def test_defender_deploys_the_environment_that_has_it(project, fake):  # noqa: F811
    graph = ["deploy", "defender", "rules", "--graph-endpoint", fake.url, *FAST]
    refused = run(*graph, "--env", "dev")
    assert refused.exit_code == 2 and "environment dev: no Defender XDR (set defender = true in entra-sigma.toml)" in refused.stderr
    result = run(*graph, "--all-envs", "--apply")  # only prod has Defender
    assert result.exit_code == 0, result.stdout + result.stderr
    assert set(fake.defender) == {WRONG_PASSWORD, LEGACY}  # the watchlist rule has no Defender query
    assert "Defender XDR custom detections" in result.stdout and "environment prod" in result.stdout


# -- docs/environments.md shows the real files and outputs -----------------------------------------
PAGE = REPO / "docs" / "environments.md"
SHOWN = r"<!-- (example|built): (\S+) -->\n(`{3,})\w*\n(.*?)^\3$"


def shown_blocks() -> list[tuple[str, str, str]]:
    import re

    return [(kind, path, body) for kind, path, _, body in re.findall(SHOWN, PAGE.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)]


def test_the_page_shows_the_example_s_files_as_they_are():
    examples = [(path, body) for kind, path, body in shown_blocks() if kind == "example"]
    assert len(examples) >= 4
    for path, body in examples:
        assert (REPO / path).read_text(encoding="utf-8") == body, path


def test_the_page_shows_the_queries_build_writes(project):
    assert run("build", "rules", "--all-envs", "--out", "build").exit_code == 0
    built = [(path, body) for kind, path, body in shown_blocks() if kind == "built"]
    assert len(built) >= 3
    for path, body in built:
        assert (project / "build" / path).read_text(encoding="utf-8") == body, path

"""The CI we generate and document never hands a pull request a write identity (issue 18, item 3).

Checked on the workflow `entra-sigma init` writes, on docs/deploy.md's example and on
action.yml, by reading them as data:

- no `pull_request_target` or `workflow_run` (they run with the base repository's secrets);
- `permissions:` empty at the top and explicit in every job;
- a job that can run on a pull request never names the deploy identity (`vars.AZURE_CLIENT_ID`);
  it signs in, if at all, as the reader (`vars.AZURE_READER_CLIENT_ID`);
- the deploy identity only in a job bound to the `production` environment that runs on a
  push to main; `id-token: write` only in jobs that sign in;
- a job holding any write permission runs no code of the pull request (no `make`, no `.venv`,
  no pip install of its checkout) and a job that may comment checks nothing out;
- no `${{ … }}` inside a `run:` script; checkouts keep no credentials; pip runs isolated
  (`python -I -m pip`), before the pull request is checked out or from a trusted path.

The last test runs the install step in a folder holding a hostile `pip/__main__.py`, the way
`python -m pip` used to pick it up from the checkout.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from entra_sigma.verbs.scaffold import scaffold

from .helpers import REPO, command_env, shell

WRITE_IDENTITY = "vars.AZURE_CLIENT_ID"
READ_IDENTITY = "vars.AZURE_READER_CLIENT_ID"


def init_workflow() -> dict:
    return yaml.safe_load(scaffold().files[".github/workflows/detections.yml"])


def docs_workflow() -> dict:
    text = (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", text, re.DOTALL) if "jobs:" in b]
    return yaml.safe_load(block)


def triggers(workflow: dict) -> dict:
    on = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    return on if isinstance(on, dict) else {name: None for name in ([on] if isinstance(on, str) else on)}


def runs_on_pull_requests(job: dict) -> bool:
    condition = job.get("if", "")
    return not ("'push'" in condition or "refs/heads/main" in condition)


def checkouts(job: dict) -> list[dict]:
    return [s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@")]


def trusted_paths(job: dict) -> set[str]:
    """Folders checked out at the base branch (reviewed code), not the pull request's."""
    return {s["with"]["path"] for s in checkouts(job) if "base" in str(s.get("with", {}).get("ref", "")) and "path" in s["with"]}


def runs_checkout_code(script: str, trusted: set[str]) -> bool:
    """Whether a script runs something the checkout holds: `make`, `.venv/…`, `./x` (outside a
    base-branch checkout), or installs the checkout itself (`pip install .`)."""
    local = [p.split("/")[0] for p in re.findall(r"(?<![\w/.])\./([^\s\"']+)", script)]
    return bool(re.search(r"\bmake\b|\.venv/|pip install[^\n]* \.(\s|$)", script) or set(local) - trusted)


def problems(workflow: dict) -> list[str]:
    found = []
    on = triggers(workflow)
    found += [f"trigger {name}" for name in ("pull_request_target", "workflow_run") if name in on]
    if workflow.get("permissions") != {}:
        found.append(f"top-level permissions {workflow.get('permissions')!r}: want {{}}")
    for name, job in workflow["jobs"].items():
        text = yaml.safe_dump(job)
        permissions = job.get("permissions")
        if not isinstance(permissions, dict):
            found.append(f"{name}: no explicit permissions")
            continue
        writes = {k for k, v in permissions.items() if v == "write"}
        logins = [s for s in job["steps"] if s.get("uses", "").startswith("azure/login@")]
        runs = [s["run"] for s in job["steps"] if "run" in s]
        found += [f"{name}: an expression inside run: {r.splitlines()[0]!r}" for r in runs if "${{" in r]
        found += [f"{name}: a checkout keeps its credentials" for s in checkouts(job)
                  if s.get("with", {}).get("persist-credentials") is not False]
        found += [f"{name}: pip not isolated: {r!r}" for r in runs if re.search(r"\bpip\b", r) and "python -I -m pip" not in r]
        if "id-token" in writes and not logins:
            found.append(f"{name}: id-token: write without a sign-in")
        if WRITE_IDENTITY in text:
            if job.get("environment") != "production" or runs_on_pull_requests(job):
                found.append(f"{name}: the deploy identity outside the production environment's push-to-main job")
        if "pull_request" in on and runs_on_pull_requests(job):
            found += [f"{name}: signs in as {s['with']['client-id']!r} on a pull request" for s in logins
                      if s["with"]["client-id"] != "${{ " + READ_IDENTITY + " }}"]
            found += [f"{name}: {w}: write on a pull request" for w in writes - {"id-token", "pull-requests"}]
            if writes:
                found += [f"{name}: runs the pull request's code with write permissions: {r.splitlines()[0]!r}"
                          for r in runs if runs_checkout_code(r, trusted_paths(job))]
                steps = job["steps"]
                own = [i for i, s in enumerate(steps) if s in checkouts(job) and "ref" not in s.get("with", {})]
                found += [f"{name}: installs after checking out the pull request" for i, s in enumerate(steps)
                          if "pip install" in s.get("run", "") and own and i > own[0]]
            if "pull-requests" in writes and (checkouts(job) or any("entra-sigma" in r for r in runs)):
                found.append(f"{name}: pull-requests: write in a job that checks out or runs the pull request")
    return found


@pytest.mark.parametrize("workflow", [init_workflow, docs_workflow], ids=["init", "docs/deploy.md"])
def test_no_pull_request_reaches_a_write_identity(workflow):
    assert problems(workflow()) == []


@pytest.mark.parametrize("workflow", [init_workflow, docs_workflow], ids=["init", "docs/deploy.md"])
def test_each_identity_is_where_it_belongs(workflow):
    jobs = workflow()["jobs"]
    deployers = {n for n, j in jobs.items() if WRITE_IDENTITY in yaml.safe_dump(j)}
    readers = {n for n, j in jobs.items() if READ_IDENTITY in yaml.safe_dump(j)}
    assert deployers and readers and not deployers & readers
    assert all(jobs[n]["environment"] == "production" and "refs/heads/main" in jobs[n]["if"] for n in deployers)
    assert all("pull_request" in jobs[n]["if"] for n in readers)
    assert all(jobs[n]["permissions"] == {"contents": "read", "id-token": "write"} for n in deployers | readers)


def test_the_checker_finds_what_main_used_to_write():
    """The workflow and the docs example as they were before issue 18: every flaw is found."""
    old = yaml.safe_load("""
on: {pull_request: {}, pull_request_target: {}}
permissions: {contents: read, pull-requests: write, id-token: write}
jobs:
  plan:
    if: github.event_name == 'pull_request'
    permissions: {contents: read, id-token: write}
    steps:
      - uses: actions/checkout@v4
      - run: python -m pip install "$ENTRA_SIGMA_PACKAGE"
      - run: make setup
      - uses: azure/login@v2
        with: {client-id: "${{ vars.AZURE_CLIENT_ID }}"}
      - run: .venv/bin/entra-sigma diff "origin/${{ github.base_ref }}"
  comment:
    permissions: {pull-requests: write}
    steps:
      - uses: actions/checkout@v4
        with: {persist-credentials: false}
      - run: gh pr comment
""")
    found = problems(old)
    for expected in ("trigger pull_request_target", "top-level permissions", "plan: an expression inside run:",
                     "plan: a checkout keeps its credentials", "plan: pip not isolated",
                     "plan: the deploy identity outside", "plan: signs in as '${{ vars.AZURE_CLIENT_ID }}'",
                     "plan: runs the pull request's code with write permissions: 'make setup'",
                     "comment: pull-requests: write in a job that checks out"):
        assert any(f.startswith(expected) for f in found), (expected, found)


def test_deploy_docs_give_no_pull_request_target_advice():
    assert "pull_request_target" not in (REPO / "docs" / "deploy.md").read_text(encoding="utf-8")


# -- action.yml -------------------------------------------------------------------------------------------
ACTION = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))


def test_the_action_installs_isolated_and_takes_inputs_through_env():
    steps = [s for s in ACTION["runs"]["steps"] if "run" in s]
    install = next(s for s in steps if s["name"] == "Install entra-sigma")
    assert install["working-directory"] == "${{ runner.temp }}"
    assert install["run"].startswith("python -I -m pip install ")
    assert all("${{" not in s["run"] for s in steps)


# -- the install step, run beside a hostile `pip/__main__.py` --------------------------------------------
HOSTILE_PIP = "import pathlib; pathlib.Path('PWNED').write_text('the checkout ran')\n"


@pytest.mark.parametrize("script", [
    pytest.param(lambda: next(s["run"] for s in init_workflow()["jobs"]["sentinel-plan"]["steps"]
                              if s.get("name") == "Install entra-sigma"), id="init workflow"),
    pytest.param(lambda: next(s["run"] for s in ACTION["runs"]["steps"] if s.get("name") == "Install entra-sigma"),
                 id="action.yml"),
])
def test_the_install_step_runs_nothing_from_the_working_folder(script, tmp_path: Path):
    checkout = tmp_path / "checkout"
    (checkout / "pip").mkdir(parents=True)
    (checkout / "pip" / "__main__.py").write_text(HOSTILE_PIP, encoding="utf-8")
    (checkout / "pip" / "__init__.py").write_text("", encoding="utf-8")
    env = {**command_env(tmp_path), "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": "/dev/null",
           "ENTRA_SIGMA_PACKAGE": "entra-sigma-no-such-package==0", "RUNNER_TEMP": str(tmp_path)}
    result = shell(script(), checkout, env)  # even run from inside the checkout
    assert "no-such-package" in result.stderr  # pip itself ran, and found nothing offline
    assert not (checkout / "PWNED").exists()
    unsafe = shell(script().replace("python -I -m pip", "python -m pip"), checkout, env)
    assert (checkout / "PWNED").exists(), unsafe.stderr  # what `python -m pip` does there

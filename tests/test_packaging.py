"""entra-sigma as a team installs it: a wheel (built from the sdist) in a fresh virtual
environment, run in a git repository outside this checkout.

Offline by construction: the wheel is built with `--no-isolation` (setuptools and build are
pinned in the test extras), and the fresh environment finds its dependencies in the project's
own `.venv` through a `.pth` file (a view of its site-packages without entra-sigma itself), so
`pip install --no-index` has nothing to download and checks the wheel's pins against them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

from .helpers import REPO, command_env, git_init, shell

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
VERSION = PYPROJECT["project"]["version"]


# -- fast: the package list in pyproject.toml covers the code -------------------------------
def test_every_code_folder_is_a_listed_package():
    """A new package folder in compiler/ (with __init__.py) must be listed, or the wheel lacks it."""
    folders = sorted(p.parent.relative_to(REPO / "compiler") for p in (REPO / "compiler").rglob("__init__.py"))
    expected = {".".join(("entra_sigma", *folder.parts)) for folder in folders}
    listed = set(SETUPTOOLS["packages"])
    assert expected - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert SETUPTOOLS["package-dir"]["entra_sigma"] == "compiler"
    data = {name for name in listed - expected}
    assert data == {"entra_sigma.schemas", "entra_sigma.templates", "entra_sigma.rules"}
    for name in data:
        assert (REPO / SETUPTOOLS["package-dir"][name]).is_dir(), name


def test_the_console_script_is_the_packages_entry_point():
    assert PYPROJECT["project"]["scripts"] == {"entra-sigma": "entra_sigma.entry:main"}


# -- slow: build, install, run ------------------------------------------------------------------
@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The sdist and the wheel built from it, as `python -m build` makes them (offline)."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


def wheel_of(dist: Path) -> Path:
    (wheel,) = dist.glob("entra_sigma-*.whl")
    return wheel


def deps_view(folder: Path) -> Path:
    """The project venv's site-packages without entra-sigma, pip or setuptools: symlinks only."""
    site = Path(sysconfig.get_paths()["purelib"])
    folder.mkdir()
    skip = ("entra_sigma", "__editable__", "pip", "setuptools", "pkg_resources", "_distutils_hack", "__pycache__")
    for entry in site.iterdir():
        if entry.name.startswith(skip) or entry.suffix == ".pth":
            continue
        (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture(scope="module")
def venv(dist: Path, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed: its bin/ folder."""
    root = tmp_path_factory.mktemp("fresh")
    env = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, capture_output=True, timeout=300)
    python = env / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             check=True, capture_output=True, text=True).stdout.strip()
    (Path(purelib) / "project-deps.pth").write_text(f"{deps_view(root / 'deps')}\n", encoding="utf-8")
    result = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-index", "--no-cache-dir", "--disable-pip-version-check", str(wheel_of(dist))],
        capture_output=True, text=True, timeout=300, env={**pip_env(root)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Successfully installed entra-sigma" in result.stdout
    return env / "bin"


def pip_env(home: Path) -> dict[str, str]:
    """No user or site pip configuration (an index or find-links there must not matter)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "PIP_CONFIG_FILE": os.devnull}


@pytest.mark.slow
def test_the_wheel_holds_one_package_with_its_data(dist: Path):
    names = zipfile.ZipFile(wheel_of(dist)).namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"entra_sigma", f"entra_sigma-{VERSION}.dist-info"}, "no top-level `compiler` (or anything else)"
    for required in ("entra_sigma/schemas/targets.json", "entra_sigma/schemas/rule.schema.json",
                     "entra_sigma/schemas/tables/SigninLogs.json", "entra_sigma/schemas/mappings/SigninLogs.json",
                     "entra_sigma/templates/kql/query.kql.j2", "entra_sigma/templates/init/workflow.yml",
                     "entra_sigma/rules/legacy-auth/legacy-auth-signin.tests.yml", "entra_sigma/convert/kql.py",
                     "entra_sigma/verbs/deploy/sentinel.py"):
        assert required in names, required
    for folder in ("schemas", "templates", "rules"):
        committed = {p.relative_to(REPO / folder).as_posix() for p in (REPO / folder).rglob("*") if p.is_file()}
        shipped = {n.removeprefix(f"entra_sigma/{folder}/") for n in names if n.startswith(f"entra_sigma/{folder}/")}
        assert committed == shipped, f"{folder}/: the wheel differs from the checkout"


@pytest.mark.slow
def test_the_sdist_holds_the_sources_and_data(dist: Path):
    (sdist,) = dist.glob("entra_sigma-*.tar.gz")
    names = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
    for required in ("pyproject.toml", "README.md", "compiler/cli.py", "schemas/targets.json",
                     "templates/init/workflow.yml", "rules/legacy-auth/legacy-auth-signin.yml"):
        assert required in names, required


@pytest.fixture(scope="module")
def team_repo(venv: Path, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A git repository outside the checkout: three bundled rules with their cases on main."""
    home = tmp_path_factory.mktemp("team")
    root = home / "detections"
    for name in ("legacy-auth/legacy-auth-signin", "protocols/device-code-flow", "failures/aadsts-failures"):
        for suffix in (".yml", ".tests.yml"):
            target = root / "rules" / f"{name}{suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / "rules" / f"{name}{suffix}", target)
    env = command_env(home, bin_dir=venv)
    git_init(root, env)
    return root, env


def entra_sigma(team_repo, *args: str):
    root, env = team_repo
    return shell([str(Path(env["PATH"].split(os.pathsep)[0]) / "entra-sigma"), *args], root, env)


@pytest.mark.slow
def test_the_installed_package_reads_its_own_data(venv: Path, tmp_path: Path):
    code = "import entra_sigma.paths as p; print(p.SCHEMAS_DIR); print(p.TEMPLATES_DIR)"
    result = shell([str(venv / "python"), "-c", code], tmp_path, command_env(tmp_path, venv))
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        assert Path(line).is_relative_to(venv.parent), f"{line} is not inside the fresh environment"
    result = shell([str(venv / "python"), "-c", "import compiler"], tmp_path, command_env(tmp_path, venv))
    assert "No module named 'compiler'" in result.stderr


@pytest.mark.slow
def test_version(team_repo):
    result = entra_sigma(team_repo, "--version")
    assert (result.returncode, result.stdout) == (0, f"{VERSION}\n")


@pytest.mark.slow
def test_validate(team_repo):
    result = entra_sigma(team_repo, "validate", "rules")
    assert result.returncode == 0, result.stderr
    assert result.stderr.endswith("3 rule file(s) OK\n")


@pytest.mark.slow
def test_compile_prints_what_the_checkout_prints(team_repo):
    result = entra_sigma(team_repo, "compile", "rules/protocols/device-code-flow.yml")
    assert result.returncode == 0, result.stderr
    checkout = subprocess.run([str(Path(sys.executable).parent / "entra-sigma"), "compile", "rules/protocols/device-code-flow.yml"],
                              cwd=team_repo[0], capture_output=True, text=True)
    assert result.stdout == checkout.stdout and "| where AuthenticationProtocol" in result.stdout


@pytest.mark.slow
def test_build(team_repo):
    result = entra_sigma(team_repo, "build", "rules", "--out", "build")
    assert result.returncode == 0, result.stderr
    manifest = (team_repo[0] / "build" / "manifest.json").read_text(encoding="utf-8")
    assert '"kql/protocols/device-code-flow.kql"' in manifest and '"arm/legacy-auth/legacy-auth-signin.json"' in manifest


@pytest.mark.replay
@pytest.mark.slow
def test_test(team_repo):
    result = entra_sigma(team_repo, "test", "--strict", "rules")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 0 failed" in result.stdout.splitlines()[-1]


@pytest.mark.slow
def test_coverage(team_repo):
    result = entra_sigma(team_repo, "coverage", "rules", "--navigator", "-")
    assert result.returncode == 0, result.stderr
    layer = yaml.safe_load(result.stdout)
    assert layer["domain"] == "enterprise-attack" and layer["techniques"]


@pytest.mark.slow
def test_diff(team_repo):
    root, _ = team_repo
    rule = root / "rules" / "protocols" / "device-code-flow.yml"
    original = rule.read_text(encoding="utf-8")
    try:
        rule.write_text(original.replace("authenticationProtocol: deviceCode", "authenticationProtocol: ropc"), encoding="utf-8")
        result = entra_sigma(team_repo, "diff", "main")
    finally:
        rule.write_text(original, encoding="utf-8")
    assert result.returncode == 0, result.stderr
    assert "\n1 changed, 0 added, 0 removed, 2 unchanged\n" in result.stdout
    assert '+    | where AuthenticationProtocol has "ropc"' in result.stdout


@pytest.mark.slow
def test_init_and_its_repository_work(team_repo, tmp_path: Path):
    new = tmp_path / "new-repo"
    result = entra_sigma(team_repo, "init", str(new), "--with-pack")
    assert result.returncode == 0, result.stderr
    root, env = team_repo
    checked = shell(["entra-sigma", "validate", "rules", "--all-envs"], new, env)
    assert checked.returncode == 0 and checked.stderr.endswith("rule file(s) OK in environments dev, prod\n"), checked.stderr


@pytest.mark.slow
def test_the_actions_install_step_installs_the_wheel(dist: Path, venv: Path, tmp_path: Path):
    """action.yml's install script, with the wheel as its `package` input and no index."""
    action = yaml.safe_load((REPO / "action.yml").read_text(encoding="utf-8"))
    step = next(s for s in action["runs"]["steps"] if s.get("name") == "Install entra-sigma")
    env = {**command_env(tmp_path, venv), **pip_env(tmp_path), "PATH": command_env(tmp_path, venv)["PATH"],
           "PIP_NO_INDEX": "1", "ENTRA_SIGMA_PACKAGE": str(wheel_of(dist))}
    result = shell(step["run"], tmp_path, env)
    assert result.returncode == 0, result.stdout + result.stderr
    ran = shell(["entra-sigma", "--version"], tmp_path, env)
    assert ran.stdout == f"{VERSION}\n"


@pytest.mark.slow
def test_fields(team_repo):
    result = entra_sigma(team_repo, "fields", "errorCode")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("status.errorCode  (int)") and "SigninLogs: ResultType" in result.stdout


# -- the wheel build and `entra-sigma build` share no folder (issue 20, item 9) --------------------
def checkout_copy(target: Path) -> Path:
    """The checkout's own files, without what is installed or generated."""
    skip = shutil.ignore_patterns(".git", ".venv", "node_modules", "__pycache__", "*.egg-info", "build", "dist",
                                  ".setuptools-build", ".pytest_cache", ".venv-sigma-cli", ".corpus")
    return Path(shutil.copytree(REPO, target, ignore=skip, symlinks=True))


@pytest.mark.slow  # builds a wheel in place, then the rules
def test_a_wheel_built_in_the_checkout_leaves_the_build_folder_to_entra_sigma(tmp_path: Path):
    checkout = checkout_copy(tmp_path / "checkout")
    wheel = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", "dist"],
                           cwd=checkout, capture_output=True, text=True, timeout=300)
    assert wheel.returncode == 0, wheel.stdout[-3000:] + wheel.stderr[-3000:]
    assert not (checkout / "build").exists() and (checkout / ".setuptools-build").is_dir()
    entra_sigma = shutil.which("entra-sigma", path=str(Path(sys.executable).parent))
    built = subprocess.run([entra_sigma, "build", "rules", "--env", "prod"], cwd=checkout, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-3000:]
    assert (checkout / "build" / "manifest.json").is_file()
    ignored = (REPO / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert {"build/", "dist/", ".setuptools-build/"} <= set(ignored)


def test_a_setuptools_build_folder_is_named_when_refused(tmp_path: Path):
    from entra_sigma.write import OutputError, replace_folder

    (tmp_path / "build" / "lib").mkdir(parents=True)
    with pytest.raises(OutputError, match=r"it looks like setuptools' build folder"):
        replace_folder(tmp_path / "build", {"a.kql": "a\n"})

"""Shared test helpers: compile inline rules, and check KQL with Kusto.Language in batches."""

from __future__ import annotations

from pathlib import Path

from entra_sigma.build import Compiler
from entra_sigma.dev.pack import pack_environment
from entra_sigma.dev.kusto_language import KustoSession
from entra_sigma.diagnostics import Diagnostic
from entra_sigma.load.loader import parse_yaml
from entra_sigma.map.tables import bundled_registry

TESTS = Path(__file__).parent
CASES = TESTS / "cases"
SNAPSHOTS = TESTS / "snapshots"
REPO = TESTS.parent

REGISTRY = bundled_registry()
SENTINEL_TABLES = sorted(t for t, table in REGISTRY.tables.items() if table.platform == "sentinel")
DEFENDER_TABLES = sorted(t for t, table in REGISTRY.tables.items() if table.platform == "defender")
ALL_TABLES = SENTINEL_TABLES + DEFENDER_TABLES



# Two small rules several test files write: one with a misspelt field (an error at 6:5), one
# on the PRT column that the bundled SigninLogs schema has and Defender's table lacks.
MISSPELT_RULE = """title: Misspelt field
id: 7f0a2d1c-3b4e-4c5d-8e9f-0a1b2c3d4e5f
logsource: {product: entra, service: signins}
detection:
  sel:
    incomingTokenTyp: primaryRefreshToken
  condition: sel
"""
PRT_RULE = """title: PRT from an unmanaged device
id: 6a1f3c2e-8b4d-4f0a-9c61-2d7e5b9a0c11
logsource: {product: entra, service: signins}
detection:
  prt:
    incomingTokenType: primaryRefreshToken
  condition: prt
"""

PACK = pack_environment()  # this repository's entra-sigma.toml (init --with-pack's): the pack's placeholders' example values


def platform_of(table: str) -> str:
    return REGISTRY.tables[table].platform


def kusto_schema(registry=REGISTRY) -> dict[str, list[tuple[str, str]]]:
    """Every bundled table, as Kusto.Language symbols: one database holds them all."""
    return {name: list(table.columns.items()) for name, table in registry.tables.items()}


def compile_text(
    text: str,
    platform: str = "sentinel",
    table: str | None = None,
    path: str = "rule.yml",
    compiler: Compiler | None = None,
) -> tuple[str | None, list[Diagnostic]]:
    """Compile one rule given as YAML text; returns (KQL or None, diagnostics)."""
    compiler = compiler or Compiler()
    document, diagnostics = parse_yaml(text, Path(path), path)
    if document is None:
        return None, diagnostics
    rules, found = compiler.rules([document])
    if not rules:
        return None, found
    compiled, diagnostics = compiler.compile_rule(rules[0], (platform,), [table] if table else None)
    return compiled.texts.get(platform), found + diagnostics


def check_kql(kusto: KustoSession, texts: dict[str, str]) -> dict[str, list[str]]:
    """Kusto.Language diagnostics (as strings) for each named query, through the session's
    checker (the `kusto` fixture of conftest.py), against every bundled table."""
    results = kusto.check(sorted(texts.items()))
    return {key: [str(d) for d in diagnostics] for key, diagnostics in results.items()}


# -- commands in a shell, as a user or CI runs them -------------------------------------------
VENV_BIN = Path(__import__("sys").executable).parent  # entra-sigma, pre-commit, check-jsonschema


def command_env(tmp: Path, bin_dir: Path = VENV_BIN) -> dict[str, str]:
    """A clean environment: `bin_dir` first on PATH, git without the user's configuration."""
    import os

    return {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(tmp),
        "LANG": "C.UTF-8",
        "GIT_CONFIG_GLOBAL": str(tmp / "no-global-gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
        "PRE_COMMIT_HOME": str(tmp / "pre-commit-cache"),
    }


def shell(script: str | list[str], cwd: Path, env: dict[str, str], timeout: int = 300):
    """Run a bash script (or an argument list) and return the completed process."""
    import subprocess

    args = ["bash", "-eo", "pipefail", "-c", script] if isinstance(script, str) else script
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def git_init(root: Path, env: dict[str, str]) -> None:
    """A repository on branch main with everything in `root` committed."""
    for args in (["init", "-q"], ["symbolic-ref", "HEAD", "refs/heads/main"], ["config", "commit.gpgsign", "false"],
                 ["add", "-A"], ["commit", "-q", "-m", "first"]):
        result = shell(["git", *args], root, env)
        assert result.returncode == 0, result.stderr

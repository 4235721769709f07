"""What the whole test session shares, and the markers that keep the edit loop fast.

- ``kusto``: one Kusto.Language process (``check.js --serve``) for the session (one per
  pytest-xdist worker), instead of a Node start-up (about a second) per check. Every test that
  checks KQL takes it, directly or through a fixture, and is marked ``kusto`` because it does.
- ``bundled``: the rule pack in ``rules/`` compiled once, for both platforms, and rendered
  into every format once. Tests only read it.

Markers (registered in pyproject.toml, described in docs/ci.md): ``kusto`` (needs Node and the
pinned Kusto.Language; applied here from the fixture), ``replay`` (runs queries on the local KQL
engine, duckdb-kql) and ``slow`` (a second or more, or starts other programs). ``make test-fast``
leaves all three out; ``make test`` runs all.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
import typer.main
import typer.testing
from entra_sigma.build import BuildResult, Compiler, OutputSet, build_outputs
from entra_sigma.dev.kusto_language import KustoCheckUnavailable, KustoSession

from .helpers import PACK, REPO, kusto_schema

RULES = REPO / "rules"

# typer's CliRunner turns the app into a click command on every invoke (about 13 ms, some 250
# times a run); the command is the same each time, and click commands are reusable.
typer.testing._get_command = functools.cache(typer.main.get_command)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the checker, even through a fixture, is a `kusto` test."""
    for item in items:
        if "kusto" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.kusto)


@pytest.fixture(scope="session")
def kusto():
    """The session's Kusto.Language checker, over every bundled table (a request may name
    other tables). Missing Node or a stale package fails the tests that need it, never skips."""
    try:
        session = KustoSession(kusto_schema())
        session.__enter__()
    except KustoCheckUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    try:
        yield session
    finally:
        session.__exit__(None, None, None)


@dataclass(frozen=True)
class Bundled:
    """The rule pack, compiled once: ``build`` for both platforms, ``outputs`` in every format."""

    build: BuildResult
    outputs: OutputSet


@pytest.fixture(scope="session")
def bundled() -> Bundled:
    compiler = Compiler(environment=PACK)  # the pack's placeholders take the values of its example environment
    build = compiler.compile_paths([RULES], ("sentinel", "defender"))
    return Bundled(build, build_outputs(compiler, [RULES], result=build))

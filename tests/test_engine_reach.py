"""Every query the compiler writes runs on the local engine: each golden query in
tests/snapshots/ (every construct on every table, every correlation shape, the output formats)
is translated and run over empty tables, and none is refused. The bundled rules' queries are
run by `make test`'s `entra-sigma test --strict rules`, random rules' by tests/test_fuzz.py."""

from __future__ import annotations

import pytest
from entra_sigma.map.tables import bundled_registry
from entra_sigma.verbs.ruletests.replay import LocalEngine, NotReplayed

from .helpers import SNAPSHOTS

QUERIES = sorted(SNAPSHOTS.rglob("*.kql"))


@pytest.mark.slow
@pytest.mark.replay
def test_every_golden_query_runs_on_the_local_engine():
    assert len(QUERIES) >= 250
    engine = LocalEngine(bundled_registry())
    engine.load({})
    refused = {}
    for path in QUERIES:
        result = engine.run(path.read_text(encoding="utf-8"))
        if isinstance(result, NotReplayed):
            refused[path.relative_to(SNAPSHOTS).as_posix()] = str(result)
    assert refused == {}

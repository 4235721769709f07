"""Rules on array fields and CIDR ranges, written as another team would write them
(tests/cases/third-party/), have every case replayed: none is left "not replayed", and each
passes. tests/test_engine_mutations.py shows the same cases fail when the engine's mv-apply or
range test is broken, so passing here means the engine ran them."""

from __future__ import annotations

import pytest
from entra_sigma.build import Compiler
from entra_sigma.verbs.ruletests.run import PASSED, run_tests

from .helpers import CASES

THIRD_PARTY = CASES / "third-party"


@pytest.mark.replay
def test_every_case_of_rules_written_elsewhere_is_replayed_and_passes():
    run = run_tests(Compiler(), [THIRD_PARTY])
    assert [str(d) for d in run.diagnostics] == []
    outcomes = {(report.source, result.case.name): (result.outcome, result.detail) for report in run.reports for result in report.results}
    assert len(outcomes) >= 20
    assert {key: value for key, value in outcomes.items() if value[0] != PASSED} == {}
    assert run.strict_ok()


def test_the_rules_use_what_the_engine_needed_extending_for():
    """Every rule file tests an array field (mv-apply) or a CIDR range, both in most."""
    build = Compiler().compile_paths([THIRD_PARTY])
    texts = {c.rule.document.path.name + (f":{c.rule.data.get('name')}" if c.rule.data.get("name") else ""): c.texts["sentinel"]
             for c in build.compiled}
    assert len(texts) == 4
    assert all("mv-apply" in text for text in texts.values())
    assert sum("ipv4_is_in_range" in text and "ipv6_is_in_range" in text for text in texts.values()) == 2
    assert sum("ipv4_is_in_range" in text for text in texts.values()) == 3

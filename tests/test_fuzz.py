"""The fuzzer (compiler/dev/fuzz.py) at a modest size: 200 random valid rules, fixed seed.

The full run is a documented command (docs/hardening.md): `python -m compiler.dev.fuzz
--rules 10000 --seed 20261127`. Here the same code runs small, plus checks that the fuzzer
can fail: a crash, a broken KQL escaper, and ARM, Markdown and console escaping taken out are
each found.
"""

from __future__ import annotations

import re

import pytest
import yaml
from entra_sigma.convert.kql import KqlGenerator
from entra_sigma.dev import fuzz as fuzz_module
from entra_sigma.dev.fuzz import EXPECTED_REFUSALS, fuzz, to_yaml
from entra_sigma.dev.fuzz_rules import RuleGenerator
from entra_sigma.map.tables import bundled_registry
from entra_sigma.validate.catalog import default_catalog

from .helpers import compile_text

SEED = 20261127


@pytest.fixture(scope="module")
def report(kusto):
    return fuzz(rules=200, seed=SEED, sessions=[kusto])


@pytest.mark.slow  # about 13 s: 200 rules built in every format, every query checked
def test_two_hundred_random_rules_compile_and_pass_kusto_language(report):
    summary = report.summary()
    assert [f"{f.kind} {f.file}: {f.detail}" for f in report.findings] == []
    assert summary["rules"] >= 200 and summary["correlations"] >= 10
    assert summary["wide value lists"] >= 5  # 30 to 1,500 values: linear time, chains Kusto.Language takes
    assert summary["queries checked"] >= summary["rules with outputs"] >= 150
    assert set(report.refused) <= EXPECTED_REFUSALS and sum(report.refused.values()) <= 20


def test_a_seed_always_gives_the_same_rules():
    def texts(seed):
        generator = RuleGenerator(default_catalog(), bundled_registry(), seed)
        return ["---\n".join(to_yaml(d) for d in generator.documents(i)) for i in range(50)]

    assert texts(SEED) == texts(SEED)
    assert texts(SEED) != texts(SEED + 1)


def test_wide_value_lists_leave_every_other_draw_as_it_was(monkeypatch):
    """They draw from a stream of their own: without them a seed gives the rules it gave before."""
    from entra_sigma.dev import fuzz_rules

    def texts():
        generator = RuleGenerator(default_catalog(), bundled_registry(), SEED)
        return ["---\n".join(to_yaml(d) for d in generator.documents(i)) for i in range(200)], generator.widened

    with_wide, widened = texts()
    monkeypatch.setattr(fuzz_rules, "WIDE_SHARE", 0.0)
    without, none = texts()
    changed = [i for i, (a, b) in enumerate(zip(with_wide, without)) if a != b]
    assert none == 0 and widened >= 5 and 0 < len(changed) <= widened
    assert all(max(len(v) for v in yaml_lists(with_wide[i])) >= 30 for i in changed)


def yaml_lists(text: str):
    """Every list in the documents of a generated file."""
    pending = list(yaml.safe_load_all(text))
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            yield item
            pending.extend(item)


def test_generated_files_load_back_as_generated():
    generator = RuleGenerator(default_catalog(), bundled_registry(), SEED)
    for index in range(100):
        documents = generator.documents(index)
        assert list(yaml.safe_load_all("---\n".join(to_yaml(d) for d in documents))) == documents


def test_the_fuzzer_reports_a_crash(monkeypatch, kusto):
    real = KqlGenerator.predicate

    def crash_on_contains(self, p):
        if p.match.op == "contains":
            raise RuntimeError("planted bug")
        return real(self, p)

    monkeypatch.setattr(KqlGenerator, "predicate", crash_on_contains)
    monkeypatch.setattr(fuzz_module, "BATCH", 20)
    found = fuzz(rules=20, seed=SEED, sessions=[kusto])
    crashes = [f for f in found.findings if f.kind == "crash"]
    assert crashes and all("planted bug" in f.detail for f in crashes)


def test_the_fuzzer_reports_unsafe_outputs(monkeypatch, kusto):
    """Escaping taken out of ARM, Markdown and console lines (and the build's own read-back
    switched off): the fuzzer's readers find each."""
    from entra_sigma import build as build_module
    from entra_sigma.render import markdown, renderer
    from entra_sigma.verbs.deploy import report as deploy_report

    monkeypatch.setattr(renderer, "arm_value", lambda value: value)
    monkeypatch.setattr(build_module, "readback_problem", lambda *args: None)
    monkeypatch.setattr(markdown, "_MENTION", re.compile(r"(?!)"))
    monkeypatch.setattr(deploy_report, "one_line", lambda text: text)
    monkeypatch.setattr(fuzz_module, "BATCH", 60)
    found = fuzz(rules=60, seed=SEED, sessions=[kusto])
    details = [f"{f.kind} {f.detail}" for f in found.findings]
    assert any(d.startswith("broken-output arm/") and "ARM would evaluate '[" in d for d in details), details
    assert any(d.startswith("unsafe-text live mention or reference") for d in details), details
    assert any(d.startswith("unsafe-text a command line") or d.startswith("unsafe-text a hidden character") for d in details)


@pytest.mark.kusto
def test_the_fuzzer_reports_queries_kusto_refuses(monkeypatch):
    """Through a checker process of the fuzzer's own, as `python -m compiler.dev.fuzz` runs."""
    monkeypatch.setattr(KqlGenerator, "string", staticmethod(lambda value: '"' + value + '"'))  # no escaping
    monkeypatch.setattr(fuzz_module, "BATCH", 30)
    found = fuzz(rules=30, seed=SEED)
    assert any(f.kind == "invalid-query" for f in found.findings)


# -- what the fuzzer found ----------------------------------------------------------------------------
def test_found_fieldref_to_a_column_stored_as_numbers_is_refused_not_miscompiled():
    """Seed 20261127, rule 1231: Defender keeps riskLevelAggregated as numbers, so
    `ResourceDisplayName =~ RiskLevelAggregated` compared a string with an int."""
    rule = """title: fieldref to an encoded enum
id: 0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e
logsource: {product: entra, service: signins}
detection:
  sel:
    resourceDisplayName|fieldref: riskLevelAggregated
  condition: sel
"""
    kql, problems = compile_text(rule, platform="defender")
    assert kql is None
    assert [(d.code, str(d.location), d.message) for d in problems] == [(
        "E203", "rule.yml:6:5",
        "'riskLevelAggregated' is stored as numbers in EntraIdSignInEvents; fieldref cannot compare it",
    )]
    kql, problems = compile_text(rule)  # Sentinel keeps it as text: compiled
    assert problems == [] and "ResourceDisplayName =~ RiskLevelAggregated" in kql


@pytest.mark.slow
@pytest.mark.replay
def test_random_rules_replay_on_the_local_engine(kusto):
    """Every query of random rules runs on the engine `entra-sigma test` uses: none is left for
    a user's cases to be "not replayed" (`--replay` of the fuzzer; docs/hardening.md)."""
    report = fuzz(rules=40, seed=SEED + 1, sessions=[kusto], replay=True)
    assert [f"{f.kind} {f.file}: {f.detail}" for f in report.findings] == []
    assert report.replayed >= 30

"""Every rule in rules/: valid, compiles for Sentinel with zero diagnostics, and Kusto.Language
accepts the query against the real table schemas. One test id per rule file; the pack is
compiled once per session (the `bundled` fixture of conftest.py)."""

from __future__ import annotations

import re

import pytest
from entra_sigma.diagnostics import format_text

from .helpers import REPO, check_kql

RULES_DIR = REPO / "rules"
RULE_FILES = sorted(p for p in RULES_DIR.rglob("*.yml") if not p.name.endswith(".tests.yml"))  # test cases sit beside rules
FILE_NAME = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*\.yml$")


@pytest.fixture(scope="module")
def build(bundled):
    """The whole folder, compiled once; a loader failure shows up in every test. Its Sentinel
    diagnostics are those not about Defender (as `build` reports them)."""
    result = bundled.build
    diagnostics = [d for d in result.diagnostics if d.target != "defender"]
    by_file = {c.rule.document.path.resolve(): c for c in result.compiled if c.rule.document.index == 0}
    return diagnostics, by_file


@pytest.fixture(scope="module")
def verdicts(bundled, kusto):
    return check_kql(kusto, {c.rule.id: c.texts["sentinel"] for c in bundled.build.compiled if "sentinel" in c.texts})


def test_rules_folder_is_not_empty():
    assert len(RULE_FILES) >= 6


def test_collection_has_no_errors(build):
    diagnostics, _ = build
    assert format_text(diagnostics) == ""


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.relative_to(RULES_DIR).as_posix())
def test_rule(path, build):
    diagnostics, by_file = build
    assert FILE_NAME.match(path.name), f"{path.name}: use lower-case words joined by '-'"
    problems = [d for d in diagnostics if d.location.path.endswith("/" + path.relative_to(RULES_DIR).as_posix())]
    assert problems == [], format_text(problems)
    compiled = by_file[path.resolve()]
    rule = compiled.rule
    assert rule.level in ("informational", "low", "medium", "high", "critical")
    assert rule.description, f"{rule.title}: describe what the rule finds and why it matters"
    assert any(t.startswith("attack.t") for t in rule.tags), f"{rule.title}: tag at least one ATT&CK technique"
    if rule.correlation is None:  # a correlation returns its groups, not fields
        assert rule.fields, f"{rule.title}: list the fields an analyst needs"
    else:
        assert rule.correlation.group_by


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.relative_to(RULES_DIR).as_posix())
def test_rule_passes_kusto_language(path, build, verdicts):
    _, by_file = build
    compiled = by_file[path.resolve()]
    assert verdicts[compiled.rule.id] == [], compiled.texts["sentinel"]


def test_rule_pack_page_lists_every_placeholder():
    """docs/rule-pack.md tells users which values to give: every placeholder a rule of the pack
    holds is in its table with that rule, and nothing else is; no rule asks to be edited."""
    page = (REPO / "docs" / "rule-pack.md").read_text(encoding="utf-8")
    section = page.split("## Placeholders: the values only you know", 1)[1].split("\n## ", 1)[0]
    listed = set(re.findall(r"^\| `%([\w]+)%` \| \[[\w/-]+\]\(\.\./rules/([\w/-]+\.yml)\)", section, re.MULTILINE))
    used = {(name, p.relative_to(RULES_DIR).as_posix()) for p in RULE_FILES
            for name in re.findall(r"'%(\w+)%'", p.read_text(encoding="utf-8"))}
    assert len(used) == 10 and listed == used
    assert [p.name for p in RULES_DIR.rglob("*.yml") if "# REPLACE" in p.read_text(encoding="utf-8")] == []

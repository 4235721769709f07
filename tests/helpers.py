"""Shared test helpers: compile inline rules, and check KQL with Kusto.Language in batches."""

from __future__ import annotations

from pathlib import Path

from entra_sigma.build import Compiler
from entra_sigma.diagnostics import Diagnostic
from entra_sigma.kusto_language import check_queries
from entra_sigma.loader import parse_yaml
from entra_sigma.tables import bundled_registry

TESTS = Path(__file__).parent
CASES = TESTS / "cases"
SNAPSHOTS = TESTS / "snapshots"
REPO = TESTS.parent

REGISTRY = bundled_registry()
SENTINEL_TABLES = sorted(t for t, table in REGISTRY.tables.items() if table.platform == "sentinel")
DEFENDER_TABLES = sorted(t for t, table in REGISTRY.tables.items() if table.platform == "defender")
ALL_TABLES = SENTINEL_TABLES + DEFENDER_TABLES


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
    rules, diagnostics = compiler.rules([document])
    if not rules:
        return None, diagnostics
    compiled, diagnostics = compiler.compile_rule(rules[0], (platform,), [table] if table else None)
    return compiled.texts.get(platform), diagnostics


def check_kql(texts: dict[str, str]) -> dict[str, list[str]]:
    """Kusto.Language diagnostics (as strings) for each named query, in one Node process."""
    results = check_queries(sorted(texts.items()), kusto_schema())
    return {key: [str(d) for d in diagnostics] for key, diagnostics in results.items()}

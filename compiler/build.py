"""Glue: run load → validate → model → convert → render over a set of rule files.

Every rule is taken as far as it can go; problems are collected as diagnostics so that
one bad rule never hides another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .catalog import Catalog, default_catalog
from .convert import Query, QueryBuilder
from .diagnostics import Diagnostic
from .loader import RuleDocument, load_documents
from .render import Renderer
from .rule import Rule, build_rule
from .schema import validate_document
from .tables import Registry, bundled_registry


@dataclass
class CompiledRule:
    rule: Rule
    queries: dict[str, Query] = field(default_factory=dict)  # platform → query
    texts: dict[str, str] = field(default_factory=dict)  # platform → rendered KQL


@dataclass
class BuildResult:
    documents: list[RuleDocument]
    compiled: list[CompiledRule]
    diagnostics: list[Diagnostic]

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


@dataclass
class Compiler:
    registry: Registry = field(default_factory=bundled_registry)
    catalog: Catalog = field(default_factory=default_catalog)
    templates: Path | None = None

    def __post_init__(self) -> None:
        self.renderer = Renderer(self.templates)

    def rules(self, documents: list[RuleDocument]) -> tuple[list[Rule], list[Diagnostic]]:
        """Validate documents into rules; also refuse duplicate ids and titles across the set."""
        rules: list[Rule] = []
        diagnostics: list[Diagnostic] = []
        for document in documents:
            problems = validate_document(document)
            if problems:
                diagnostics += problems
                continue
            rule, problems = build_rule(document, self.catalog)
            diagnostics += problems
            if rule is not None:
                rules.append(rule)
        diagnostics += duplicate_diagnostics(documents)
        return rules, diagnostics

    def compile_rule(
        self, rule: Rule, platforms: tuple[str, ...], tables: list[str] | None = None
    ) -> tuple[CompiledRule, list[Diagnostic]]:
        compiled = CompiledRule(rule)
        diagnostics: list[Diagnostic] = []
        for platform in platforms:
            query, problems = QueryBuilder(self.registry, self.catalog, platform, tables).build(rule)
            diagnostics += problems
            if query is not None:
                compiled.queries[platform] = query
                compiled.texts[platform] = self.renderer.query(query)
        return compiled, diagnostics

    def compile_paths(self, paths: list[Path], platforms: tuple[str, ...] = ("sentinel",)) -> BuildResult:
        documents, diagnostics = load_documents(paths)
        rules, problems = self.rules(documents)
        diagnostics += problems
        compiled: list[CompiledRule] = []
        for rule in rules:
            result, problems = self.compile_rule(rule, platforms)
            diagnostics += problems
            compiled.append(result)
        return BuildResult(documents, compiled, diagnostics)


def duplicate_diagnostics(documents: list[RuleDocument]) -> list[Diagnostic]:
    """Two rules with one id (or one title) would overwrite each other when deployed."""
    diagnostics: list[Diagnostic] = []
    for key in ("id", "title"):
        first: dict[str, RuleDocument] = {}
        for document in documents:
            if not isinstance(document.data, dict) or not isinstance(document.data.get(key), str):
                continue
            value = document.data[key].strip().lower()
            if value in first:
                diagnostics.append(Diagnostic(
                    "E005", f"duplicate {key} {document.data[key]!r}: also used by {first[value].display_path}",
                    document.location(key), document.title,
                ))
            else:
                first[value] = document
    return diagnostics

"""Glue: run load → validate → model → convert → render over a set of rule files.

Every rule is taken as far as it can go; problems are collected as diagnostics so that
one bad rule never hides another.

Most checks look at one rule file. The few that look across files read only small facts of
each file and live in across_files.py, which the incremental build runs too.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path

from .across_files import DocumentKeys, OutputName, across_documents, manifest_of, settle_output_names
from .convert.correlation import CorrelationBuilder
from .convert.kql import GENERATORS
from .convert.query import Query, QueryBuilder
from .diagnostics import Diagnostic
from .load.loader import RuleDocument, load_documents
from .map.tables import Registry, bundled_registry
from .model.correlation import build_correlation, rule_label
from .model.correlation_bind import bind_correlations
from .model.rule import Rule, build_rule
from .project.apply import prepare
from .project.environment import Environment
from .render.formats import ALL_FORMATS, BY_NAME, OutputFormat, platforms_of, readback_problem, render_format
from .render.renderer import Renderer
from .render.settings import DeploymentPlanner
from .validate.catalog import Catalog, default_catalog
from .validate.schema import FAST_PATH_MINIMUM, rule_schema_problems


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
    files: int = 0  # rule files read, including those that failed to parse

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


@dataclass
class Compiler:
    registry: Registry = field(default_factory=bundled_registry)
    catalog: Catalog = field(default_factory=default_catalog)
    templates: Path | None = None
    environment: Environment | None = None  # entra-sigma.toml's: placeholders, filters, overrides

    def __post_init__(self) -> None:
        self.renderer = Renderer(self.templates)

    def rules(self, documents: list[RuleDocument]) -> tuple[list[Rule], list[Diagnostic]]:
        """Validate documents into rules; also refuse duplicate ids and titles across the set."""
        rules: list[Rule] = []
        broken: set[str] = set()  # ids and names of documents that failed: correlations say so
        fast = len(documents) >= FAST_PATH_MINIMUM
        prepared, diagnostics = prepare(documents, self.environment, self.catalog)
        for original, document in zip(documents, prepared):
            rule = None
            if document is not None:  # None: its placeholders could not be expanded (said already)
                problems, settings_only = rule_schema_problems(document, fast)
                if not problems or settings_only:  # a typo in `sentinel:` hides no error of the detection
                    build = build_correlation if "correlation" in document.data else build_rule
                    rule, more = build(document, self.catalog)
                    problems += more
                    if rule is not None and settings_only:
                        rule = replace(rule, unplanned=True)
                diagnostics += problems
            if rule is not None:
                rules.append(rule)
            elif isinstance(original.data, dict):
                broken |= {str(original.data[k]).lower() for k in ("id", "name") if isinstance(original.data.get(k), str)}
        # duplicate ids, titles, names; the rules an environment names
        diagnostics += across_documents([DocumentKeys.of(d) for d in documents], self.environment)
        rules, problems = bind_correlations(rules, self.catalog, frozenset(broken))
        diagnostics += problems
        return [r for r in rules if r.correlation is None or r.correlation.rules], diagnostics

    def compile_rule(
        self, rule: Rule, platforms: tuple[str, ...], tables: list[str] | None = None
    ) -> tuple[CompiledRule, list[Diagnostic]]:
        compiled = CompiledRule(rule)
        diagnostics: list[Diagnostic] = []
        for platform in platforms:
            if rule.correlation is not None:
                query, problems = CorrelationBuilder(self.registry, self.catalog, platform).build(rule)
            else:
                query, problems = QueryBuilder(self.registry, self.catalog, platform, tables).build(rule)
            diagnostics += problems
            if query is not None:
                compiled.queries[platform] = query
                compiled.texts[platform] = self.renderer.query(query)
        return compiled, diagnostics

    def compile_paths(self, paths: list[Path], platforms: tuple[str, ...] = ("sentinel",)) -> BuildResult:
        documents, diagnostics = load_documents(paths)
        return self.compile_documents(documents, diagnostics, platforms)

    def compile_documents(
        self, documents: list[RuleDocument], diagnostics: list[Diagnostic], platforms: tuple[str, ...] = ("sentinel",)
    ) -> BuildResult:
        """Compile loaded documents (verbs/incremental/rebuild.py compiles some files of a folder at a time)."""
        diagnostics = list(diagnostics)
        rules, problems = self.rules(documents)
        diagnostics += problems
        compiled: list[CompiledRule] = []
        for rule in rules:
            if not rule.standalone:
                continue
            result, problems = self.compile_rule(rule, platforms)
            diagnostics += problems
            compiled.append(result)
        files = len({d.location.path for d in diagnostics if d.code in ("E000", "E001")} | {d.display_path for d in documents})
        diagnostics = list(dict.fromkeys(diagnostics))  # a rule compiled alone and in a correlation warns once
        return BuildResult(documents, compiled, diagnostics, files)


# -- deployable outputs ------------------------------------------------------------------------


@dataclass
class OutputSet:
    """Every output file of a build (relative path → text), the manifest, and diagnostics."""

    files: dict[str, str]
    manifest: dict
    diagnostics: list[Diagnostic]
    rules: int = 0

    @property
    def ok(self) -> bool:
        return not any(d.severity == "error" for d in self.diagnostics)


def rule_output_name(rule: Rule, roots: list[Path]) -> str:
    """The rule's path under the folder it was found in, without suffix ('identity/prt')."""
    path = rule.document.path.resolve()
    for root in roots:
        if root.is_dir():
            try:
                return path.relative_to(root.resolve()).with_suffix("").as_posix()
            except ValueError:
                continue
    return path.stem


def output_names(rules: list[Rule], roots: list[Path]) -> tuple[dict[str, str], list[Diagnostic]]:
    """rule id → output name; see `settle_output_names`."""
    return settle_output_names(wanted_output_names(rules, roots))


def wanted_output_names(rules: list[Rule], roots: list[Path]) -> list[OutputName]:
    """The name each rule's outputs want: its path below the folder it was found in; in a file
    that outputs several rules, the first keeps that name and the others add their label."""
    rules = list({rule.id: rule for rule in reversed(rules)}.values())[::-1]  # a duplicate id is E005 already
    wanted = {rule.id: rule_output_name(rule, roots) for rule in rules}
    by_file: dict[Path, list[Rule]] = {}
    for rule in rules:
        by_file.setdefault(rule.document.path, []).append(rule)
    for siblings in by_file.values():
        for rule in sorted(siblings, key=lambda r: r.document.index)[1:]:
            wanted[rule.id] += "." + rule_label(rule)
    return [OutputName(rule.id, wanted[rule.id], rule.source, rule.title, rule.document.location()) for rule in rules]


def unbuildable(spec: OutputFormat, compiled: CompiledRule, deployment, registry: Registry, defender_problems) -> str | None:
    """Why a rule has no file of this format (None: it has one)."""
    rule = compiled.rule
    if compiled.texts.get(spec.platform) is None:
        return "; ".join(d.message for d in defender_problems if d.location.path == rule.source) or "no query"
    if spec.event_rows and rule.correlation is not None:
        return "a custom detection must return event rows (Timestamp, ReportId); a correlation returns groups"
    if spec.event_rows and (reason := no_impacted_asset(registry, compiled.queries[spec.platform])):
        return reason
    if not spec.bare and deployment is None:
        return "deployment settings have errors"
    return None


def no_impacted_asset(registry: Registry, query: Query) -> str | None:
    """Why a Defender query cannot become a custom detection: no table it reads has a column
    naming an impacted user (service principal sign-ins have none)."""
    columns = GENERATORS["defender"].impacted_asset_columns
    lacking = [t for t in query.tables if not any(c in registry.tables[t].columns for c in columns)]
    if not lacking:
        return None
    return (f"{', '.join(lacking)} has no column naming an impacted user ({', '.join(columns)}), which a custom "
            "detection needs; the hunting query is written")


def validate_documents(
    compiler: Compiler, documents: list[RuleDocument], diagnostics: list[Diagnostic], roots: list[Path]
) -> OutputSet:
    """What `validate` finds in rule documents already read (an editor's unsaved buffers, say):
    the same compile and output checks as `validate roots`, on exactly these documents.
    `diagnostics`: what reading them found already (E001); `roots`: the folders output names
    are taken below."""
    result = compiler.compile_documents(documents, diagnostics, ("sentinel", "defender"))
    return build_outputs(compiler, roots, result=result)


def build_outputs(
    compiler: Compiler, paths: list[Path], formats: tuple[str, ...] = ALL_FORMATS, result: BuildResult | None = None
) -> OutputSet:
    """Compile every rule into every format. A format a rule cannot reach is skipped with a
    warning (Defender lacks many Sentinel columns); rule errors stay errors. `result`: the
    rules already compiled for both platforms (names are still taken relative to `paths`)."""
    if result is None:
        result = compiler.compile_paths(paths, platforms_of(formats))
    diagnostics = [d for d in result.diagnostics if d.target != "defender"]
    defender_problems = [replace(d, severity="warning") for d in result.diagnostics if d.target == "defender"]
    planner = DeploymentPlanner()
    files: dict[str, str] = {}
    entries = []
    names, problems = output_names([c.rule for c in result.compiled], paths)
    diagnostics += problems
    for compiled in sorted(result.compiled, key=lambda c: c.rule.id):
        rule = compiled.rule
        if rule.id not in names:
            continue
        name = names[rule.id]
        deployment, problems = planner.plan(rule, compiled.queries.get("sentinel")) if not rule.unplanned else (None, [])
        diagnostics += problems
        produced: dict[str, str] = {}
        skipped: dict[str, str] = {}
        for fmt in formats:
            spec = BY_NAME[fmt]
            platform = spec.platform
            query = compiled.texts.get(platform)
            reason = unbuildable(spec, compiled, deployment, compiler.registry, defender_problems)
            if reason is None and spec.max_query is not None and len(query) > spec.max_query:
                if "query too long" not in skipped.values():
                    diagnostics.append(Diagnostic(
                        "E306", f"the query is {len(query)} characters; {platform.capitalize()} accepts at most {spec.max_query}",
                        rule.document.location("detection"), rule.title, target=platform,
                    ))
                reason = "query too long"
            if reason is not None:
                skipped[fmt] = reason
                continue
            returned = set(compiled.queries[platform].returned.values())
            rendered = render_format(compiler.renderer, fmt, deployment, query, name, returned)
            if problem := readback_problem(compiler.renderer, rendered, deployment, query):
                diagnostics.append(Diagnostic(
                    "E310", f"{rendered.path} does not read back as built: {problem}", rule.document.location(),
                    rule.title, "a template writes a value unescaped; see docs/hardening.md#trust-boundary", target=platform,
                ))
                skipped[fmt] = "does not read back as built"
                continue
            files[rendered.path] = rendered.text
            produced[rendered.path] = hashlib.sha256(rendered.text.encode("utf-8")).hexdigest()
        entries.append({
            "id": rule.id, "title": rule.title, "source": rule.source,
            "files": dict(sorted(produced.items())), "skipped": dict(sorted(skipped.items())),
            **({"filters": list(rule.shaped_by)} if rule.shaped_by else {}),
        })
    diagnostics += defender_problems
    environment = compiler.environment.name if compiler.environment is not None else None
    return OutputSet(files, manifest_of(formats, entries, environment), diagnostics, result.files)

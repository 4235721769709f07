"""Convert step: one validated rule → the legs of a KQL query for one platform.

Chooses the tables (logsource service, then folding away tables where the rule can never
match), lowers the condition per table, and lays each table's work out as pipe steps. The
shape of the final text is the template's business (render/renderer.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from ..diagnostics import Diagnostic
from ..map.lower import AnyElement, MappingProblem, RowFilter, TableMapper, Tree, constant_for, projection_access
from ..map.tables import Registry, TableMapping
from ..model import ir
from ..model.rule import Rule, origin_locator
from ..validate.catalog import Catalog
from .kql import GENERATORS, KqlGenerator, Leg, collect_elements

PLATFORMS = ("sentinel", "defender")


@dataclass
class Let:
    """A named intermediate result (`let name = ...;`): a union of legs, or another let, then steps."""

    name: str
    legs: list[Leg] = field(default_factory=list)
    source: str | None = None
    steps: list[str] = field(default_factory=list)
    materialize: bool = False  # computed once and reused by the later steps (the table scans)


@dataclass
class Query:
    """Everything a query template needs, already decided."""

    rule: Rule
    platform: str
    legs: list[Leg]
    tail: list[str] = field(default_factory=list)  # steps after the union of legs
    returned: dict[str, str] = field(default_factory=dict)  # beta path → output column
    lets: list[Let] = field(default_factory=list)  # correlations build on named steps
    source: str | None = None  # the let the final pipeline starts from, when it has no legs
    summary: str | None = None  # one line for the header comment

    @property
    def tables(self) -> list[str]:
        """The tables read, each once, in the order the query reads them (a leg may read a let)."""
        names = {let.name for let in self.lets}
        legs = [leg.table for part in [*self.lets, self] for leg in part.legs if leg.table not in names]
        return list(dict.fromkeys(legs))


def conjuncts(tree: Tree) -> list[Tree]:
    if isinstance(tree, ir.And):
        return list(tree.args)
    if isinstance(tree, ir.Const) and tree.value:
        return []
    return [tree]


@lru_cache(maxsize=64)
def _raw_columns(registry: Registry, catalog: Catalog, tables: tuple[str, ...]) -> dict[str, str]:
    """QueryBuilder.raw_columns, once per set of tables (it walks the whole catalog)."""
    returned = {}
    mappings = [registry.mapping(t) for t in tables]
    for path in catalog.fields:
        accesses = {projection_access(m, path) for m in mappings}
        if len(accesses) == 1:
            (access,) = accesses
            if access is not None and not access.path and access.encoding is None:
                returned[path] = access.column
    return returned


def output_name(path: str) -> str:
    return path.replace(".", "_")


class QueryBuilder:
    def __init__(self, registry: Registry, catalog: Catalog, platform: str, tables: list[str] | None = None):
        self.forced_tables = tables  # tests compile one construct against one table at a time
        self.registry = registry
        self.catalog = catalog
        self.platform = platform
        self.generator: KqlGenerator = GENERATORS[platform]()

    def target_tables(self, rule: Rule) -> list[str]:
        if self.forced_tables is not None:
            return list(self.forced_tables)
        chosen = rule.settings("defender").get("table") if self.platform == "defender" else None
        if chosen and chosen in self.registry.choices_for(self.platform, rule.service):
            return [chosen]
        return self.registry.tables_for(self.platform, rule.service)

    def table_choice_problem(self, rule: Rule) -> Diagnostic | None:
        """`defender: {table: ...}` naming a table that holds other sign-ins than the rule's service."""
        chosen = rule.settings("defender").get("table") if self.platform == "defender" else None
        choices = self.registry.choices_for(self.platform, rule.service)
        if chosen is None or chosen in choices or not choices:
            return None
        return Diagnostic(
            "E206", f"Defender table '{chosen}' does not hold the sign-ins of service '{rule.service}'",
            rule.document.location("defender", "table"), rule.title, f"choose {' or '.join(choices)}",
        )  # a setting's mistake, an error wherever Defender is built (no [defender] target, which build downgrades)

    def build(self, rule: Rule) -> tuple[Query | None, list[Diagnostic]]:
        """The query of a single-event rule."""
        live, diagnostics = self.live_trees(rule)
        if live is None:
            return None, diagnostics
        projected, problems = self.returnable_fields(rule, list(live))
        diagnostics += problems
        if any(d.severity == "error" for d in problems):
            return None, diagnostics
        legs = [self.leg(table, tree, tuple(projected)) for table, tree in live.items()]
        if len(legs) > 1 and not projected:
            self.normalise(legs)
        returned = {p: output_name(p) for p in projected} if projected else self.raw_columns(list(live))
        return Query(rule, self.platform, legs, returned=returned), diagnostics

    def live_trees(self, rule: Rule) -> tuple[dict[str, Tree] | None, list[Diagnostic]]:
        """The rule's condition lowered for each table it reads, without the tables where it
        can never match; None (and why) when it has no such table."""
        locate = origin_locator(rule.document)
        problem = self.table_choice_problem(rule) if self.forced_tables is None else None
        if problem is not None:
            return None, [problem]
        target = self.target_tables(rule)
        if not target:
            return None, [Diagnostic(
                "E204", f"service '{rule.service}' has no {self.platform} sign-in table",
                rule.document.location("logsource", "service"), rule.title, target=self.platform,
            )]
        lowered: dict[str, Tree] = {}
        mappers: dict[str, TableMapper] = {}
        missing_everywhere: set[str] | None = None
        diagnostics: list[Diagnostic] = []
        for table in target:
            mapper = mappers[table] = TableMapper(self.registry.mapping(table), self.catalog)
            try:
                lowered[table] = mapper.lower(rule.condition)
            except MappingProblem as problem:
                diagnostics.append(Diagnostic(
                    problem.code, str(problem), locate(problem.match.origin if problem.match else None),
                    rule.title, problem.hint, target=self.platform,
                ))
                continue
            missing = set(mapper.missing)
            missing_everywhere = missing if missing_everywhere is None else missing_everywhere & missing
        if diagnostics:
            return None, diagnostics
        matches = {m.field: m for m in ir.walk_matches(rule.condition)}
        for path in sorted(missing_everywhere or ()):
            origin = matches[path].origin if path in matches else None
            reasons = [m.missing[path].reason for m in mappers.values() if m.missing[path].deliberate]
            diagnostics.append(Diagnostic(
                "E201", f"field '{path}' has no column in {', '.join(target)}",
                locate(origin), rule.title, "; ".join(reasons) or None, target=self.platform,
            ))
        if diagnostics:
            return None, diagnostics
        live = {t: tree for t, tree in lowered.items() if tree != ir.Const(False)}
        if not live:
            return None, [Diagnostic(
                "E202", f"the condition can never match in {', '.join(target)}",
                rule.document.location("detection", "condition"), rule.title,
                hint="a field it requires has no column there, or is constant", target=self.platform,
            )]
        diagnostics += self.left_out(rule, [mappers[t] for t in lowered if t not in live], matches)
        for table, tree in live.items():
            found = self.registry.row_filter(self.platform, rule.service, table)
            if found is not None and self.forced_tables is None:  # the table mixes services: keep the rule's
                live[table] = ir.And((RowFilter(*found), *conjuncts(tree)))
        return live, diagnostics

    def left_out(self, rule: Rule, dropped: list[TableMapper], matches: dict[str, ir.Match]) -> list[Diagnostic]:
        """A table the logsource names where the rule can never match (W202): say which, why,
        and how to get it back, rather than let its leg disappear."""
        locate = origin_locator(rule.document)
        diagnostics = []
        for mapper in dropped:
            table = mapper.mapping.table.name
            if mapper.missing:
                path, absent = sorted(mapper.missing.items())[0]
                fields = ", ".join(f"'{p}'" for p in sorted(mapper.missing))
                message = f"{table} is left out: {fields} {'has' if len(mapper.missing) == 1 else 'have'} no column there"
                hint = absent.reason if absent.deliberate else (
                    f"if your workspace has the column, pass its '{table} | getschema' export with --table-schema {table}.json"
                )
            else:
                path = min(mapper.constants, default="")
                values = ", ".join(
                    f"'{p}' is always {self.constant_text(constant_for(mapper.mapping, p).value)}" for p in sorted(mapper.constants)
                )
                message = f"{table} is left out: {values or 'the condition is always false'} there"
                hint = "choose a logsource service that reads only the tables the rule is about: see docs/rule-format.md#logsource"
            origin = matches[path].origin if path in matches else None
            location = locate(origin) if origin else rule.document.location("logsource", "service")
            diagnostics.append(Diagnostic("W202", message, location, rule.title, hint, severity="warning", target=self.platform))
        return diagnostics

    def constant_text(self, value) -> str:
        return self.generator.boolean(value) if isinstance(value, bool) else self.generator.string(str(value))

    def returnable_fields(self, rule: Rule, tables: list[str]) -> tuple[list[str], list[Diagnostic]]:
        """The rule's `fields` that some queried table has. On Sentinel, the tables the rule is
        written for, a field none of them has is an error (E205); on Defender, which lacks many
        beta fields, it is left out of the output with a warning (W201)."""
        projected, problems = [], []
        mappings = [self.registry.mapping(t) for t in tables]
        for index, path in enumerate(rule.fields):
            if any(projection_access(m, path) or constant_for(m, path) for m in mappings):
                projected.append(path)
                continue
            lenient = self.platform == "defender"
            problems.append(Diagnostic(
                "W201" if lenient else "E205",
                f"field '{path}' in 'fields' has no column in {', '.join(tables)}"
                + ("; it is left out of the output" if lenient else ""),
                rule.document.location("fields", index), rule.title,
                severity="warning" if lenient else "error", target=self.platform,
            ))
        return projected, problems

    def raw_columns(self, tables: list[str]) -> dict[str, str]:
        """Without `fields` the query returns the tables' own columns: a beta path is returned
        under a column's name when it is that whole column, the same one, in every table."""
        return dict(_raw_columns(self.registry, self.catalog, tuple(tables)))

    # -- one table ------------------------------------------------------------------------
    def leg(self, table: str, tree: Tree, fields: tuple[str, ...]) -> Leg:
        leg = Leg(table)
        elements: list[AnyElement] = []
        collect_elements(tree, elements)
        flags = {element: f"_any{index + 1}" for index, element in enumerate(elements)}
        before, after = [], []
        for part in conjuncts(tree):
            found: list[AnyElement] = []
            collect_elements(part, found)
            (after if found else before).append(part)
        generator = self.generator
        leg.steps += [generator.where(part, flags) for part in before]
        leg.steps += [generator.mv_apply(element, flags[element]) for element in elements]
        leg.steps += [generator.where(part, flags) for part in after]
        if fields:
            leg.steps.append(self.projection(self.registry.mapping(table), fields))
        elif flags:
            leg.steps.append(generator.project_away(list(flags.values())))
        return leg

    def projection(self, mapping: TableMapping, paths: tuple[str, ...]) -> str:
        """Project the rule's fields under their beta names, typed the same in every table."""
        prefix = [c.format(time=mapping.table.time_column) for c in self.generator.projection_prefix]
        columns = [c for c in prefix if c in mapping.table.columns]  # e.g. no AccountObjectId for service principals
        columns += [self.generator.assign(output_name(path), self.column_expression(mapping, path)) for path in paths]
        return self.generator.project(columns)

    def column_expression(self, mapping: TableMapping, path: str) -> str:
        """One beta path as a typed KQL expression over this table (a typed null if it has no column)."""
        generator = self.generator
        spec = self.catalog.get(path)
        access = projection_access(mapping, path)
        constant = constant_for(mapping, path)
        if constant is not None:
            return self.constant_text(constant.value)
        if access is None:
            return generator.typed_nulls["object" if spec.collection else spec.type]
        if spec.collection or spec.type == "object":
            return generator.array(access)
        if access.encoding is not None:
            return self.decode(access, spec)
        text, kind = generator.typed(spec, access)
        if kind != generator.converted_types[spec.type]:
            text = f"{generator.converters[spec.type]}({text})"
        return f"coalesce({text}, false)" if spec.false_when_absent else text

    def decode(self, access, spec) -> str:
        """Numbers back to Graph's member names (or booleans), so every table returns the same values."""
        generator = self.generator
        column = generator.member(access.column)
        if spec.type == "bool":
            truth = generator.truth(column, access.encoding)
            return f"coalesce({truth}, false)" if spec.false_when_absent else truth
        cases = ", ".join(f"{column} == {generator.number(v)}, {generator.string(k)}" for k, v in access.encoding)
        return f'case({cases}, "")'

    def normalise(self, legs: list[Leg]) -> None:
        """Give columns one type across the union so none splits into _string/_dynamic twins."""
        tables = [self.registry.tables[leg.table] for leg in legs]
        shared = set.intersection(*(set(t.columns) for t in tables))
        conversions: list[list[tuple[str, str]]] = [[] for _ in legs]
        for column in sorted(shared):
            kinds = {t.columns[column] for t in tables}
            if len(kinds) == 1:
                continue
            target = "dynamic" if "dynamic" in kinds else "string"
            function = self.generator.json_parse if target == "dynamic" else "tostring"
            name = self.generator.member(column)
            for converted, table in zip(conversions, tables):
                if table.columns[column] != target:
                    converted.append((name, f"{function}({name})"))
        for leg, converted in zip(legs, conversions):
            if converted:  # one extend per leg keeps the diff small
                leg.steps.append(self.generator.extend(converted))

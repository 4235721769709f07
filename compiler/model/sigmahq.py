"""SigmaHQ's Azure sign-in rules (`logsource: product: azure, service: signinlogs`), read as written.

SigmaHQ names a field in one of three conventions: a Log Analytics column (`ResultType`,
`DeviceDetail.isCompliant`), a Graph name (`userAgent`) or a diagnostic-settings path
(`properties.appId`, top-level `resultType`). Each name is resolved to a beta `signIn` path from
data: the reverse of `schemas/mappings/` for the tables the logsource reads, the catalog, and
the hand-curated `schemas/sigmahq-aliases.json`. The rule's IR is then rewritten onto beta paths,
so the rest of the compiler sees an ordinary rule. Each match keeps its origin, so diagnostics
point at the key the author wrote. Our own rules (`product: entra`) never come here.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Callable

from ..diagnostics import Diagnostic, SourceLocation
from ..load.loader import RuleDocument
from ..map.tables import Registry, bundled_registry
from ..paths import SCHEMAS_DIR
from ..validate.catalog import Catalog, Field
from . import ir
from .operators import operator

ALIASES_PATH = SCHEMAS_DIR / "sigmahq-aliases.json"
EMPTY_ARRAY = "[]"  # how Log Analytics shows an empty array in a text column
GRAPH, LOG_ANALYTICS, DIAGNOSTIC = "Graph", "Log Analytics", "diagnostic settings"
REPORTED_FIELD = "id"  # stands in for a `fields` entry already reported; the rule will not compile


@lru_cache(maxsize=1)
def aliases() -> dict[str, Any]:
    return json.loads(ALIASES_PATH.read_text(encoding="utf-8"))


def applies(data: Any) -> bool:
    """True for a rule written for SigmaHQ's Azure sign-in logsource."""
    source = aliases()["logsource"]
    logsource = data.get("logsource") if isinstance(data, dict) else None
    return (
        isinstance(logsource, dict)
        and logsource.get("product") == source["product"]
        and logsource.get("service") == source["service"]
    )


def schema_view(data: Any) -> Any:
    """The rule as the rule schema should see it: a SigmaHQ logsource becomes its entra service."""
    if not applies(data):
        return data
    return {**data, "logsource": {**data["logsource"], "product": "entra", "service": aliases()["logsource"]["reads"]}}


# -- names ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Name:
    """A spelling a SigmaHQ rule may use, and the beta path it means."""

    spelling: str
    path: str
    convention: str
    entry: dict | None = field(default=None, compare=False, hash=False)  # the hand-curated alias, if any


@dataclass(frozen=True)
class Lookup:
    """How a written name resolved: a name (perhaps only ignoring case), ambiguous, or unknown."""

    name: Name | None = None
    ignoring_case: bool = False
    candidates: tuple[str, ...] = ()  # two spellings with different meanings, ignoring case
    hint: str | None = None  # for an unknown name


class Vocabulary:
    """Every spelling a SigmaHQ sign-in rule may use, derived from the compiler's data."""

    def __init__(self, names: dict[str, Name], ambiguous: dict[str, tuple[str, ...]], hints: dict[str, str]):
        self.names = names
        self.ambiguous = ambiguous  # exact spellings two conventions read differently
        self.hints = hints
        self._lower: dict[str, list[Name]] = {}
        for name in names.values():
            self._lower.setdefault(name.spelling.lower(), []).append(name)

    @classmethod
    def build(cls, catalog: Catalog, registry: Registry, data: dict[str, Any]) -> "Vocabulary":
        derived: dict[str, set[tuple[str, str]]] = {}

        def add(spelling: str, path: str, convention: str) -> None:
            derived.setdefault(spelling, set()).add((path, convention))

        for path in catalog.fields:
            add(path, path, GRAPH)
            add(f"properties.{path}", path, DIAGNOSTIC)
        for table in registry.tables_for("sentinel", data["logsource"]["reads"]):
            for prefix, target in registry.mapping(table).fields.items():
                if "column" not in target or target.get("path"):
                    continue  # only whole columns have a name of their own
                for path in catalog.fields:
                    if path == prefix or path.startswith(prefix + "."):
                        add(target["column"] + path[len(prefix):], path, LOG_ANALYTICS)
        names: dict[str, Name] = {}
        ambiguous: dict[str, tuple[str, ...]] = {}
        for spelling, meanings in derived.items():
            paths = sorted({path for path, _ in meanings})
            if len(paths) > 1:
                ambiguous[spelling] = tuple(paths)
                continue
            names[spelling] = Name(spelling, paths[0], sorted(c for _, c in meanings)[0])
        for spelling, entry in data["fields"].items():
            ambiguous.pop(spelling, None)
            names[spelling] = Name(spelling, entry["path"], entry["convention"], entry)
        hints = {spelling: entry["hint"] for spelling, entry in data["hints"].items()}
        return cls(names, ambiguous, hints)

    def lookup(self, written: str) -> Lookup:
        if written in self.names:
            return Lookup(self.names[written])
        if written in self.ambiguous:
            return Lookup(candidates=self.ambiguous[written])
        close = self._lower.get(written.lower(), [])
        paths = {name.path for name in close}
        if len(paths) == 1:
            # of several spellings of one path, the one that differs from the written in fewest letters
            best = min(close, key=lambda n: (sum(a != b for a, b in zip(n.spelling, written)), n.spelling))
            return Lookup(best, ignoring_case=True)
        if len(paths) > 1:
            return Lookup(candidates=tuple(sorted(name.spelling for name in close)))
        return Lookup(hint=self.suggest(written))

    def suggest(self, written: str) -> str:
        if written in self.hints:
            return self.hints[written]
        close = difflib.get_close_matches(written, sorted(self.names), n=1, cutoff=0.6)
        return f"did you mean '{close[0]}'?" if close else "see docs/sigmahq.md"


@lru_cache(maxsize=4)
def vocabulary_for(catalog: Catalog) -> Vocabulary:
    return Vocabulary.build(catalog, bundled_registry(), aliases())


# -- the rule ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reading:
    """How one written name was read, for docs/sigmahq.md."""

    written: str
    path: str
    how: str = ""  # how the value was read, when not as written


@dataclass(frozen=True)
class Translation:
    """A rule's condition, `fields` and service on beta terms, with what reading it found."""

    condition: ir.Node
    fields: tuple[str, ...]
    service: str
    diagnostics: tuple[Diagnostic, ...] = ()
    readings: tuple[Reading, ...] = ()


Locate = Callable[[ir.Origin | None], SourceLocation]


class Translator:
    """Rewrites one SigmaHQ rule's IR onto beta paths; collects located findings."""

    def __init__(self, vocabulary: Vocabulary, catalog: Catalog, locate: Locate, rule: str | None):
        self.vocabulary = vocabulary
        self.catalog = catalog
        self.locate = locate
        self.rule = rule
        self.diagnostics: list[Diagnostic] = []
        self.readings: list[Reading] = []

    def _note(self, code: str, message: str, where: SourceLocation, hint: str | None, severity: str = "error") -> None:
        finding = Diagnostic(code, message, where, self.rule, hint, severity)
        if finding not in self.diagnostics:
            self.diagnostics.append(finding)

    def resolve(self, written: str, where: SourceLocation, in_fields: bool = False) -> Lookup | None:
        """How `written` resolved, or None after reporting why it did not."""
        found = self.vocabulary.lookup(written)
        suffix = " in 'fields'" if in_fields else ""
        if found.candidates:
            self._note(
                "E111", f"field '{written}'{suffix} has more than one meaning on SigmaHQ's azure signinlogs", where,
                "write one of: " + ", ".join(found.candidates),
            )
            return None
        if found.name is None:
            self._note("E101", f"unknown field '{written}'{suffix}", where, found.hint)
            return None
        if found.ignoring_case:
            self._note(
                "W101", f"field '{written}'{suffix} matches '{found.name.spelling}' only ignoring case; read as that",
                where, f"write '{found.name.spelling}', the beta path '{found.name.path}'", "warning",
            )
        return found

    def _read(self, written: str, found: Lookup, path: str, how: str = "") -> None:
        hows = [h for h in ("matched ignoring case" if found.ignoring_case else "", how) if h]
        reading = Reading(written, path, "; ".join(hows))
        if reading not in self.readings:
            self.readings.append(reading)

    # -- the tree ------------------------------------------------------------------------
    def node(self, node: ir.Node) -> ir.Node:
        return ir.map_matches(node, self.match)

    def match(self, m: ir.Match) -> ir.Node:
        where = self.locate(m.origin)
        found = self.resolve(m.field, where)
        if found is None:
            return ir.Const(False)  # reported; the rule will not compile, and nothing reports it twice
        name = found.name
        if m.op == "fieldref":
            other = self.resolve(str(m.value), where)
            if other is None:
                return ir.Const(False)
            self._read(str(m.value), other, other.name.path)
            m = replace(m, value=other.name.path)
        entry = name.entry or {}
        if "words" in entry:
            return self._status(m, found, entry, where)
        spec = self.catalog.get(name.path)
        if spec and spec.collection and spec.path == spec.array_root and m.op == "eq" and m.value == EMPTY_ARRAY:
            self._read(m.field, found, name.path, "'[]' means empty or missing")
            return replace(m, field=name.path, op="null", value=None)
        self._read(m.field, found, name.path, real_data_reading(spec, m))
        return replace(m, field=name.path)

    def _status(self, m: ir.Match, found: Lookup, entry: dict, where: SourceLocation) -> ir.Node:
        """`Status: Success` is a word for the outcome; `Status|contains: …` searches its text."""
        if m.op == "eq" and isinstance(m.value, str):
            word = entry["words"].get(m.value.lower())
            if word is None:
                self._note(
                    "E111", f"'{m.value}' is not a status word for '{m.field}'", where,
                    f"known: {', '.join(w.capitalize() for w in entry['words'])}; "
                    "for failures, match ResultType (status.errorCode) codes",
                )
                return ir.Const(False)
            self._read(m.field, found, word["path"], f"'{m.value}' means {word['value']}")
            return replace(m, field=word["path"], value=word["value"], cased=False)
        if operator(m.op).text_search:
            for path in entry["text"]:
                self._read(m.field, found, path, "searches its text")
            return ir.Or(tuple(replace(m, field=path) for path in entry["text"]))
        self._read(m.field, found, found.name.path)
        return replace(m, field=found.name.path)  # exists/null ask about the object; the rest is refused later

    def fields(self, written: list[Any], locate_field: Callable[[int], SourceLocation]) -> tuple[str, ...]:
        paths = []
        for index, spelling in enumerate(written):
            found = self.resolve(str(spelling), locate_field(index), in_fields=True)
            if found is None:
                paths.append(REPORTED_FIELD)  # keeps later indices (and their locations) in place
                continue
            self._read(str(spelling), found, found.name.path)
            paths.append(found.name.path)
        return tuple(paths)


def real_data_reading(spec: Field | None, m: ir.Match) -> str:
    """How the value reads on real rows, where they differ from Graph (for the report)."""
    if spec is None or m.op != "eq":
        return ""
    if spec.false_when_absent and str(m.value).lower() == "false":
        return "Entra leaves the key out when it is false, so 'false' also matches rows without it"
    if spec.bitmask:
        return "the tables store the bitmask number, so the member's bit is tested"
    return ""


def translate(document: RuleDocument, condition: ir.Node, catalog: Catalog, locate: Locate) -> Translation:
    """The rule on beta terms. A rule that is not SigmaHQ's passes through unchanged."""
    data = document.data
    fields = list(data.get("fields") or [])
    if not applies(data):
        return Translation(condition, tuple(fields), str(data["logsource"]["service"]))
    translator = Translator(vocabulary_for(catalog), catalog, locate, document.title)
    condition = translator.node(condition)
    paths = translator.fields(fields, lambda i: document.location("fields", i))
    return Translation(
        condition, paths, aliases()["logsource"]["reads"], tuple(translator.diagnostics), tuple(translator.readings)
    )

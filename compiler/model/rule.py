"""Model: a validated rule as a frozen object, built only from a document that passed the schema.

pySigma parses the Sigma parts (detections, modifiers, condition); `SigmaToIR` turns the
condition into IR; `FieldChecker` types it against the catalog.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Any

from sigma.exceptions import SigmaConditionError, SigmaError
from sigma.modifiers import modifier_mapping
from sigma.rule import SigmaRule

from ..diagnostics import Diagnostic, SourceLocation, has_errors
from ..load.limits import MAX_CONDITION_DEPTH, MAX_VALUES, condition_depth, detection_values
from ..load.loader import RuleDocument
from ..validate.catalog import Catalog
from ..validate.fields import FieldChecker, check_fields, regex_problem
from ..validate.time_parts import NOT_SIGMA, time_part_problems
from . import ir, sigmahq
from .operators import VALUE_MODIFIERS, operator
from .sigma_bridge import SigmaToIR, UnsupportedConstruct

# Modifiers that transform values for other log sources; on sign-in logs they mean nothing.
MEANINGLESS_MODIFIERS = {
    "base64": "values are not base64-encoded in sign-in logs",
    "base64offset": "values are not base64-encoded in sign-in logs",
    "utf16": "sign-in logs hold text, not UTF-16 bytes",
    "utf16le": "sign-in logs hold text, not UTF-16 bytes",
    "utf16be": "sign-in logs hold text, not UTF-16 bytes",
    "wide": "sign-in logs hold text, not UTF-16 bytes",
    "windash": "it is for Windows command lines",
}
KNOWN_MODIFIERS = sorted(set(modifier_mapping) - set(MEANINGLESS_MODIFIERS))  # for "did you mean"


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    level: str
    description: str
    service: str
    tags: tuple[str, ...]
    fields: tuple[str, ...]
    condition: ir.Node | None  # None for a correlation rule
    source: str
    document: RuleDocument = field(compare=False, repr=False)
    correlation: Any = None  # correlation.Correlation for a correlation rule
    standalone: bool = True  # False: only a building block of correlations (Sigma's `generate: false`)
    filters: tuple[str, ...] = ()  # the environment's Sigma filters merged into its condition
    unplanned: bool = False  # its deployment settings failed the schema: checked, but no deployable file

    @property
    def data(self) -> dict[str, Any]:
        return self.document.data

    def settings(self, section: str) -> dict[str, Any]:
        value = self.data.get(section)
        return value if isinstance(value, dict) else {}

    @property
    def shaped_by(self) -> tuple[str, ...]:
        """The filters in its query: its own, and those of the rules a correlation reads."""
        found = list(self.filters)
        for rule in self.correlation.rules if self.correlation is not None else ():
            found += rule.shaped_by
        return tuple(dict.fromkeys(found))


def detection_keys(document: RuleDocument):
    """(selection, list index or None, key) for every field key in the detection section."""
    detection = document.data.get("detection") or {}
    for name, body in detection.items():
        if name == "condition":
            continue
        maps = [(None, body)] if isinstance(body, dict) else list(enumerate(body)) if isinstance(body, list) else []
        for index, item in maps:
            if isinstance(item, dict):
                for key in item:
                    yield name, index, str(key)


def key_path(name: str, index: int | None, key: str) -> tuple:
    """The document path of a detection key, for `RuleDocument.location`."""
    return ("detection", name) + ((index,) if index is not None else ()) + (key,)




def origin_locator(document: RuleDocument):
    """Turn an IR origin (selection, field, operator) into the line:column of the key that
    wrote it; of several keys on one field, the one whose modifiers give that operator."""

    def locate(origin: ir.Origin | None) -> SourceLocation:
        if origin is None:
            return document.location("detection", "condition")
        candidates = [
            (index, key) for name, index, key in detection_keys(document)
            if name == origin.selection and key.split("|")[0] == origin.field
            and (origin.index is None or index == origin.index)
        ]
        wanted = operator(origin.op).modifiers if origin.op else None  # the modifiers that ask for it
        for index, key in candidates:
            modifiers = set(key.split("|")[1:])
            if (modifiers & wanted) if wanted else not (modifiers & VALUE_MODIFIERS):
                candidates = [(index, key)]
                break
        if candidates:
            index, key = candidates[0]
            return document.location(*key_path(origin.selection, index, key))
        return document.location("detection", origin.selection)

    return locate


def _modifier_diagnostics(document: RuleDocument, title: str | None) -> list[Diagnostic]:
    """Modifiers pySigma would accept but that mean nothing here, unknown ones, bad regexes,
    and time modifiers out of place or out of range."""
    diagnostics = []
    for name, index, key in detection_keys(document):
        path = key_path(name, index, key)
        modifiers = key.split("|")[1:]
        values = document.data
        for step in path:
            values = values[step]
        values = values if isinstance(values, list) else [values]
        for code, message, hint in time_part_problems(key.split("|")[0], modifiers, values):
            diagnostics.append(Diagnostic(code, message, document.location(*path), title, hint))
        if None in values and len(values) > 1:  # the rules specification's "invalid example"
            diagnostics.append(Diagnostic(
                "E107", "null cannot be one of a list of values", document.location(*path), title,
                f"Sigma gives null a type of its own; write '{key.split('|')[0]}: null' in a selection of its own, joined with '1 of'",
            ))
        if "all" in modifiers and len(values) < 2:  # the modifiers appendix: not on a single value
            diagnostics.append(Diagnostic(
                "E110", "'all' needs a list of values: every one must match", document.location(*path), title,
                "remove 'all', or list the values" if key.split("|")[0] else "keyword searches are not supported: name the field",
            ))
        if "re" in modifiers:
            for value in values:
                problem = regex_problem(str(value))
                if problem:
                    diagnostics.append(Diagnostic(
                        "E105", f"invalid regular expression for '{key.split('|')[0]}' (KQL uses RE2): {problem}",
                        document.location(*path), title,
                    ))
        for modifier in modifiers:
            if modifier in MEANINGLESS_MODIFIERS:
                diagnostics.append(Diagnostic(
                    "E110", f"modifier '{modifier}' has no meaning on sign-in logs: {MEANINGLESS_MODIFIERS[modifier]}",
                    document.location(*path), title,
                ))
            elif modifier not in modifier_mapping:
                close = difflib.get_close_matches(modifier, KNOWN_MODIFIERS, n=1, cutoff=0.6)
                hint = NOT_SIGMA.get(modifier) or (f"did you mean '{close[0]}'?" if close else "see docs/rule-format.md#modifiers")
                diagnostics.append(Diagnostic("E110", f"unknown modifier '{modifier}'", document.location(*path), title, hint))
    return diagnostics


def _condition_depth_diagnostics(document: RuleDocument, title: str | None) -> list[Diagnostic]:
    """pySigma parses conditions recursively: refuse one deep enough to exhaust the stack (load/limits.py)."""
    condition = (document.data.get("detection") or {}).get("condition")
    texts = condition if isinstance(condition, list) else [condition]
    depth = max((condition_depth(text) for text in texts if isinstance(text, str)), default=0)
    if depth <= MAX_CONDITION_DEPTH:
        return []
    return [Diagnostic(
        "E003", f"invalid condition: it nests {depth} levels deep (parentheses and 'not'); at most {MAX_CONDITION_DEPTH}",
        document.location("detection", "condition"), title,
    )]


def _value_count_diagnostics(document: RuleDocument, title: str | None) -> list[Diagnostic]:
    """Refuse a detection too wide to compile in bounded time (load/limits.py), before pySigma
    reads it, at its widest selection."""
    counts = detection_values(document.data.get("detection"))
    total = sum(counts.values())
    if total <= MAX_VALUES:
        return []
    widest = max(counts, key=lambda name: counts[name])
    return [Diagnostic(
        "E008", f"the detection holds {total} values ({counts[widest]} in '{widest}'); a rule may hold at most {MAX_VALUES}",
        document.location("detection", widest), title,
        "split the rule, or keep a long list in a Sentinel watchlist",
    )]


def build_rule(document: RuleDocument, catalog: Catalog) -> tuple[Rule | None, list[Diagnostic]]:
    """A typed Rule from a schema-valid document, or the diagnostics explaining why not."""
    data = document.data
    title = document.title
    diagnostics = _value_count_diagnostics(document, title)
    if diagnostics:
        return None, diagnostics
    diagnostics = _modifier_diagnostics(document, title) + _condition_depth_diagnostics(document, title)
    if diagnostics:
        return None, diagnostics
    try:
        sigma_rule = SigmaRule.from_dict(data)
        conditions = SigmaToIR().to_ir(sigma_rule)
    except UnsupportedConstruct as error:
        locate = origin_locator(document)
        return None, [Diagnostic("E109", str(error).split(" in ")[0].strip(), locate(error.origin), title)]
    except SigmaConditionError as error:
        message = str(error).strip()
        return None, [Diagnostic("E003", f"invalid condition: {message}", document.location("detection", "condition"), title)]
    except SigmaError as error:
        message = str(error).strip()
        return None, [Diagnostic("E003", f"invalid Sigma: {message}", document.location("detection"), title)]

    condition = with_watchlists(document, conditions[0] if len(conditions) == 1 else ir.Or(tuple(conditions)))  # a list of conditions: any of them
    view = sigmahq.translate(document, condition, catalog, origin_locator(document))  # SigmaHQ names → beta
    checker = FieldChecker(catalog, origin_locator(document), title)
    condition = checker.check(view.condition)
    fields = list(view.fields)
    diagnostics = list(view.diagnostics) + checker.diagnostics + check_fields(
        fields, catalog, lambda i: document.location("fields", i), title
    )
    if has_errors(diagnostics):
        return None, diagnostics
    return Rule(
        id=str(data["id"]),
        title=str(data["title"]),
        level=str(data.get("level") or "medium"),
        description=str(data.get("description") or "").strip(),
        service=view.service,
        tags=tuple(data.get("tags") or ()),
        fields=tuple(fields),
        condition=condition,
        source=document.display_path,
        document=document,
        filters=document.filters,
    ), diagnostics


def with_watchlists(document: RuleDocument, condition: ir.Node) -> ir.Node:
    """The matches on the markers that stand for watchlist placeholders (project/placeholders.py)
    become matches on the watchlist, with the operator the key asked for (eq or cidr)."""
    if not document.watchlists:
        return condition

    def change(match: ir.Match) -> ir.Match:
        found = document.watchlists.get(match.value) if isinstance(match.value, str) else None
        if found is None:
            return match
        watchlist, op = found
        origin = replace(match.origin, op=op) if match.origin is not None else None
        return replace(match, op=op, value=watchlist, origin=origin)

    return ir.map_matches(condition, change)

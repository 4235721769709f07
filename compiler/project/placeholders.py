"""Placeholders: `field|expand: '%name%'` takes the chosen environment's values (Sigma's `expand`).

Sigma leaves what a placeholder becomes to the tool (modifiers appendix, `expand`); pySigma offers
a value list or a query expression, and so does this, before pySigma reads the rule:

- a list: the key's value becomes the list (a placeholder inside a longer value, `%domain%\\*`,
  gives one value per item), and `expand` leaves the key, so the key's other modifiers apply to
  each value: `ipAddress|cidr|expand` becomes `ipAddress|cidr: [the ranges]`. Values are read as
  a rule's values are: `*` and `?` are wildcards;
- a Sentinel watchlist: the value becomes a marker that the model turns into an
  `ir.Watchlist` match (`in~ (_GetWatchlist('…') | project SearchKey)` in the query). Only the
  modifiers that apply to a column of values are allowed: none (equality), `cased`, `neq`, and
  `cidr` (`ipv4_is_in_any_range`); `contains` and the like have no Kusto operator over a
  column of values (`has_any` matches whole terms, not text inside them) and are refused (E706).

A placeholder with no value is an error that says where to give it one (E704).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from typing import Any, Mapping

from ..diagnostics import Diagnostic
from ..load.loader import KeyPath, RuleDocument
from .environment import Environment, Placeholder, WatchlistValues

PLACEHOLDER = re.compile(r"%([^%\\*?]+)%")  # as pySigma's `insert_placeholders` reads them
WATCHLIST_MODIFIERS = frozenset({"cased", "neq", "all", "cidr"})
MARKER = "\ue000watchlist{}\ue000"  # private-use characters: no rule writes them


def uses_expand(document: RuleDocument) -> bool:
    return any("expand" in key.split("|")[1:] for _, _, key in _keys(document.data))


def _keys(data: Any):
    detection = data.get("detection") if isinstance(data, dict) else None
    if not isinstance(detection, dict):
        return
    for name, body in detection.items():
        if name == "condition":
            continue
        maps = [(("detection", name), body)] if isinstance(body, dict) else (
            [(("detection", name, i), item) for i, item in enumerate(body)] if isinstance(body, list) else []
        )
        for where, item in maps:
            if isinstance(item, dict):
                for key in item:
                    yield where, item, str(key)


class _Expansion:
    """One document's expansion: the new detection, positions and watchlists, and problems."""

    def __init__(self, document: RuleDocument, values: Mapping[str, Placeholder], environment: Environment):
        self.document = document
        self.values = values
        self.environment = environment
        self.positions = dict(document.positions)
        self.watchlists = dict(document.watchlists)
        self.diagnostics: list[Diagnostic] = []

    def error(self, code: str, message: str, where: KeyPath, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, self.document.location(*where), self.document.title, hint))

    def run(self) -> RuleDocument:
        detection = self.document.data["detection"]
        new: dict[str, Any] = {}
        for name, body in detection.items():
            if isinstance(body, dict):
                new[name] = self.selection(body, ("detection", name))
            elif isinstance(body, list):
                new[name] = [self.selection(item, ("detection", name, i)) if isinstance(item, dict) else item
                             for i, item in enumerate(body)]
            else:
                new[name] = body
        data = {**self.document.data, "detection": new}
        return replace(self.document, data=data, positions=self.positions, watchlists=self.watchlists)

    def selection(self, body: dict, where: KeyPath) -> dict:
        out: dict[str, Any] = {}
        for key, value in body.items():
            parts = str(key).split("|")
            if "expand" not in parts[1:]:
                out[key] = value
                continue
            modifiers = [m for m in parts[1:] if m != "expand"]
            new_key, new_value = self.expand(parts[0], modifiers, value, where + (key,))
            if new_key in out or (new_key != key and new_key in body):
                self.error("E706", f"'{key}' becomes '{new_key}', which the selection has already", where + (key,),
                           "merge the two keys' values")
                continue
            self._move(where + (key,), where + (new_key,))
            out[new_key] = new_value
        return out

    def _move(self, old: KeyPath, new: KeyPath) -> None:
        """The positions of a renamed key (and of its list items) under its new name."""
        if old == new:
            return
        for path, position in list(self.positions.items()):
            if path[:len(old)] == old:
                self.positions.setdefault(new + path[len(old):], position)

    def expand(self, field: str, modifiers: list[str], value: Any, where: KeyPath) -> tuple[str, Any]:
        plain_key = "|".join([field, *modifiers])
        items = value if isinstance(value, list) else [value]
        found = {name for item in items if isinstance(item, str) for name in PLACEHOLDER.findall(item)}
        resolved: dict[str, Placeholder] = {}
        for name in sorted(found):
            placeholder = self.values.get(name)
            if placeholder is None:
                self.missing(name, where)
            else:
                resolved[name] = placeholder
        watchlists = {name for name, p in resolved.items() if isinstance(p, WatchlistValues)}
        if watchlists:
            return self.watchlist(field, modifiers, items, sorted(watchlists)[0], resolved, where)
        expanded: list[Any] = []
        for item in items:
            expanded += self.substitute(item, resolved)
        return plain_key, expanded if isinstance(value, list) or len(expanded) != 1 else expanded[0]

    def missing(self, name: str, where: KeyPath) -> None:
        environment = self.environment
        close = [n for n in self.values if n.lower() == name.lower()]
        if close:
            hint = f"did you mean '%{close[0]}%'? placeholder names are case-sensitive"
        else:
            hint = environment.where_to_define(name)
        if environment.name is None:
            message = f"placeholder '%{name}%' has no value: no environment is chosen"
        else:
            message = f"placeholder '%{name}%' has no value in environment '{environment.name}'"
        self.error("E705" if environment.name is None else "E704", message, where, hint)

    @staticmethod
    def substitute(item: Any, resolved: Mapping[str, Placeholder]) -> list[Any]:
        """One value with its placeholders replaced: a list's values (typed as written) for a
        whole-value placeholder, else one text per combination of values."""
        if not isinstance(item, str):
            return [item]
        names = PLACEHOLDER.findall(item)
        if not names or any(n not in resolved for n in names):
            return [item] if not names else []
        whole = PLACEHOLDER.fullmatch(item)
        if whole:
            return list(resolved[whole.group(1)].values)
        pieces = PLACEHOLDER.split(item)  # text, name, text, name, ..., text
        choices = [[piece] if index % 2 == 0 else [str(v) for v in resolved[piece].values] for index, piece in enumerate(pieces)]
        return ["".join(combination) for combination in itertools.product(*choices)]

    def watchlist(self, field: str, modifiers: list[str], items: list, name: str, resolved, where: KeyPath) -> tuple[str, Any]:
        placeholder: WatchlistValues = resolved[name]
        key = "|".join([field, *modifiers, "expand"])
        refused = [m for m in modifiers if m not in WATCHLIST_MODIFIERS]
        if "cidr" in modifiers and "cased" in modifiers:
            refused.append("cased")
        if refused:
            self.error(
                "E706", f"modifier '{refused[0]}' cannot apply to the watchlist of placeholder '%{name}%'", where,
                "a watchlist is a column of values: match them whole (no modifier, cased, neq) or as IP ranges (cidr); "
                "Kusto's has_any matches whole terms, not text inside them; use a list placeholder for contains and the like",
            )
        elif len(items) != 1 or items[0] != f"%{name}%":
            self.error("E706", f"the watchlist of placeholder '%{name}%' must be the whole and only value of '{key}'", where,
                       "a watchlist stands for whole values; put other values under a second selection joined with 'or'")
        marker = MARKER.format(len(self.watchlists))
        self.watchlists[marker] = (placeholder.watchlist, "cidr" if "cidr" in modifiers else "eq")
        return "|".join([field, *[m for m in modifiers if m != "cidr"]]), marker


def expand_placeholders(
    document: RuleDocument, environment: Environment,
) -> tuple[RuleDocument | None, list[Diagnostic]]:
    """The document with its placeholders expanded (None when one cannot be)."""
    if not uses_expand(document):
        return document, []
    expansion = _Expansion(document, environment.placeholders_for(document.path), environment)
    expanded = expansion.run()
    if any(d.severity == "error" for d in expansion.diagnostics):
        return None, expansion.diagnostics
    return expanded, expansion.diagnostics


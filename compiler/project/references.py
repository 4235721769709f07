"""The rules an environment names: every filter and override must name a rule that exists.

A check across files (across_files.py), on the small facts of each rule document: ids,
names and logsources. A command may read only some rule files (`compile rules/x.yml`), so a
name found in none of them is looked for in the project's rules folder (`rules` in
entra-sigma.toml, default `rules/` beside it) before it is called unknown.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from ..diagnostics import Diagnostic

if TYPE_CHECKING:
    from ..across_files import DocumentKeys
    from .environment import Environment, Filter


def _index(documents: list[DocumentKeys]) -> dict[str, DocumentKeys]:
    """Lower-cased id or name → its document."""
    found: dict[str, DocumentKeys] = {}
    for document in documents:
        for key, value, _ in document.keys:
            if key in ("id", "name"):
                found.setdefault(value.strip().lower(), document)
    return found


def _named(environment: Environment) -> set[str]:
    references = {o.reference.strip().lower() for o in environment.overrides}
    for filter in environment.filters:
        references |= {r.strip().lower() for r in filter.rules or ()}
    return references


def _project_rules(environment: Environment, documents: list[DocumentKeys]) -> list[DocumentKeys]:
    """`documents`, and those of the project's rules folder when a name is in none of them."""
    known = _index(documents)
    folder = environment.rules_folder
    if folder is None or not folder.is_dir():
        return documents
    if _named(environment) <= set(known) and not any(f.rules is None for f in environment.filters):
        return documents
    from ..across_files import DocumentKeys
    from ..load.loader import load_documents

    seen = {d.display_path for d in documents}
    scanned, _ = load_documents([folder])
    return documents + [DocumentKeys.of(d) for d in scanned if d.display_path not in seen]


def reference_problems(environment: Environment, documents: list[DocumentKeys]) -> list[Diagnostic]:
    if not environment.filters and not environment.overrides:
        return []
    documents = _project_rules(environment, documents)
    known = _index(documents)
    spellings = sorted({value for d in documents for key, value, _ in d.keys if key in ("id", "name")})
    titles = {value.strip().lower(): d for d in documents for key, value, _ in d.keys if key == "title"}
    problems: list[Diagnostic] = []

    def unknown(code: str, what: str, reference: str, location) -> None:
        by_title = titles.get(reference.strip().lower())
        if by_title is not None:
            ids = [value for key, value, _ in by_title.keys if key in ("id", "name")]
            hint = f"that is a rule's title: name it by id or name ({' or '.join(repr(i) for i in ids)})"
        else:
            close = difflib.get_close_matches(reference, spellings, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else "name a rule by its id or its name"
        problems.append(Diagnostic(code, f"{what} names rule '{reference}', which no rule file has", location, hint=hint))

    for override in environment.overrides:
        if override.reference.strip().lower() not in known:
            unknown("E711", "an override", override.reference, override.location)
    for filter in environment.filters:
        problems += _filter_problems(filter, known, unknown)
    return problems


def _filter_problems(filter: Filter, known: dict, unknown) -> list[Diagnostic]:
    from .filters import logsource_matches

    data = filter.data if isinstance(filter.data, dict) else {}
    source = filter.document
    rules = filter.rules
    found: list[DocumentKeys] = []
    problems: list[Diagnostic] = []
    for index, reference in enumerate(rules or ()):
        document = known.get(reference.strip().lower())
        if document is None:
            unknown("E709", f"filter '{filter.title}'", reference, source.location("filter", "rules", index))
        elif document.correlation:
            problems.append(Diagnostic(
                "E709", f"filter '{filter.title}' names '{reference}', a correlation rule; filters apply to the rules it correlates",
                source.location("filter", "rules", index), hint="name those rules instead",
            ))
        else:
            found.append(document)
    candidates = found if rules is not None else [d for d in {id(d): d for d in known.values()}.values() if not d.correlation]
    if candidates and not any(logsource_matches(data.get("logsource"), dict(d.logsource)) for d in candidates):
        written = ", ".join(f"{k}: {v}" for k, v in sorted((data.get("logsource") or {}).items()))
        theirs = sorted({", ".join(f"{k}: {v}" for k, v in d.logsource) for d in candidates})
        problems.append(Diagnostic(
            "E710", f"the logsource of filter '{filter.title}' ({written}) matches none of its rules ({'; '.join(theirs)})",
            source.location("logsource"), hint="a filter applies where every logsource key it writes equals the rule's",
        ))
    return problems

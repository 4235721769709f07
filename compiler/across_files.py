"""The checks that span rule files, on small facts of each file, and the manifest around them.

Most checks look at one rule file. These look across files: an id, title or Sigma name used
twice, two rules writing the same output file. They read only `DocumentKeys` and `OutputName`
facts. The plain build (build.py) runs `across_documents` when it has validated the rules and
`settle_output_names` when it names the output files; the incremental build
(verbs/incremental), which keeps each file's facts in its cache, runs both through
`cross_file_diagnostics`, over every file, the cached ones too. So a new check across files
goes into `across_documents` (or beside `settle_output_names`), and both builds make it. This
module imports nothing of the pipeline (a build served from the cache never loads pySigma).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic, SourceLocation

if TYPE_CHECKING:
    from .load.loader import RuleDocument
    from .project.environment import Environment


@dataclass(frozen=True)
class DocumentKeys:
    """What the checks across files read of one rule document: its id, title and Sigma name as
    written, and where."""

    display_path: str
    title: str | None
    keys: tuple[tuple[str, str, SourceLocation], ...]  # (key, value, where it is written)
    # what an environment's filters match on: the logsource's keys, and whether it correlates
    logsource: tuple[tuple[str, str], ...] = ()
    correlation: bool = False

    @classmethod
    def of(cls, document: RuleDocument) -> "DocumentKeys":
        data = document.data if isinstance(document.data, dict) else {}
        keys = tuple((key, data[key], document.location(key)) for key in ("id", "title", "name") if isinstance(data.get(key), str))
        logsource = data.get("logsource") if isinstance(data.get("logsource"), dict) else {}
        written = tuple(sorted((str(k), v) for k, v in logsource.items() if isinstance(v, str)))
        return cls(document.display_path, document.title, keys, written, "correlation" in data)


def across_documents(documents: list[DocumentKeys], environment: Environment | None = None) -> list[Diagnostic]:
    """Every check across rule documents (`Compiler.rules` runs this on the documents it read):
    and with an environment, that its filters and overrides name rules that exist."""
    found = duplicates_among(documents)
    if environment is not None:
        from .project.references import reference_problems

        found += reference_problems(environment, documents)
    return found


def duplicates_among(documents: list[DocumentKeys]) -> list[Diagnostic]:
    """Two rules with one id (or one title) would overwrite each other when deployed; two with
    one name would make a correlation's reference ambiguous."""
    diagnostics: list[Diagnostic] = []
    for wanted in ("id", "title", "name"):
        first: dict[str, DocumentKeys] = {}
        for document in documents:
            for key, written, location in document.keys:
                if key != wanted:
                    continue
                value = written.strip().lower()
                if value in first:
                    diagnostics.append(Diagnostic(
                        "E005", f"duplicate {key} {written!r}: also used by {first[value].display_path}",
                        location, document.title,
                    ))
                else:
                    first[value] = document
    return diagnostics


@dataclass(frozen=True)
class OutputName:
    """The file name a rule's outputs want (`identity/prt`), and what to say if another rule wants it too."""

    rule_id: str
    name: str
    source: str
    title: str | None
    location: SourceLocation


def settle_output_names(wanted: list[OutputName]) -> tuple[dict[str, str], list[Diagnostic]]:
    """rule id → output name; two rules that would write the same file (a/x.yml and b/x.yml
    given as files, or x.yml beside x.yaml) are both refused rather than one silently lost.
    Names compare case-insensitively, as they do on Windows and macOS file systems."""
    wanted = list({w.rule_id: w for w in reversed(wanted)}.values())[::-1]
    by_name: dict[str, list[OutputName]] = {}
    for want in wanted:
        by_name.setdefault(want.name.lower(), []).append(want)
    names: dict[str, str] = {}
    diagnostics: list[Diagnostic] = []
    for group in by_name.values():
        if len(group) == 1:
            names[group[0].rule_id] = group[0].name
            continue
        for want in group:
            others = ", ".join(w.source for w in group if w is not want)
            diagnostics.append(Diagnostic(
                "E007", f"output name '{want.name}' is also the name of {others}",
                want.location, want.title, hint="rename one file, or compile their folder instead",
            ))
    return names, diagnostics


def cross_file_diagnostics(
    documents: list[DocumentKeys], names: list[OutputName], environment: Environment | None = None,
) -> list[Diagnostic]:
    """Every check that spans rule files, on the facts of each file: what the plain build's
    `Compiler.rules` and `build_outputs` find across files (the incremental build runs this)."""
    return across_documents(documents, environment) + settle_output_names(names)[1]


def manifest_of(formats: tuple[str, ...], entries: list[dict], environment: str | None = None) -> dict:
    """manifest.json: the formats built (and the environment, when one was chosen) and, per rule
    in id order, its files (path → SHA-256), the formats it skipped, with why, and the filters
    that shaped its queries."""
    manifest = {"generator": "entra-sigma", "formats": list(formats), "rules": sorted(entries, key=lambda e: e["id"])}
    return {"generator": "entra-sigma", "environment": environment, **manifest} if environment else manifest

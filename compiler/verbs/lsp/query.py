"""The query of the rule under the cursor, for Sentinel or Defender, exactly as `compile` prints it.

The rule is compiled with the files correlations join it to (as `compile` does for a folder),
for one platform, and refused as `compile` refuses it: a file with an error prints nothing.
A code lens over each rule offers both platforms.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lsprotocol import types

from ...build import Compiler
from ...diagnostics import has_errors
from .checks import compiled_rules
from .project import Project
from .text import document_index, documents

COMMAND = "entra-sigma.showQuery"
PLATFORMS = {"sentinel": "Sentinel", "defender": "Defender"}


class NoQuery(Exception):
    """Why there is no query to show (the rule's errors, or a building block that prints none)."""


@dataclass(frozen=True)
class Shown:
    text: str
    title: str
    name: str  # a file name for it: `<rule file stem>.<platform>.kql`


def query_at(project: Project, compiler: Compiler, path: Path, lines: list[str], line: int, platform: str) -> Shown:
    """The query `compile --target platform` prints for the rule document holding `line`."""
    if platform not in PLATFORMS:
        raise NoQuery(f"no platform {platform!r}: choose sentinel or defender")
    compiled, diagnostics, source = compiled_rules(project, compiler, path, (platform,))
    if source is None:
        raise NoQuery(f"{path.name}: cannot be read")
    if has_errors(diagnostics):
        first = next(d for d in diagnostics if d.severity == "error")
        raise NoQuery(f"{source.display} has errors, so `compile` prints nothing for it: {first}")
    index = document_index(lines, line)
    chosen = [c for c in compiled if c.rule.document.index == index]
    if not chosen:
        raise NoQuery("this rule is only a building block of a correlation (generate: false): `compile` prints no query for it")
    rule = chosen[0].rule
    if not rule.standalone:
        raise NoQuery(f"'{rule.title}' is only a building block of a correlation (generate: false): `compile` prints no query for it")
    text = chosen[0].texts.get(platform)
    if text is None:
        raise NoQuery(f"'{rule.title}' has no {PLATFORMS[platform]} query")
    return Shown(text, rule.title, f"{path.stem}.{index}.{platform}.kql" if index else f"{path.stem}.{platform}.kql")


def code_lenses(uri: str, lines: list[str]) -> list[types.CodeLens]:
    """Over each rule document's first line: show its Sentinel and its Defender query."""
    lenses = []
    for _, first, _ in documents(lines):
        where = types.Range(types.Position(first, 0), types.Position(first, 0))
        for platform, label in PLATFORMS.items():
            lenses.append(types.CodeLens(where, types.Command(title=f"{label} KQL", command=COMMAND, arguments=[uri, first, platform])))
    return lenses

"""Quick fixes: the edit a diagnostic's own words ask for.

A diagnostic that says "did you mean 'x'?" replaces the word it names with each suggestion;
one that says a value needs quotes quotes it; E302 adds one of the tactics its technique
belongs to. Each fix is read from the diagnostic the compiler made, so it fixes exactly what
`validate` complained about (tests/test_lsp_server.py validates every fix it applies).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...diagnostics import Diagnostic
from .text import block_end, read_line

# code → the wrong word in the message (the first group)
WRONG_WORD = {
    "E101": re.compile(r"^unknown field '(.+?)'"),
    "E110": re.compile(r"^unknown modifier '(.+?)'"),
    "E106": re.compile(r"^'(.+?)' is not a member of enum"),
    "E401": re.compile(r"^no rule named or with id '(.+?)'"),
    "E403": re.compile(r"^unknown field '(.+?)'"),
    "E405": re.compile(r"^the condition names '(.+?)', which is not in 'rules'"),
    "E502": re.compile(r": (?:unknown table|\S+ has no column) '(.+?)'$"),
    "W101": re.compile(r"^field '(.+?)' matches '.+?' only ignoring case"),
}
SUGGESTED = re.compile(r"did you mean (.+?)\?")
QUOTED = re.compile(r"'([^']+)'")
NEEDS_QUOTES = re.compile(r"^invalid YAML: (?:a value that starts with '.' must be in quotes|': ' inside the value of '.+?': put the value in quotes)")
TACTICS = re.compile(r"attack\.[a-z_]+")

Edit = tuple[int, int, int, int, str]  # start line, start column, end line, end column (0-based), new text


@dataclass(frozen=True)
class Fix:
    title: str
    edits: tuple[Edit, ...]
    diagnostic: Diagnostic
    preferred: bool = False


def fixes_for(diagnostic: Diagnostic, lines: list[str]) -> list[Fix]:
    """The quick fixes for one diagnostic of the file whose lines are `lines`."""
    if not diagnostic.location.line or diagnostic.location.line > len(lines):
        return []
    if diagnostic.code == "E302":
        return _add_tactic(diagnostic, lines)
    if (diagnostic.code == "E001" and NEEDS_QUOTES.match(diagnostic.message)) or (
            diagnostic.code == "E503" and "quote the value" in diagnostic.message):
        return _quote_value(diagnostic, lines)
    pattern = WRONG_WORD.get(diagnostic.code)
    wrong = pattern.search(diagnostic.message) if pattern else None
    if wrong is None:
        return []
    suggestions = _suggestions(diagnostic)
    return [
        Fix(f"Change '{wrong.group(1)}' to '{suggestion}'", (edit,), diagnostic, preferred=len(suggestions) == 1)
        for suggestion in suggestions
        if (edit := _replace_word(lines, diagnostic, wrong.group(1), suggestion)) is not None
    ]


def _suggestions(diagnostic: Diagnostic) -> list[str]:
    if diagnostic.code == "W101":
        return QUOTED.findall(diagnostic.message)[1:2]
    said = SUGGESTED.search(diagnostic.hint or "")
    if said is None:
        return []
    quoted = QUOTED.findall(said.group(1))
    return quoted or [said.group(1).strip()]


def _replace_word(lines: list[str], diagnostic: Diagnostic, wrong: str, right: str) -> Edit | None:
    """Replace `wrong`, as a whole word, at or after the diagnostic's place within its block."""
    word = re.compile(r"(?<![\w.\[\]-])" + re.escape(wrong) + r"(?![\w\[\]-]|\.\w)")
    first = diagnostic.location.line - 1
    for index in range(first, block_end(lines, first) + 1):
        start = diagnostic.location.column - 1 if index == first else 0
        found = word.search(lines[index], max(start, 0))
        if found:
            return (index, found.start(), index, found.end(), right)
    return None


def quoted(value: str) -> str:
    """A YAML single-quoted scalar of `value`."""
    return "'" + value.replace("'", "''") + "'"


def _quote_value(diagnostic: Diagnostic, lines: list[str]) -> list[Fix]:
    index = diagnostic.location.line - 1
    line = read_line(lines[index])
    start = line.value_start if line.key is not None or line.dash is not None else line.indent
    value = lines[index][start:].split(" #")[0].rstrip()
    if not value or value[:1] in "'\"":
        return []
    return [Fix(f"Quote the value: {quoted(value)}", ((index, start, index, start + len(value), quoted(value)),), diagnostic, True)]


def _add_tactic(diagnostic: Diagnostic, lines: list[str]) -> list[Fix]:
    """One fix per tactic the hint names: a new item in `tags` (block or flow list)."""
    index = diagnostic.location.line - 1
    tags = read_line(lines[index])
    tactics = TACTICS.findall(diagnostic.hint or "")
    fixes = []
    for tactic in tactics:
        if tags.value.startswith("[") and tags.value.endswith("]"):
            close = tags.value_start + len(tags.value) - 1
            separator = ", " if tags.value[1:-1].strip() else ""
            edit = (index, close, index, close, separator + tactic)
        else:
            items = [i for i in range(index + 1, block_end(lines, index) + 1) if read_line(lines[i]).dash is not None]
            if not items:
                continue
            last = items[-1]
            item = read_line(lines[items[0]])
            end = block_end(lines, last)
            prefix = lines[items[0]][: item.column]
            edit = (end, len(lines[end]), end, len(lines[end]), "\n" + prefix + tactic)
        fixes.append(Fix(f"Add the tag {tactic}", (edit,), diagnostic, preferred=len(tactics) == 1))
    return fixes

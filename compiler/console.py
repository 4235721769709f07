"""Lines for a terminal or a CI log that no rule, tests file or service answer can break.

A CI runner reads every line a step prints for commands: GitHub Actions takes a line that
starts with `::` (after leading white space) as a workflow command (`::error file=…::`,
`::stop-commands::`, `::add-mask::`), and its older syntax `##[command]` anywhere in a line.
A rule title, a test case name or a service's error text with a line break in it could start
such a line, forge annotations or silence the real ones; a bidi override or an escape
sequence could make a line read differently from what it says. So every human-readable line
that carries such text passes through `one_line`, the one helper for this, in every format.
"""

from __future__ import annotations

import re

ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
WORKFLOW_COMMAND = re.compile(r"^( *):(?=:)")  # `::` at the start, after spaces (the runner trims them)
LEGACY_COMMAND = "##["  # GitHub's runner finds this anywhere in a line


def escape_hidden(ch: str) -> str:
    """One character as an escape that shows it: `\\n`, `\\x1b`, `\\u202e`, `\\U000e0001`."""
    if ch in ESCAPES:
        return ESCAPES[ch]
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def one_line(text: object) -> str:
    """`text` as one line that reads as what it is: every character Python does not call
    printable (line breaks, controls, format characters, surrogates, spaces other than ` `)
    spelt as an escape, `##[` written `##\\x5b` and a leading `::` as `\\x3a:`. Ordinary text
    comes back unchanged."""
    text = str(text)
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else escape_hidden(ch) for ch in text)
    if LEGACY_COMMAND in text:
        text = text.replace(LEGACY_COMMAND, "##\\x5b")
    return WORKFLOW_COMMAND.sub(r"\1\\x3a", text, count=1)


def lines(text: str) -> str:
    """A block of lines (a report, a diff) with `one_line` applied to each; a final newline kept."""
    return "\n".join(one_line(line) for line in text.split("\n"))


def json_for_console(text: str) -> str:
    """JSON text that a CI log cannot read as a command: `##[` can only stand inside a JSON
    string, where `##\\u005b` means the same to any JSON reader. (Lines of indented JSON start
    with a quote or a bracket, never `::`; controls are escaped by JSON itself.)"""
    return text.replace(LEGACY_COMMAND, "##\\u005b")

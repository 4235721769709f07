"""Rule text in Markdown for GitHub: literal, on its line, and notifying no one.

The pull-request comments (`diff --format markdown`, `deploy … --format markdown`) and the rule
catalog (`coverage --markdown`) show titles, descriptions, file names and what the service
said. GitHub turns `@user` and `@org/team` in such text into mentions that notify people, and
`#123` (`owner/repo#123`, `GH-123`) into references that show up on that issue. So every
piece of free text goes through one of these functions: markup escaped, hidden characters
spelt out (console.one_line, which also keeps the text harmless when the Markdown is printed
in a CI log), and a zero-width space (`&#8203;`) put after the `@` or `#`, which breaks the
mention or reference and looks the same. Code spans and fenced blocks need no such break:
GitHub links nothing inside code.
"""

from __future__ import annotations

import html
import re

from ..console import lines, one_line

_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")
_TABLE_CELL = re.compile(r"([\\|*_<>\[\]`])")
# `@name`, `@org/team`, `#123`, `owner/repo#123`, `GH-123`
_MENTION = re.compile(r"(@)(?=[A-Za-z0-9])|(#)(?=[0-9])|(\bGH)(?=-[0-9])", re.IGNORECASE)
_BREAK = "\u200b"  # put in raw, then written as an entity: a zero-width space of the user's is spelt out first


def _prepared(text: object) -> str:
    """One line, hidden characters spelt out, every mention and issue reference broken."""
    return _MENTION.sub(lambda m: m.group(0) + _BREAK, one_line(" ".join(str(text).split())))


def _finished(text: str) -> str:
    return text.replace(_BREAK, "&#8203;")


def markdown_text(text: object) -> str:
    """Plain text as one line of Markdown, every character literal."""
    text = _MARKDOWN_INLINE.sub(r"\\\1", _prepared(text))
    return _finished(re.sub(r"^([#+\-=>]|\d+(?=[.)]))", r"\\\1", text))


def table_cell(text: object) -> str:
    """Text safe in a Markdown table cell: one line, markup escaped."""
    return _finished(_TABLE_CELL.sub(r"\\\1", _prepared(text)))


def html_text(text: object) -> str:
    """Text inside an HTML block such as <summary>: HTML-escaped, with Markdown's inline marks
    as entities (GitHub renders some Markdown there)."""
    escaped = html.escape(_prepared(text)).translate({ord("`"): "&#96;", ord("*"): "&#42;", ord("_"): "&#95;"})
    return _finished(escaped)


def code_span(text: object) -> str:
    """Text as inline code, with a run of backticks no backtick inside can close."""
    text = one_line(" ".join(str(text).split()))
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, info: str) -> str:
    """A fenced code block that no run of backticks inside can close; each line a console line."""
    text = lines(text.rstrip("\n"))
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"

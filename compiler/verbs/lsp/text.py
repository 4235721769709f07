"""Where the cursor is in a rule file, read from the lines around it.

While a rule is typed its YAML is often broken (`deviceDetail.` has no colon yet), so the
features cannot wait for the loader: this module reads a line's key, value and list dashes,
and the chain of keys above it by indentation, the way the YAML would nest them once it is
whole. Positions here are (0-based line, 0-based column in code points); the server converts
them to the client's units.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DASHES = re.compile(r"(?:-(?: +|$))+")
_KEY = re.compile(r"(?P<key>'[^']*'|\"[^\"]*\"|[^\s#:'\"\[\]{},&*!|>%@`-][^:#]*?|-[^\s:#][^:#]*?)\s*:(?=\s|$)")
_COMMENT = re.compile(r"(?:^|\s)#")
SEPARATOR = re.compile(r"^(?:---|\.\.\.)\s*(?:#.*)?$")


@dataclass(frozen=True)
class Line:
    """One line's shape: its indentation, list dashes, key and value."""

    text: str
    indent: int  # column of the first character that is not a space
    dash: int | None  # column of the first `- `, when the line is a list item
    column: int  # column of the content after any dashes (the key, or the scalar)
    key: str | None  # the mapping key written on the line, unquoted
    key_end: int  # column just after the key (its colon is at or after it)
    value_start: int  # column of the value (after `key: `, or after the dashes)
    value: str  # the value as written, without a trailing comment

    @property
    def blank(self) -> bool:
        stripped = self.text.strip()
        return not stripped or stripped.startswith("#")


def read_line(text: str) -> Line:
    indent = len(text) - len(text.lstrip(" "))
    dash, column = None, indent
    dashes = _DASHES.match(text, indent)
    if dashes and dashes.end() > indent:
        dash, column = indent, dashes.end()
    key = None
    key_end = value_start = column
    match = _KEY.match(text, column)
    if match:
        raw = match.group("key")
        key = raw[1:-1] if raw[:1] in "'\"" and len(raw) > 1 else raw
        key_end = match.end("key")
        value_start = match.end()
        value_start += len(text[value_start:]) - len(text[value_start:].lstrip(" "))
    value = text[value_start:]
    comment = _COMMENT.search(value)
    if comment and not value.lstrip().startswith(("'", '"')):
        value = value[: comment.start()]
    return Line(text, indent, dash, column, key, key_end, value_start, value.rstrip())


@dataclass(frozen=True)
class Context:
    """What the cursor is on: the keys above it (`-` for a list level), and on its own line,
    a key being written or the value of a key or list item."""

    path: tuple[str, ...]  # e.g. ("detection", "sel", "incomingTokenType", "-")
    line: Line
    in_value: bool  # the cursor is in a value (of `key:` on this line, or of a list item)
    key: str | None  # the key whose value this is (on this line), when in_value
    start: int  # column where the word at the cursor starts (a key, or a value)
    typed: str  # what is written from `start` to the cursor

    @property
    def keys(self) -> tuple[str, ...]:
        """The path without list levels."""
        return tuple(part for part in self.path if part != "-")


def document_bounds(lines: list[str], index: int) -> tuple[int, int]:
    """The first and last line (inclusive) of the YAML document holding line `index`."""
    start = index
    while start > 0 and not SEPARATOR.match(lines[start - 1] if start - 1 < len(lines) else ""):
        start -= 1
    end = index
    while end + 1 < len(lines) and not SEPARATOR.match(lines[end + 1]):
        end += 1
    return start, end


def documents(lines: list[str]) -> list[tuple[int, int, int]]:
    """(start, first content line, end) of each YAML document that holds something, in order:
    the documents the loader makes rules of (`RuleDocument.index` counts these)."""
    found = []
    current = 0
    while current < len(lines):
        start, end = document_bounds(lines, current)
        first = next((i for i in range(start, end + 1)
                      if not read_line(lines[i]).blank and not SEPARATOR.match(lines[i])), None)
        if first is not None:
            found.append((start, first, end))
        current = end + 2
    return found


def document_index(lines: list[str], line: int) -> int:
    """Which rule document of the file holds `line` (the one before it, between two)."""
    index = 0
    for number, (start, _, end) in enumerate(documents(lines)):
        if start <= line:
            index = number
    return index


def parents(lines: list[str], index: int) -> tuple[str, ...]:
    """The keys (and `-` list levels) that line `index` sits under, outermost first."""
    current = read_line(lines[index]) if index < len(lines) else read_line("")
    limit = current.indent if not current.blank else len(lines[index]) if index < len(lines) else 0
    item = current.dash is not None
    path: list[str] = []
    for above in range(index - 1, -1, -1):
        if SEPARATOR.match(lines[above]):
            break
        line = read_line(lines[above])
        if line.blank or line.indent > limit:
            continue
        if line.dash is not None:
            if line.dash >= limit:
                continue
            if line.key is not None and line.column < limit:
                path[:0] = ["-", line.key]  # `- key:` whose value holds us
            elif line.key is not None:
                path[:0] = ["-"]  # a sibling key inside the same list item
            else:
                path[:0] = ["-"]
            limit = line.dash
            item = False
        elif line.key is not None and (line.column < limit or (item and line.column == limit and not line.value)):
            path.insert(0, line.key)
            limit = line.column
            item = False
        if limit == 0 and not item:
            break
    return tuple(path)


def context_at(lines: list[str], index: int, column: int) -> Context:
    """The cursor's context at (line `index`, `column`)."""
    text = lines[index] if index < len(lines) else ""
    line = read_line(text)
    path = parents(lines, index)
    if line.dash is not None and column >= line.column:
        path = path + ("-",)
    if line.key is not None and column > line.key_end:
        start = _value_word_start(text, line.value_start, column)
        return Context(path, line, True, line.key, start, text[start:column])
    if line.key is None and line.dash is not None and column >= line.column:
        start = _value_word_start(text, line.column, column)
        return Context(path, line, True, None, start, text[start:column])
    start = line.column if column >= line.column else column
    return Context(path, line, False, None, start, text[start:column])


def _value_word_start(text: str, value_start: int, column: int) -> int:
    """Where the value at the cursor starts: after `[`, `,` or an opening quote of a flow list."""
    start = value_start
    for index in range(min(column, len(text)) - 1, value_start - 1, -1):
        if text[index] in "[,{":
            start = index + 1
            break
    while start < column and start < len(text) and text[start] in " '\"":
        start += 1
    return start


def token_at(text: str, column: int, separators: str = " \t:,[]{}'\"#") -> tuple[int, int]:
    """The start and end of the word at `column` (separators end it)."""
    start = column
    while start > 0 and text[start - 1] not in separators:
        start -= 1
    end = column
    while end < len(text) and text[end] not in separators:
        end += 1
    return start, end


def block_end(lines: list[str], index: int) -> int:
    """The last line of the block a key on line `index` opens (its value's lines)."""
    own = read_line(lines[index])
    column = own.dash if own.dash is not None and own.key is None else own.column
    last = index
    for below in range(index + 1, len(lines)):
        if SEPARATOR.match(lines[below]):
            break
        line = read_line(lines[below])
        if line.blank:
            continue
        if line.indent <= column and not (line.dash is not None and line.indent == column and own.key is not None and not own.value):
            break
        last = below
    return last


def key_range(lines: list[str], line_number: int, column: int) -> tuple[int, int, int, int]:
    """(line, start, line, end), 0-based, of what a diagnostic at 1-based `line_number`:`column`
    points at: the key written there, else the value or word there, else the whole line."""
    index = max(line_number - 1, 0)
    if index >= len(lines):
        index = max(len(lines) - 1, 0)
        return index, 0, index, len(lines[index]) if lines else 0
    text = lines[index]
    at = max(column - 1, 0)
    line = read_line(text)
    if line.key is not None and line.column <= at < line.key_end:
        return index, line.column, index, line.key_end
    if line.key is not None and at <= line.column:
        return index, line.column, index, line.key_end
    if at >= line.value_start and line.value:
        return index, line.value_start, index, line.value_start + len(line.value)
    if at < len(text.rstrip()):
        start, end = token_at(text, at, " \t")
        return index, start, index, max(end, start + 1)
    return index, line.indent, index, max(len(text.rstrip()), line.indent + 1)

"""Load: where each key of a TOML file is written (tomllib reads the values, and forgets where).

`key_positions(text)` walks a file that `tomllib` has already accepted and returns the line and
column of every key, table header and array item, by the same key paths the parsed data has:
`("environments", "prod", "placeholders", "corporate_egress", 1)` is the second value of that
list. The project file's diagnostics point there, as the rule loader's do for YAML. It assumes
valid TOML (tomllib has judged the syntax), so it only tells the pieces apart: comments,
the four kinds of string, keys (bare, quoted, dotted), headers (`[a.b]`, `[[a]]`), inline
tables and arrays.
"""

from __future__ import annotations

import re
from typing import Any

Position = tuple[int, int]
KeyPath = tuple[Any, ...]

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
ESCAPES = {"b": "\b", "t": "\t", "n": "\n", "f": "\f", "r": "\r", '"': '"', "\\": "\\", "e": "\x1b"}


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text
        self.i = 0
        self.positions: dict[KeyPath, Position] = {}
        self.arrays_of_tables: dict[KeyPath, int] = {}  # `[[a]]` seen so far, by concrete path
        self.line_starts = [0] + [m.end() for m in re.finditer(r"\r?\n", text)]

    # -- positions --------------------------------------------------------------------------
    def here(self, offset: int | None = None) -> Position:
        offset = self.i if offset is None else offset
        low, high = 0, len(self.line_starts) - 1
        while low < high:  # the last line start at or before offset
            middle = (low + high + 1) // 2
            if self.line_starts[middle] <= offset:
                low = middle
            else:
                high = middle - 1
        return low + 1, offset - self.line_starts[low] + 1

    def mark(self, path: KeyPath, offset: int) -> None:
        self.positions.setdefault(path, self.here(offset))

    # -- characters -------------------------------------------------------------------------
    def peek(self, count: int = 1) -> str:
        return self.text[self.i:self.i + count]

    def skip_blank(self, newlines: bool = False) -> None:
        """Spaces and tabs (and, with `newlines`, line ends and comments)."""
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch in " \t" or (newlines and ch in "\r\n"):
                self.i += 1
            elif newlines and ch == "#":
                self.skip_comment()
            else:
                return

    def skip_comment(self) -> None:
        while self.i < len(self.text) and self.text[self.i] not in "\r\n":
            self.i += 1

    # -- strings and keys -------------------------------------------------------------------
    def string(self) -> str:
        """A string starting here, unescaped; the cursor ends after its closing quote."""
        for quote in ('"""', "'''"):
            if self.peek(3) == quote:
                self.i += 3
                return self._multiline(quote)
        quote = self.text[self.i]
        self.i += 1
        out = []
        while self.text[self.i] != quote:
            if quote == '"' and self.text[self.i] == "\\":
                out.append(self._escape())
            else:
                out.append(self.text[self.i])
                self.i += 1
        self.i += 1
        return "".join(out)

    def _multiline(self, quote: str) -> str:
        end = self.text.index(quote, self.i)
        while self.text[end + 3:end + 4] == quote[0]:  # up to two quotes may end the content
            end += 1
        body = self.text[self.i:end]
        self.i = end + 3
        return body  # values of multi-line strings are never looked up by key: no unescaping

    def _escape(self) -> str:
        code = self.text[self.i + 1]
        if code in ESCAPES:
            self.i += 2
            return ESCAPES[code]
        width = {"u": 4, "U": 8, "x": 2}[code]
        value = chr(int(self.text[self.i + 2:self.i + 2 + width], 16))
        self.i += 2 + width
        return value

    def key(self) -> list[tuple[str, int]]:
        """A dotted key: its parts, each with the offset it starts at."""
        parts = []
        while True:
            self.skip_blank()
            start = self.i
            if self.peek() in ('"', "'"):
                parts.append((self.string(), start))
            else:
                match = BARE_KEY.match(self.text, self.i)
                parts.append((match.group(0), start))
                self.i = match.end()
            self.skip_blank()
            if self.peek() != ".":
                return parts
            self.i += 1

    # -- values -----------------------------------------------------------------------------
    def value(self, path: KeyPath) -> None:
        self.skip_blank()
        ch = self.peek()
        if ch == "{":
            self.i += 1
            self.skip_blank()
            while self.peek() != "}":
                self.pair(path)
                self.skip_blank()
                if self.peek() == ",":
                    self.i += 1
                    self.skip_blank()
            self.i += 1
        elif ch == "[":
            self.i += 1
            index = 0
            self.skip_blank(newlines=True)
            while self.peek() != "]":
                self.mark(path + (index,), self.i)
                self.value(path + (index,))
                index += 1
                self.skip_blank(newlines=True)
                if self.peek() == ",":
                    self.i += 1
                    self.skip_blank(newlines=True)
            self.i += 1
        elif ch in ('"', "'"):
            self.string()
        else:  # a number, boolean or date-time: up to what ends a value
            while self.i < len(self.text) and self.text[self.i] not in ",]}#\r\n":
                self.i += 1

    def pair(self, table: KeyPath) -> None:
        """`key = value` inside `table`."""
        path = table
        for name, start in self.key():
            path += (name,)
            self.mark(path, start)
        self.skip_blank()
        self.i += 1  # `=`
        self.value(path)

    # -- the document -------------------------------------------------------------------------
    def header(self) -> KeyPath:
        double = self.peek(2) == "[["
        start = self.i
        self.i += 2 if double else 1
        parts = self.key()
        self.i += 2 if double else 1
        path: KeyPath = ()
        for number, (name, _) in enumerate(parts):
            path += (name,)
            last = number == len(parts) - 1
            if last and double:
                self.mark(path, start)
                index = self.arrays_of_tables.get(path, 0)
                self.arrays_of_tables[path] = index + 1
                path += (index,)
            elif path in self.arrays_of_tables:  # `[a.b]` below `[[a]]`: the last `a`
                path += (self.arrays_of_tables[path] - 1,)
            self.mark(path, start if last else parts[number][1])
        return path

    def document(self) -> dict[KeyPath, Position]:
        table: KeyPath = ()
        while True:
            self.skip_blank(newlines=True)
            if self.i >= len(self.text):
                return self.positions
            if self.peek() == "[":
                table = self.header()
            else:
                self.pair(table)
            self.skip_blank()
            if self.peek() == "#":
                self.skip_comment()


def key_positions(text: str) -> dict[KeyPath, Position]:
    """Line and column (1-based) of every key, header and array item of valid TOML `text`."""
    reader = _Reader(text)
    positions = reader.document()
    positions.setdefault((), (1, 1))
    return positions

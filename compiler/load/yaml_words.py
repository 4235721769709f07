"""PyYAML's syntax errors, said in plain words at the line a person would fix.

PyYAML words errors in parser terms (`while parsing a block mapping expected <block end>, but
found '<block mapping start>'`) and often points past the mistake. Each `_explain_*` function
recognises one such error (by the pure-Python parser's wording, which is the same on every
machine) and looks at the text around it. An error none recognises keeps PyYAML's words.
"""

from __future__ import annotations

import re

import yaml

Explained = tuple[str, int, int]  # message, 1-based line, 1-based column

_KEY = re.compile(r"^(?P<indent> *)(?:- +)?(?P<key>[^\s#:][^:#]*?)\s*:(?:\s|$)")


# What YAML 1.1 lets a file hold (PyYAML's Reader.NON_PRINTABLE): no C0 control but tab, line
# feed and carriage return, no DEL, no C1 control but NEL, no surrogate, no U+FFFE or U+FFFF.
_UNREADABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def unreadable_character(text: str) -> Explained | None:
    """A character no YAML file may hold, anywhere, even in a comment, with the way to write it
    in a value. PyYAML refuses one before parsing, with an error that carries no line."""
    found = _UNREADABLE.search(text)
    if found is None:
        return None
    before = text[:found.start()]
    line = before.count("\n") + 1
    column = found.start() - (before.rfind("\n") + 1) + 1
    code = ord(found.group())
    return (
        f"invalid YAML: the character U+{code:04X} cannot appear in a YAML file, not even in a comment"
        f" (in a double-quoted value, write it as \\u{code:04x})", line, column,
    )


def explain(error: yaml.MarkedYAMLError, text: str) -> Explained | None:
    """Plain words for a syntax error, with the place to fix; None when it is not one we know."""
    lines = text.splitlines()
    for rule in _RULES:
        found = rule(error, lines)
        if found:
            return found
    return None


def _line(lines: list[str], index: int) -> str:
    return lines[index] if 0 <= index < len(lines) else ""


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _is_content(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _previous_content(lines: list[str], index: int) -> int | None:
    """The index of the nearest line above `index` that holds something besides a comment."""
    for above in range(index - 1, -1, -1):
        if _is_content(lines[above]):
            return above
    return None


def _start(lines: list[str], index: int) -> tuple[int, int]:
    """Line and column (1-based) of the first character of line `index`."""
    return index + 1, _indent(_line(lines, index)) + 1


def _explain_indented_under_a_value(error, lines) -> Explained | None:
    """`userAgent: x` then a deeper `status: 1`: PyYAML says 'mapping values are not allowed here'."""
    if error.problem != "mapping values are not allowed here" or error.problem_mark is None:
        return None
    index = error.problem_mark.line
    line = _line(lines, index)
    above = _previous_content(lines, index)
    key = _KEY.match(line)
    if key and key.end("key") <= error.problem_mark.column and above is not None:
        parent = _KEY.match(lines[above])
        if parent and _indent(line) > _indent(lines[above]) and lines[above][parent.end():].strip():
            return (
                f"this line is indented more than '{parent.group('key')}' above it (line {above + 1}), which "
                f"already has a value: indent it like '{parent.group('key')}'",
                *_start(lines, index),
            )
    return None


def _explain_colon_in_a_value(error, lines) -> Explained | None:
    """`title: Failed: wrong password`: a colon and a space inside an unquoted value."""
    if error.problem != "mapping values are not allowed here" or error.problem_mark is None:
        return None
    index, column = error.problem_mark.line, error.problem_mark.column
    key = _KEY.match(_line(lines, index))
    if not key or key.end() > column:
        return None
    value = _line(lines, index)[key.end():].strip()
    return (
        f"': ' inside the value of '{key.group('key')}': put the value in quotes, e.g. "
        f"{key.group('key')}: '{value.replace(chr(39), chr(39) * 2)}'",
        index + 1, column + 1,
    )


def _explain_misaligned(error, lines) -> Explained | None:
    """A key or list item whose indentation matches no level above it."""
    if error.context not in ("while parsing a block mapping", "while parsing a block collection") \
            or not (error.problem or "").startswith("expected <block end>") or error.problem_mark is None:
        return None
    index = error.problem_mark.line
    line = _line(lines, index)
    if "'?'" in error.problem and _KEY.match(line):
        return ("a 'key: value' line inside a list: start it with '- ' to make it an item, or indent it like "
                "the key that holds the list", *_start(lines, index))
    levels: dict[int, str] = {}  # column of a key (or list item) above → how to name it
    for above in range(index - 1, -1, -1):
        candidate = lines[above]
        if not _is_content(candidate):
            continue
        match = _KEY.match(candidate)
        if candidate.lstrip().startswith("-") and (line.lstrip().startswith("-") or not match):
            level = _indent(candidate)  # an item lines up with the dash of the items above
        else:
            level = match.start("key") if match else _indent(candidate)  # `- a: 1` then `  b: 2`: b under a
        if level not in levels:
            levels[level] = f"'{match.group('key')}' (line {above + 1}" if match else f"the item (line {above + 1}"
        if _indent(candidate) == 0:
            break
    near = sorted(levels, key=lambda level: (abs(level - _indent(line)), level))[:2]
    options = " or ".join(f"{levels[level]}, {level} space(s))" for level in sorted(near, reverse=True))
    what = "list item" if line.lstrip().startswith("-") else "line"
    if levels and _indent(line) > max(levels):
        return (f"this {what} is indented more than the key above it: line it up with {options}", *_start(lines, index))
    return (f"this {what} is indented {_indent(line)} space(s), which matches no key above it: line it up with {options}",
            *_start(lines, index))


def _explain_tab(error, lines) -> Explained | None:
    if "found character '\\t' that cannot start any token" not in (error.problem or "") or error.problem_mark is None:
        return None
    mark = error.problem_mark
    return "a tab character: YAML indents with spaces only", mark.line + 1, mark.column + 1


def _explain_reserved_start(error, lines) -> Explained | None:
    """A value starting with `@`, a backtick, `%`, or `*` (an alias in YAML) needs quotes."""
    mark = error.problem_mark
    if mark is None:
        return None
    problem = error.problem or ""
    reserved = re.match(r"found character '(.)' that cannot start any token", problem)
    alias = error.context == "while scanning an alias" or problem.startswith("found undefined alias")
    if not (reserved or alias):
        return None
    index = mark.line
    line = _line(lines, index)
    key = _KEY.match(line)
    start = key.end() if key else _indent(line)
    start += len(line[start:]) - len(line[start:].lstrip())
    if alias:
        start = line.rfind("*", 0, mark.column + 1) if key is None else start
    value = line[start:].split(" #")[0].rstrip()
    first = value[:1] or (reserved.group(1) if reserved else "*")
    why = " (YAML reads it as an alias)" if first == "*" else ""
    quoted = "'" + value.replace("'", "''") + "'"
    return f"a value that starts with '{first}' must be in quotes{why}: {quoted}", index + 1, start + 1


def _explain_unclosed_quote(error, lines) -> Explained | None:
    if error.context != "while scanning a quoted scalar" or error.context_mark is None:
        return None
    mark = error.context_mark
    quote = _line(lines, mark.line)[mark.column:mark.column + 1] or '"'
    return f"the quote ({quote}) opened here is never closed", mark.line + 1, mark.column + 1


def _explain_unclosed_bracket(error, lines) -> Explained | None:
    kinds = {"while parsing a flow sequence": ("[", "]", "list"), "while parsing a flow mapping": ("{", "}", "map")}
    if error.context not in kinds or error.context_mark is None:
        return None
    opening, closing, kind = kinds[error.context]
    mark = error.context_mark
    return (
        f"the '{opening}' here opens a {kind} that is not closed: a '{closing}' or a ',' is missing "
        f"(a text value that starts with '{opening}' needs quotes)",
        mark.line + 1, mark.column + 1,
    )


def _explain_not_a_key(error, lines) -> Explained | None:
    """A line that is neither `key: value` nor `- item`: stray text, or text that belongs to the value above."""
    if error.context != "while scanning a simple key" or error.context_mark is None:
        return None
    index = error.context_mark.line
    return (
        "this line is neither 'key: value' nor a list item ('- …'): if it continues the text above, "
        "indent it under a 'key: |' block, or put the whole text in quotes",
        *_start(lines, index),
    )


_RULES = (
    _explain_indented_under_a_value, _explain_colon_in_a_value, _explain_misaligned, _explain_tab,
    _explain_reserved_start, _explain_unclosed_quote, _explain_unclosed_bracket, _explain_not_a_key,
)

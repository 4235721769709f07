"""YAML syntax errors in plain words, at the line to fix (compiler/load/yaml_words.py), not PyYAML's
parser terms. Each case is a small broken file and the whole message with its location."""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.load.loader import parse_yaml

CASES = {
    "indented under a key that has a value": (
        "title: a\ndetection:\n  sel:\n    userAgent: x\n      status: 1\n  condition: sel\n",
        "5:7", "this line is indented more than 'userAgent' above it (line 4), which already has a value: "
               "indent it like 'userAgent'",
    ),
    "indentation between two levels": (
        "detection:\n  sel:\n    a: 1\n   b: 2\n  condition: sel\n",
        "4:4", "this line is indented 3 space(s), which matches no key above it: line it up with 'a' (line 3, "
               "4 space(s)) or 'sel' (line 2, 2 space(s))",
    ),
    "a key after a list item's key": (
        "detection:\n  sel:\n    - a: 1\n     b: 2\n",
        "4:6", "this line is indented 5 space(s), which matches no key above it: line it up with 'a' (line 3, "
               "6 space(s)) or 'sel' (line 2, 2 space(s))",
    ),
    "a list item out of line": (
        "tags:\n  - a\n - b\n",
        "3:2", "this list item is indented 1 space(s), which matches no key above it: line it up with the item "
               "(line 2, 2 space(s)) or 'tags' (line 1, 0 space(s))",
    ),
    "a key inside a list": (
        "tags:\n  - a\n  b: c\n",
        "3:3", "a 'key: value' line inside a list: start it with '- ' to make it an item, or indent it like the "
               "key that holds the list",
    ),
    "a colon in a value": (
        "title: Failed: wrong password\n",
        "1:14", "': ' inside the value of 'title': put the value in quotes, e.g. title: 'Failed: wrong password'",
    ),
    "a tab": ("detection:\n\tsel: 1\n", "2:1", "a tab character: YAML indents with spaces only"),
    "an unclosed quote": ('title: "abc\ndescription: x\n', "1:8", 'the quote (") opened here is never closed'),
    "an unclosed list": (
        "detection:\n  sel:\n    userAgent: [unclosed\n  condition: sel\n",
        "3:16", "the '[' here opens a list that is not closed: a ']' or a ',' is missing (a text value that "
                "starts with '[' needs quotes)",
    ),
    "an unclosed map": (
        "logsource: {product: entra, service: signins\ndetection: x\n",
        "1:12", "the '{' here opens a map that is not closed: a '}' or a ',' is missing (a text value that "
                "starts with '{' needs quotes)",
    ),
    "a Sigma wildcard read as an alias": (
        "detection:\n  sel:\n    userAgent: *python*\n",
        "3:16", "a value that starts with '*' must be in quotes (YAML reads it as an alias): '*python*'",
    ),
    "an alias that is not defined": (
        "detection:\n  sel:\n    userAgent: *python\n",
        "3:16", "a value that starts with '*' must be in quotes (YAML reads it as an alias): '*python'",
    ),
    "a value starting with @": ("title: @home\n", "1:8", "a value that starts with '@' must be in quotes: '@home'"),
    "a stray line": (
        "title: a\nthis is text\nid: b\n",
        "2:1", "this line is neither 'key: value' nor a list item ('- …'): if it continues the text above, "
               "indent it under a 'key: |' block, or put the whole text in quotes",
    ),
}


@pytest.mark.parametrize("text, location, message", CASES.values(), ids=CASES.keys())
def test_a_syntax_error_is_said_in_plain_words_where_to_fix_it(text, location, message):
    document, diagnostics = parse_yaml(text, Path("r.yml"), "r.yml")
    assert document is None
    assert [str(d) for d in diagnostics] == [f"r.yml:{location}: error: invalid YAML: {message}"]


def test_an_error_we_do_not_know_keeps_pyyamls_words():
    document, diagnostics = parse_yaml("a: !!python/name:os.system x\n", Path("r.yml"), "r.yml")
    assert [d.message for d in diagnostics] == [
        "invalid YAML: could not determine a constructor for the tag 'tag:yaml.org,2002:python/name:os.system'"
    ]

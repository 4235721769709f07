"""The readers of our human-facing outputs, written out for the tests and the fuzzer.

- `runner_commands`: the lines of a log GitHub Actions' runner takes as workflow commands
  (actions/runner, `ActionCommand.TryParseV2` and `TryParse`): `::` at the start of a line
  after white space, or the older `##[` anywhere in it. Lines end at CR, LF or CRLF (.NET).
- `live_mentions`: what GitHub would link in a Markdown comment: the Markdown rendered to HTML
  (CommonMark with tables and raw HTML, as GitHub renders it), then every text node outside
  `code`, `pre` and `a` searched for `@name`, `#123` and `GH-123`, entities decoded, as
  GitHub's mention and reference filters do. The patterns are wider than GitHub's (an e-mail
  address counts): a check with them is stricter, never looser.

These are test oracles, not part of a build: `markdown-it-py` comes with the test extras.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

LIVE = re.compile(r"@[A-Za-z0-9]|#[0-9]|\bGH-[0-9]", re.IGNORECASE)
INERT = {"code", "pre", "a"}


def runner_commands(text: str) -> list[str]:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [line for line in lines if line.lstrip().startswith("::") or "##[" in line]


class _TextNodes(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.depth = 0  # inside code, pre or a
        self.texts: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag in INERT:
            self.depth += 1

    def handle_endtag(self, tag) -> None:
        if tag in INERT and self.depth:
            self.depth -= 1

    def handle_data(self, data) -> None:
        if not self.depth:
            self.texts.append(data)


def live_mentions(markdown: str) -> list[str]:
    """Every mention or issue reference GitHub would make of `markdown` (with some context)."""
    from markdown_it import MarkdownIt

    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    parser = _TextNodes()
    parser.feed(html)
    parser.close()
    found = []
    for text in parser.texts:
        found += [text[max(0, m.start() - 20):m.end() + 20] for m in LIVE.finditer(text)]
    return found

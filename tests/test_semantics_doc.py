"""docs/semantics.md says its examples are the compiler's real output: hold it to that.

Each ```yaml block (a rule's logsource and detection) is followed by the blocks it produces:
```kql (the query without its four comment lines; Defender's when it reads a Defender table)
or ```text (the diagnostics, with the rule named `example` in `rule.yml`). A block that is
neither is prose. Every shown query also passes Kusto.Language.
"""

from __future__ import annotations

import re

import pytest
from entra_sigma.diagnostics import format_text

from .helpers import REGISTRY, REPO, check_kql, compile_text

PAGE = REPO / "docs" / "semantics.md"
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
HEADER = "title: example\nid: 5e1d0c00-0000-4000-8000-00000000000{index}\n"


def examples() -> list[tuple[str, str, str, str]]:
    """(id, rule YAML, kind of the shown block, its text) for every block after a rule."""
    found, rule, index, count = [], None, 0, 0
    for match in BLOCK.finditer(PAGE.read_text(encoding="utf-8")):
        kind, body = match.group(1), match.group(2)
        if kind == "yaml":
            rule, index, count = body, match.start(), 0
        elif kind in ("kql", "text") and rule is not None:
            count += 1
            line = PAGE.read_text(encoding="utf-8")[: index].count("\n") + 1
            found.append((f"line{line}-{count}", rule, kind, body))
    return found


EXAMPLES = examples()


def platform_of(query: str) -> str:
    first = query.split("\n", 1)[0].strip()
    table = REGISTRY.tables.get(first) or REGISTRY.tables.get(first.removeprefix("(")) 
    return table.platform if table else "sentinel"


def compiled(rule: str, platform: str) -> tuple[str | None, str]:
    text, diagnostics = compile_text(HEADER.format(index=0) + rule, platform, path="rule.yml")
    body = "\n".join(text.splitlines()[4:]) + "\n" if text else None
    return body, format_text(diagnostics)


def test_the_page_has_examples():
    assert len(EXAMPLES) >= 25


@pytest.mark.parametrize("key, rule, kind, shown", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_each_example_is_what_the_compiler_gives(key, rule, kind, shown):
    if kind == "kql":
        query, problems = compiled(rule, platform_of(shown))
        assert query == shown, f"{key}: the page shows another query than the compiler gives\n{problems}"
    else:
        outputs = [compiled(rule, platform)[1] for platform in ("sentinel", "defender")]
        shown_lines = [line for line in shown.splitlines() if line.strip()]
        assert any(all(line in output for line in shown_lines) for output in outputs), (
            f"{key}: the page shows diagnostics the compiler does not give\n" + "\n---\n".join(outputs)
        )


def test_every_query_on_the_page_passes_kusto_language(kusto):
    queries = {key: shown for key, _, kind, shown in EXAMPLES if kind == "kql"}
    assert check_kql(kusto, queries) == {key: [] for key in queries}

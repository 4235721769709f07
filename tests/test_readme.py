"""The documentation tells the truth: the README's worked example is real compiler output, and
every relative link in README.md and docs/*.md leads to a file (and heading) that exists.

The worked example is the first ```yaml block in README.md that holds a rule (it has a
`logsource:` key) and the first ```kql block after it. The rule is compiled under the display
path that the KQL's `// source:` line shows, so the comparison is exact, header included.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from entra_sigma.diagnostics import format_text

from .helpers import REPO, check_kql, compile_text

README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]

FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)
LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\((?P<target><[^>]*>|[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(?P<text>.+?)\s*#*\s*$", re.MULTILINE)


def code_blocks(text: str) -> list[tuple[str, str]]:
    """(info string, body) of every fenced code block, in order."""
    return [(m.group("info").strip(), m.group("body")) for m in FENCE.finditer(text)]


def worked_example(text: str) -> tuple[str, str]:
    """The README's example rule and the KQL shown for it."""
    blocks = code_blocks(text)
    rule_index = next(
        (i for i, (info, body) in enumerate(blocks) if info == "yaml" and re.search(r"^logsource:", body, re.MULTILINE)),
        None,
    )
    assert rule_index is not None, "README.md has no ```yaml block with a rule (a 'logsource:' key)"
    kql = next((body for info, body in blocks[rule_index + 1:] if info == "kql"), None)
    assert kql is not None, "README.md has no ```kql block after the example rule"
    return blocks[rule_index][1], kql


def without_code(text: str) -> str:
    """The page with fenced code blocks and inline code removed (links there are not links)."""
    text = FENCE.sub("", text)
    return re.sub(r"(`+)(?:(?!\1).)+?\1", "", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading).strip().lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in HEADING.finditer(FENCE.sub("", page.read_text(encoding="utf-8"))):
        base = slug(match.group("text"))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(page: Path) -> list[str]:
    targets = []
    for match in LINK.finditer(without_code(page.read_text(encoding="utf-8"))):
        target = match.group("target").strip("<>")
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("//"):
            continue  # https:, mailto:, ...
        targets.append(target)
    return targets


# -- the worked example ---------------------------------------------------------------------
def test_readme_example_compiles_to_exactly_the_kql_shown():
    rule, shown = worked_example(README.read_text(encoding="utf-8"))
    source = re.search(r"^// source: (?P<path>.+)$", shown, re.MULTILINE)
    assert source, "the KQL block has no '// source:' header line"
    path = source.group("path")
    text, diagnostics = compile_text(rule, path=path)
    assert format_text(diagnostics) == ""
    assert text == shown


def test_readme_example_command_compiles_the_file_the_kql_names():
    readme = README.read_text(encoding="utf-8")
    _, shown = worked_example(readme)
    path = re.search(r"^// source: (?P<path>.+)$", shown, re.MULTILINE).group("path")
    assert f"entra-sigma compile {path}" in readme
    assert f"as `{path}`" in readme


def test_readme_example_passes_kusto_language(kusto):
    rule, shown = worked_example(README.read_text(encoding="utf-8"))
    assert check_kql(kusto, {"readme": shown}) == {"readme": []}


def test_readme_names_the_two_setup_commands():
    readme = README.read_text(encoding="utf-8")
    assert "make build" in readme and "make test" in readme
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^build:", makefile, re.MULTILINE) and re.search(r"^test:", makefile, re.MULTILINE)


# -- links ----------------------------------------------------------------------------------
def test_pages_exist():
    assert README.is_file()
    names = {p.name for p in PAGES}
    for name in ("index.md", "rule-format.md", "semantics.md", "output.md", "deploy.md", "ci.md", "errors.md", "editor.md"):
        assert name in names, f"docs/{name} is missing"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_point_to_existing_files(page: Path):
    broken = []
    for target in relative_links(page):
        path, _, fragment = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page.resolve()
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
            broken.append(f"{target}: no heading with anchor #{fragment}")
    assert broken == [], f"{page.relative_to(REPO)}: " + "; ".join(broken)


def test_documentation_links_in_compiler_hints_resolve():
    """Hints such as 'see docs/rule-format.md#modifiers' must lead somewhere."""
    broken = []
    for source in sorted((REPO / "compiler").rglob("*.py")):
        for target in re.findall(r"(docs/[\w./-]+\.md(?:#[\w-]+)?)", source.read_text(encoding="utf-8")):
            path, _, fragment = target.partition("#")
            if not (REPO / path).is_file():
                broken.append(f"{source.name}: {target}: no such file")
            elif fragment and fragment not in anchors(REPO / path):
                broken.append(f"{source.name}: {target}: no heading with anchor #{fragment}")
    assert broken == []


def test_readme_starts_teams_with_pipx_and_init_and_keeps_the_repository_commands():
    readme = README.read_text(encoding="utf-8")
    first_commands = next(body for info, body in code_blocks(readme) if info == "sh")
    assert first_commands.splitlines()[0] == "pipx install entra-sigma"
    assert "entra-sigma init " in first_commands
    sections = re.split(r"^## ", readme, flags=re.MULTILINE)
    assert sections[1].startswith("In your own repository\n")
    itself = next(s for s in sections if s.startswith("Working on entra-sigma itself\n"))
    assert "make build" in itself and "make test" in itself

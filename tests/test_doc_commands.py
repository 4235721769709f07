"""The commands the documentation shows are commands that work.

- Every `entra-sigma …` command in README.md and docs/*.md, in a code block or inline, names
  a real verb and real options: the command line's own parser reads it (nothing runs).
- Every transcript (a `$ entra-sigma …` line and the output below it) is run in a folder that
  links the repository's rules, tests and docs, and its output must be what the page shows. In the shown output, a line
  `...` stands for any number of lines and `(...)` for the rest of a line.
- `make` targets, `python -m` modules and script paths in shell blocks exist.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import typer
from entra_sigma.cli import app

from .helpers import REPO, VENV_BIN

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.MULTILINE | re.DOTALL)
INLINE = re.compile(r"(`+)(?P<code>(?:(?!\1).)+?)\1")
COMMAND = typer.main.get_command(app)
PROGRAM = re.compile(r"^(?:\.venv/bin/)?entra-sigma(?=\s|$)")
ENDS = {"|", "||", "&&", ";", ">", ">>", "2>", "<"}


def location(page: Path, text: str, offset: int) -> str:
    return f"{page.relative_to(REPO).as_posix()}:{text.count(chr(10), 0, offset) + 1}"


def command_examples() -> list[tuple[str, str]]:
    """(where, command line) for every entra-sigma command a page shows."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in FENCE.finditer(text):
            if block.group("info").strip() in ("yaml", "sh", "console", "text", "bash", ""):
                lines = block.group("body").splitlines()
                for number, line in enumerate(lines):
                    line = line.strip().removeprefix("$ ").removeprefix("run: ")
                    following = number + 1
                    while line.endswith("\\") and following < len(lines):  # a shell line continued
                        line = line[:-1] + " " + lines[following].strip()
                        following += 1
                    if PROGRAM.match(line):
                        found.append((location(page, text, block.start("body")).rsplit(":", 1)[0]
                                      + f":{text.count(chr(10), 0, block.start('body')) + number + 1}", line))
        prose = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
        prose = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), prose, flags=re.DOTALL)
        for span in INLINE.finditer(prose):
            code = span.group("code").strip()
            if PROGRAM.match(code) and not code.startswith("entra-sigma:"):
                found.append((location(page, prose, span.start()), code))
    return found


def words(command: str) -> list[str]:
    """The arguments after the program name, as a shell would split them; `[optional]` parts
    and the alternatives after `a|b` are left out, and redirections end the command."""
    command = re.sub(r"\$\{\{[^}]*\}\}", "x", command)  # GitHub expressions
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    result, optional = [], 0
    for word in list(lexer)[1:]:
        if word in ENDS or word.startswith((">", "|")):
            break
        if optional or word.startswith("["):  # an optional part, e.g. [BASE_REV] or [--tables T1,T2]
            optional += word.count("[") - word.count("]")
            continue
        if word in ("…", "..."):
            continue  # `entra-sigma …`
        result.append(word.split("|")[0] if re.match(r"^[\w-]+(\|[\w-]+)+$", word) else word)
    return result


EXAMPLES = command_examples()


def test_the_pages_show_commands():
    assert len(EXAMPLES) > 40
    verbs = {words(command)[0] for _, command in EXAMPLES if words(command) and not words(command)[0].startswith("-")}
    assert {"validate", "compile", "build", "test", "diff", "coverage", "fields", "init"} <= verbs


@pytest.mark.parametrize("where, command", EXAMPLES, ids=[where for where, _ in EXAMPLES])
def test_a_documented_command_parses(where, command):
    args = words(command)
    group, rest = COMMAND, list(args)
    while hasattr(group, "commands") and rest and not rest[0].startswith("-"):
        assert rest[0] in group.commands, f"{where}: `{command}`: no verb '{rest[0]}' (verbs: {', '.join(group.commands)})"
        group, rest = group.commands[rest[0]], rest[1:]
    if hasattr(group, "commands") and args and not args[0].startswith("-"):
        return  # a group named alone
    if not args:
        return  # the program named alone
    try:
        context = group.make_context("entra-sigma", list(rest), resilient_parsing=False)
        context.close()
    except typer.Exit:
        pass  # --version, --help
    except Exception as error:  # click's usage errors
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        if not message.startswith("Missing argument"):  # a verb shown without its arguments is fine
            pytest.fail(f"{where}: `{command}`: {message}")


# -- transcripts ------------------------------------------------------------------------------
def transcripts() -> list[tuple[str, str, str]]:
    """(where, command, output shown) for every `$ entra-sigma …` line in a code block."""
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in FENCE.finditer(text):
            lines = block.group("body").splitlines()
            starts = [i for i, line in enumerate(lines) if line.startswith("$ ")]
            for n, start in enumerate(starts):
                command = lines[start][2:]
                if PROGRAM.match(command) and not re.match(r"^\S+ (deploy|schema) ", command) and "--watch" not in command:
                    # deploy and schema pull talk to Azure: tests/test_deploy_docs.py runs those
                    # transcripts against the local stand-in of the APIs; a watching build runs
                    # until stopped: tests/test_watch.py runs it, editing a rule meanwhile
                    end = starts[n + 1] if n + 1 < len(starts) else len(lines)
                    where = location(page, text, block.start("body")).rsplit(":", 1)[0]
                    found.append((f"{where}:{text.count(chr(10), 0, block.start('body')) + start + 1}",
                                  command, "\n".join(lines[start + 1:end])))
    return found


def matches(shown: str, actual: str) -> bool:
    """`...` alone on a line: any lines (or none); `(...)` in a line: the rest of that line."""
    pattern = ""
    for line in shown.splitlines():
        if line.strip() == "...":
            pattern += r"(?:.*\n)*?"
        else:
            parts = line.split("(...)")
            pattern += ".*".join(re.escape(part) for part in parts) + r"\n"
    return re.fullmatch(pattern, actual if actual.endswith("\n") else actual + "\n") is not None


TRANSCRIPTS = transcripts()
TRANSCRIPT_PARAMS = [  # `test` replays rule cases on the local engine
    pytest.param(*t, id=t[0], marks=[pytest.mark.replay] if shlex.split(t[1])[1:2] == ["test"] else [])
    for t in TRANSCRIPTS
]


def test_the_pages_show_transcripts():
    assert len(TRANSCRIPTS) >= 2


@pytest.mark.slow  # runs the installed command in a subprocess
@pytest.mark.parametrize("where, command, shown", TRANSCRIPT_PARAMS)
def test_a_transcript_shows_what_the_command_prints(where, command, shown, tmp_path):
    """Run in a scratch folder that links the repository's folders, so `init` writes nowhere real."""
    for name in ("rules", "tests", "docs", "schemas", "templates", "entra-sigma.toml"):
        (tmp_path / name).symlink_to(REPO / name)
    argv = [str(VENV_BIN / "entra-sigma"), *shlex.split(command)[1:]]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "100"}
    result = subprocess.run(argv, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=300)
    assert matches(shown, result.stdout), f"{where}: `{command}` printed:\n{result.stdout}"


def test_the_transcript_matcher():
    assert matches("a\n...\nd", "a\nb\nc\nd\n") and matches("a\n...\nd", "a\nd\n")
    assert matches("x: (...)", "x: anything here\n")
    assert not matches("a\nd", "a\nb\nd\n") and not matches("x: y", "x: z\n")


# -- shell blocks: make targets, modules, scripts ---------------------------------------------
def shell_lines() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for block in FENCE.finditer(text):
            if block.group("info").strip() in ("sh", "bash", "console"):
                for number, line in enumerate(block.group("body").splitlines()):
                    line = line.strip().removeprefix("$ ")
                    if re.match(r"^(make|\.venv/bin/python|python3?)\s", line):
                        found.append((location(page, text, block.start("body")).rsplit(":", 1)[0]
                                      + f":{text.count(chr(10), 0, block.start('body')) + number + 1}", line))
    return found


SHELL = shell_lines()
MAKE_TARGETS = set(re.findall(r"^([\w-]+):", (REPO / "Makefile").read_text(encoding="utf-8"), re.MULTILINE))


@pytest.mark.parametrize("where, line", SHELL, ids=[where for where, _ in SHELL])
def test_a_shell_line_names_what_exists(where, line):
    args = shlex.split(line, comments=True)
    if args[0] == "make":
        targets = [a for a in args[1:] if "=" not in a]
        assert set(targets) <= MAKE_TARGETS, f"{where}: no make target {set(targets) - MAKE_TARGETS}"
    elif args[1] == "-m":
        module = args[2]
        if module == "pytest":
            for path in (a for a in args[3:] if a.startswith("tests/")):
                assert (REPO / path.split("::")[0]).exists(), f"{where}: {path} does not exist"
        else:
            assert importlib.util.find_spec(module) is not None, f"{where}: no module {module}"
    else:
        assert (REPO / args[1]).is_file(), f"{where}: {args[1]} does not exist"

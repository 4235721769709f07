"""The command line's help and flags: a flag looks like a flag (`--strict`, never `--strict <bool>`),
takes no value, and every description reads as whole sentences.
"""

from __future__ import annotations

import re
import sys

import entra_sigma.build
import entra_sigma.cli
import pytest
import typer
from entra_sigma.cli import app
from typer.testing import CliRunner

RUNNER = CliRunner()
COMMAND = typer.main.get_command(app)
VERBS = sorted(COMMAND.commands)


def help_text(*args: str) -> str:
    result = RUNNER.invoke(app, [*args, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("verb", VERBS)
def test_every_boolean_option_is_a_plain_flag(verb):
    booleans = [p for p in COMMAND.commands[verb].params if p.type_descriptor.annotation is bool]
    for param in booleans:
        assert param.is_flag and not param.secondary_opts, f"{verb} {param.opts}: declare it as a flag"
    if verb in ("build", "test", "diff", "coverage"):
        assert booleans, f"{verb} has flags (--strict, --verbose, --all-formats, --check)"


@pytest.mark.parametrize("args", [[], *([verb] for verb in VERBS)], ids=lambda a: " ".join(a) or "entra-sigma")
def test_help_shows_flags_without_a_type_and_options_with_a_named_value(args):
    text = help_text(*args)
    assert "<bool>" not in text
    assert "list[Path]>" not in text.split("Options:")[-1], "an option that takes a path should name it (FILE, DIR)"
    flags = [p for p in (COMMAND.commands[args[0]] if args else COMMAND).params if getattr(p, "is_flag", False)]
    for flag in flags:
        names = ", ".join(sorted(flag.opts, key=len))  # `-v, --verbose`
        line = next((line for line in text.splitlines() if line.strip().startswith(names)), None)
        assert line is not None, f"{names} is not listed"
        assert re.match(rf"^\s+{re.escape(names)}\s{{2,}}\S", line), line  # the flag, then its help


def test_the_verb_list_gives_each_verb_a_whole_sentence():
    text = help_text()
    listed = text.split("Commands:")[1].strip().splitlines()
    assert [line.split()[0] for line in listed] == list(COMMAND.commands)
    for line in listed:
        assert line.rstrip().endswith("."), f"cut mid-sentence: {line!r}"
        assert not line.rstrip().endswith("..."), f"cut mid-sentence: {line!r}"


@pytest.mark.parametrize("verb", VERBS)
def test_a_verbs_description_is_wrapped_as_sentences(verb):
    """Lines of a docstring are joined and wrapped, never broken where the source broke them."""
    text = help_text(verb)
    description = text.split("\n\n", 1)[1].split("\nArguments:")[0].split("\nOptions:")[0]
    for paragraph in description.strip().split("\n\n"):
        words = " ".join(paragraph.split())
        assert words.endswith("."), f"{verb}: {words!r}"
        assert "  " not in words


def test_a_value_after_a_flag_says_the_flag_takes_none():
    result = RUNNER.invoke(app, ["--debug", "true", "validate", "rules"])
    assert result.exit_code == 2
    assert "'true' is not a command: flags such as --debug take no value (write the flag alone)" in result.output
    result = RUNNER.invoke(app, ["--debug=true", "validate", "rules"])
    assert result.exit_code == 2
    assert "Option '--debug' does not take a value." in result.output


def test_an_unknown_verb_is_still_reported_as_such():
    result = RUNNER.invoke(app, ["valdiate", "rules"])
    assert result.exit_code == 2
    assert "No such command 'valdiate'. Did you mean 'validate'?" in result.output
    alone = RUNNER.invoke(app, ["true"])  # no flag before it: no hint about flags
    assert alone.exit_code == 2 and "No such command 'true'." in alone.output and "flag" not in alone.output


@pytest.fixture
def internal_error(monkeypatch):
    """A bug inside the compiler, as `validate` would meet it."""

    def broken(*args, **kwargs):
        raise RuntimeError("the compiler broke")

    monkeypatch.setattr(entra_sigma.build, "build_outputs", broken)
    monkeypatch.setattr(entra_sigma.cli.State, "debug", False)


def run_main(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["entra-sigma", *args])
    entra_sigma.cli.main()


def test_without_debug_an_internal_error_is_one_line_and_exit_3(internal_error, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main(monkeypatch, "validate", "rules")
    assert exit_info.value.code == 3
    assert capsys.readouterr().err == "entra-sigma: internal error: the compiler broke (run with --debug for details)\n"


def test_debug_alone_turns_on_tracebacks(internal_error, monkeypatch):
    with pytest.raises(RuntimeError, match="the compiler broke"):
        run_main(monkeypatch, "--debug", "validate", "rules")


# -- issue 20, item 11: placeholders, names, -h, whole summaries, where global options go --------------
def every_command(command=COMMAND, path=()):
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from every_command(sub, (*path, name))


COMMANDS = [path for path, _ in every_command()]


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p) or "entra-sigma")
def test_placeholders_name_a_value_never_a_python_type(path):
    text = RUNNER.invoke(app, [*path, "--help"], terminal_width=80).output
    usage = text.splitlines()[0]
    assert "{" not in usage and "<" not in usage, usage
    for line in text.splitlines():  # `  --out DIR   help`, `  RULES...  help`: the value's name, or the choices
        if match := re.match(r"^  (?:-\w, )?--[\w-]+ (\S+)", line):
            assert re.fullmatch(r"[A-Z][A-Z_]*|<[a-z-]+(\|[a-z-]+)+>", match[1]), f"{' '.join(path)}: {line}"
    assert not re.search(r"<(str|int|float|path|list\[\w+\]|int range|float range)>", text)


def test_every_verb_that_takes_rules_names_them_alike():
    names = {" ".join(path): [p.metavar for p in command.params if p.param_type_name == "argument"]
             for path, command in every_command() if not hasattr(command, "commands")}
    for verb in ("validate", "compile", "test", "coverage", "deploy sentinel", "deploy defender"):
        assert names[verb] == ["RULES"], verb
    assert names["build"] == ["RULES_DIR"]


@pytest.mark.parametrize("args", [["-h"], ["validate", "-h"], ["deploy", "-h"], ["deploy", "sentinel", "-h"]])
def test_dash_h_is_help(args):
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 0 and result.output.startswith("Usage: entra-sigma"), result.output


@pytest.mark.parametrize("group", [(), ("deploy",), ("schema",)], ids=lambda g: " ".join(g) or "entra-sigma")
def test_the_verb_lists_are_whole_at_the_usual_width(group):
    text = RUNNER.invoke(app, [*group, "--help"], terminal_width=80).output
    listed = " ".join(text.split("Commands:")[1].split())
    assert "..." not in listed and "…" not in listed
    for name in getattr(COMMAND.commands.get(group[0]) if group else COMMAND, "commands"):
        summary = listed.split(f"{name} ", 1)[1]
        assert re.match(r"[^.]*\.", summary), summary  # a whole first sentence


@pytest.mark.parametrize("args, variable", [
    (["deploy", "sentinel"], "ENTRA_SIGMA_ARM_TOKEN"), (["deploy", "defender"], "ENTRA_SIGMA_GRAPH_TOKEN"),
    (["schema", "pull"], "ENTRA_SIGMA_LOGS_TOKEN"), (["deploy"], "ENTRA_SIGMA_GRAPH_TOKEN"),
])
def test_deploy_help_names_the_token_variables_and_az_login(args, variable):
    text = " ".join(help_text(*args).split())
    assert variable in text and "az login" in text and "docs/deploy.md#signing-in" in text


@pytest.mark.parametrize("args, verb", [(["validate", "rules", "--debug"], "validate"),
                                        (["deploy", "defender", "rules", "--version"], "deploy defender")])
def test_a_global_option_after_the_verb_says_where_it_goes(args, verb):
    result = RUNNER.invoke(app, args)
    assert result.exit_code == 2
    option = args[-1]
    assert (f"No such option: {option} (a global option: it goes before the verb, as in "
            f"`entra-sigma {option} {verb} ...`)") in result.output

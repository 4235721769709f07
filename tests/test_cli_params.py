"""cli_params.py: command-line values converted without pydantic, exactly as typer's own adapters
convert them; and what `--version` and `validate` of one rule import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from entra_sigma.cli import app
from entra_sigma.cli_params import PlainParam
from typer._click.exceptions import BadParameter
from typer._coercion import build_runtime_param

ROOT = Path(__file__).resolve().parent.parent
COMMAND = typer.main.get_command(app)

VALUES = {  # what a user may type, and what a default may be
    "path": ["rules", "", "-", "~/x", "a b/ü.yml", Path("build"), "bad\x1b[31mname"],
    "list": [("a.yml", "b"), [], "single", (Path("p"), "q")],
    "choice": ["text", "JSON", "Json", "xml", "", "sarif\x1b[31m", "markdown", "defender", "Sentinel"],
    "str": ["x", "", "ü", "HEAD~1"],
    "number": ["1", "0", "-3", "x", "1.5", "32", "33", "0.001", "007", " 2", "+2", "1_000", "1e3", "2.0", "١", "", 4, 2.5, 0, 100],
}


def parameters(command=COMMAND, prefix=""):
    for param in command.params:
        if getattr(param, "type_descriptor", None) is not None:
            yield f"{prefix or 'entra-sigma'} {param.name}", param
    for name, sub in getattr(command, "commands", {}).items():
        yield from parameters(sub, f"{prefix} {name}".strip())


def kind(annotation) -> str:
    text = str(annotation)
    if text.startswith("list["):
        return "list"
    if "Path" in text:
        return "path"
    if annotation is str:
        return "str"
    if annotation in (int, float):
        return "number"
    return "choice" if isinstance(annotation, type) and issubclass(annotation, __import__("enum").Enum) else "other"


def outcome(runtime, value, param, ctx):
    try:
        return ("value", runtime.coerce(value, param=param, ctx=ctx))
    except BadParameter as error:
        return ("error", error.format_message())


CASES = [(label, param) for label, param in parameters() if kind(param.type_descriptor.annotation) != "other"]


@pytest.mark.parametrize("label,param", CASES, ids=[label for label, _ in CASES])
def test_every_parameter_converts_as_typers_own_adapter_does(label, param):
    descriptor = param.type_descriptor
    ours = PlainParam(descriptor.parameter_info, descriptor.annotation, descriptor)
    theirs = build_runtime_param(descriptor)  # typer's pydantic adapter
    ctx = typer.Context(COMMAND)
    for value in VALUES[kind(descriptor.annotation)] + [None]:
        assert outcome(ours, value, param, ctx) == outcome(theirs, value, param, ctx), (label, value)


def test_the_parameters_of_every_verb_use_the_plain_conversion():
    for label, param in parameters():
        assert isinstance(param._runtime_param, PlainParam), label


def imported_by(*argv: str) -> set[str]:
    """The modules a fresh `entra-sigma ARGV` process has imported when it exits."""
    code = (
        "import atexit, json, sys\n"
        "atexit.register(lambda: print(json.dumps(sorted(sys.modules)), file=sys.__stdout__))\n"
        f"sys.argv = ['entra-sigma', *{list(argv)!r}]\n"
        "from entra_sigma.entry import main\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_a_plainly_written_number_is_read_without_pydantic():
    code = (
        "import sys\nfrom entra_sigma.cli import app\nfrom typer.testing import CliRunner\n"
        "result = CliRunner().invoke(app, ['build', 'no-such-folder', '--jobs', '2'])\n"
        "print(result.exit_code, 'pydantic' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.split() == ["2", "False"], result.stderr  # a usage error (no such folder), no pydantic


def test_version_imports_no_compiler_step_and_no_pydantic():
    modules = imported_by("--version")
    heavy = {"pydantic", "sigma", "jsonschema", "jinja2", "yaml", "entra_sigma.build", "entra_sigma.load.loader"}
    assert not heavy & modules


def test_validate_of_one_rule_imports_what_validating_needs_and_nothing_else():
    rule = next(p for p in sorted((ROOT / "rules").rglob("*.yml")) if not p.name.endswith(".tests.yml"))
    modules = imported_by("validate", str(rule.relative_to(ROOT)))
    assert {"sigma", "jsonschema", "jinja2", "entra_sigma.build"} <= modules  # the steps it runs
    unneeded = {"pydantic", "rich", "duckdb", "azure", "multiprocessing", "concurrent.futures",
                "entra_sigma.write", "entra_sigma.verbs.incremental.rebuild", "entra_sigma.verbs.incremental.cache"}
    assert not unneeded & modules


def test_a_build_served_whole_from_the_cache_imports_no_compiler_step(tmp_path):
    rules = tmp_path / "rules"
    rules.mkdir()
    for name in ("device-code-flow.yml", "ropc-signin.yml"):
        (rules / name).write_bytes((ROOT / "rules" / "protocols" / name).read_bytes())
    build = ["build", str(rules), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]
    assert "sigma" in imported_by(*build)  # the first build compiles
    assert not {"sigma", "jsonschema", "jinja2", "pydantic", "entra_sigma.build"} & imported_by(*build)

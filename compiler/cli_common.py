"""What the verbs share: the shared options, printing diagnostics, usage errors, the compiler.

`cli.py` holds the verbs; a verb that lives in its own module (`verbs/deploy/commands.py`)
imports what it needs from here, so no verb module imports `cli.py` (which imports them).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer

from . import __version__

if TYPE_CHECKING:
    from .build import Compiler
    from .diagnostics import Diagnostic


class DiagnosticFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


class State:
    debug = False


Paths = Annotated[list[Path], typer.Argument(
    metavar="PATH", help="Rule files or folders (searched recursively for .yml/.yaml).", show_default=False,
)]
FormatOption = Annotated[DiagnosticFormat, typer.Option("--format", help="How to print diagnostics.")]
TableSchemas = Annotated[
    Optional[list[Path]],
    typer.Option("--table-schema", metavar="FILE", help="Your workspace's '<Table> | getschema' export (JSON or CSV), named <Table>.json; repeatable."),
]
Templates = Annotated[Optional[Path], typer.Option("--templates", metavar="DIR", help="A folder of templates laid over the bundled ones.")]
Strict = Annotated[bool, typer.Option(
    "--strict", help="Treat warnings (a table left out, a field never filled, a skipped format) as errors.",
)]
Jobs = Annotated[Optional[int], typer.Option(
    "--jobs", min=1, metavar="N", help="Processes to compile with. Default: one per core once there are hundreds of rules.",
)]


def usage_error(message: str) -> typer.Exit:
    typer.echo(f"entra-sigma: error: {message}", err=True)
    return typer.Exit(2)


def make_compiler(table_schemas: list[Path] | None, templates: Path | None) -> Compiler:
    return compiler_factory(table_schemas, templates)()


def compiler_factory(table_schemas: list[Path] | None, templates: Path | None) -> Callable[[], Compiler]:
    """Check the user's table schemas and templates now (a mistake there is a usage error), and
    make the compiler when first asked: a build served whole from the cache never imports the
    pipeline (pySigma, jsonschema, Jinja: a quarter of a second)."""
    from .map.tables import bundled_registry

    registry = bundled_registry()
    if table_schemas:
        try:
            registry = registry.with_workspace_schemas(table_schemas)
        except (OSError, ValueError) as error:
            raise usage_error(str(error))
    if templates is not None and not templates.is_dir():
        raise usage_error(f"--templates {templates}: not a folder")
    made: list[Compiler] = []

    def make() -> Compiler:
        if not made:
            from .build import Compiler

            made.append(Compiler(registry=registry, templates=templates))
        return made[0]

    return make


def report(diagnostics: list[Diagnostic], files: int, fmt: DiagnosticFormat, summarise_warnings: bool = False) -> None:
    """Print the diagnostics of `files` rule files read, in the format asked for."""
    from .diagnostics import format_github, format_json, format_sarif, format_text, format_text_summary

    if fmt is DiagnosticFormat.json:
        sys.stderr.write(format_json(diagnostics))
    elif fmt is DiagnosticFormat.sarif:
        sys.stderr.write(format_sarif(diagnostics, __version__))
    elif fmt is DiagnosticFormat.github:
        sys.stderr.write(format_github(diagnostics))
    else:
        sys.stderr.write((format_text_summary if summarise_warnings else format_text)(diagnostics))
        errors = sum(1 for d in diagnostics if d.severity == "error")
        if errors:
            failed = len({d.location.path for d in diagnostics if d.severity == "error"})
            sys.stderr.write(f"{errors} error(s) in {failed} of {files} file(s)\n")


@contextmanager
def user_errors():
    """Problems in the user's own inputs (templates, workspace schemas) are usage errors."""
    try:
        yield
    except Exception as error:
        from .render.renderer import TemplateFailure  # imported already if a template was rendered

        if isinstance(error, TemplateFailure):
            raise usage_error(str(error))
        raise

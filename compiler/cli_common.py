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
    from .project.environment import Environment


class DiagnosticFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"


class State:
    debug = False


Paths = Annotated[list[Path], typer.Argument(
    metavar="RULES", help="Rule files or folders (searched recursively for .yml/.yaml).", show_default=False,
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
    from .console import one_line

    typer.echo(one_line(f"entra-sigma: error: {message}"), err=True)
    return typer.Exit(2)


def make_compiler(table_schemas: list[Path] | None, templates: Path | None, environment: Environment | None = None) -> Compiler:
    return compiler_factory(table_schemas, templates, environment)()


def compiler_factory(
    table_schemas: list[Path] | None, templates: Path | None, environment: Environment | None = None,
) -> Callable[[], Compiler]:
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

            made.append(Compiler(registry=registry, templates=templates, environment=environment))
        return made[0]

    return make


def report(diagnostics: list[Diagnostic], files: int, fmt: DiagnosticFormat, summarise_warnings: bool = False) -> None:
    """Print the diagnostics of `files` rule files read, in the format asked for."""
    from .diagnostics import error_summary, format_github, format_json, format_sarif, format_text, format_text_summary

    if fmt is DiagnosticFormat.json:
        sys.stderr.write(format_json(diagnostics))
    elif fmt is DiagnosticFormat.sarif:
        sys.stderr.write(format_sarif(diagnostics, __version__))
    elif fmt is DiagnosticFormat.github:
        sys.stderr.write(format_github(diagnostics))
    else:
        sys.stderr.write((format_text_summary if summarise_warnings else format_text)(diagnostics))
        sys.stderr.write(error_summary(diagnostics, files))


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


# -- environments: --env, --all-envs, --config (every verb that compiles rules takes them) ------
Envs = Annotated[Optional[list[str]], typer.Option(
    "--env", metavar="NAME", help="An environment of the project file (entra-sigma.toml): its placeholders, filters and overrides; repeatable.",
)]
AllEnvs = Annotated[bool, typer.Option("--all-envs", help="Every environment of the project file.")]
Config = Annotated[Optional[Path], typer.Option(
    "--config", metavar="FILE", help="The project file (default: entra-sigma.toml here or in the nearest folder above).",
)]


def choose_environments(
    names: list[str] | None, all_envs: bool, config: Path | None, fmt: DiagnosticFormat = DiagnosticFormat.text,
) -> list[Environment]:
    """The environments a verb runs in: those named, every one, or (neither) none chosen. A
    project file that cannot be used, or a name it does not define, is printed as located
    diagnostics and ends the command with 2, as another usage error does."""
    from .project.environment import NO_ENVIRONMENT, Environment, build_environment, unknown_environment
    from .project.file import PROJECT_FILE, find_project, read_project

    if names and all_envs:
        raise usage_error("--env and --all-envs: give one or the other")
    if config is not None and not config.is_file():
        raise usage_error(f"--config {config}: no such file")
    path = config if config is not None else find_project(Path.cwd())
    if path is None:
        if names or all_envs:
            raise usage_error(
                f"{'--env' if names else '--all-envs'} needs a project file: no {PROJECT_FILE} here or in a folder above "
                "(see docs/environments.md; --config FILE names one)"
            )
        return [NO_ENVIRONMENT]
    project, problems = read_project(path)
    if project is None:
        report(problems, 1, fmt)
        raise typer.Exit(2)
    chosen = project.environments if all_envs else list(dict.fromkeys(names or ()))
    if all_envs and not chosen:
        raise usage_error(f"--all-envs: {project.display} defines no environment")
    if not chosen:
        return [Environment(None, project)]
    unknown = [unknown_environment(project, name) for name in chosen if name not in project.environments]
    if unknown:
        report(unknown, 1, fmt)
        raise typer.Exit(2)
    environments = []
    for name in chosen:
        environment, problems = build_environment(project, name)
        environments.append(environment.with_problems(problems))
    return environments


def environment_files(environment: Environment) -> list[Path]:
    """The files an environment's outputs depend on besides the rules: the project file, filters."""
    if environment.project is None:
        return []
    return [environment.project.path, *sorted({f.document.path for f in environment.filters})]


def prefixed(files: dict[str, str], folder: str | None) -> dict[str, str]:
    """Output files under `folder/` (an environment's, when a verb writes several)."""
    return {f"{folder}/{path}": text for path, text in files.items()} if folder else dict(files)

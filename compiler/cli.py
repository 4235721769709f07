"""The `entra-sigma` command line: thin typer verbs over `build.py`.

Exit codes: 0 all good, 1 a rule has errors, 2 usage errors. Tracebacks only with --debug.
Each verb imports the steps it runs when it runs, so that `--version` or `--help` starts in
a tenth of a second and a verb pays only for what it uses (pySigma, jsonschema and Jinja take
most of a third of a second to import).
"""

from __future__ import annotations

import json
import signal
import sys
import time
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import __version__
from .cli_help import HELP_OPTIONS, HelpGroup, plain_arguments
from .cli_common import (  # noqa: F401 - State is read by tests and by deploy's --debug
    AllEnvs,
    Config,
    DiagnosticFormat,
    Envs,
    FormatOption,
    Jobs,
    Paths,
    State,
    Strict,
    TableSchemas,
    Templates,
    choose_environments,
    compiler_factory,
    environment_files,
    make_compiler,
    prefixed,
    report,
    usage_error,
    user_errors,
)
from .cli_params import plain, use_plain_params

FLAG_VALUES = {"true", "false", "yes", "no", "on", "off", "1", "0"}
WATCH_INTERVAL = 0.5  # seconds between looks of `build --watch`


class Verbs(HelpGroup):
    """The verbs. `--debug true` is a flag given a value, not an unknown verb: say so."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        use_plain_params(self)  # no pydantic: see cli_params.py
        plain_arguments(self)  # RULES..., not PATH <list[Path]>: see cli_help.py

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        return plain(option) if option is not None else None

    def resolve_command(self, ctx, args):
        if args and args[0].lower() in FLAG_VALUES and ctx.params.get("debug") and self.get_command(ctx, args[0]) is None:
            ctx.fail(f"{args[0]!r} is not a command: flags such as --debug take no value (write the flag alone)")
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and (option := command.get_help_option(ctx)) is not None:
            plain(option)  # the verb's --help (its context inherits the option names from this one)
        return name, command, rest


app = typer.Typer(
    name="entra-sigma",
    cls=Verbs,
    help="Compile Sigma rules on Microsoft Graph beta signIn fields into KQL for Sentinel and Defender XDR.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: flags without a `<bool>` type, paragraphs wrapped as sentences
    context_settings={"help_option_names": HELP_OPTIONS},
)


class Target(str, Enum):
    sentinel = "sentinel"
    defender = "defender"


def open_cache(folder: Path | None, verb: str, paths: list[Path], table_schemas: list[Path] | None, templates: Path | None,
               environment=None):
    """The build cache, keyed on everything besides the rule files that the output depends on."""
    if folder is None:
        return None
    from .verbs.incremental.cache import Cache

    return Cache(folder, cache_context(verb, paths, table_schemas, templates, environment))


def cache_context(verb: str, paths: list[Path], table_schemas: list[Path] | None, templates: Path | None, environment=None) -> str:
    """What a cache entry's key holds besides its file: the verb, its arguments, the
    environment, the code and data."""
    from .verbs.incremental.cache import context_key

    options = {"verb": verb, "paths": [(p.as_posix(), p.resolve().as_posix()) for p in paths],
               "environment": environment.name if environment is not None else None}
    return context_key(options, user_inputs(table_schemas, templates, environment))


def user_inputs(table_schemas: list[Path] | None, templates: Path | None, environment=None) -> list[Path]:
    """The user's own files an output depends on besides the rules: --table-schema files,
    --templates, and the environment's project file and filters."""
    own = environment_files(environment) if environment is not None else []
    return [*(table_schemas or []), *([templates] if templates else []), *own]


def print_version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit(0)


@app.callback()
def main_options(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of internal errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=print_version)
    ] = False,
) -> None:
    State.debug = debug


@app.command()
def validate(
    paths: Paths,
    fmt: FormatOption = DiagnosticFormat.text,
    table_schema: TableSchemas = None,
    templates: Templates = None,
    strict: Strict = False,
    env: Envs = None,
    all_envs: AllEnvs = False,
    config: Config = None,
) -> None:
    """Check rules as `build` would, writing nothing.

    Checks the schema, the catalog, every target table and the deployment settings. What
    Defender cannot run is a warning. With --env, in that environment (each one given)."""
    from .build import build_outputs
    from .render.formats import formats_for
    from .verbs.ruletests.files import check_tests_files

    diagnostics, files = [], 0
    environments = choose_environments(env, all_envs, config, fmt)
    for environment in environments:
        with user_errors():
            compiler = make_compiler(table_schema, templates, environment)
            outputs = build_outputs(compiler, paths, formats_for(environment.platforms))
        diagnostics += outputs.diagnostics
        files = max(files, outputs.rules)
    diagnostics += check_tests_files(paths, compiler.registry)  # the rules' test cases, as `test` reads them
    diagnostics = list(dict.fromkeys(diagnostics))  # a rule's own problem is the same in every environment
    report(diagnostics, files, fmt)
    ok = not any(d.severity == "error" for d in diagnostics) and not (strict and diagnostics)
    if fmt is DiagnosticFormat.text and ok:
        typer.echo(f"{files} rule file(s) OK{in_environments(environments)}", err=True)
    raise typer.Exit(0 if ok else 1)


def in_environments(environments) -> str:
    """' in environment(s) a, b' for a verb's last line, when environments were chosen."""
    names = [e.name for e in environments if e.name]
    return f" in environment{'s' if len(names) > 1 else ''} {', '.join(names)}" if names else ""


@app.command("compile")
def compile_command(
    paths: Paths,
    out: Annotated[Optional[Path], typer.Option("--out", metavar="DIR", help="Write one .kql per rule here (the folder is replaced whole).")] = None,
    target: Annotated[Target, typer.Option("--target", help="sentinel: Log Analytics tables; defender: advanced hunting.")] = Target.sentinel,
    fmt: FormatOption = DiagnosticFormat.text,
    table_schema: TableSchemas = None,
    templates: Templates = None,
    jobs: Jobs = None,
    strict: Strict = False,
    env: Envs = None,
    all_envs: AllEnvs = False,
    config: Config = None,
) -> None:
    """Compile rules to KQL.

    Prints the queries on standard output, or writes one file per rule with --out. With
    several environments, each one's queries follow a line naming it (with --out: a folder
    per environment)."""
    from .load.loader import display_path_for
    from .verbs.incremental import rebuild as incremental

    environments = choose_environments(env, all_envs, config, fmt)
    several = len(environments) > 1
    texts, files, diagnostics, rules = [], {}, [], 0
    for environment in environments:
        with user_errors():
            compiler = compiler_factory(table_schema, templates, environment)
            queries = incremental.compile_queries(compiler, paths, target.value, named=out is not None, jobs=jobs,
                                                  strict=strict, environment=environment)
        diagnostics += queries.diagnostics
        rules = max(rules, queries.rules)
        texts += [f"// environment: {environment.name}"] if several and queries.texts else []
        texts += queries.texts
        files.update(prefixed(queries.files or {}, environment.name if several else None))
    diagnostics = list(dict.fromkeys(diagnostics))
    report(diagnostics, rules, fmt)
    ok = not any(d.severity == "error" for d in diagnostics) and not (strict and diagnostics)
    if out is None:
        sys.stdout.write("\n".join(texts))
    else:
        write_all_or_nothing(out, files, ok)
        typer.echo(f"wrote {len(files)} quer{'y' if len(files) == 1 else 'ies'} to {display_path_for(out)}", err=True)
    raise typer.Exit(0 if ok else 1)


def write_all_or_nothing(out: Path, files: dict[str, str], ok: bool, exit_on_errors: bool = True, known=None) -> bool:
    """Replace `out` whole, or leave the previous output untouched when a rule has errors
    (exit 1, or with `exit_on_errors` False return False). `known`: see write.Known."""
    from .load.loader import display_path_for
    from .write import OutputError, replace_folder

    if not ok:
        typer.echo(f"nothing written to {display_path_for(out)}: fix the errors above", err=True)
        if exit_on_errors:
            raise typer.Exit(1)
        return False
    try:
        replace_folder(out, files, known=known)
    except OutputError as error:
        raise usage_error(str(error))
    return True


@app.command()
def build(
    rules_dir: Annotated[Path, typer.Argument(metavar="RULES_DIR", help="The folder of rules to build.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Output folder (replaced whole).")] = Path("build"),
    fmt: FormatOption = DiagnosticFormat.text,
    table_schema: TableSchemas = None,
    templates: Templates = None,
    strict: Strict = False,
    cache: Annotated[Optional[Path], typer.Option(
        "--cache", metavar="DIR",
        help="Reuse what unchanged rule files built last time from this folder (e.g. ~/.cache/entra-sigma/build).",
    )] = None,
    cache_in_repo: Annotated[bool, typer.Option(
        "--cache-in-repo", help="Allow a --cache folder inside the rules' repository (a pull request can add files there).",
    )] = False,
    jobs: Jobs = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List every warning, not one line per cause.")] = False,
    watch: Annotated[bool, typer.Option(
        "--watch", help="Stay running and build again whenever a rule file changes, until Ctrl-C.",
    )] = False,
    interval: Annotated[float, typer.Option(
        "--interval", metavar="SECONDS", min=0.05, help="With --watch: how often to look for changes.",
    )] = WATCH_INTERVAL,
    env: Envs = None,
    all_envs: AllEnvs = False,
    config: Config = None,
) -> None:
    """Build every rule in every format, plus a manifest.

    The formats: KQL, Sentinel YAML, ARM, Defender hunting query and custom detection (an
    environment without `defender = true` gets Sentinel's only). If any rule has an error,
    nothing is written. With several environments, each one gets its own folder under --out.
    With --watch, a rule with an error leaves the last good output in place and the build goes
    on watching."""
    if not rules_dir.is_dir():
        raise usage_error(f"{rules_dir}: not a folder")
    if interval != WATCH_INTERVAL and not watch:
        raise usage_error("--interval is how often --watch looks for changes: add --watch, or leave --interval out")
    if cache is not None and not cache_in_repo:
        from .verbs.incremental.cache import cache_location_problem

        if problem := cache_location_problem(cache, rules_dir):
            raise usage_error(problem)
    choose = partial(choose_environments, env, all_envs, config, fmt)
    environments = choose()
    if watch and len(environments) > 1:
        raise usage_error("--watch builds one environment: give one --env")
    once = partial(build_once, rules_dir, out, fmt, strict, jobs, verbose)
    if not watch:
        builds = [(e, compiler_factory(table_schema, templates, e), open_cache(cache, "build", [rules_dir], table_schema, templates, e))
                  for e in environments]
        once(builds)
        raise typer.Exit(0)
    raise typer.Exit(watch_builds(once, choose, rules_dir, out, table_schema, templates, cache, interval))


def build_once(rules_dir, out, fmt, strict, jobs, verbose, builds, known=None) -> bool:
    """One build of `rules_dir` into `out` per (environment, compiler, cache) of `builds` (with
    several, each into a folder named after it); False when a rule's errors left `out` as it
    was. `known` (a watching build's record of what it wrote): errors do not exit, and the line
    that ends each build says how many files were compiled and how long it took."""
    from .console import one_line
    from .load.loader import display_path_for
    from .render.formats import formats_for
    from .verbs.incremental import rebuild as incremental

    watching, started = known is not None, time.perf_counter()
    files, diagnostics, rules, ok, compiled = {}, [], 0, True, 0
    for environment, compiler, cache in builds:
        with user_errors():
            outputs = incremental.build(compiler, [rules_dir], formats_for(environment.platforms), cache=cache, jobs=jobs,
                                        environment=environment)
        if rejected := getattr(cache, "rejected", None):
            typer.echo(one_line(f"entra-sigma: warning: {len(rejected)} cache entr{'y' if len(rejected) == 1 else 'ies'} not used "
                                f"(compiled again): {rejected[0]}"), err=True)
            rejected.clear()
        built = dict(outputs.files)
        built["manifest.json"] = json.dumps(outputs.manifest, indent=2, ensure_ascii=False) + "\n"
        files.update(prefixed(built, environment.name if len(builds) > 1 else None))
        diagnostics += outputs.diagnostics
        rules = max(rules, outputs.rules)
        ok = ok and outputs.ok and not (strict and outputs.diagnostics)
        compiled += outputs.stats.get("files", outputs.rules) - outputs.stats.get("cached", 0)
    report(list(dict.fromkeys(diagnostics)), rules, fmt, summarise_warnings=not verbose)
    if not write_all_or_nothing(out, files, ok, exit_on_errors=not watching, known=known):
        return False
    done = f"built {rules} rule file(s){in_environments([e for e, _, _ in builds])} into {len(files)} file(s) in {display_path_for(out)}"
    if watching:
        done += f" ({compiled} compiled, {time.perf_counter() - started:.2f} s)"
    typer.echo(done, err=True)
    return True


def stop_watching(signum, frame) -> None:
    raise KeyboardInterrupt


def watch_builds(once, choose, rules_dir: Path, out: Path, table_schema, templates, cache_dir, interval: float) -> int:
    """`build --watch`: the first build, then one per change, with the compiler and the last
    build's per-file results kept in memory. A change to --templates or --table-schema files,
    or to the project file or a filter, makes a new compiler (and reads the environment
    again). Ctrl-C (or SIGTERM) ends it with 0."""
    from .load.loader import display_path_for
    from .verbs.incremental.watch import MemoryCache, fingerprint, watch

    current: dict = {"environment": choose()[0]}

    def user_files() -> list[Path]:
        return user_inputs(table_schema, templates, current["environment"])

    def rebuild() -> None:
        seen = fingerprint(user_files())
        try:
            if current.get("seen") != seen:  # the first build, or the user's templates, schemas or environment changed
                from .verbs.incremental.cache import Cache

                if "seen" in current or "compiler" in current:
                    current["environment"] = choose()[0]
                environment = current["environment"]
                context = cache_context("build", [rules_dir], table_schema, templates, environment)
                disk = Cache(cache_dir, context) if cache_dir is not None else None
                current.update(seen=fingerprint(user_files()), compiler=compiler_factory(table_schema, templates, environment),
                               cache=MemoryCache(context, disk))
            once([(current["environment"], current["compiler"], current["cache"])], known=current.setdefault("known", {}))
            current["cache"].settle()
        except typer.Exit:
            current.pop("seen", None)  # a usage error was printed: set up again after the next change
        typer.echo(f"watching {display_path_for(rules_dir)} for changes (Ctrl-C to stop)", err=True)

    signal.signal(signal.SIGTERM, stop_watching)  # `kill`, `docker stop`: end as Ctrl-C does
    try:
        watch(lambda: [rules_dir, *user_files()], rebuild, ignore=[out, *([cache_dir] if cache_dir else [])], interval=interval)
    except KeyboardInterrupt:
        typer.echo("stopped watching", err=True)
    return 0


@app.command("diff")
def diff_command(
    base_rev: Annotated[Optional[str], typer.Argument(
        metavar="BASE_REV",
        help="The git revision to compare with. Default: the merge base of HEAD with the default branch "
             "(origin/HEAD, main or master); HEAD itself when HEAD is that branch.",
    )] = None,
    rules_dir: Annotated[Path, typer.Option("--rules", metavar="DIR", help="The folder of rules in the working tree.")] = Path("rules"),
    report_format: Annotated[str, typer.Option(
        "--format", metavar="<text|markdown>", help="text, or markdown for a pull-request comment.",
    )] = "text",
    all_formats: Annotated[bool, typer.Option("--all-formats", help="Show every changed output file, not only the KQL.")] = False,
    table_schema: TableSchemas = None,
    templates: Templates = None,
    env: Envs = None,
    all_envs: AllEnvs = False,
    config: Config = None,
) -> None:
    """Show how the KQL changes since a git revision.

    Compares BASE_REV with the working tree, rule by rule: added, removed and changed rules, with a unified diff of the KQL (of every
    output file with --all-formats). With --env, in that environment, its project file and filters as they were at
    BASE_REV; with several, each change says which environments it reaches."""
    from .verbs.diff.compare import diff_rules
    from .verbs.diff.gitrev import DiffError
    from .verbs.diff.report import render_markdown, render_text

    if report_format not in ("text", "markdown"):
        raise usage_error(f"--format {report_format}: choose text or markdown")
    from .verbs.diff.environments import merge_diffs

    environments = choose_environments(env, all_envs, config)
    results = []
    for environment in environments:
        compiler = make_compiler(table_schema, templates, environment)
        try:
            results.append((environment.name, diff_rules(compiler, rules_dir, base_rev, all_formats=all_formats)))
        except DiffError as error:
            raise usage_error(str(error))
    result = merge_diffs(results) if any(name for name, _ in results) else results[0][1]
    report(result.reported_diagnostics(), len(result.documents), DiagnosticFormat.text)
    sys.stdout.write(render_markdown(result) if report_format == "markdown" else render_text(result))
    raise typer.Exit(0 if result.ok else 1)


class TestReportFormat(str, Enum):
    text = "text"
    json = "json"
    sarif = "sarif"
    github = "github"
    junit = "junit"


@app.command("test")
def test_command(
    paths: Paths,
    fmt: Annotated[TestReportFormat, typer.Option("--format", help=(
        "text; github: annotations on the tests files (stderr) and the text report; json, sarif or junit: "
        "that document instead of the text report."))] = TestReportFormat.text,
    table_schema: TableSchemas = None,
    strict: Annotated[bool, typer.Option("--strict", help="Also fail when a case is not replayed, or a rule has no test cases, or lacks a match or a no-match case.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="List passed cases too.")] = False,
    env: Envs = None,
    all_envs: AllEnvs = False,
    config: Config = None,
) -> None:
    """Replay each rule's test cases through the KQL it ships.

    The cases (<rule>.tests.yml beside the rule) run on a local KQL engine; the report gives
    passed, failed and not replayed cases per rule. With --env, the queries of that
    environment (of each one given, one report each); a tests file's placeholders take
    precedence over the environment's. Every failed and not-replayed case is also a finding
    located in its tests file (json, sarif, github), and --format junit writes a JUnit XML
    report."""
    from .verbs.ruletests.report import render_text as render_tests
    from .verbs.ruletests.results import RENDERERS, one_run, render_github
    from .verbs.ruletests.run import run_tests

    environments = choose_environments(env, all_envs, config, DiagnosticFormat.__members__.get(fmt.value, DiagnosticFormat.text))
    runs = [(environment, run_tests(make_compiler(table_schema, None, environment), paths)) for environment in environments]
    diagnostics = list(dict.fromkeys(d for _, run in runs for d in run.diagnostics))
    if fmt is TestReportFormat.text:
        report(diagnostics, max(run.files for _, run in runs), DiagnosticFormat.text)
    if fmt in (TestReportFormat.text, TestReportFormat.github):
        if fmt is TestReportFormat.github:
            sys.stderr.write(render_github(one_run(runs, diagnostics)))
        for environment, run in runs:
            if environment.name:
                sys.stdout.write(f"environment {environment.name}:\n")
            sys.stdout.write(render_tests(run, verbose))
    else:
        sys.stdout.write(RENDERERS[fmt.value](one_run(runs, diagnostics), strict))
    warned = strict and any(d.severity == "warning" for d in diagnostics)
    passed = all(run.strict_ok() if strict else run.ok for _, run in runs)  # --strict: every case replayed, too
    raise typer.Exit(0 if passed and not warned else 1)


@app.command()
def coverage(
    paths: Annotated[Optional[list[Path]], typer.Argument(metavar="RULES", help="Rule files or folders (default: rules).", show_default=False)] = None,
    markdown: Annotated[Optional[Path], typer.Option("--markdown", metavar="FILE", help="Write the rule catalog page (Markdown) here; - for standard output.")] = None,
    navigator: Annotated[Optional[Path], typer.Option("--navigator", metavar="FILE", help="Write an ATT&CK Navigator layer (JSON) here; - for standard output.")] = None,
    svg: Annotated[Optional[Path], typer.Option("--svg", metavar="FILE", help="Write the beta field × rule grid (SVG) here (the page shows it); - for standard output.")] = None,
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 1 if a file is missing or out of date.")] = False,
    fmt: FormatOption = DiagnosticFormat.text,
    table_schema: TableSchemas = None,
    templates: Templates = None,
    env: Envs = None,
    all_envs: AllEnvs = False,
    config: Config = None,
) -> None:
    """Show what the rules cover.

    Beta fields, tables and ATT&CK techniques: prints a summary line, and on request writes a catalog page, a Navigator layer and an
    SVG grid. With --env, the rules as that environment compiles them (its filters add fields); with several
    environments, a summary line each and no files."""
    from .load.loader import display_path_for
    from .verbs.coverage.views import STANDARD_OUTPUT, collect, coverage_files, stale_files, write_files

    to_stdout = [name for name, path in (("--markdown", markdown), ("--navigator", navigator), ("--svg", svg))
                 if path == STANDARD_OUTPUT]
    if len(to_stdout) > 1:
        raise usage_error(f"{' and '.join(to_stdout)}: only one output can go to standard output ('-')")
    if to_stdout and check:
        raise usage_error(f"{to_stdout[0]} -: --check compares files, and standard output is not one")
    environments = choose_environments(env, all_envs, config, fmt)
    if len(environments) > 1 and (markdown or navigator or svg):
        raise usage_error("--markdown, --navigator and --svg describe one environment: give one --env")
    results, diagnostics = [], []
    for environment in environments:
        with user_errors():
            result, problems = collect(make_compiler(table_schema, templates, environment), paths or [Path("rules")])
            files = coverage_files(result, markdown, navigator, svg, templates)
        results.append((environment, result))
        diagnostics += problems
    diagnostics = list(dict.fromkeys(diagnostics))
    report(diagnostics, result.files, fmt)
    if any(d.severity == "error" for d in diagnostics):
        typer.echo("nothing written: fix the errors above", err=True)
        raise typer.Exit(1)
    for environment, result in results:  # standard output holds the file asked for
        typer.echo(f"{environment.name}: " * (len(results) > 1) + result.summary(), err=bool(to_stdout))
    if check:
        stale = stale_files(files)
        for path in stale:
            typer.echo(f"out of date: {display_path_for(path)}", err=True)
        raise typer.Exit(1 if stale else 0)
    try:
        write_files(files)
    except OSError as error:
        raise usage_error(str(error))
    for path in files:
        if path != STANDARD_OUTPUT:
            typer.echo(f"wrote {display_path_for(path)}", err=True)


@app.command()
def init(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="The repository to set up (created if missing).", show_default=False)] = Path("."),
    with_pack: Annotated[bool, typer.Option("--with-pack", help="Copy the bundled rule pack into rules/ as well.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist already.")] = False,
) -> None:
    """Set up a detection repository.

    Writes rules/ with an example rule and its test cases, entra-sigma.toml with two example
    environments, a GitHub Actions workflow, a pre-commit configuration, editor settings with
    the schemas, a .gitignore and a README. In a repository that has some of these files, it
    adds ours to .gitignore, the pre-commit configuration and the editor settings, and keeps
    the others as they are (--force overwrites them)."""
    from .load.loader import display_path_for
    from .verbs.scaffold import InitError, report_lines, scaffold, write_scaffold

    try:
        done = write_scaffold(folder, scaffold(with_pack).files, force)
    except InitError as error:
        raise usage_error(str(error))
    shown = display_path_for(folder)
    for line in report_lines(done, shown):
        typer.echo(line, err=True)
    typer.echo(f"next: cd {shown} && entra-sigma validate rules --all-envs && entra-sigma test rules --all-envs", err=True)


@app.command()
def fields(
    text: Annotated[Optional[str], typer.Argument(metavar="TEXT", help="Only paths containing this text (case-insensitive).", show_default=False)] = None,
) -> None:
    """Browse the beta signIn field catalog.

    For each field: its type, enum members and the column each table reads."""
    from .map.tables import bundled_registry
    from .validate.catalog import default_catalog
    from .verbs.fields import describe_fields

    lines = describe_fields(default_catalog(), bundled_registry(), text)
    if not lines:
        typer.echo(f"no field matches {text!r}", err=True)
        raise typer.Exit(1)
    typer.echo("\n".join(lines))


@app.command()
def lsp() -> None:
    """Run the language server for editors, on standard input and output.

    Checks rules as `validate` does while you type, completes fields, modifiers and values, and
    shows each rule's KQL (docs/editor.md)."""
    from .verbs.lsp.server import serve

    serve()


def _add_deployment_verbs() -> None:
    from .verbs.deploy.commands import deploy_app, schema_app

    app.add_typer(deploy_app, name="deploy")
    app.add_typer(schema_app, name="schema")


_add_deployment_verbs()


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except Exception as error:  # an internal error: short message unless --debug
        if State.debug or "--debug" in sys.argv:
            raise
        from .console import one_line

        typer.echo(one_line(f"entra-sigma: internal error: {error} (run with --debug for details)"), err=True)
        sys.exit(3)

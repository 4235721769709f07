"""The `deploy` and `schema` sub-commands: options in, exit code out; the work is in the modules beside.

Exit codes: 0 done (a plan: nothing failed), 1 a rule has errors or a request failed,
2 usage (and, with --detailed-exitcode, a plan with changes), 3 internal error.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer

from ...cli_common import AllEnvs, Config, DiagnosticFormat, Envs, State, choose_environments, make_compiler, report, usage_error, user_errors
from ...cli_help import HelpGroup
from ...console import one_line
from .endpoints import EndpointError, resolve

if TYPE_CHECKING:
    from .pipeline import HttpSettings

deploy_app = typer.Typer(
    cls=HelpGroup,
    help="Deploy the built rules: a plan of what would change, and with --apply the changes. Signs in with "
         "ENTRA_SIGMA_ARM_TOKEN (Sentinel) or ENTRA_SIGMA_GRAPH_TOKEN (Defender) when set, else with az login "
         "or another Azure credential (docs/deploy.md#signing-in).",
    no_args_is_help=True,
)
schema_app = typer.Typer(cls=HelpGroup, help="Read your workspace's table schemas.", no_args_is_help=True)


class ReportFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"


Rules = Annotated[list[Path], typer.Argument(metavar="RULES", help="Rule files or folders, as for validate.", show_default=False)]
Apply = Annotated[bool, typer.Option("--apply", help="Carry the plan out (without it, nothing is changed).")]
Prune = Annotated[bool, typer.Option("--prune", help="Also delete rules entra-sigma deployed that are no longer in RULES.")]
KeepDrifted = Annotated[bool, typer.Option(
    "--keep-drifted", help="Leave rules changed on the service since the last deploy as they are, instead of restoring them.",
)]
Format = Annotated[ReportFormat, typer.Option("--format", help="text, markdown (a pull-request comment) or json.")]
DetailedExitcode = Annotated[bool, typer.Option(
    "--detailed-exitcode", help="Plan only: exit 0 when there is nothing to do, 2 when there are changes (1 on errors).",
)]
TableSchemas = Annotated[Optional[list[Path]], typer.Option(
    "--table-schema", metavar="FILE", help="Your workspace's '<Table> | getschema' export, as for build; repeatable.",
)]
Templates = Annotated[Optional[Path], typer.Option(
    "--templates", metavar="DIR", help="A folder of templates laid over the bundled ones, as for build.")]
Concurrency = Annotated[int, typer.Option("--concurrency", metavar="N", min=1, max=32, help="Requests in flight at once.")]
Retries = Annotated[int, typer.Option(
    "--retries", metavar="N", min=0, max=20, help="Tries after the first, for throttled (429), failed (5xx) or lost requests.")]
MaxWait = Annotated[float, typer.Option(
    "--max-wait", metavar="SECONDS", min=0, help="Longest pause in seconds between two tries, whatever Retry-After asks.")]
Timeout = Annotated[float, typer.Option(
    "--timeout", metavar="SECONDS", min=0.01, help="Seconds to wait for an answer before a try counts as lost.")]


@dataclass
class Common:
    rules: list[Path]
    apply: bool
    prune: bool
    keep_drifted: bool
    fmt: ReportFormat
    detailed_exitcode: bool
    table_schema: list[Path] | None
    templates: Path | None
    settings: "HttpSettings"


def debugging() -> bool:
    return State.debug


@contextmanager
def debug_logging():
    """--debug: azure-core's HTTP logging on stderr, redacted; otherwise the SDK's logs are dropped."""
    from .redaction import enable_debug_logging, quiet_logging, restore_logging

    handler = enable_debug_logging(sys.stderr) if debugging() else quiet_logging()
    try:
        yield
    finally:
        restore_logging(handler)


def settings_from(concurrency: int, retries: int, max_wait: float, timeout: float) -> "HttpSettings":
    from .pipeline import HttpSettings

    return HttpSettings(retries=retries, max_wait=max_wait, backoff=min(0.8, max_wait), timeout=timeout, concurrency=concurrency)


def endpoint_or_exit(api: str, option: str | None, failures: "Failures | None" = None):
    try:
        return resolve(api, option, os.environ)
    except EndpointError as error:
        raise (failures.usage(str(error)) if failures is not None else usage_error(str(error))) from None


def fail(message: str, details: tuple[str, ...] = ()) -> typer.Exit:
    """An error that is not the user's typing: the message, then each detail on a line of its own."""
    say_error(message, details)
    return typer.Exit(1)


def say_error(message: str, details: tuple[str, ...] = ()) -> None:
    from .redaction import redact

    typer.echo(one_line(f"entra-sigma: error: {redact(message)}"), err=True)
    for line in details:
        typer.echo(one_line(f"  {redact(line)}"), err=True)


E_UNREADABLE = "E605"  # the deployed rules could not be read (sign-in, network, permission): nothing planned


@dataclass
class Stopped:
    """An environment whose deploy stopped before its plan, and why (`errors`, as JSON has them)."""

    environment: str | None
    scope: str
    errors: list[dict]


class Failures:
    """With --format json a document is printed however the run ends: a run stopped by a usage
    error (or every environment stopped before its plan) prints the plan's shape with no
    changes and the reasons under `errors`, so a program always gets one."""

    def __init__(self, fmt: ReportFormat, target: str, prune: bool) -> None:
        self.json, self.target, self.prune = fmt is ReportFormat.json, target, prune
        self.errors: list[dict] = []

    def usage(self, message: str) -> typer.Exit:
        self.errors.append({"code": "usage", "id": None, "message": message})
        return usage_error(message)

    def document(self, stopped: Stopped | None = None) -> str:
        from .report import render_failure

        errors = stopped.errors if stopped is not None else self.errors or [
            {"code": "usage", "id": None, "message": "the command was refused: see standard error"}]
        return render_failure(self.target, stopped.scope if stopped else "", self.prune, errors,
                              stopped.environment if stopped else None)

    @contextmanager
    def printed(self):
        """Print the failure document when the command stops (exit 2) before any other was printed."""
        try:
            yield
        except typer.Exit as stop:
            if stop.exit_code == 2 and self.json:
                sys.stdout.write(self.document())
            raise


def refused_token(failure, api: str, endpoint):
    """A 401 to a token given in the environment: say which variable held it, and what may be wrong."""
    from .credentials import TOKEN_VARIABLES

    variable = TOKEN_VARIABLES[api]
    if failure.status == 401 and (os.environ.get(variable) or "").strip():
        failure.details += (f"the token in {variable} was refused: it may have expired, or be for another API "
                            f"(it must be for {endpoint.scope})",)
    return failure


def run_deploy(common: Common, api: str, endpoint_option: str | None, kind, targets: list, failures: Failures) -> None:
    """Deploy to each (environment, make_target) of `targets` in turn: `kind` is the target class
    (its platform, output format and file reader), `make_target(client)` builds one. An
    environment that fails (rule errors, a request) is reported and the next one goes on; the
    exit code is 1 if any failed."""
    from .report import RENDERERS

    if common.detailed_exitcode and common.apply:
        raise failures.usage("--detailed-exitcode is for plans; drop it or --apply")
    endpoint = endpoint_or_exit(api, endpoint_option, failures)
    several = len(targets) > 1
    outcomes = []
    for environment, make_target in targets:
        if several:
            typer.echo(one_line(f"environment {environment.name}:"), err=True)
        outcomes.append(deploy_environment(common, api, endpoint, kind, make_target, environment, failures))
    plans = [o for o in outcomes if not isinstance(o, Stopped)]
    failed = len(plans) < len(outcomes) or any(plan.errors for plan in plans)
    if several:
        sys.stdout.write(render_several(outcomes, common.fmt.value, failures))
    elif plans:
        sys.stdout.write(RENDERERS[common.fmt.value](plans[0]))
    elif failures.json:
        sys.stdout.write(failures.document(outcomes[0]))
    for plan in plans:
        for change in plan.errors:
            code, message = change.error
            where = f" ({plan.environment})" if several else ""
            typer.echo(one_line(f"error {code}: {change.title} [{change.id}]{where}: {message}"), err=True)
    failures.json = False  # a document is out
    if failed:
        raise typer.Exit(1)
    raise typer.Exit(2 if common.detailed_exitcode and any(p.has_changes for p in plans) else 0)


def render_several(outcomes: list, fmt: str, failures: Failures) -> str:
    """One plan per environment: each under a heading (JSON: a list of the plans, and of the
    failure documents of environments that stopped before their plan)."""
    import json

    from .report import RENDERERS

    if fmt == "json":
        documents = [failures.document(o) if isinstance(o, Stopped) else RENDERERS["json"](o) for o in outcomes]
        return json.dumps({"environments": [json.loads(d) for d in documents]}, indent=2, ensure_ascii=False) + "\n"
    heading = "## Environment {}\n\n" if fmt == "markdown" else "== environment {} ==\n"
    return "\n".join(heading.format(plan.environment) + RENDERERS[fmt](plan) for plan in outcomes if not isinstance(plan, Stopped))


def deploy_environment(common: Common, api: str, endpoint, kind, make_target: Callable, environment, failures: Failures):
    """The plan (carried out with --apply) of one environment; Stopped when it failed before one."""
    from .apply import apply_plan
    from .credentials import credential_for
    from .desired import desired_rules
    from .pipeline import ApiClient, RequestFailed
    from .plan import make_plan

    compiler = make_compiler(common.table_schema, common.templates, environment)
    with user_errors():
        desired = desired_rules(lambda: compiler, common.rules, kind.platform, kind.output_format, kind.desired, environment)
    report(desired.diagnostics, desired.files, DiagnosticFormat.text)
    if desired.files == 0:  # a wrong path must not plan the deletion of every rule
        raise failures.usage(f"no rule files in {', '.join(str(p) for p in common.rules)}: nothing to deploy")
    if not desired.ok:
        typer.echo(one_line(f"nothing sent to {kind.platform}{for_environment(environment)}: fix the errors above"), err=True)
        errors = [{"code": d.code, "id": None, "message": d.message, "location": asdict(d.location), "rule": d.rule}
                  for d in desired.diagnostics if d.severity == "error"]
        return Stopped(environment.name, "", errors)
    with debug_logging():
        client = ApiClient(endpoint, credential_for(api, os.environ), common.settings, arm=api == "arm")
        try:
            target = make_target(client)
            scope = target.describe() + for_environment(environment)
            try:
                deployed = target.list()
            except RequestFailed as failure:
                failure = refused_token(failure, api, endpoint)
                message = f"cannot read the rules deployed to {scope}: {failure.describe()}"
                say_error(message, failure.details)
                error = {"code": E_UNREADABLE, "id": None, "message": redacted(message)}
                return Stopped(environment.name, scope, [{**error, "details": list(failure.details)} if failure.details else error])
            plan = make_plan(kind.platform, scope, desired, deployed, prune=common.prune, keep_drifted=common.keep_drifted,
                             environment=environment.name)
            if common.apply:
                writes = sum(1 for c in plan.changes if c.writes)
                if writes:
                    typer.echo(one_line(f"applying {writes} change(s) to {scope}"), err=True)
                apply_plan(plan, target, common.settings.concurrency)
        finally:
            client.close()
    return plan


def for_environment(environment) -> str:
    return f", environment {environment.name}" if environment.name else ""


def redacted(message: str) -> str:
    from .redaction import redact

    return redact(message)


def sentinel_scopes(environments: list, subscription: str | None, resource_group: str | None, workspace: str | None,
                    failures: Failures | None = None) -> list[tuple]:
    """(environment, subscription, resource group, workspace) for each environment: the project
    file's `sentinel` table, each value overridden by its option. Every environment deploys to a
    workspace of its own (two would prune each other's rules)."""
    given = {"subscription": subscription, "resource-group": resource_group, "workspace": workspace}
    if len(environments) > 1 and any(given.values()):
        options = ", ".join(f"--{k}" for k, v in given.items() if v)
        raise (failures.usage if failures is not None else usage_error)(f"{options}: with several environments each deploys to the workspace entra-sigma.toml gives it; "
                          "give one --env to override it")
    scopes, seen = [], {}
    for environment in environments:
        values = {key: given[key] or environment.sentinel.get(key) for key in given}
        missing = [key for key, value in values.items() if not value]
        if missing:
            where = (f", or set them under [environments.{environment.name}.sentinel] in {environment.project.display}"
                     if environment.name else "")
            raise (failures.usage if failures is not None else usage_error)(f"{', '.join('--' + m for m in missing)}: give {'it' if len(missing) == 1 else 'them'}{where}")
        key = tuple(values[k].lower() for k in ("subscription", "resource-group", "workspace"))
        if key in seen:
            raise (failures.usage if failures is not None else usage_error)(f"environments {seen[key]} and {environment.name} deploy to the same workspace {values['workspace']}")
        seen[key] = environment.name
        scopes.append((environment, values["subscription"], values["resource-group"], values["workspace"]))
    return scopes


@deploy_app.command("sentinel")
def deploy_sentinel(
    rules: Rules,
    subscription: Annotated[Optional[str], typer.Option(
        "--subscription", metavar="ID", help="The subscription id of the workspace (default: the environment's, from entra-sigma.toml).",
    )] = None,
    resource_group: Annotated[Optional[str], typer.Option(
        "--resource-group", metavar="NAME", help="The workspace's resource group (default: the environment's).")] = None,
    workspace: Annotated[Optional[str], typer.Option(
        "--workspace", metavar="NAME", help="The Log Analytics workspace Sentinel runs on, its name (default: the environment's).",
    )] = None,
    apply: Apply = False,
    prune: Prune = False,
    keep_drifted: KeepDrifted = False,
    fmt: Format = ReportFormat.text,
    detailed_exitcode: DetailedExitcode = False,
    arm_endpoint: Annotated[Optional[str], typer.Option(
        "--arm-endpoint", metavar="URL", help="Azure Resource Manager for a sovereign cloud (default: ENTRA_SIGMA_ARM_ENDPOINT, else https://management.azure.com).",
    )] = None,
    table_schema: TableSchemas = None,
    templates: Templates = None,
    concurrency: Concurrency = 4,
    retries: Retries = 5,
    max_wait: MaxWait = 60.0,
    timeout: Timeout = 60.0,
    env: Envs = None,
    all_envs: AllEnvs = False,
    config: Config = None,
) -> None:
    """Plan (or with --apply, make) the Sentinel workspace's analytics rules match RULES.

    With --env, the environment's rules go to its workspace (entra-sigma.toml); with several,
    one plan each. Signs in with the token in ENTRA_SIGMA_ARM_TOKEN when it is set; else with
    Azure's credentials, in this order: a service principal in the environment (AZURE_TENANT_ID,
    AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), workload identity (OIDC), a managed identity, the Azure
    CLI (az login). See docs/deploy.md#signing-in."""
    from .sentinel import SentinelTarget, check_scope

    failures = Failures(fmt, "sentinel", prune)
    with failures.printed():
        environments = choose_environments(env, all_envs, config)
        targets = []
        for environment, sub, group, space in sentinel_scopes(environments, subscription, resource_group, workspace, failures):
            problems = check_scope(sub, group, space)
            if problems:
                raise failures.usage("; ".join(problems) + for_environment(environment))
            targets.append((environment, partial(SentinelTarget, subscription=sub, resource_group=group, workspace=space)))
        common = Common(rules, apply, prune, keep_drifted, fmt, detailed_exitcode, table_schema, templates,
                        settings_from(concurrency, retries, max_wait, timeout))
        run_deploy(common, "arm", arm_endpoint, SentinelTarget, targets, failures)


@deploy_app.command("defender")
def deploy_defender(
    rules: Rules,
    apply: Apply = False,
    prune: Prune = False,
    keep_drifted: KeepDrifted = False,
    fmt: Format = ReportFormat.text,
    detailed_exitcode: DetailedExitcode = False,
    graph_endpoint: Annotated[Optional[str], typer.Option(
        "--graph-endpoint", metavar="URL", help="Microsoft Graph for a sovereign cloud (default: ENTRA_SIGMA_GRAPH_ENDPOINT, else https://graph.microsoft.com).",
    )] = None,
    table_schema: TableSchemas = None,
    templates: Templates = None,
    concurrency: Concurrency = 4,
    retries: Retries = 5,
    max_wait: MaxWait = 60.0,
    timeout: Timeout = 60.0,
    env: Envs = None,
    all_envs: AllEnvs = False,
    config: Config = None,
) -> None:
    """Plan (or with --apply, make) the tenant's Defender XDR custom detections match RULES.

    With --env, an environment with `defender = true` in entra-sigma.toml (one: the tenant is
    the one you are signed in to). Signs in with the token in ENTRA_SIGMA_GRAPH_TOKEN when it is
    set; else with Azure's credentials, in this order: a service principal in the environment
    (AZURE_TENANT_ID, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET), workload identity (OIDC), a managed
    identity, the Azure CLI (az login). See docs/deploy.md#signing-in."""
    from .defender import DefenderTarget

    failures = Failures(fmt, "defender", prune)
    with failures.printed():
        environments = choose_environments(env, all_envs, config)
        if all_envs:
            environments = [e for e in environments if e.defender]
        without = [e.name for e in environments if e.name and not e.defender]
        if without or not environments:
            raise failures.usage(f"environment {', '.join(without) or '(none)'}: no Defender XDR (set defender = true in entra-sigma.toml)")
        if len(environments) > 1:
            raise failures.usage(f"environments {', '.join(e.name for e in environments)} would all deploy to the tenant you "
                                 "are signed in to: give one --env (sign in to each environment's tenant in turn)")
        common = Common(rules, apply, prune, keep_drifted, fmt, detailed_exitcode, table_schema, templates,
                        settings_from(concurrency, retries, max_wait, timeout))
        run_deploy(common, "graph", graph_endpoint, DefenderTarget, [(environments[0], DefenderTarget)], failures)


@schema_app.command("pull")
def schema_pull(
    workspace_id: Annotated[str, typer.Option("--workspace-id", metavar="GUID", help="The workspace's id (a GUID, 'Workspace ID' in the portal).")],
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Write <Table>.json here (other files in the folder stay).")],
    tables: Annotated[Optional[str], typer.Option(
        "--tables", metavar="TABLES", help="Comma-separated tables (default: every Sentinel sign-in table entra-sigma knows).",
    )] = None,
    logs_endpoint: Annotated[Optional[str], typer.Option(
        "--logs-endpoint", metavar="URL", help="The Log Analytics query API for a sovereign cloud (default: ENTRA_SIGMA_LOGS_ENDPOINT, else https://api.loganalytics.io).",
    )] = None,
    retries: Retries = 5,
    max_wait: MaxWait = 60.0,
    timeout: Timeout = 60.0,
) -> None:
    """Write your workspace's sign-in table schemas, for --table-schema.

    Runs '<Table> | getschema' in the workspace for each sign-in table. Signs in with the token in
    ENTRA_SIGMA_LOGS_TOKEN when it is set; else with Azure's credentials (az login and the others
    docs/deploy.md#signing-in lists)."""
    import difflib

    from ...load.loader import display_path_for
    from ...map.tables import bundled_registry
    from .credentials import credential_for
    from .pipeline import RequestFailed
    from .schema_pull import logs_client, pull, write_files
    from .sentinel import SUBSCRIPTION

    if not SUBSCRIPTION.match(workspace_id):
        raise usage_error(f"--workspace-id {workspace_id!r}: expected the workspace's id (a GUID)")
    registry = bundled_registry()
    known = sorted(t for t, table in registry.tables.items() if table.platform == "sentinel")
    wanted = [t.strip() for t in tables.split(",") if t.strip()] if tables is not None else known
    for table in wanted:
        if table not in known:
            close = difflib.get_close_matches(table, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known)})"
            raise usage_error(f"--tables: unknown sign-in table '{table}'{hint}")
    if not wanted:
        raise usage_error("--tables: name at least one table")
    if out.exists() and not out.is_dir():
        raise usage_error(f"--out {out}: not a folder")
    endpoint = endpoint_or_exit("logs", logs_endpoint)
    settings = settings_from(1, retries, max_wait, timeout)
    with debug_logging():
        client = logs_client(endpoint, credential_for("logs", os.environ), settings)
        try:
            pulled = pull(client, endpoint, workspace_id, wanted)
        except RequestFailed as failure:
            raise fail(f"getschema failed, nothing written: {failure.describe()}", failure.details)
        finally:
            client.close()
    for table in pulled.missing:
        typer.echo(one_line(f"warning: the workspace has no table {table}: not written"), err=True)
    try:
        written = write_files(out, pulled.files)
    except OSError as error:
        raise usage_error(f"cannot write {out}: {error.strerror or error}")
    for path in written:
        typer.echo(one_line(f"wrote {display_path_for(path)}"), err=True)
    raise typer.Exit(0)

"""The `deploy` and `schema` sub-commands: options in, exit code out; the work is in the modules beside.

Exit codes: 0 done (a plan: nothing failed), 1 a rule has errors or a request failed,
2 usage (and, with --detailed-exitcode, a plan with changes), 3 internal error.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Callable, Optional

import typer

from ...cli_help import HelpGroup
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
    from ...cli import State

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


def endpoint_or_exit(api: str, option: str | None):
    from ...cli import usage_error

    try:
        return resolve(api, option, os.environ)
    except EndpointError as error:
        raise usage_error(str(error)) from None


def fail(message: str, details: tuple[str, ...] = ()) -> typer.Exit:
    """An error that is not the user's typing: the message, then each detail on a line of its own."""
    from ...console import one_line
    from .redaction import redact

    typer.echo(one_line(f"entra-sigma: error: {redact(message)}"), err=True)
    for line in details:
        typer.echo(one_line(f"  {redact(line)}"), err=True)
    return typer.Exit(1)


class Failures:
    """What stopped a deploy before its plan: with --format json, a JSON document is printed all
    the same (the plan's shape, with no changes and these `errors`), so a program always gets one."""

    def __init__(self, fmt: ReportFormat, target: str, prune: bool) -> None:
        self.json, self.target, self.prune = fmt is ReportFormat.json, target, prune
        self.scope = ""
        self.errors: list[dict] = []

    def add(self, code: str, message: str, details: tuple[str, ...] = (), **more) -> None:
        self.errors.append({"code": code, "id": None, "message": message, **({"details": list(details)} if details else {}), **more})

    def usage(self, message: str) -> typer.Exit:
        from ...cli import usage_error

        self.add("usage", message)
        return usage_error(message)

    def request(self, message: str, failure) -> typer.Exit:
        self.add(E_UNREADABLE, f"{message}: {failure.describe()}", failure.details)
        return fail(f"{message}: {failure.describe()}", failure.details)

    def print(self) -> None:
        """The JSON document, unless one was printed already or none was asked for."""
        if self.json:
            from .report import render_failure

            if not self.errors:
                self.add("usage", "the command was refused: see standard error")
            sys.stdout.write(render_failure(self.target, self.scope, self.prune, self.errors))
            self.json = False


def refused_token(failure, api: str, endpoint):
    """A 401 to a token given in the environment: say which variable held it, and what may be wrong."""
    from .credentials import TOKEN_VARIABLES

    variable = TOKEN_VARIABLES[api]
    if failure.status == 401 and (os.environ.get(variable) or "").strip():
        failure.details += (f"the token in {variable} was refused: it may have expired, or be for another API "
                            f"(it must be for {endpoint.scope})",)
    return failure


E_UNREADABLE = "E605"  # the deployed rules could not be read (sign-in, network, permission): nothing planned


def run_deploy(common: Common, api: str, endpoint_option: str | None, kind, make_target: Callable) -> None:
    """`kind`: the target class (its platform, output format and file reader); `make_target(client)` builds one."""
    failures = Failures(common.fmt, kind.platform, common.prune)
    try:
        _run_deploy(common, api, endpoint_option, kind, make_target, failures)
    except typer.Exit as stop:
        if stop.exit_code:
            failures.print()
        raise


def _run_deploy(common: Common, api: str, endpoint_option: str | None, kind, make_target: Callable, failures: Failures) -> None:
    from ...cli import DiagnosticFormat, make_compiler, report, user_errors
    from ...console import one_line
    from .apply import apply_plan
    from .credentials import credential_for
    from .desired import desired_rules
    from .pipeline import ApiClient, RequestFailed
    from .plan import make_plan
    from .report import RENDERERS

    if common.detailed_exitcode and common.apply:
        raise failures.usage("--detailed-exitcode is for plans; drop it or --apply")
    try:
        endpoint = resolve(api, endpoint_option, os.environ)
    except EndpointError as error:
        raise failures.usage(str(error)) from None
    compiler = make_compiler(common.table_schema, common.templates)
    with user_errors():
        desired = desired_rules(lambda: compiler, common.rules, kind.platform, kind.output_format, kind.desired)
    report(desired.diagnostics, desired.files, DiagnosticFormat.text)
    if desired.files == 0:  # a wrong path must not plan the deletion of every rule
        raise failures.usage(f"no rule files in {', '.join(str(p) for p in common.rules)}: nothing to deploy")
    if not desired.ok:
        for d in desired.diagnostics:
            if d.severity == "error":
                failures.add(d.code, d.message, location=asdict(d.location), rule=d.rule)
        typer.echo(f"nothing sent to {kind.platform}: fix the errors above", err=True)
        raise typer.Exit(1)
    with debug_logging():
        client = ApiClient(endpoint, credential_for(api, os.environ), common.settings, arm=api == "arm")
        try:
            target = make_target(client)
            failures.scope = target.describe()
            try:
                deployed = target.list()
            except RequestFailed as failure:
                raise failures.request(f"cannot read the rules deployed to {target.describe()}",
                                       refused_token(failure, api, endpoint)) from None
            plan = make_plan(kind.platform, target.describe(), desired, deployed,
                             prune=common.prune, keep_drifted=common.keep_drifted)
            if common.apply:
                writes = sum(1 for c in plan.changes if c.writes)
                if writes:
                    typer.echo(one_line(f"applying {writes} change(s) to {target.describe()}"), err=True)
                apply_plan(plan, target, common.settings.concurrency)
        finally:
            client.close()
    sys.stdout.write(RENDERERS[common.fmt.value](plan))
    failures.json = False  # the plan's own document is out
    for change in plan.errors:
        code, message = change.error
        typer.echo(one_line(f"error {code}: {change.title} [{change.id}]: {message}"), err=True)
    if plan.errors:
        raise typer.Exit(1)
    raise typer.Exit(2 if common.detailed_exitcode and plan.has_changes else 0)


@deploy_app.command("sentinel")
def deploy_sentinel(
    rules: Rules,
    subscription: Annotated[str, typer.Option("--subscription", metavar="ID", help="The subscription id of the workspace.")],
    resource_group: Annotated[str, typer.Option("--resource-group", metavar="NAME", help="The workspace's resource group.")],
    workspace: Annotated[str, typer.Option(
        "--workspace", metavar="NAME", help="The Log Analytics workspace Sentinel runs on (its name).")],
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
) -> None:
    """Plan (or with --apply, make) the Sentinel workspace's analytics rules match RULES.

    Signs in with the token in ENTRA_SIGMA_ARM_TOKEN when it is set; else with Azure's credentials, in
    this order: a service principal in the environment (AZURE_TENANT_ID, AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET), workload identity (OIDC), a managed identity, the Azure CLI (az login). See
    docs/deploy.md#signing-in."""
    from ...cli import usage_error
    from .sentinel import SentinelTarget, check_scope

    problems = check_scope(subscription, resource_group, workspace)
    if problems:
        failures = Failures(fmt, "sentinel", prune)
        stop = failures.usage("; ".join(problems))
        failures.print()
        raise stop
    common = Common(rules, apply, prune, keep_drifted, fmt, detailed_exitcode, table_schema, templates,
                    settings_from(concurrency, retries, max_wait, timeout))
    run_deploy(common, "arm", arm_endpoint, SentinelTarget,
               lambda client: SentinelTarget(client, subscription, resource_group, workspace))


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
) -> None:
    """Plan (or with --apply, make) the tenant's Defender XDR custom detections match RULES.

    Signs in with the token in ENTRA_SIGMA_GRAPH_TOKEN when it is set; else with Azure's credentials, in
    this order: a service principal in the environment (AZURE_TENANT_ID, AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET), workload identity (OIDC), a managed identity, the Azure CLI (az login). See
    docs/deploy.md#signing-in."""
    from .defender import DefenderTarget

    common = Common(rules, apply, prune, keep_drifted, fmt, detailed_exitcode, table_schema, templates,
                    settings_from(concurrency, retries, max_wait, timeout))
    run_deploy(common, "graph", graph_endpoint, DefenderTarget, DefenderTarget)


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

    from ...cli import usage_error
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
            raise fail(f"getschema failed, nothing written: {failure.describe()}")
        finally:
            client.close()
    for table in pulled.missing:
        typer.echo(f"warning: the workspace has no table {table}: not written", err=True)
    try:
        written = write_files(out, pulled.files)
    except OSError as error:
        raise usage_error(f"cannot write {out}: {error.strerror or error}")
    for path in written:
        typer.echo(f"wrote {display_path_for(path)}", err=True)
    raise typer.Exit(0)

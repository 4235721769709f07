"""What the docs say about columns, tables, counts and options holds for the data and the code
(issue 20, item 12).

Each claim is quoted as the page words it, and checked against `schemas/` (through the registry
and the catalog), the rule pack, the formats and the command line. A page that rewords a claim
must reword it here too, and a change of data that makes a claim false fails here.
"""

from __future__ import annotations

import json
import re

import pytest
import typer
import yaml
from entra_sigma.cli import app
from entra_sigma.map.tables import Absent, ColumnAccess
from entra_sigma.render.formats import FORMATS
from entra_sigma.validate.catalog import default_catalog
from entra_sigma.verbs.scaffold import scaffold

from .helpers import ALL_TABLES, REGISTRY, REPO

DOCS = REPO / "docs"
CATALOG = default_catalog()


def page(name: str) -> str:
    """A page's text with its lines joined, so a quoted claim may span a line break."""
    return " ".join((REPO / name).read_text(encoding="utf-8").split())


def column(table: str, path: str) -> str | None:
    """The column a table reads a beta path from, or None when it has none."""
    resolved = REGISTRY.mapping(table).resolve(path)
    return resolved.column if isinstance(resolved, ColumnAccess) else None


def says(name: str, claim: str) -> None:
    assert " ".join(claim.split()) in page(name), f"{name} no longer says: {claim}"


# -- columns ---------------------------------------------------------------------------------------
def test_rule_pack_columns_your_workspace_may_lack():
    says("docs/rule-pack.md", "`incomingTokenType`, `clientCredentialType` and `appOwnerTenantId` have columns in both "
         "user tables of the bundled schemas (`IncomingTokenType`, `ClientCredentialType`, `AppOwnerTenantId`)")
    for path, name in (("incomingTokenType", "IncomingTokenType"), ("clientCredentialType", "ClientCredentialType"),
                       ("appOwnerTenantId", "AppOwnerTenantId")):
        for table in REGISTRY.tables_for("sentinel", "signins"):
            assert column(table, path) == name, (table, path)


def test_rule_pack_what_has_a_column_in_one_table_or_none():
    says("docs/rule-pack.md", "**`ipAddressFromResourceProvider`** exists only in `SigninLogs`")
    assert [t for t in ALL_TABLES if column(t, "ipAddressFromResourceProvider")] == ["SigninLogs"]
    says("docs/rule-pack.md", "**`managedServiceIdentity`** (`msiType`, `associatedResourceId`, …) has no column in any table")
    for path in CATALOG.fields:
        if path.startswith("managedServiceIdentity."):
            assert not any(column(t, path) for t in ALL_TABLES), path


def test_rule_pack_grant_controls_are_an_array_inside_an_array():
    says("docs/rule-pack.md", "`appliedConditionalAccessPolicies.enforcedGrantControls` is an array inside an array")
    assert CATALOG.fields["appliedConditionalAccessPolicies.enforcedGrantControls"].arrays == (
        "appliedConditionalAccessPolicies", "appliedConditionalAccessPolicies.enforcedGrantControls")


def test_rule_pack_what_defender_lacks():
    says("docs/rule-pack.md", "`EntraIdSignInEvents` lacks most of these fields (authentication details, protocols, "
         "token types, the home tenant) and has no service principal or managed identity sign-ins")
    for path in ("authenticationDetails", "authenticationProtocol", "incomingTokenType", "homeTenantId"):
        assert column("EntraIdSignInEvents", path) is None, path
    for service in ("serviceprincipal", "managedidentity"):
        assert "EntraIdSignInEvents" not in REGISTRY.tables_for("defender", service)


def test_semantics_column_counts_and_names():
    says("docs/semantics.md", "`SigninLogs` has 98 columns (among them `IncomingTokenType`, `ClientCredentialType`, "
         "`SessionId`, `Agent`, `TokenProtectionStatusDetails`), `AADServicePrincipalSignInLogs` 47")
    signin = REGISTRY.tables["SigninLogs"].columns
    assert len(signin) == 98 and len(REGISTRY.tables["AADServicePrincipalSignInLogs"].columns) == 47
    assert {"IncomingTokenType", "ClientCredentialType", "SessionId", "Agent", "TokenProtectionStatusDetails"} <= set(signin)
    says("docs/semantics.md", "told apart by `IsManagedIdentity`")
    assert "IsManagedIdentity" in REGISTRY.tables["EntraIdSpnSignInEvents"].columns
    says("docs/semantics.md", "(`recordKeysWithoutColumn`, for example `incomingTokenType` in managed identity records)")
    table = json.loads((REPO / "schemas" / "tables" / "AADManagedIdentitySignInLogs.json").read_text(encoding="utf-8"))
    assert "incomingTokenType" in table["recordKeysWithoutColumn"]
    assert column("AADManagedIdentitySignInLogs", "incomingTokenType") is None


def test_the_two_user_tables():
    says("docs/semantics.md", "`service: signins` reads `SigninLogs` and `AADNonInteractiveUserSignInLogs`")
    assert REGISTRY.tables_for("sentinel", "signins") == ["SigninLogs", "AADNonInteractiveUserSignInLogs"]


def test_a_field_with_no_column_in_the_bundled_signinlogs():
    says("docs/semantics.md", "`signInEventTypes` has a column in the non-interactive table but none in the bundled "
         "`SigninLogs` schema")
    assert column("AADNonInteractiveUserSignInLogs", "signInEventTypes") and not column("SigninLogs", "signInEventTypes")
    assert isinstance(REGISTRY.mapping("SigninLogs").resolve("signInEventTypes"), Absent)


# -- counts ----------------------------------------------------------------------------------------
def test_counts_of_formats_tables_and_types():
    says("docs/output.md", "writes five formats per rule")
    says("docs/index.md", "the five output formats")
    assert len(FORMATS) == 5
    says("docs/output.md", "the two Defender formats")
    assert sum(1 for f in FORMATS if f.platform == "defender") == 2
    says("docs/ci.md", "is compiled for each of the seven tables")
    assert len(ALL_TABLES) == len(REGISTRY.tables) == 7
    says("docs/rule-format.md", "`entityType` is one of Sentinel's 18 types")
    schema = json.loads((REPO / "schemas" / "rule.schema.json").read_text(encoding="utf-8"))
    entity_types = re.findall(r'"entityType": \{[^{}]*"enum": (\[[^\]]*\])', json.dumps(schema))
    assert entity_types and all(len(json.loads(found)) == 18 for found in entity_types)


def test_the_readme_counts_the_bundled_rule_files():
    files = [p for p in (REPO / "rules").rglob("*.yml") if not p.name.endswith(".tests.yml")]
    says("README.md", f"Ends with `{len(files)} rule file(s) OK`")


def test_the_index_counts_sigmahqs_rules_as_the_generated_page_does():
    says("docs/index.md", "the outcome for each of SigmaHQ's 24 rules")
    says("docs/sigmahq.md", "## The 24 rules")  # docs/sigmahq.md is generated; tests/test_sigmahq.py holds it current


def test_a_level_maps_to_the_severities_rule_format_md_gives():
    from entra_sigma.render.settings import DEFENDER_SEVERITY, SENTINEL_SEVERITY

    says("docs/rule-format.md", "Sentinel severity: `Informational`/`Low`/`Medium`/`High`, and `critical` becomes `High`. "
         "Defender severity: the same in lower case.")
    assert SENTINEL_SEVERITY == {"informational": "Informational", "low": "Low", "medium": "Medium", "high": "High",
                                 "critical": "High"}
    assert DEFENDER_SEVERITY == {level: severity.lower() for level, severity in SENTINEL_SEVERITY.items()}


# -- options ---------------------------------------------------------------------------------------
def takers(option: str) -> set[str]:
    """Every verb (`deploy sentinel` for a sub-verb) that takes `option`."""
    found = set()

    def visit(command, path):
        for name, sub in getattr(command, "commands", {}).items():
            visit(sub, (*path, name))
        if not hasattr(command, "commands") and any(option in p.opts for p in command.params):
            found.add(" ".join(path))

    visit(typer.main.get_command(app), ())
    return found


@pytest.mark.parametrize("option", ["--table-schema", "--templates"])
def test_the_readme_lists_every_verb_that_takes_a_shared_option(option):
    readme = page("README.md")
    (listed,) = re.findall(rf"- `{option} [^`]+` \(([^)]*)\)", readme)
    assert set(re.findall(r"`([^`]+)`", listed)) == takers(option)


def test_the_readme_says_which_verbs_take_format_and_which_values():
    readme = page("README.md")
    (line,) = re.findall(r"- `--format text\|json\|sarif\|github` \(([^)]*)\)", readme)
    diagnostics = set(re.findall(r"`([^`]+)`", line))
    command = typer.main.get_command(app)
    choices = {}
    for verb in takers("--format"):
        sub = command
        for word in verb.split():
            sub = sub.commands[word]
        param = next(p for p in sub.params if "--format" in p.opts)
        choices[verb] = tuple(c.value for c in param.type_descriptor.choices) if param.type_descriptor.choices else None
    assert {v for v, c in choices.items() if c == ("text", "json", "sarif", "github")} == diagnostics
    assert choices["test"] == ("text", "json", "sarif", "github", "junit") and "`test` takes these and `junit`" in readme
    assert choices["deploy sentinel"] == choices["deploy defender"] == ("text", "markdown", "json")
    assert "`diff` takes `text|markdown`" in readme and "`deploy sentinel` and `deploy defender` take `text|markdown|json`" in readme
    assert set(choices) == diagnostics | {"test", "diff", "deploy sentinel", "deploy defender"}


# -- the team's CI, as docs/deploy.md shows it -----------------------------------------------------
def test_deploy_md_shows_the_init_workflows_check_steps():
    text = (DOCS / "deploy.md").read_text(encoding="utf-8")
    section = text.split("### In your repository", 1)[1].split("### In this repository", 1)[0]
    (block,) = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    shown = yaml.safe_load(block)
    workflow = yaml.safe_load(scaffold().files[".github/workflows/detections.yml"])
    steps = [s for s in workflow["jobs"]["check"]["steps"] if s.get("name") in ("Validate", "Test", "Build")]
    assert shown == steps
    assert ".venv/bin" not in section and "make " not in section

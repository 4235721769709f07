"""Rule text cannot become ARM expressions or YAML structure (issue 18, items 1 and 2).

ARM evaluates a string that starts with `[` and ends with `]`; a rule titled with such a string
would run `reference()`, `listKeys()` … at deployment. The Sentinel YAML held the entity
mapping identifier unescaped, so an identifier with line breaks could add a second `query:`,
which wins on load while `diff` shows the harmless KQL. The tests read the built files the
way ARM and YAML do; each fails on the code before the fix.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from entra_sigma.cli import app
from entra_sigma.render.readback import arm_escape, arm_literal, arm_strings, check_arm
from typer.testing import CliRunner

from .deploy_helpers import fake, sentinel, workspace_rules  # noqa: F401 (fake is a fixture)
from .helpers import REPO

STEAL = "[concat(reference(resourceId('Microsoft.KeyVault/vaults','kv'),'2019-09-01').vaultUri)]"
RULE = """title: {title}
id: 7c8d9e0f-1a2b-4c3d-8e4f-5a6b7c8d9e0f
description: {description}
logsource: {{product: entra, service: interactive}}
detection:
  sel:
    userAgent|contains: curl
  condition: sel
fields: [userPrincipalName, ipAddress, userAgent]
level: low
sentinel:
  customDetails:
    Agent: userAgent
  entityMappings:
    - entityType: Account
      fieldMappings:
        - {{identifier: {identifier}, field: userPrincipalName}}
"""
TEMPLATE_EXPRESSIONS = {"[format('Microsoft.OperationalInsights/workspaces/{0}', parameters('workspace'))]"}


def build(tmp_path: Path, text: str, *extra: str):
    rules = tmp_path / "rules"
    rules.mkdir(exist_ok=True)
    (rules / "r.yml").write_text(text, encoding="utf-8")
    out = tmp_path / "build"
    return CliRunner().invoke(app, ["build", str(rules), "--out", str(out), *extra]), out


def rule(title="Curl", description="A scripted sign-in.", identifier="FullName") -> str:
    return RULE.format(title=json.dumps(title), description=json.dumps(description), identifier=json.dumps(identifier))


def arm_expressions(document) -> set[str]:
    """Every string ARM would evaluate, read as ARM reads it."""
    return {value for _, value in arm_strings(document) if arm_literal(value) is None}


# -- ARM: what ARM's parser does ---------------------------------------------------------------------
@pytest.mark.parametrize("written, read", [
    ("[[test value]", "[test value]"),  # Microsoft's example: escaped
    ("[test] value", "[test] value"),  # Microsoft's example: does not end with `]`, so literal
    ("[", "["), ("]", "]"), ("[x", "[x"), ("x]", "x]"), ("[[", "[["), ("[[]", "[]"), ("plain", "plain"), ("", ""),
])
def test_arm_reads_literals_as_its_parser_does(written, read):
    assert arm_literal(written) == read


@pytest.mark.parametrize("text", ["[x]", "[]", "[[x]", "[[[]]]", STEAL, "[", "[x", "x]", "]", "", "a [b] c", "[[", "[\n]"])
def test_escaping_gives_back_exactly_the_text(text):
    assert arm_literal(arm_escape(text)) == text


def test_an_expression_is_recognised():
    assert arm_literal(STEAL) is None and arm_literal("[parameters('workspace')]") is None


def test_rule_text_in_the_arm_template_is_never_an_expression(tmp_path):
    result, out = build(tmp_path, rule(title=STEAL, description="[parameters('workspace')]"))
    assert result.exit_code == 0, result.output
    (path,) = (out / "arm").glob("*.json")
    document = json.loads(path.read_text(encoding="utf-8"))
    assert arm_expressions(document) == TEMPLATE_EXPRESSIONS
    properties = document["resources"][0]["properties"]
    assert arm_literal(properties["displayName"]) == STEAL
    assert arm_literal(properties["description"]) == "[parameters('workspace')]"
    assert properties["displayName"] == "[" + STEAL  # written `[[…]`, as Microsoft documents


def test_ordinary_arm_templates_are_unchanged():
    """Nothing to escape: every bundled rule's template has only the template's own expression."""
    from entra_sigma.build import Compiler, build_outputs

    outputs = build_outputs(Compiler(), [REPO / "rules"], ("arm",))
    assert outputs.files and all(arm_expressions(json.loads(t)) == TEMPLATE_EXPRESSIONS for t in outputs.files.values())


UNSAFE_ARM = """{% extends "bundled/arm/alert-rule.json.j2" %}"""


def test_a_template_that_writes_rule_text_raw_fails_the_build(tmp_path):
    """A user's template that forgets the filter: the build refuses the rule (E310), writes nothing."""
    templates = tmp_path / "templates" / "arm"
    templates.mkdir(parents=True)
    bundled = (REPO / "templates" / "arm" / "alert-rule.json.j2").read_text(encoding="utf-8")
    (templates / "alert-rule.json.j2").write_text(bundled.replace('"displayName": {{ rule.title | arm_json }}',
                                                                  '"displayName": {{ rule.title | tojson }}'), encoding="utf-8")
    result, out = build(tmp_path, rule(title=STEAL), "--templates", str(tmp_path / "templates"))
    assert result.exit_code == 1
    assert ("error: arm/r.json does not read back as built: ARM would evaluate \"" + STEAL + "\" at "
            "/resources/0/properties/displayName as an expression in rule") in result.stderr
    assert "E310" not in result.stderr and not out.exists()
    ordinary, out = build(tmp_path, rule(), "--templates", str(tmp_path / "templates"))
    assert ordinary.exit_code == 0, ordinary.output  # the template's own expression is fine


def test_check_arm_names_the_expression():
    assert check_arm('{"a": "[b()]"}', None, "", "") == "ARM would evaluate '[b()]' at /a as an expression"
    assert check_arm('{"a": "[b()]"}', None, "", '"a": "[b()]"') is None
    assert check_arm("not json", None, "", "").startswith("it is not JSON")


# -- Sentinel YAML -----------------------------------------------------------------------------------
INJECTION = "FullName\nquery: |\n  SigninLogs | where false\nx: |"


def test_an_injected_identifier_is_refused_with_its_location(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result, out = build(Path("."), rule(identifier=INJECTION))
    assert result.exit_code == 1
    assert (
        "rules/r.yml:17:12: error: 'FullName\\nquery: |\\n  SigninLogs | where false\\nx: |' is not an identifier of the "
        "Account entity in rule 'Curl' [sentinel] (identifiers: Name, FullName, NTDomain, DnsDomain, UPNSuffix, Sid, "
        "AadTenantId, AadUserId, PUID, IsDomainJoined, DisplayName, ObjectGuid)"
    ) in result.stderr.splitlines()
    assert not out.exists()


@pytest.mark.parametrize("written, hint", [
    ("fullname", "did you mean 'FullName'?"),
    ("AadUserID", "did you mean 'AadUserId'?"),
    ("FulName", "did you mean 'FullName'?"),
    ("UserPrincipalName", "identifiers: Name, FullName, NTDomain, DnsDomain, UPNSuffix, Sid, AadTenantId, AadUserId, PUID, "
                          "IsDomainJoined, DisplayName, ObjectGuid"),
])
def test_a_misspelt_identifier_gets_a_did_you_mean(tmp_path, written, hint):
    result, _ = build(tmp_path, rule(identifier=written))
    assert result.exit_code == 1
    assert f"'{written}' is not an identifier of the Account entity in rule 'Curl' [sentinel] ({hint})" in result.stderr


def test_every_identifier_sentinel_defines_is_accepted(tmp_path):
    from entra_sigma.render.settings import entity_identifiers

    for identifier in entity_identifiers()["Account"]:
        result, out = build(tmp_path, rule(identifier=identifier))
        assert result.exit_code == 0, result.output
        (path,) = (out / "sentinel").glob("*.yaml")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert loaded["entityMappings"] == [{"entityType": "Account", "fieldMappings": [
            {"identifier": identifier, "columnName": "userPrincipalName"}]}]


def test_the_entity_types_are_the_schemas():
    from entra_sigma.render.settings import entity_identifiers

    schema = json.loads((REPO / "schemas" / "rule.schema.json").read_text(encoding="utf-8"))
    assert list(entity_identifiers()) == schema["$defs"]["entityMapping"]["properties"]["entityType"]["enum"]


HOSTILE = "x\nquery: |\n  SigninLogs | where false\nname: \"[a]\" # ' \u2028 \x85 \t: - ? &a *a !tag {} [] @o #1 %"


def test_rule_text_loads_back_exactly_from_the_yaml(tmp_path):
    result, out = build(tmp_path, rule(title=HOSTILE, description=HOSTILE + "\n\nsecond paragraph\n"))
    assert result.exit_code == 0, result.output
    (path,) = (out / "sentinel").glob("*.yaml")
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    kql = next((out / "kql").glob("*.kql")).read_text(encoding="utf-8")
    assert loaded["name"] == HOSTILE and loaded["description"] == HOSTILE + "\n\nsecond paragraph"
    assert loaded["query"] == kql and "| where false" not in kql.split("\n", 1)[1]  # only the title's comment has it
    assert loaded["customDetails"] == {"Agent": "userAgent"}


def test_a_template_that_writes_rule_text_raw_fails_the_yaml_check(tmp_path):
    templates = tmp_path / "templates" / "sentinel"
    templates.mkdir(parents=True)
    bundled = (REPO / "templates" / "sentinel" / "analytics-rule.yaml.j2").read_text(encoding="utf-8")
    (templates / "analytics-rule.yaml.j2").write_text(bundled.replace("name: {{ rule.title | yaml_str }}",
                                                                      "name: {{ rule.title }}"), encoding="utf-8")
    result, out = build(tmp_path, rule(title="x\nquery: SigninLogs | where false"), "--templates", str(tmp_path / "templates"))
    assert result.exit_code == 1
    assert "error: sentinel/r.yaml does not read back as built: it is not valid YAML (" in result.stderr
    assert not out.exists()
    result, out = build(tmp_path, rule(title="Curl: a colon"), "--templates", str(tmp_path / "templates"))
    assert result.exit_code == 1 and "does not read back as built" in result.stderr


def test_a_duplicate_key_is_caught_even_in_a_users_template(tmp_path):
    templates = tmp_path / "templates" / "sentinel"
    templates.mkdir(parents=True)
    bundled = (REPO / "templates" / "sentinel" / "analytics-rule.yaml.j2").read_text(encoding="utf-8")
    (templates / "analytics-rule.yaml.j2").write_text(bundled + "query: SigninLogs | take 1\n", encoding="utf-8")
    result, out = build(tmp_path, rule(), "--templates", str(tmp_path / "templates"))
    assert result.exit_code == 1
    assert ("rules/r.yml:1:1: error: sentinel/r.yaml does not read back as built: it is not valid YAML (key 'query' "
            "written twice at line 42) in rule 'Curl' [sentinel] (a template writes a value unescaped; see "
            "docs/hardening.md#trust-boundary)") in result.stderr


def test_yaml_str_writes_plain_words_as_pyyaml_does():
    """Its fast path for plain words gives PyYAML's own output, and each loads back as itself."""
    import random
    import string

    from entra_sigma.render.renderer import yaml_str

    def pyyaml(value):
        return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30).strip().removesuffix("\n...")

    rng = random.Random(18)
    words = ["FullName", "T1110.003", "SigninLogs", "status_errorCode", "Yes", "NO", "On", "off", "null", "y", "n", "True",
             "inf", "NaN", "a/b-c.d"]
    words += [rng.choice(string.ascii_letters) + "".join(rng.choice(string.ascii_letters + string.digits + "_./-")
                                                         for _ in range(rng.randint(0, 8))) for _ in range(5000)]
    for value in [*words, 0, 1, 10000, -1, 2**40, True, False]:
        assert yaml_str(value) == pyyaml(value), value
        assert yaml.safe_load(f"k: {yaml_str(value)}")["k"] == value


def test_deploy_sends_rule_text_as_arm_reads_it(fake, tmp_path):  # noqa: F811
    """`deploy sentinel` PUTs the template's properties through the REST API, which evaluates no
    expression: the title must arrive as `[…]`, not as the template's `[[…]` escape."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yml").write_text(rule(title="[Curl]", description=STEAL), encoding="utf-8")
    assert sentinel(fake, rules, "--apply").exit_code == 0
    (stored,) = workspace_rules(fake).values()
    assert stored["properties"]["displayName"] == "[Curl]"
    assert stored["properties"]["description"].startswith(STEAL + "\n")  # then the marker
    again = sentinel(fake, rules)
    assert again.exit_code == 0 and "0 to create, 0 to update, 0 drifted, 0 to delete, 1 unchanged" in again.stdout

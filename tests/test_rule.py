"""model/rule.py: a schema-valid document → a frozen Rule (or the located reasons why not)."""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.diagnostics import Diagnostic, SourceLocation
from entra_sigma.load.loader import parse_yaml
from entra_sigma.model import ir
from entra_sigma.model.rule import Rule, build_rule, detection_keys, origin_locator
from entra_sigma.validate.catalog import default_catalog

HEAD = """title: t
id: 0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c
logsource: {product: entra, service: interactive}
"""


def document(text: str):
    parsed, problems = parse_yaml(text, Path("rules/r.yml"), "rules/r.yml")
    assert problems == []
    return parsed


def build(text: str):
    return build_rule(document(text), default_catalog())


def at(line: int, column: int) -> SourceLocation:
    return SourceLocation("rules/r.yml", line, column)


def test_a_rule_is_built_with_typed_and_normalised_parts():
    rule, diagnostics = build(HEAD + """description: |
  Two lines
  of text.
level: high
tags: [attack.t1078, attack.initial_access]
fields: [userPrincipalName, ipAddress]
detection:
  sel:
    incomingTokenType: PrimaryRefreshToken
    status.errorCode: '50126'
  condition: sel
""")
    assert diagnostics == []
    assert rule == Rule(
        id="0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c",
        title="t",
        level="high",
        description="Two lines\nof text.",
        service="interactive",
        tags=("attack.t1078", "attack.initial_access"),
        fields=("userPrincipalName", "ipAddress"),
        condition=ir.And((
            ir.Match("incomingTokenType", "eq", "primaryRefreshToken", False, "sel"),
            ir.Match("status.errorCode", "eq", 50126, False, "sel"),
        )),
        source="rules/r.yml",
        document=None,  # not compared
    )
    assert rule.data["level"] == "high"


def test_defaults_for_optional_parts():
    rule, _ = build(HEAD + "detection:\n  sel: {userPrincipalName: a}\n  condition: sel\n")
    assert (rule.level, rule.description, rule.tags, rule.fields) == ("medium", "", (), ())


def test_settings_returns_a_section_only_when_it_is_a_mapping():
    rule, _ = build(HEAD + "detection:\n  sel: {userPrincipalName: a}\n  condition: sel\n"
                    "sentinel: {queryFrequency: 1h}\n")
    assert rule.settings("sentinel") == {"queryFrequency": "1h"}
    assert rule.settings("defender") == {}


def test_detection_keys_lists_every_field_key_with_its_selection_and_index():
    doc = document(HEAD + """detection:
  a: {userPrincipalName|endswith: x, ipAddress: y}
  b:
    - appId: '1'
    - appId: '2'
      userAgent: z
  condition: a or b
""")
    assert list(detection_keys(doc)) == [
        ("a", None, "userPrincipalName|endswith"), ("a", None, "ipAddress"),
        ("b", 0, "appId"), ("b", 1, "appId"), ("b", 1, "userAgent"),
    ]


def test_origin_locator_finds_the_key_a_match_came_from():
    doc = document(HEAD + """detection:
  a: {userPrincipalName|endswith: x}
  b:
    - appId: '1'
    - appId: '2'
  condition: a or b
""")
    locate = origin_locator(doc)
    assert locate(ir.Origin("a", "userPrincipalName")) == at(5, 7)
    assert locate(ir.Origin("b", "appId", 1)) == at(8, 7)
    assert locate(ir.Origin("b", "userAgent")) == at(6, 3)  # unknown key: its selection
    assert locate(None) == at(9, 3)  # no origin: the condition


# -- refusals ---------------------------------------------------------------------------------------


def test_every_meaningless_or_unknown_modifier_is_reported():
    rule, diagnostics = build(HEAD + """detection:
  sel:
    userAgent|base64|contains: x
    userPrincipalName|wide: y
    appId|sha256: z
  condition: sel
""")
    assert rule is None
    assert diagnostics == [
        Diagnostic("E110", "modifier 'base64' has no meaning on sign-in logs: values are not base64-encoded in sign-in logs", at(6, 5), "t"),
        Diagnostic("E110", "modifier 'wide' has no meaning on sign-in logs: sign-in logs hold text, not UTF-16 bytes", at(7, 5), "t"),
        Diagnostic("E110", "unknown modifier 'sha256'", at(8, 5), "t", "see docs/rule-format.md#modifiers"),
    ]


def test_each_bad_regex_in_a_list_of_maps_is_located_at_its_key():
    _, diagnostics = build(HEAD + """detection:
  sel:
    - userAgent|re: 'ok.*'
    - userAgent|re: ['fine', '(?<=x)y']
  condition: sel
""")
    assert diagnostics == [Diagnostic(
        "E105", "invalid regular expression for 'userAgent' (KQL uses RE2): invalid perl operator: (?<=", at(7, 7), "t",
    )]


def test_fieldref_with_startswith_is_an_unsupported_construct_at_its_key():
    _, diagnostics = build(HEAD + """detection:
  sel:
    userPrincipalName: x
    homeTenantId|fieldref|startswith: resourceTenantId
  condition: sel
""")
    assert diagnostics == [Diagnostic("E109", "fieldref with startswith/endswith is not supported", at(7, 5), "t")]


def test_condition_errors_point_at_the_condition():
    _, diagnostics = build(HEAD + "detection:\n  sel: {userPrincipalName: a}\n  condition: sel and (\n")
    assert [(d.code, d.location) for d in diagnostics] == [("E003", at(6, 3))]
    assert diagnostics[0].message.startswith("invalid condition: ")


def test_field_problems_in_detection_and_fields_are_collected_together():
    _, diagnostics = build(HEAD + """detection:
  a: {userPrincipalNam: x}
  b: {status.errorCode: x}
  condition: a or b
fields: [ipAdress]
""")
    assert [str(d) for d in diagnostics] == [
        "rules/r.yml:5:7: error: unknown field 'userPrincipalNam' in rule 't' (did you mean 'userPrincipalName'?)",
        "rules/r.yml:6:7: error: 'status.errorCode' is a number (int), not 'x' in rule 't'",
        "rules/r.yml:8:10: error: unknown field 'ipAdress' in 'fields' in rule 't' (did you mean 'ipAddress'?)",
    ]


def test_a_problem_on_the_second_key_for_one_field_points_at_that_key():
    _, diagnostics = build(HEAD + """detection:
  sel:
    status.errorCode: 50126
    status.errorCode|contains: '5'
  condition: sel
""")
    assert [d.location for d in diagnostics] == [at(7, 5)]

"""The project file (project/file.py, project/environment.py, load/toml_positions.py) and overrides.

entra-sigma.toml is found upward from the working directory or named by --config, read by
tomllib, located key by key, and checked against schemas/project.schema.json; every problem is
a located diagnostic. An environment merges [defaults] with its own table. Overrides of a
rule's settings are checked as the rule's own are, and located in the project file.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from entra_sigma.build import Compiler, build_outputs
from entra_sigma.cli import app
from entra_sigma.load.toml_positions import key_positions
from entra_sigma.project.environment import build_environment
from entra_sigma.project.file import find_project, read_project
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from .helpers import REPO

EXAMPLE = REPO / "docs" / "examples" / "environments"
RULE = """title: Wrong password
id: 3f6c2a1e-7b4d-4c9e-9a2f-1d8e5b7c6a10
name: wrong_password
tags: [attack.credential_access, attack.t1110.003]
logsource: {product: entra, service: signins}
detection:
  sel:
    status.errorCode: 50126
  condition: sel
fields: [userPrincipalName, ipAddress]
level: low
"""


def run(*args: str, cwd: Path | None = None, monkeypatch=None):
    if cwd is not None:
        monkeypatch.chdir(cwd)
    return CliRunner().invoke(app, [str(a) for a in args])


def project_at(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "entra-sigma.toml").write_text(text, encoding="utf-8")
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "rules" / "wrong-password.yml").write_text(RULE, encoding="utf-8")
    return folder / "entra-sigma.toml"


# -- where each key is written ---------------------------------------------------------------------
def paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, prefix + (index,))


@pytest.mark.parametrize("path", [REPO / "entra-sigma.toml", EXAMPLE / "entra-sigma.toml", REPO / "tests" / "sigmahq" / "entra-sigma.toml"],
                         ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_key_of_a_real_project_file_has_its_position(path):
    text = path.read_text(encoding="utf-8")
    positions = key_positions(text)
    assert [p for p in paths(tomllib.loads(text)) if p not in positions] == []
    lines = text.splitlines()
    for key, (line, column) in positions.items():
        if key and isinstance(key[-1], str) and not lines[line - 1].lstrip().startswith("["):
            assert lines[line - 1][column - 1:].startswith((key[-1], f'"{key[-1]}"')), (key, line, column)


def test_positions_of_quoted_dotted_inline_and_array_of_tables_keys():
    text = (
        'a."b.c".d = 1\n[t]\n"q\\"k" = { x = [1, {y = 2}], z = """multi\nline""" }\n'
        "[[arr]]\nv = 'lit'\n[[arr]]\nv = 2\n[arr.sub]\nw = [\n  1, # a comment\n  2,\n]\n"
    )
    positions = key_positions(text)
    assert positions[("a", "b.c", "d")] == (1, 9)
    assert positions[("t", 'q"k', "x", 1, "y")] == (3, 21)
    assert positions[("t", 'q"k', "z")] == (3, 30)
    assert positions[("arr", 1, "v")] == (8, 1)
    assert positions[("arr", 1, "sub", "w", 1)] == (12, 3)
    assert [p for p in paths(tomllib.loads(text)) if p not in positions] == []


KEY = st.from_regex(r"[A-Za-z_][A-Za-z0-9_-]{0,6}", fullmatch=True) | st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=6)
VALUE = st.recursive(
    st.integers() | st.booleans() | st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEY, inner, max_size=3), max_leaves=8,
)


def toml_string(text: str) -> str:
    """A TOML basic string: JSON's escapes, minus the UTF-16 pairs TOML refuses, plus DEL."""
    import json

    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_key(key: str) -> str:
    return key if all(c.isascii() and (c.isalnum() or c in "_-") for c in key) and key else toml_string(key)


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return "{ " + ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"


@settings(max_examples=60, derandomize=True, database=None, deadline=None)
@given(st.dictionaries(KEY, st.dictionaries(KEY, VALUE, max_size=4), min_size=1, max_size=3))
def test_every_key_tomllib_reads_has_a_position(tables):
    text = "".join(f"[{toml_key(name)}]\n" + "".join(f"{toml_key(k)} = {toml_value(v)}\n" for k, v in body.items())
                   for name, body in tables.items())
    data = tomllib.loads(text)
    positions = key_positions(text)
    assert [p for p in paths(data) if p not in positions] == []


# -- finding and reading it ------------------------------------------------------------------------
def test_the_project_file_is_found_upward(tmp_path):
    path = project_at(tmp_path, "[environments.a]\n")
    (tmp_path / "rules" / "deep").mkdir()
    assert find_project(tmp_path / "rules" / "deep") == path
    assert find_project(REPO / "docs" / "examples" / "environments" / "rules") == EXAMPLE / "entra-sigma.toml"


def test_a_toml_syntax_error_is_located(tmp_path, monkeypatch):
    project_at(tmp_path, '[environments.prod]\nsentinel = { workspace = "law" \n')
    result = run("validate", "rules", "--env", "prod", cwd=tmp_path, monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert result.stderr == "entra-sigma.toml:2:32: error: invalid TOML: Unclosed inline table\n1 error(s) in 1 of 1 file(s)\n"


def test_a_misspelt_key_gets_a_did_you_mean(tmp_path, monkeypatch):
    project_at(tmp_path, '[environments.prod]\nsentinal = { workspace = "law" }\n[environments.prod.placeholdrs]\negress = ["192.0.2.0/24"]\n')
    result = run("build", "rules", "--env", "prod", cwd=tmp_path, monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "entra-sigma.toml:2:1: error: unknown key 'sentinal' in 'environments.prod' (did you mean 'sentinel'?)",
        "entra-sigma.toml:3:1: error: unknown key 'placeholdrs' in 'environments.prod' (did you mean 'placeholders'?)",
        "2 error(s) in 1 of 1 file(s)",
    ]


def test_a_wrong_value_says_what_it_must_be(tmp_path):
    path = project_at(tmp_path, '[environments.prod.rules.wrong_password]\nqueryPeriod = "2w"\n[environments.prod.placeholders]\nx = []\n')
    _, problems = read_project(path)
    assert sorted(str(p).split(": ", 1)[1] for p in problems) == [
        "error: 'environments.prod.placeholders.x' is empty: give at least one value",
        "error: 'environments.prod.rules.wrong_password.queryPeriod' must be a duration such as 5m, 1h or 14d, not '2w'",
    ]
    assert sorted((p.location.line, p.location.column, p.code) for p in problems) == [(2, 1, "E702"), (4, 1, "E702")]


def test_an_unknown_environment_is_a_located_error_with_a_did_you_mean(tmp_path, monkeypatch):
    project_at(tmp_path, "[environments.prod]\n[environments.dev]\n")
    result = run("compile", "rules", "--env", "prd", cwd=tmp_path, monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert result.stderr == "entra-sigma.toml:1:2: error: unknown environment 'prd' (did you mean 'prod'?)\n1 error(s) in 1 of 1 file(s)\n"


def test_env_without_a_project_file_is_a_usage_error(tmp_path, monkeypatch):
    (tmp_path / "rules").mkdir()
    result = run("validate", "rules", "--env", "prod", cwd=tmp_path, monkeypatch=monkeypatch)
    assert result.exit_code == 2
    assert result.stderr == ("entra-sigma: error: --env needs a project file: no entra-sigma.toml here or in a folder above "
                             "(see docs/environments.md; --config FILE names one)\n")
    assert run("validate", "rules", "--env", "a", "--all-envs").exit_code == 2


def test_a_missing_filter_path_is_located_in_the_project_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = project_at(tmp_path, '[defaults]\nfilters = ["filters/commn"]\n[environments.prod]\n')
    project, _ = read_project(path)
    _, problems = build_environment(project, "prod")
    assert [str(p) for p in problems] == [
        "entra-sigma.toml:2:12: error: filter path 'filters/commn' does not exist (paths are relative to the folder of entra-sigma.toml)"
    ]


def test_an_environment_merges_the_defaults():
    project, problems = read_project(EXAMPLE / "entra-sigma.toml")
    assert problems == []
    dev, _ = build_environment(project, "dev")
    prod, _ = build_environment(project, "prod")
    assert dev.placeholders["corporate_egress"].values == ("192.0.2.0/24", "198.51.100.0/24")
    assert prod.placeholders["corporate_egress"].values == ("203.0.113.0/24",)
    assert [f.display for f in dev.filters] == ["filters/common/mf_known_scanner.yml"]
    assert [f.display for f in prod.filters] == ["filters/common/mf_known_scanner.yml", "filters/prod/mf_legacy_auth_printers.yml"]
    assert (dev.defender, prod.defender) == (False, True)
    assert prod.sentinel == {"subscription": "00000000-0000-4000-8000-000000000001", "resource-group": "rg-sentinel", "workspace": "law-prod"}


# -- overrides ---------------------------------------------------------------------------------------
def built(tmp_path: Path, toml: str, environment: str = "prod"):
    path = project_at(tmp_path, toml)
    project, problems = read_project(path)
    assert problems == [], problems
    env, problems = build_environment(project, environment)
    assert problems == []
    return build_outputs(Compiler(environment=env), [tmp_path / "rules"])


def test_overrides_change_the_rule_s_settings_in_their_environment_only(tmp_path):
    toml = ('[defaults.rules.wrong_password]\nqueryFrequency = "2h"\nqueryPeriod = "2h"\n'
            '[environments.prod.rules.wrong_password]\nlevel = "high"\nqueryFrequency = "30m"\nenabled = false\n'
            'suppression = { enabled = true, duration = "1h" }\ntriggerThreshold = 3\n[environments.dev]\n')
    prod = built(tmp_path, toml)
    assert prod.ok, prod.diagnostics
    yaml_text = prod.files["sentinel/wrong-password.yaml"]
    for line in ("severity: High", "queryFrequency: 30m", "queryPeriod: 2h", "triggerThreshold: 3", "suppressionEnabled: true",
                 "suppressionDuration: 1h"):
        assert f"\n{line}\n" in yaml_text, line
    assert '"enabled": false' in prod.files["arm/wrong-password.json"]
    assert '"status": "disabled"' in prod.files["defender/detections/wrong-password.json"]
    assert "// level: high" in prod.files["kql/wrong-password.kql"]
    dev = built(tmp_path / "dev", toml, "dev")
    assert "severity: Low" in dev.files["sentinel/wrong-password.yaml"] and "queryFrequency: 2h" in dev.files["sentinel/wrong-password.yaml"]


def test_an_override_is_checked_as_the_rule_is_and_located_in_the_project_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    toml = '[environments.prod.rules.wrong_password]\nqueryFrequency = "2h"\nqueryPeriod = "1h"\n'
    outputs = built(tmp_path, toml)
    assert [str(d) for d in outputs.diagnostics if d.severity == "error"] == [
        "entra-sigma.toml:3:1: error: 'sentinel.queryPeriod' must be at least 'sentinel.queryFrequency' in rule 'Wrong password' [sentinel]"
    ]
    toml = '[environments.prod.rules.wrong_password]\nqueryPeriod = "15d"\n'
    outputs = built(tmp_path / "b", toml)
    assert [str(d) for d in outputs.diagnostics if d.severity == "error"] == [
        "b/entra-sigma.toml:2:1: error: 'sentinel.queryPeriod' must be between 5m and 14d in rule 'Wrong password' [sentinel]"
    ]


def test_an_override_naming_an_unknown_rule(tmp_path, monkeypatch):
    project_at(tmp_path, '[environments.prod.rules.wrong_pasword]\nlevel = "high"\n')
    result = run("validate", "rules", "--env", "prod", cwd=tmp_path, monkeypatch=monkeypatch)
    assert result.exit_code == 1
    assert ("entra-sigma.toml:1:1: error: an override names rule 'wrong_pasword', which no rule file has "
            "(did you mean 'wrong_password'?)") in result.stderr


def test_a_rule_named_but_not_read_is_looked_for_in_the_project_s_rules_folder(tmp_path, monkeypatch):
    """`compile rules/other.yml --env prod` must not call the override of wrong_password unknown."""
    project_at(tmp_path, '[environments.prod.rules.wrong_password]\nlevel = "high"\n')
    (tmp_path / "rules" / "other.yml").write_text(RULE.replace("3f6c2a1e", "4f6c2a1e").replace("name: wrong_password", "name: other")
                                                  .replace("title: Wrong password", "title: Other"), encoding="utf-8")
    result = run("compile", "rules/other.yml", "--env", "prod", cwd=tmp_path, monkeypatch=monkeypatch)
    assert result.exit_code == 0, result.stderr


def test_filters_are_named_below_the_project_folder_and_never_outside_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "f.yml").write_text("title: f\nlogsource: {product: entra}\nfilter:\n  rules: any\n  s:\n    userAgent: x\n  condition: not s\n",
                                               encoding="utf-8")
    (tmp_path / "repo" / "filters").mkdir(parents=True)
    (tmp_path / "repo" / "filters" / "linked").symlink_to(tmp_path / "shared")
    path = project_at(tmp_path / "repo", '[defaults]\nfilters = ["./filters", "../shared/f.yml"]\n[environments.prod]\n')
    project, _ = read_project(path)
    environment, problems = build_environment(project, "prod")
    assert [f.display for f in environment.filters] == ["filters/linked/f.yml"]  # as written below the project, not where the link leads
    assert [str(p) for p in problems] == [
        "repo/entra-sigma.toml:2:25: error: filter path '../shared/f.yml' is outside the folder of repo/entra-sigma.toml "
        "(filters live in the repository, beside entra-sigma.toml)"
    ]


def test_the_schemas_repeat_the_rule_schema_s_definitions_word_for_word():
    """Editors resolve no reference to another file, so the project, filter and tests schemas
    hold copies of what they share with rule.schema.json: an override is checked as the rule's
    own setting is, a filter's selection as a rule's."""
    import json

    def load(name):
        return json.loads((REPO / "schemas" / name).read_text(encoding="utf-8"))

    rule, project, filter_, tests = (load(f"{n}.schema.json") for n in ("rule", "project", "filter", "rule-tests"))
    sentinel = rule["$defs"]["sentinel"]["properties"]
    override = project["$defs"]["override"]["properties"]
    assert project["$defs"]["duration"] == rule["$defs"]["duration"]
    assert sentinel["queryFrequency"] == sentinel["queryPeriod"] == override["queryFrequency"] == override["queryPeriod"] == {"$ref": "#/$defs/duration"}
    assert override["level"] == rule["properties"]["level"]
    assert {k: override[k] for k in ("triggerOperator", "triggerThreshold", "suppression")} == \
        {k: sentinel[k] for k in ("triggerOperator", "triggerThreshold", "suppression")}
    assert override["enabled"]["type"] == sentinel["enabled"]["type"]
    assert {k: filter_["$defs"][k] for k in ("scalar", "selectionMap")} == {k: rule["$defs"][k] for k in ("scalar", "selectionMap")}
    assert filter_["$defs"]["selection"] == rule["properties"]["detection"]["additionalProperties"]
    assert {k: filter_["properties"][k] for k in ("id", "name", "date", "modified")} == {k: rule["properties"][k] for k in ("id", "name", "date", "modified")}
    watchlist = tests["properties"]["placeholders"]["additionalProperties"]["anyOf"][2]["properties"]
    assert {k: watchlist[k] for k in ("watchlist", "column")} == project["$defs"]["watchlist"]["properties"]
    from jsonschema import Draft202012Validator

    for schema in (project, filter_, tests):
        assert ".schema.json#" not in json.dumps(schema)
        Draft202012Validator.check_schema(schema)


def test_a_workspace_the_file_names_is_checked_where_it_is_written(tmp_path):
    path = project_at(tmp_path, '[environments.prod]\nsentinel = { subscription = "sub-1", resource-group = "rg", workspace = "law prod" }\n')
    _, problems = read_project(path)
    assert sorted((p.location.line, p.location.column, p.code, p.message) for p in problems) == [
        (2, 14, "E702", "'environments.prod.sentinel.subscription' must be a subscription id (a GUID), not 'sub-1'"),
        (2, 61, "E702", "'environments.prod.sentinel.workspace' must be a Log Analytics workspace name (3 to 90 letters, "
                        "digits and inner hyphens), not 'law prod'"),
    ]


def test_a_hostile_project_file_is_refused_with_a_reason_not_a_crash(tmp_path):
    deep = project_at(tmp_path, "a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    _, problems = read_project(deep)
    assert [(p.code, p.message) for p in problems] == [
        ("E701", "the project file nests 100000 levels deep (arrays and inline tables); at most 32")]
    (tmp_path / "entra-sigma.toml").write_bytes(b"a = 1\n" + b"#" * (1 << 20))
    assert [p.message for p in read_project(deep)[1]] == ["the project file is larger than 1 MiB"]
    (tmp_path / "entra-sigma.toml").write_bytes(b'a = "\xff"\n')
    assert [p.code for p in read_project(deep)[1]] == ["E701"]

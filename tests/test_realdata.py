"""The compiler's picture of the tables, held against sign-in rows that Entra wrote.

tests/realdata/ holds the MIT-licensed real rows (Microsoft's published samples, see its
README). Every bundled rule's shipped queries are replayed over them; the outcome per rule is
pinned in tests/realdata/replay.txt, so a change in what a rule returns on real data shows in
review. Rows from sources that may not be copied stay in ../shared/realdata: the tests that
need them run only where that folder exists (CI has it beside the checkout).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from entra_sigma.build import Compiler
from entra_sigma.dev.realreplay import FAILED, SUPPORTED, replay_rows, summary
from entra_sigma.dev.graph_objects import disagreements
from entra_sigma.dev.realrows import GraphObject, RealRow, UnknownShape, graph_objects, load_folder, table_row
from entra_sigma.map.tables import bundled_registry
from entra_sigma.verbs.ruletests.replay import LocalEngine, Replayed

from .helpers import PACK, REPO, TESTS, compile_text

REALDATA = TESTS / "realdata"
SHARED_REALDATA = REPO.parent / "shared" / "realdata"
RULES = REPO / "rules"
COLUMNS = {name: table.columns for name, table in bundled_registry().tables.items()}


@pytest.fixture(scope="module")
def real_rows() -> list[RealRow]:
    return load_folder(REALDATA, COLUMNS)


@pytest.fixture(scope="module")
def replayed(real_rows):
    return replay_rows(Compiler(environment=PACK), [RULES], real_rows)


def test_the_copied_rows_are_the_published_ones(real_rows):
    by_file: dict[str, int] = {}
    for row in real_rows:
        label = row.source.split("#")[0]
        by_file[label] = by_file.get(label, 0) + 1
    assert by_file == {
        "msticpy-aad_logons": 86, "msticpy-training-aad_signin_random": 300,
        "msticpy-training-aad_signin_user": 31, "sentinel-training-lab-sign-in_adelete": 2,
    }
    assert {row.table for row in real_rows} == {"SigninLogs"}


@pytest.mark.replay
def test_no_shipped_query_fails_on_real_rows(replayed):
    outcomes, problems = replayed
    assert problems == []
    assert [o.line() for o in outcomes if o.status == FAILED] == []
    assert sum(1 for o in outcomes if o.status == SUPPORTED) >= 20  # most queries really ran


@pytest.mark.replay
def test_what_each_rule_does_on_real_rows_is_recorded(replayed, real_rows):
    outcomes, _ = replayed
    recorded = (REALDATA / "replay.txt").read_text(encoding="utf-8")
    assert summary(outcomes, real_rows) == recorded, (
        "re-run: .venv/bin/python -m compiler.dev.realreplay rules --realdata tests/realdata --out tests/realdata/replay.txt"
    )


def _with(rows: list[RealRow], **values) -> list[RealRow]:
    return [dataclasses.replace(row, values={**row.values, **values}) for row in rows]


def _run(rows: list[RealRow], *rules: Path) -> list[list[tuple]]:
    """For each rule, (time, user) of each row its Sentinel query returns, sorted. The rows
    are loaded into the local engine once for all the rules."""
    engine = LocalEngine(bundled_registry())
    engine.load({t: [table_row(r, COLUMNS[t]) for r in rows if r.table == t] for t in {r.table for r in rows}})
    returned = []
    for rule in rules:
        compiled = Compiler(environment=PACK).compile_paths([rule])
        assert [d for d in compiled.diagnostics if d.severity == "error"] == []
        result = engine.run(compiled.compiled[0].texts["sentinel"])
        assert isinstance(result, Replayed), result
        time, user = result.columns.index("TimeGenerated"), result.columns.index("userPrincipalName")
        returned.append(sorted((str(row[time]), row[user]) for row in result.rows))
    return returned


def _keys(rows: list[RealRow]) -> list[tuple]:
    return sorted((str(table_row(r, COLUMNS[r.table])["TimeGenerated"]), r.values["UserPrincipalName"]) for r in rows)


@pytest.mark.replay
def test_an_unmanaged_device_is_a_device_detail_without_is_managed(real_rows):
    """Real unmanaged devices carry no isManaged key. Given a primary refresh token, every one of
    them is what prt-unmanaged-device looks for, and prt-noncompliant-device (managed devices
    only) matches none."""
    plain = [row for row in real_rows if not row.obfuscated]
    assert plain and all("isManaged" not in row.values["DeviceDetail"] for row in plain)
    with_prt = _with(plain, IncomingTokenType="primaryRefreshToken")
    unmanaged, noncompliant = _run(with_prt, RULES / "tokens/prt-unmanaged-device.yml", RULES / "tokens/prt-noncompliant-device.yml")
    assert unmanaged == _keys(with_prt)
    assert noncompliant == []
    assert _run(plain, RULES / "tokens/prt-unmanaged-device.yml") == [[]]  # 2020-2021 rows: no token type


@pytest.mark.replay
def test_user_type_matches_the_tables_spelling(real_rows):
    rule = """
title: members
id: 5a1f0000-0000-4000-8000-000000000001
logsource: {product: entra, service: interactive}
detection:
  sel: {userType: member}
  condition: sel
fields: [userType]
"""
    query, diagnostics = compile_text(rule)
    assert diagnostics == [] and 'UserType =~ "member"' in query
    spelt = [row for row in real_rows if row.values.get("UserType") == "Member"]
    assert len(spelt) == 2  # the 2021 export writes Member, as Entra does
    engine = LocalEngine(bundled_registry())
    engine.load({"SigninLogs": [table_row(row, COLUMNS["SigninLogs"]) for row in spelt]})
    result = engine.run(query)
    assert [row[-1] for row in result.rows] == ["Member", "Member"]


@pytest.mark.replay
@pytest.mark.parametrize("members, expected", [
    (["application"], {1, 3, 19, 23, 279}),
    (["users"], {3, 19, 23, 279}),
    (["none"], {0}),
    (["none", "devicePlatform"], {0, 23, 279}),
    (["clientType", "deviceState"], {19, 23, 279}),
    (["location"], set()),
])
def test_bit_tests_agree_with_the_real_numbers(members, expected):
    """The KQL a flags member becomes, run by the local engine on the numbers real rows hold in
    conditionsSatisfied (0, 1, 3, 19, 23, 279), selects what bit arithmetic says it should."""
    from entra_sigma.convert.kql import KqlGenerator
    from entra_sigma.validate.catalog import default_catalog

    enum = default_catalog().enums["conditionalAccessConditions"]
    test = KqlGenerator.bits("toint(c)", tuple(enum.number(m) for m in members))
    numbers = [0, 1, 3, 19, 23, 279]
    query = f"datatable(c:dynamic)[{', '.join(f'dynamic({n})' for n in numbers)}] | where {test}"
    engine = LocalEngine(bundled_registry())
    result = engine.run(query)
    assert {int(row[0]) for row in result.rows} == expected


needs_shared = pytest.mark.skipif(
    not SHARED_REALDATA.is_dir(), reason="../shared/realdata is not beside the checkout (its records may not be copied)"
)


@pytest.fixture(scope="module")
def all_real_rows() -> list[RealRow]:
    return load_folder(SHARED_REALDATA, COLUMNS)


@pytest.mark.replay
@needs_shared
def test_no_shipped_query_fails_on_any_real_row(all_real_rows):
    outcomes, problems = replay_rows(Compiler(environment=PACK), [RULES], all_real_rows)
    assert problems == []
    assert [o.line() for o in outcomes if o.status == FAILED] == []


@pytest.mark.replay
@needs_shared
def test_prt_noncompliant_device_matches_the_2025_hybrid_joined_sign_in(all_real_rows):
    """The real 2025 non-interactive sign-in from a hybrid-joined managed device: a primary
    refresh token, `"isManaged": true`, no isCompliant key. It is the rule's case exactly."""
    (hybrid,) = [row for row in all_real_rows if row.source == "sekoia/sign-in_activity6"]
    assert hybrid.values["DeviceDetail"]["isManaged"] is True
    assert "isCompliant" not in hybrid.values["DeviceDetail"]
    assert hybrid.values["IncomingTokenType"] == "primaryRefreshToken"
    noncompliant, unmanaged = _run(all_real_rows, RULES / "tokens/prt-noncompliant-device.yml", RULES / "tokens/prt-unmanaged-device.yml")
    assert noncompliant == _keys([hybrid])
    # the other real primary refresh token comes from a compliant device: neither rule fires on it
    assert unmanaged == []


def _catalog() -> dict:
    return json.loads((REPO / "schemas" / "signin-catalog.json").read_text(encoding="utf-8"))


def test_the_catalog_agrees_with_real_graph_beta_objects():
    """Sekoia's two interactive sign-ins as `GET /beta/auditLogs/signIns` returned them: every
    key is a catalog path, every value has the catalog's type, every enum value is a member."""
    objects = graph_objects(REALDATA)
    assert [(o.source, o.real) for o in objects] == [
        ("realdata/sekoia-automation-library-graph-beta-signins#0", True),
        ("realdata/sekoia-automation-library-graph-beta-signins#1", True),
    ]
    assert len({key for o in objects for key in o.values}) == 59  # the README: each object has the same 59 keys
    assert disagreements(objects, _catalog()) == []


def test_a_disagreement_with_the_catalog_is_named():
    (first, _) = graph_objects(REALDATA)
    changed = {**first.values, "incomingTokenType": "PRT", "isInteractive": "yes", "appliedConditionalAccessPolicies": 5,
               "deviceDetail": {**first.values["deviceDetail"], "isManagd": True}}
    assert sorted(disagreements([GraphObject("x", changed)], _catalog())) == [
        "x: appliedConditionalAccessPolicies: a int, where the catalog has a collection",
        "x: deviceDetail.isManagd: not in the catalog",
        "x: incomingTokenType: 'PRT' is not a member of incomingTokenType",
        "x: isInteractive: a str, where the catalog has bool",
    ]


def test_a_file_of_an_unknown_shape_is_named_not_skipped(tmp_path):
    (tmp_path / "odd.json").write_text(json.dumps({"format": "csv-ish", "rows": []}), encoding="utf-8")
    with pytest.raises(UnknownShape, match="odd.json: not a realdata file"):
        load_folder(tmp_path, COLUMNS)
    (tmp_path / "odd.json").write_text(json.dumps({"format": "graph-beta", "objects": []}), encoding="utf-8")
    with pytest.raises(UnknownShape, match="odd.json: a graph-beta file holds its objects under"):
        graph_objects(tmp_path)


@needs_shared
def test_every_shared_file_is_read(all_real_rows):
    """Each data file under ../shared/realdata gives rows or Graph objects: a new shape is an
    error (above), never a folder silently left out."""
    sources = {row.source.split("#")[0] for row in all_real_rows} | {o.source.split("#")[0] for o in graph_objects(SHARED_REALDATA)}
    folders = {label.split("/")[0] for label in sources} | {"derived"}
    data_folders = {p.parent.name for p in SHARED_REALDATA.rglob("*") if p.suffix in (".json", ".log") and p.parent != SHARED_REALDATA}
    assert data_folders <= folders
    tables = {row.table for row in all_real_rows}
    assert tables == {"SigninLogs", "AADNonInteractiveUserSignInLogs", "AADServicePrincipalSignInLogs", "AADManagedIdentitySignInLogs"}


@needs_shared
def test_the_catalog_agrees_with_every_shared_graph_beta_object():
    """The copied objects above, and the documentation example of the beta List signIns page
    (non-interactive; not collected, but the API's shape as Microsoft shows it)."""
    objects = graph_objects(SHARED_REALDATA)
    assert any(not o.real for o in objects) and any(o.real for o in objects)
    assert disagreements(objects, _catalog()) == []

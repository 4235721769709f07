"""map/tables.py: table schemas, beta path → column resolution, getschema overrides, targets."""

from __future__ import annotations

import json

import pytest
from entra_sigma.map.tables import (
    Absent,
    ColumnAccess,
    Constant,
    Registry,
    Table,
    TableMapping,
    bundled_registry,
    table_from_file,
    table_from_getschema,
)

TABLE = Table("T", "sentinel", "TimeGenerated", {
    "TimeGenerated": "datetime", "Upn": "string", "Device": "dynamic", "Auth": "string", "Managed": "int",
})
MAPPING = TableMapping(TABLE, {
    "userPrincipalName": {"column": "Upn"},
    "deviceDetail": {"column": "Device"},
    "deviceDetail.isManaged": {"column": "Managed", "encoding": {"true": 1, "false": 0}},
    "authenticationDetails": {"column": "Auth"},
    "location.city": {"column": "Device", "path": "geo.city"},
    "isInteractive": {"constant": True},
    "sessionId": {"column": "SessionId"},
})


@pytest.mark.parametrize(
    "path, resolved",
    [
        ("userPrincipalName", ColumnAccess("Upn", "string")),
        ("deviceDetail", ColumnAccess("Device", "dynamic")),
        ("deviceDetail.operatingSystem", ColumnAccess("Device", "dynamic", ("operatingSystem",))),
        ("deviceDetail.isManaged", ColumnAccess("Managed", "int", (), (("false", 0), ("true", 1)))),
        ("authenticationDetails.succeeded", ColumnAccess("Auth", "string", ("succeeded",))),
        ("location.city", ColumnAccess("Device", "dynamic", ("geo", "city"))),
        ("isInteractive", Constant(True)),
        ("sessionId", Absent("column SessionId is not in T")),
        ("ipAddress", Absent("T has no column for ipAddress")),
    ],
    ids=["column", "dynamic", "inside-dynamic", "encoded", "inside-json-text", "mapped-path", "constant",
         "pending-column", "unmapped"],
)
def test_resolve_by_longest_mapped_prefix(path, resolved):
    assert MAPPING.resolve(path) == resolved


def test_column_access_helpers():
    assert ColumnAccess("Auth", "string", ("succeeded",)).is_json is True
    assert ColumnAccess("Device", "dynamic", ("os",)).is_json is False
    assert ColumnAccess("Upn", "string").is_json is False
    encoded = MAPPING.resolve("deviceDetail.isManaged")
    assert (encoded.encoded("true"), encoded.encoded("maybe")) == (1, None)
    assert ColumnAccess("Upn", "string").encoded("true") is None
    assert TABLE.column_type("Upn") == "string" and TABLE.column_type("Nope") is None


def test_table_from_file(tmp_path):
    path = tmp_path / "X.json"
    path.write_text(json.dumps({
        "name": "X", "platform": "defender", "timeColumn": "Timestamp",
        "columns": [{"name": "Timestamp", "type": "datetime", "description": ""}, {"name": "A", "type": "long"}],
    }), encoding="utf-8")
    assert table_from_file(path) == Table("X", "defender", "Timestamp", {"Timestamp": "datetime", "A": "long"})


# -- getschema exports ----------------------------------------------------------------------------


def test_getschema_json_rows(tmp_path):
    path = tmp_path / "T.json"
    path.write_text(json.dumps([
        {"ColumnName": "TimeGenerated", "ColumnOrdinal": 0, "DataType": "System.DateTime", "ColumnType": "datetime"},
        {"ColumnName": "Upn", "ColumnOrdinal": 1, "DataType": "System.String", "ColumnType": "string"},
        {"ColumnName": "Flag", "ColumnOrdinal": 2, "DataType": "System.SByte", "ColumnType": "bool"},
        {"ColumnName": "Count", "ColumnOrdinal": 3, "DataType": "System.Int64"},
        {"ColumnName": "Bag", "ColumnType": "System.Object"},
    ]), encoding="utf-8")
    assert table_from_getschema(path, TABLE) == Table("T", "sentinel", "TimeGenerated", {
        "TimeGenerated": "datetime", "Upn": "string", "Flag": "bool", "Count": "long", "Bag": "dynamic",
    })


def test_getschema_columns_object_and_csv_with_bom(tmp_path):
    wrapped = tmp_path / "a.json"
    wrapped.write_text(json.dumps({"columns": [{"name": "X", "type": "Real"}]}), encoding="utf-8")
    assert table_from_getschema(wrapped, TABLE).columns == {"X": "real"}
    csv = tmp_path / "b.csv"
    csv.write_bytes("\ufeffColumnName,ColumnOrdinal,DataType,ColumnType\r\nUpn,0,System.String,string\r\n"
                    "Ok,1,System.Boolean,\r\n".encode("utf-8"))
    assert table_from_getschema(csv, TABLE).columns == {"Upn": "string", "Ok": "bool"}


def test_getschema_without_columns_is_a_value_error(tmp_path):
    path = tmp_path / "T.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match=r"T.json: no columns found \(expected the output of 'T \| getschema'\)"):
        table_from_getschema(path, TABLE)


@pytest.mark.parametrize("content", ['[["Upn", "string"]]', "42", '{"columns": "Upn"}'], ids=["rows-as-lists", "number", "string-columns"])
def test_a_malformed_getschema_export_is_a_value_error(tmp_path, content):
    path = tmp_path / "T.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError):
        table_from_getschema(path, TABLE)


# -- the registry ------------------------------------------------------------------------------------


def test_workspace_schema_replaces_columns_and_keeps_the_rest(tmp_path):
    registry = bundled_registry()
    path = tmp_path / "SigninLogs.json"
    path.write_text(json.dumps([{"ColumnName": "TimeGenerated", "ColumnType": "datetime"},
                                {"ColumnName": "SignInEventTypes", "ColumnType": "string"}]), encoding="utf-8")
    workspace = registry.with_workspace_schemas([path])
    assert workspace.tables["SigninLogs"] == Table("SigninLogs", "sentinel", "TimeGenerated", {
        "TimeGenerated": "datetime", "SignInEventTypes": "string",
    })
    assert workspace.tables["AADNonInteractiveUserSignInLogs"] is registry.tables["AADNonInteractiveUserSignInLogs"]
    assert workspace.mapping("SigninLogs").resolve("signInEventTypes") == ColumnAccess("SignInEventTypes", "string")
    assert registry.mapping("SigninLogs").resolve("signInEventTypes") == Absent(
        "column SignInEventTypes is not in SigninLogs"
    )  # the bundled registry is untouched


def test_workspace_schema_must_be_named_after_a_table(tmp_path):
    path = tmp_path / "Signins.json"
    path.write_text("[]", encoding="utf-8")
    with pytest.raises(ValueError, match=r"Signins.json: file name must be a table name \(AADManagedIdentitySignInLogs, "):
        bundled_registry().with_workspace_schemas([path])


def test_targets_and_services():
    registry = Registry({"A": TABLE}, {}, {"sentinel": {"x": ["A", "B"], "y": []}, "defender": {}})
    assert registry.tables_for("sentinel", "x") == ["A", "B"]
    assert registry.tables_for("sentinel", "nope") == [] and registry.tables_for("other", "x") == []
    assert registry.services("sentinel") == ["x", "y"] and registry.services("defender") == []
    assert registry.mapping("A").resolve("userPrincipalName") == Absent("T has no column for userPrincipalName")


def test_bundled_registry_is_loaded_once_from_schemas():
    registry = bundled_registry()
    assert bundled_registry() is registry
    assert registry.tables_for("sentinel", "signins") == ["SigninLogs", "AADNonInteractiveUserSignInLogs"]
    assert registry.tables["EntraIdSignInEvents"].time_column == "Timestamp"
    # real SigninLogs rows are not all interactive (2020), so the column is read there
    assert registry.mapping("SigninLogs").resolve("isInteractive") == ColumnAccess("IsInteractive", "bool")
    assert registry.mapping("AADNonInteractiveUserSignInLogs").resolve("isInteractive") == Constant(False)
    assert registry.mapping("SigninLogs").resolve("incomingTokenType") == ColumnAccess("IncomingTokenType", "string")


def test_defender_tables_per_service_and_the_rows_of_a_mixed_table():
    registry = bundled_registry()
    assert registry.tables_for("defender", "signins") == ["EntraIdSignInEvents"]
    assert registry.choices_for("defender", "signins") == ["EntraIdSignInEvents", "AADSignInEventsBeta"]
    assert registry.choices_for("defender", "serviceprincipal") == ["EntraIdSpnSignInEvents"]
    assert registry.row_filter("defender", "managedidentity", "EntraIdSpnSignInEvents") == ("IsManagedIdentity", True)
    assert registry.row_filter("defender", "serviceprincipal", "EntraIdSpnSignInEvents") == ("IsManagedIdentity", False)
    assert registry.row_filter("defender", "signins", "EntraIdSignInEvents") is None
    assert registry.row_filter("sentinel", "managedidentity", "AADManagedIdentitySignInLogs") is None


def test_a_column_left_out_on_purpose_says_why():
    resolved = bundled_registry().mapping("EntraIdSignInEvents").resolve("tokenIssuerType")
    assert isinstance(resolved, Absent) and resolved.deliberate
    assert "became a string column" in resolved.reason
    assert bundled_registry().mapping("AADSignInEventsBeta").resolve("tokenIssuerType").column == "TokenIssuerType"

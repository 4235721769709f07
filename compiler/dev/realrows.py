"""Real sign-in rows, written by Entra, as the tables store them.

Three shapes come in (see shared/realdata/README.md and tests/realdata/README.md):

- Log Analytics rows (`derived/*.json`, and their copies in tests/realdata/*.json.gz): a
  query's result, one object per row, column → value; `{"$datetime": ...}` marks a datetime.
- Diagnostic-settings records (`sekoia/*.raw.json`, `elastic/*.log`, and JSON files with
  `"format": "diagnostic"` holding `rows[].record`): the stream Log Analytics ingests.
  `properties.<key>` becomes the column `<Key>` (case-insensitively), with the documented
  renames below; the record's own fields (`time`, `resultType`, ...) become the standard columns.
- Microsoft Graph beta `signIn` objects (JSON files with `"format": "graph-beta"`, the objects
  under `rows` or a response's `value`): the API's view, in the catalog's own names. They are
  not table rows (the API writes `false` and empty values the tables leave out), so they come
  back from `graph_objects`, never as `RealRow`s.

The first two become `RealRow`s: a table, a source label, and column → value with JSON kept as
parsed objects. `beta_view` turns a row back into Graph beta names, which is what the
observations (`observe.py`) compare with the catalog. Used by maintainers and by tests; never at
run time.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from ..verbs.ruletests.shapes import parsed

# Diagnostic categories → Log Analytics tables.
CATEGORIES = {
    "SignInLogs": "SigninLogs",
    "NonInteractiveUserSignInLogs": "AADNonInteractiveUserSignInLogs",
    "ServicePrincipalSignInLogs": "AADServicePrincipalSignInLogs",
    "ManagedIdentitySignInLogs": "AADManagedIdentitySignInLogs",
}
# properties.<key> whose column has another name (documented on the table pages).
RENAMED = {
    "location": "LocationDetails",
    "appliedConditionalAccessPolicies": "ConditionalAccessPolicies",
    "resourceId": "ResourceIdentity",
}
RENAMED_IN = {"AADNonInteractiveUserSignInLogs": {"processingTimeInMilliseconds": "ProcessingTimeInMs"}}
# The record's own fields → standard columns.
RECORD_FIELDS = {
    "time": "TimeGenerated", "resultType": "ResultType", "resultSignature": "ResultSignature",
    "resultDescription": "ResultDescription", "durationMs": "DurationMs", "correlationId": "CorrelationId",
    "identity": "Identity", "Level": "Level", "location": "Location", "category": "Category",
    "operationName": "OperationName", "operationVersion": "OperationVersion", "resourceId": "ResourceId",
}


@dataclass(frozen=True)
class RealRow:
    source: str  # e.g. "msticpy-aad_logons#3" or "sekoia/sign-in_activity6"
    table: str
    values: dict[str, Any] = field(hash=False)  # column → value; JSON columns parsed
    date: str = ""  # YYYY-MM-DD of the sign-in
    obfuscated: bool = False  # values replaced by the publisher; key names kept
    licence: str = ""
    unmapped: tuple[str, ...] = ()  # record keys with no column in the table


def _datetime(value: Any) -> Any:
    if isinstance(value, dict) and set(value) == {"$datetime"}:
        return value["$datetime"]
    return value


def _read_json(path: Path) -> Any:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    return json.loads(raw.decode("utf-8"))


def log_analytics_rows(path: Path, licence: str = "") -> list[RealRow]:
    """Rows of one Log Analytics-shaped file (derived/*.json, or a .json.gz copy)."""
    data = _read_json(path)
    rows = []
    for index, raw in enumerate(data["rows"]):
        values = {column: parsed(_datetime(value)) for column, value in raw.items()}
        date = str(values.get("TimeGenerated") or values.get("CreatedDateTime") or "")[:10]
        rows.append(RealRow(f"{data['id']}#{index}", data["table"], values, date, bool(data.get("obfuscated")), licence))
    return rows


def record_row(record: dict[str, Any], source: str, columns: dict[str, dict[str, str]], licence: str = "") -> RealRow:
    """One diagnostic-settings record as the row its table would hold. `columns` gives each
    table's column names (name → type); a key with no column is listed in `unmapped`."""
    table = CATEGORIES[record["category"]]
    by_lower = {name.lower(): name for name in columns[table]}
    renamed = {**RENAMED, **RENAMED_IN.get(table, {})}
    values: dict[str, Any] = {"Type": table, "SourceSystem": "Azure AD"}
    for key, column in RECORD_FIELDS.items():
        if key in record and column in columns[table]:
            values[column] = record[key]
    unmapped = []
    for key, value in record.get("properties", {}).items():
        column = renamed.get(key) or by_lower.get(key.lower())
        if column is None or column not in columns[table]:
            unmapped.append(key)
            continue
        values[column] = value
    date = str(record.get("time", ""))[:10]
    return RealRow(source, table, values, date, False, licence, tuple(sorted(unmapped)))


def record_files(folder: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(source label, record) for every raw record under `folder`: `*.raw.json` holds one
    record, `*.log` one per line."""
    for path in sorted(folder.rglob("*.raw.json")):
        yield f"{path.parent.name}/{path.name[: -len('.raw.json')]}", json.loads(path.read_text(encoding="utf-8"))
    for path in sorted(folder.rglob("*.log")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                yield f"{path.parent.name}/{path.stem}#{number}", json.loads(line)


# Licences as the README of shared/realdata gives them, by the folder a file sits in (a file
# that states its own `licence` is taken at its word).
LICENCES = {
    "derived": "MIT", "msticpy": "MIT", "msticpy-training": "MIT", "sentinel-training-lab": "MIT",
    "sekoia": "none (not to be copied)", "elastic": "Elastic License 2.0 (not to be copied)",
}
# The `format` a described JSON file may state ("la": Log Analytics rows, also the default).
FORMATS = ("la", "diagnostic", "graph-beta")
# Rows that are replayed but are no evidence of what Entra writes, with the reason their README gives.
NOT_EVIDENCE = {
    "elastic-sp-mi-nonint/service-principal#3": "rewritten by Elastic to test parsing (placeholders, a string durationMs,"
    " a US-style time) and carrying user-style keys under a service-principal category",
}


class UnknownShape(ValueError):
    """A realdata file this module cannot read: named, with what it expected."""


@dataclass(frozen=True)
class GraphObject:
    """One Graph beta `signIn` object, as the API returned it."""
    source: str  # e.g. "sekoia-automation-library/graph-beta-signins#0"
    values: dict[str, Any] = field(hash=False)
    real: bool = True  # False for documentation examples
    licence: str = ""


def _described_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.json") if not p.name.endswith(".raw.json")) + sorted(folder.rglob("*.json.gz"))


def _shape(path: Path, data: Any) -> str:
    shape = data.get("format", "la") if isinstance(data, dict) else None
    if shape not in FORMATS or (shape != "graph-beta" and not isinstance(data.get("rows"), list)):
        raise UnknownShape(f"{path}: not a realdata file this reader knows (a JSON object with `rows`, and a `format` of {', '.join(FORMATS)})")
    return shape


def load_folder(folder: Path, columns: dict[str, dict[str, str]]) -> list[RealRow]:
    """Every real table row under a realdata folder: Log Analytics files (`*.json` beside no
    `.raw`, and `*.json.gz`), described files of diagnostic records, and raw records, in a
    stable order. Graph beta objects are left to `graph_objects`."""
    rows: list[RealRow] = []
    for path in _described_files(folder):
        data = _read_json(path)
        shape = _shape(path, data)
        licence = data.get("licence") or LICENCES.get(path.parent.name, "MIT")
        if shape == "la":
            rows += log_analytics_rows(path, licence)
        elif shape == "diagnostic":
            label = f"{path.parent.name}/{path.name.split('.')[0]}"
            rows += [record_row(entry["record"], f"{label}#{index}", columns, licence) for index, entry in enumerate(data["rows"])]
    for source, record in record_files(folder):
        rows.append(record_row(record, source, columns, LICENCES.get(source.split("/")[0], "")))
    return rows


def graph_objects(folder: Path) -> list[GraphObject]:
    """Every Graph beta `signIn` object under a realdata folder, in a stable order."""
    objects: list[GraphObject] = []
    for path in _described_files(folder):
        data = _read_json(path)
        if _shape(path, data) != "graph-beta":
            continue
        found = data["rows"] if "rows" in data else data.get("response", {}).get("value")
        if not isinstance(found, list):
            raise UnknownShape(f"{path}: a graph-beta file holds its objects under `rows` or `response.value`")
        label = f"{path.parent.name}/{path.name.split('.')[0]}"
        real = data.get("real", True) is True
        objects += [GraphObject(f"{label}#{index}", value, real, data.get("licence", "")) for index, value in enumerate(found)]
    return objects


def dotted_keys(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every dotted key under a value (through arrays, element by element), with its value."""
    if isinstance(node, list):
        for element in node:
            yield from dotted_keys(element, prefix)
    elif isinstance(node, dict):
        for key, value in node.items():
            path = f"{prefix}.{key}" if prefix else key
            yield path, value
            yield from dotted_keys(value, path)


def beta_view(row: RealRow, column_of: dict[str, str]) -> dict[str, Any]:
    """The row in Graph beta names: top-level property → value, JSON parsed. `column_of` maps
    each top-level beta name to its column in this table (the inverse of the renames above
    and the same-name rule)."""
    view = {}
    for name, column in column_of.items():
        if column in row.values:
            view[name] = parsed(row.values[column])
    return view


def columns_for_beta(table: str, columns: dict[str, str], top_level: list[str]) -> dict[str, str]:
    """Top-level beta name → column, by the renames and otherwise by name (case-insensitive)."""
    by_lower = {name.lower(): name for name in columns}
    renamed = {**RENAMED, **RENAMED_IN.get(table, {})}
    result = {}
    for name in top_level:
        column = renamed.get(name) or by_lower.get(name.lower())
        if column in columns:
            result[name] = column
    return result


def _timestamp(value: Any) -> datetime:
    """ISO 8601 (7-digit fractions and Z included) as naive UTC, as the local engine stores it."""
    text = re.sub(r"(\.\d{6})\d+", r"\1", str(value).replace("Z", "+00:00"))
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc).replace(tzinfo=None)


def stored(value: Any, kind: str) -> Any:
    """A real value as a column of `kind` holds it (what Log Analytics ingestion does): JSON
    as text in string columns, numbers as text where the column is a string. A value the
    column cannot hold becomes null."""
    if value is None:
        return None
    if kind == "dynamic":
        return json.dumps(value, ensure_ascii=False)
    if kind in ("string", "guid"):
        if isinstance(value, (dict, list)):
            return json.dumps(value, ensure_ascii=False)
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        return {"true": True, "false": False}.get(str(value).lower())
    try:
        if kind == "datetime":
            return _timestamp(value)
        if kind in ("int", "long"):
            return int(value)
        if kind == "real":
            return float(value)
    except (TypeError, ValueError):
        return None
    return value


def table_row(row: RealRow, columns: dict[str, str]) -> dict[str, Any]:
    """The row with every column of the table, typed as the table stores it (columns the
    table lacks are dropped; a value the column cannot hold becomes null)."""
    return {column: stored(row.values.get(column), kind) for column, kind in columns.items()}

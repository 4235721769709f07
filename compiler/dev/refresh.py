"""Regenerate the project's schema files from the public reference data.

    python -m compiler.dev.refresh --reference ../shared/reference --schemas schemas

Reads (never at compile time, only here):
  <reference>/graph-beta-signin.json   beta signIn properties, complex types, enums
  <reference>/sentinel-tables.json     Log Analytics sign-in tables
  <reference>/defender-tables.json     Defender XDR sign-in tables
  <schemas>/sources/mapping-rules.json the hand-written mapping overrides

Writes (generated; never edit by hand):
  <schemas>/signin-catalog.json
  <schemas>/tables/<Table>.json
  <schemas>/mappings/<Table>.json

Output is deterministic (sorted keys, two-space indent, UTF-8, LF), so re-running the
command on unchanged inputs reproduces the committed files byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from .refresh_realdata import OBSERVATIONS_RELATIVE_PATH, REALDATA_RULES_RELATIVE_PATH, annotate_catalog, annotate_tables

GENERATED_BY = "python -m compiler.dev.refresh"
RULES_RELATIVE_PATH = "sources/mapping-rules.json"
GRAPH_FILE = "graph-beta-signin.json"

PRIMITIVE_TYPES = {"string", "int", "long", "double", "bool", "dateTime"}
LOG_ANALYTICS_TYPES = {"string", "int", "long", "real", "bool", "datetime", "dynamic", "guid"}
DEFAULT_RULES = {None, "topLevelSameNameIgnoreCase"}
OVERRIDE_KEYS = {"path", "platform", "tables", "optional", "target", "_comment"}
PENDING_KEYS = {"table", "from", "exceptColumns", "_comment"}
TARGET_KEYS = {"column", "path", "constant", "encoding", "absent"}


class RefreshError(Exception):
    """The inputs are inconsistent; the message lists every problem found."""


# ----------------------------------------------------------------------------- helpers


def dump_json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def _read_json(path: Path) -> tuple[Any, str]:
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise RefreshError(f"cannot read {path}: {error}") from error
    try:
        return json.loads(raw.decode("utf-8")), hashlib.sha256(raw).hexdigest()
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RefreshError(f"{path} is not valid UTF-8 JSON: {error}") from error


def _source_block(file_name: str, sha256: str, upstream: Any) -> dict[str, Any]:
    return {"file": file_name, "sha256": sha256, "upstream": upstream}


# ----------------------------------------------------------------------------- catalog


def build_catalog(graph: dict[str, Any], sha256: str) -> dict[str, Any]:
    """Flatten `signIn` (recursively through complex types) into dot paths, plus its enums."""
    errors: list[str] = []
    complex_types: dict[str, Any] = graph["complexTypes"]
    ref_enums: dict[str, Any] = graph["enums"]
    fields: dict[str, dict[str, Any]] = {}

    def walk(properties: list[dict], prefix: str, arrays: list[str], parent_in_v1: bool, owner: str):
        for prop in properties:
            name = prop["name"]
            path = f"{prefix}{name}"
            if path in fields:
                errors.append(f"{owner}: property '{name}' is listed twice")
                continue
            is_collection = bool(prop["isCollection"])
            path_arrays = arrays + [path] if is_collection else list(arrays)
            in_v1 = parent_in_v1 and bool(prop["inV1_0"])
            entry: dict[str, Any] = {
                "arrays": path_arrays,
                "collection": is_collection,
                "description": prop.get("description"),
                "betaOnly": not in_v1,
                "nullable": bool(prop.get("nullable", True)),
            }
            kind = prop["kind"]
            if kind == "primitive":
                base = prop["type"]
                if base.startswith("collection(") and base.endswith(")"):
                    base = base[len("collection(") : -1]
                if base not in PRIMITIVE_TYPES:
                    errors.append(f"{path}: unknown primitive type '{prop['type']}'")
                    continue
                entry["type"] = base
                if base == "string" and "ipaddress" in name.lower():
                    entry["format"] = "ip"
            elif kind == "enum":
                enum_name = prop.get("enumType")
                if enum_name not in ref_enums:
                    errors.append(f"{path}: enum '{enum_name}' is not in the reference's enums")
                    continue
                entry["type"] = "enum"
                entry["enum"] = enum_name
            elif kind == "complex":
                type_name = prop.get("complexType")
                if type_name not in complex_types:
                    errors.append(f"{path}: complex type '{type_name}' is not in the reference")
                    continue
                entry["type"] = "object"
            else:
                errors.append(f"{path}: unknown kind '{kind}'")
                continue
            if prop.get("deprecated"):
                entry["deprecated"] = prop["deprecated"]
            fields[path] = entry
            if kind == "complex":
                walk(
                    complex_types[prop["complexType"]]["properties"],
                    path + ".",
                    path_arrays,
                    in_v1,
                    prop["complexType"],
                )

    walk(graph["properties"], "", [], True, "signIn")

    # Cross-check against the reference's own flattening.
    for ref in graph.get("fieldPaths", []):
        path = ref["path"].replace("[]", "")
        field = fields.get(path)
        if field is None:
            errors.append(f"fieldPaths has '{ref['path']}', which the recursive walk did not produce")
            continue
        if field["collection"] != bool(ref["isCollection"]):
            errors.append(f"{path}: isCollection disagrees with fieldPaths")
        if field["betaOnly"] != (not ref["inV1_0"]):
            errors.append(f"{path}: inV1_0 disagrees with fieldPaths")
        if bool(field["arrays"]) != (bool(ref["insideArray"]) or bool(ref["isCollection"])):
            errors.append(f"{path}: insideArray disagrees with fieldPaths")

    enums: dict[str, dict[str, Any]] = {}
    for enum_name, ref in ref_enums.items():
        members = [member["name"] for member in ref["members"]]
        if len(set(members)) != len(members):
            errors.append(f"enum {enum_name}: duplicate member names")
        entry = {
            "flags": bool(ref.get("isFlags")),
            "members": members,
            "values": {m["name"]: m["value"] for m in ref["members"] if m.get("value") is not None},
        }
        if ref.get("verified"):
            entry["verified"] = ref["verified"]
        enums[enum_name] = entry

    if errors:
        raise RefreshError("graph-beta-signin.json:\n  " + "\n  ".join(errors))
    return {
        "generatedBy": GENERATED_BY,
        "source": _source_block(GRAPH_FILE, sha256, graph["source"]),
        "enums": enums,
        "fields": fields,
    }


# ----------------------------------------------------------------------------- tables


def build_table(
    name: str, platform: str, time_column: str, ref_table: dict[str, Any], file_name: str, sha256: str
) -> dict[str, Any]:
    errors: list[str] = []
    columns = []
    seen: set[str] = set()
    for ref in ref_table["columns"]:
        if ref.get("removedIn"):  # the current page no longer lists it: queries must not read it
            continue
        if ref["name"] in seen:
            errors.append(f"{name}: column {ref['name']} is listed twice")
        seen.add(ref["name"])
        if ref["type"] not in LOG_ANALYTICS_TYPES:
            errors.append(f"{name}.{ref['name']}: unknown Log Analytics type '{ref['type']}'")
        column = {"name": ref["name"], "type": ref["type"], "description": ref.get("description")}
        if ref.get("typeConflict"):
            column["typeConflict"] = ref["typeConflict"]
        if ref.get("sources"):
            column["sources"] = ref["sources"]
        columns.append(column)
    if time_column not in seen:
        errors.append(f"{name}: time column {time_column} is not among its columns")
    if errors:
        raise RefreshError(f"{file_name}:\n  " + "\n  ".join(errors))
    table = {
        "generatedBy": GENERATED_BY,
        "source": _source_block(file_name, sha256, ref_table.get("sources")),
        "name": name,
        "platform": platform,
        "timeColumn": time_column,
        "columns": columns,
    }
    if ref_table.get("notes"):
        table["notes"] = ref_table["notes"]
    return table


# ----------------------------------------------------------------------------- mappings


def _check_target(
    target: Any, field: dict[str, Any], catalog: dict[str, Any], platform: str, where: str
) -> list[str]:
    if not isinstance(target, dict):
        return [f"{where}: target must be an object"]
    errors = [f"{where}: unknown target key '{key}'" for key in target if key not in TARGET_KEYS]
    kinds = [key for key in ("column", "constant", "absent") if key in target]
    has_column, has_constant = "column" in target, "constant" in target
    if len(kinds) != 1:
        errors.append(f"{where}: target needs exactly one of 'column', 'constant' and 'absent'")
    if "absent" in target and (set(target) != {"absent"} or not isinstance(target["absent"], str) or not target["absent"]):
        errors.append(f"{where}: an absent target is only the reason why, as text")
    if has_constant:
        if set(target) != {"constant"}:
            errors.append(f"{where}: a constant target takes no other key")
        value = target["constant"]
        expected = {"bool": bool, "string": str}.get(field["type"])
        if expected is None or not isinstance(value, expected) or field["collection"]:
            errors.append(f"{where}: constant {value!r} does not fit a {field['type']} field")
    if has_column and not (isinstance(target["column"], str) and target["column"]):
        errors.append(f"{where}: column must be a non-empty string")
    if "path" in target and not (isinstance(target["path"], str) and target["path"]):
        errors.append(f"{where}: path must be a non-empty dot path")
    if "encoding" in target:
        encoding = target["encoding"]
        if platform != "defender":
            errors.append(f"{where}: encodings are for Defender tables only")
        if not isinstance(encoding, dict) or not encoding:
            return errors + [f"{where}: encoding must be a non-empty object"]
        if field["type"] == "bool":
            allowed = ["true", "false"]
        elif field["type"] == "enum":
            allowed = catalog["enums"][field["enum"]]["members"]
        else:
            return errors + [f"{where}: encoding on a {field['type']} field"]
        for key, number in encoding.items():
            if key not in allowed:
                errors.append(f"{where}: encoding key '{key}' is not one of {allowed}")
            if isinstance(number, bool) or not isinstance(number, (int, float)):
                errors.append(f"{where}: encoding value for '{key}' must be a number")
    return errors


def build_mappings(
    rules: dict[str, Any], catalog: dict[str, Any], tables: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """One mapping document per table: default rule first, then the overrides, then pending columns."""
    errors: list[str] = []
    fields = catalog["fields"]
    platforms = rules["platforms"]
    table_platform = {t: p for p, spec in platforms.items() for t in spec["tables"]}
    top_level = sorted(path for path in fields if "." not in path)
    result: dict[str, dict[str, Any]] = {}
    targets: dict[str, dict[str, Any]] = {}

    for table_name, table in tables.items():
        mapped: dict[str, Any] = {}
        if platforms[table_platform[table_name]].get("defaultRule") == "topLevelSameNameIgnoreCase":
            by_lower: dict[str, str] = {}
            for column in table["columns"]:
                if column["name"].lower() in by_lower:
                    errors.append(f"{table_name}: columns differ only in case: {column['name']}")
                by_lower[column["name"].lower()] = column["name"]
            for path in top_level:
                if path.lower() in by_lower:
                    mapped[path] = {"column": by_lower[path.lower()]}
        targets[table_name] = mapped

    overridden: dict[tuple[str, str], Any] = {}
    for index, override in enumerate(rules.get("overrides", [])):
        where = f"overrides[{index}] ({override.get('path')!r})"
        unknown = [key for key in override if key not in OVERRIDE_KEYS]
        if unknown:
            errors.append(f"{where}: unknown keys {unknown}")
        if not override.get("_comment"):
            errors.append(f"{where}: every override needs a '_comment' saying why")
        path = override.get("path")
        if path not in fields:
            errors.append(f"{where}: '{path}' is not a path of the signIn catalog")
            continue
        if ("platform" in override) == ("tables" in override):
            errors.append(f"{where}: give exactly one of 'platform' and 'tables'")
            continue
        if "platform" in override:
            if override["platform"] not in platforms:
                errors.append(f"{where}: unknown platform {override['platform']!r}")
                continue
            scope = list(platforms[override["platform"]]["tables"])
        else:
            scope = list(override["tables"])
        unknown_tables = [t for t in scope if t not in tables]
        if unknown_tables or not scope:
            errors.append(f"{where}: unknown or empty tables {unknown_tables}")
            continue
        target = override.get("target")
        platforms_in_scope = {table_platform[t] for t in scope}
        problems = []
        for platform in sorted(platforms_in_scope):
            problems += _check_target(target, fields[path], catalog, platform, where)
        if problems:
            errors.extend(dict.fromkeys(problems))
            continue
        found_anywhere = False
        for table_name in scope:
            if (table_name, path) in overridden:
                errors.append(f"{where}: {path} is overridden twice for {table_name}")
            overridden[(table_name, path)] = target
            column = target.get("column")
            column_names = {c["name"] for c in tables[table_name]["columns"]}
            if column is not None and column not in column_names:
                if not override.get("optional"):
                    errors.append(
                        f"{where}: column {column} does not exist in {table_name}"
                        " (mark the override optional if that is expected)"
                    )
                targets[table_name].pop(path, None)
                continue
            found_anywhere = True
            targets[table_name][path] = json.loads(json.dumps(target))
        if not found_anywhere:
            errors.append(f"{where}: column {target.get('column')} exists in none of {scope}")

    pending = _add_pending_columns(rules, tables, targets, overridden, table_platform, errors)

    if errors:
        raise RefreshError(RULES_RELATIVE_PATH + ":\n  " + "\n  ".join(errors))

    for table_name, table in tables.items():
        result[table_name] = {
            "generatedBy": GENERATED_BY,
            "source": {
                "rules": f"schemas/{RULES_RELATIVE_PATH}",
                "catalog": {"file": GRAPH_FILE, "sha256": catalog["source"]["sha256"]},
                "table": table["source"],
            },
            "table": table_name,
            "fields": targets[table_name],
        }
        if table_name in pending:
            result[table_name]["pendingColumns"] = pending[table_name]
    return result


def _add_pending_columns(
    rules: dict[str, Any],
    tables: dict[str, dict[str, Any]],
    targets: dict[str, dict[str, Any]],
    overridden: dict[tuple[str, str], Any],
    table_platform: dict[str, str],
    errors: list[str],
) -> dict[str, list[str]]:
    """Map columns the bundled table lacks but a sibling table has (rules' `pendingColumns`).

    For `{"table": T, "from": S}`, every path that S maps to a column (by the default rule
    or an override) is also mapped in T to the same column when T's bundled schema lacks
    that column, so a user's `T | getschema` export that has it resolves the path. With the
    bundled schema such a path resolves to Absent, exactly as when it was unmapped. A path
    is NOT borrowed when T maps it already, when an override for T gives it another target,
    when T maps one of its prefixes (that would change how the path resolves), when the
    target is a constant, or when its column is listed in `exceptColumns`.
    Returns table -> sorted pending column names.
    """
    result: dict[str, list[str]] = {}
    for index, rule in enumerate(rules.get("pendingColumns", [])):
        where = f"pendingColumns[{index}] ({rule.get('table')!r})" if isinstance(rule, dict) else None
        if where is None:
            errors.append(f"pendingColumns[{index}]: must be an object")
            continue
        unknown = [key for key in rule if key not in PENDING_KEYS]
        if unknown:
            errors.append(f"{where}: unknown keys {unknown}")
        if not rule.get("_comment"):
            errors.append(f"{where}: needs a '_comment' saying why")
        table_name, source = rule.get("table"), rule.get("from")
        if table_name not in tables or source not in tables or table_name == source:
            errors.append(f"{where}: 'table' and 'from' must name two different tables")
            continue
        if table_platform[table_name] != table_platform[source]:
            errors.append(f"{where}: {table_name} and {source} are on different platforms")
            continue
        if table_name in result:
            errors.append(f"{where}: {table_name} has two pendingColumns rules")
            continue
        source_columns = {c["name"] for c in tables[source]["columns"]}
        excepted = rule.get("exceptColumns", [])
        for column in excepted:
            if column not in source_columns:
                errors.append(f"{where}: exceptColumns has {column!r}, which is not a column of {source}")
        own_lower = {c["name"].lower() for c in tables[table_name]["columns"]}
        mapped = targets[table_name]
        pending: set[str] = set()
        for path, target in sorted(targets[source].items()):
            column = target.get("column")
            if column is None or column in excepted or column.lower() in own_lower:
                continue
            if path in mapped:
                continue
            if (table_name, path) in overridden and overridden[(table_name, path)] != target:
                continue
            parts = path.split(".")
            if any(".".join(parts[:end]) in mapped for end in range(1, len(parts))):
                continue
            mapped[path] = json.loads(json.dumps(target))
            pending.add(column)
        result[table_name] = sorted(pending)
    return result


# ----------------------------------------------------------------------------- driver


def _check_rules_shape(rules: Any) -> None:
    if not isinstance(rules, dict) or not isinstance(rules.get("platforms"), dict):
        raise RefreshError(f"{RULES_RELATIVE_PATH}: needs a 'platforms' object")
    seen: set[str] = set()
    for platform, spec in rules["platforms"].items():
        if spec.get("defaultRule") not in DEFAULT_RULES:
            raise RefreshError(f"{RULES_RELATIVE_PATH}: unknown defaultRule for {platform}")
        for key in ("reference", "timeColumn", "tables"):
            if key not in spec:
                raise RefreshError(f"{RULES_RELATIVE_PATH}: platform {platform} lacks '{key}'")
        for table in spec["tables"]:
            if table in seen:
                raise RefreshError(f"{RULES_RELATIVE_PATH}: table {table} is listed twice")
            seen.add(table)


def generate(reference_dir: Path, rules_path: Path) -> dict[str, dict[str, Any]]:
    """All generated documents, keyed by their path relative to the schemas folder."""
    reference_dir = Path(reference_dir)
    rules, _ = _read_json(Path(rules_path))
    _check_rules_shape(rules)
    graph, graph_sha = _read_json(reference_dir / GRAPH_FILE)
    catalog = build_catalog(graph, graph_sha)

    tables: dict[str, dict[str, Any]] = {}
    for platform, spec in rules["platforms"].items():
        reference, sha = _read_json(reference_dir / spec["reference"])
        for table_name in spec["tables"]:
            if table_name not in reference.get("tables", {}):
                raise RefreshError(f"{spec['reference']}: has no table {table_name}")
            tables[table_name] = build_table(
                table_name,
                platform,
                spec["timeColumn"],
                reference["tables"][table_name],
                spec["reference"],
                sha,
            )
    sources = Path(rules_path).parent
    observations, observations_sha = _read_json(sources / Path(OBSERVATIONS_RELATIVE_PATH).name)
    realdata_rules, realdata_sha = _read_json(sources / Path(REALDATA_RULES_RELATIVE_PATH).name)
    problems = annotate_catalog(catalog, observations, realdata_rules)
    if problems:
        raise RefreshError(f"{REALDATA_RULES_RELATIVE_PATH}:\n  " + "\n  ".join(problems))
    catalog["source"]["realData"] = {
        OBSERVATIONS_RELATIVE_PATH: observations_sha, REALDATA_RULES_RELATIVE_PATH: realdata_sha,
    }
    annotate_tables({t: d for t, d in tables.items() if d["platform"] == "sentinel"}, observations)
    mappings = build_mappings(rules, catalog, tables)

    documents = {"signin-catalog.json": catalog}
    for table_name in tables:
        documents[f"tables/{table_name}.json"] = tables[table_name]
        documents[f"mappings/{table_name}.json"] = mappings[table_name]
    return documents


def refresh(reference_dir: Path, schemas_dir: Path, *, rules_path: Path | None = None) -> list[Path]:
    """Regenerate every generated file under `schemas_dir`; return the paths written.

    The hand-written rules are read from `<schemas_dir>/sources/mapping-rules.json` unless
    `rules_path` is given. Nothing is written if any input is inconsistent (RefreshError).
    """
    schemas_dir = Path(schemas_dir)
    documents = generate(Path(reference_dir), Path(rules_path or schemas_dir / RULES_RELATIVE_PATH))
    written: list[Path] = []
    for relative, document in documents.items():
        target = schemas_dir / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(dump_json(document).encode("utf-8"))
        written.append(target)
    return written


def stale_files(schemas_dir: Path, written: list[Path]) -> list[Path]:
    """Generated-looking files that this run did not produce (e.g. a table that was dropped)."""
    keep = {path.resolve() for path in written}
    return sorted(
        path
        for folder in ("tables", "mappings")
        for path in (Path(schemas_dir) / folder).glob("*.json")
        if path.resolve() not in keep
    )


def main(argv: list[str] | None = None) -> int:
    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(
        prog="python -m compiler.dev.refresh",
        description="Regenerate schemas/ from the public reference data and schemas/sources/mapping-rules.json.",
    )
    parser.add_argument(
        "--reference",
        type=Path,
        default=repo.parent / "shared" / "reference",
        help="folder with graph-beta-signin.json, sentinel-tables.json, defender-tables.json",
    )
    parser.add_argument("--schemas", type=Path, default=repo / "schemas", help="the project's schemas folder")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a committed file differs")
    args = parser.parse_args(argv)
    if args.check:
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory() as scratch:
            shutil.copytree(args.schemas / "sources", Path(scratch) / "sources")
            try:
                written = refresh(args.reference, Path(scratch))
            except RefreshError as error:
                print(f"refresh failed: {error}", file=sys.stderr)
                return 1
            stale = [
                path.relative_to(scratch).as_posix() for path in written
                if not (args.schemas / path.relative_to(scratch)).is_file()
                or (args.schemas / path.relative_to(scratch)).read_bytes() != path.read_bytes()
            ]
            expected = {path.relative_to(scratch).as_posix() for path in written}
        extra = sorted(
            path.relative_to(args.schemas).as_posix()
            for folder in ("tables", "mappings") for path in (args.schemas / folder).glob("*.json")
            if path.relative_to(args.schemas).as_posix() not in expected
        )
        for name in stale:
            print(f"schemas/{name} differs from what the generator makes", file=sys.stderr)
        for name in extra:
            print(f"schemas/{name} is not generated (the compiler would still load it)", file=sys.stderr)
        return 1 if stale or extra else 0
    try:
        written = refresh(args.reference, args.schemas)
    except RefreshError as error:
        print(f"refresh failed: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(f"wrote {path.as_posix()}")
    for path in stale_files(args.schemas, written):
        print(f"warning: {path.as_posix()} was not generated by this run; delete it if obsolete", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

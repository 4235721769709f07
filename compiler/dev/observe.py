"""What real Entra rows show about each beta path: the evidence behind the catalog's flags.

    python -m compiler.dev.observe --realdata ../shared/realdata --reference ../shared/reference
    python -m compiler.dev.observe --check     # exit 1 if schemas/sources/realdata-observations.json is stale

Reads every real row (`realrows.py`; not the few in `NOT_EVIDENCE`), looks at each row in Graph beta names, and counts, per
beta path: the rows whose container is there (the object or array element that would hold
the key), the rows where the key is there and filled, and the values of booleans and enums.
Keys the catalog lacks and record keys with no column in their table are listed too. The
output is counts only, sorted, and is what `refresh.py` reads to decide, per path, whether
false is written as absence, whether a flags enum arrives as a number, and whether a field
is ever filled. Nothing here runs at compile time.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterator

from .realrows import NOT_EVIDENCE, RealRow, beta_view, columns_for_beta, dotted_keys, load_folder

GENERATED_BY = "python -m compiler.dev.observe"
OUTPUT = "sources/realdata-observations.json"
EMPTY = (None, "", [], {})
VALUE_TYPES = ("bool", "enum", "int", "long")  # whose values are worth counting


def _values_at(node: Any, parts: list[str]) -> Iterator[tuple[bool, Any]]:
    """(key present, value) for each container of the last key along `parts`; arrays are
    walked element by element."""
    if isinstance(node, list):
        for element in node:
            yield from _values_at(element, parts)
        return
    if not isinstance(node, dict):
        return
    head, rest = parts[0], parts[1:]
    if not rest:
        yield (head in node, node.get(head))
        return
    if head in node:
        yield from _values_at(node[head], rest)


def _value_label(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"number:{value}"
    return f"text:{value}"


def _kind(value: Any) -> str:
    return {bool: "bool", int: "number", float: "number", str: "text", list: "array", dict: "object"}.get(type(value), "null")


class Observer:
    def __init__(self, fields: dict[str, dict[str, Any]], columns: dict[str, dict[str, str]]):
        self.fields = fields  # the catalog's fields (path → {type, ...})
        self.columns = columns  # table → column → type
        self.top_level = sorted(p for p in fields if "." not in p)
        self.paths: dict[str, dict[str, Any]] = defaultdict(lambda: {
            "containers": Counter(), "filled": Counter(), "values": Counter(), "dates": set(), "sources": set(),
            "containerDates": set(),
        })
        self.unknown: dict[str, dict[str, Any]] = defaultdict(lambda: {"kinds": Counter(), "sources": set(), "tables": set()})
        self.column_seen: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.record_keys: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
        self.sources: dict[str, dict[str, Any]] = {}

    def add(self, row: RealRow) -> None:
        file_label = row.source.split("#")[0]
        info = self.sources.setdefault(file_label, {
            "table": row.table, "rows": 0, "dates": set(), "obfuscated": row.obfuscated, "licence": row.licence,
        })
        info["rows"] += 1
        info["dates"].add(row.date)
        for column, value in row.values.items():
            if value not in EMPTY:
                self.column_seen[row.table][column].add(file_label)
        for key in row.unmapped:
            self.record_keys[row.table][key].add(file_label)
        column_of = columns_for_beta(row.table, self.columns[row.table], self.top_level)
        view = beta_view(row, column_of)
        for path, spec in self.fields.items():
            parts = path.split(".")
            if len(parts) == 1:  # a column of the table: a record without the key leaves it empty
                containers = [(path in view, view.get(path))] if path in column_of else []
            elif parts[0] in view:
                containers = list(_values_at(view, parts))
            else:
                continue
            stats = self.paths[path]
            for present, value in containers:
                stats["containers"][row.table] += 1
                stats["containerDates"].add(row.date)
                if not present or value in EMPTY:
                    continue
                stats["filled"][row.table] += 1
                stats["dates"].add(row.date)
                stats["sources"].add(file_label)
                if spec["type"] in VALUE_TYPES and not spec.get("collection"):
                    stats["values"]["hidden" if row.obfuscated else _value_label(value)] += 1
        for path, value in dotted_keys(view):
            if path not in self.fields and path.split(".")[0] in self.fields:
                entry = self.unknown[path]
                entry["kinds"]["hidden" if row.obfuscated else _kind(value)] += 1
                entry["sources"].add(file_label)
                entry["tables"].add(row.table)

    def result(self) -> dict[str, Any]:
        def span(dates: set[str]) -> list[str]:
            real = sorted(d for d in dates if d)
            return [real[0], real[-1]] if real else []

        paths = {}
        for path, stats in sorted(self.paths.items()):
            entry = {
                "containers": dict(sorted(stats["containers"].items())),
                "containerDates": span(stats["containerDates"]),
                "filled": dict(sorted(stats["filled"].items())),
                "dates": span(stats["dates"]),
                "sources": sorted(stats["sources"]),
            }
            if stats["values"]:
                entry["values"] = dict(sorted(stats["values"].items()))
            paths[path] = entry
        return {
            "generatedBy": GENERATED_BY,
            "sources": {
                label: {**{k: v for k, v in info.items() if k != "dates"}, "dates": span(info["dates"])}
                for label, info in sorted(self.sources.items())
            },
            "paths": paths,
            "keysNotInCatalog": {
                path: {"kinds": dict(sorted(e["kinds"].items())), "sources": sorted(e["sources"]), "tables": sorted(e["tables"])}
                for path, e in sorted(self.unknown.items())
            },
            "columnsSeen": {
                table: {column: sorted(labels) for column, labels in sorted(seen.items())}
                for table, seen in sorted(self.column_seen.items())
            },
            "recordKeysWithoutColumn": {
                table: {key: sorted(labels) for key, labels in sorted(keys.items())}
                for table, keys in sorted(self.record_keys.items())
            },
        }


def reference_columns(reference: Path) -> dict[str, dict[str, str]]:
    data = json.loads((reference / "sentinel-tables.json").read_text(encoding="utf-8"))
    return {name: {c["name"]: c["type"] for c in table["columns"]} for name, table in data["tables"].items()}


def observe(realdata: Path, reference: Path) -> dict[str, Any]:
    from .refresh import GRAPH_FILE, _read_json, build_catalog

    graph, sha = _read_json(reference / GRAPH_FILE)
    fields = build_catalog(graph, sha)["fields"]
    columns = reference_columns(reference)
    observer = Observer(fields, columns)
    for row in load_folder(realdata, columns):
        if row.source not in NOT_EVIDENCE:
            observer.add(row)
    return observer.result()


def main(argv: list[str] | None = None) -> int:
    from .refresh import dump_json

    repo = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(prog=GENERATED_BY, description=__doc__.splitlines()[0])
    parser.add_argument("--realdata", type=Path, default=repo.parent / "shared" / "realdata")
    parser.add_argument("--reference", type=Path, default=repo.parent / "shared" / "reference")
    parser.add_argument("--schemas", type=Path, default=repo / "schemas")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if the committed file differs")
    args = parser.parse_args(argv)
    text = dump_json(observe(args.realdata, args.reference))
    target = args.schemas / OUTPUT
    if args.check:
        current = target.read_text(encoding="utf-8") if target.is_file() else None
        if current != text:
            print(f"schemas/{OUTPUT} differs from what the observer makes", file=sys.stderr)
            return 1
        return 0
    target.write_text(text, encoding="utf-8", newline="\n")
    print(f"wrote {target.as_posix()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

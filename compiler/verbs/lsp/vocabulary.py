"""What a rule may say, from the project's own data: the catalog, the modifiers
(`schemas/modifiers.json`), the rule and tests JSON Schemas, ATT&CK (`schemas/attack.json`).

Completion and hover read these; none of it is typed into code.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any, Iterable

from ...paths import SCHEMAS_DIR
from ...render.settings import TECHNIQUE_TAG, attack_data
from ...validate.catalog import NUMERIC_TYPES, Field

TEXT_VALUES = ("string", "enum", "dateTime")  # the types whose values are text (`cased` applies)


@lru_cache(maxsize=1)
def modifiers() -> dict[str, dict]:
    return json.loads((SCHEMAS_DIR / "modifiers.json").read_text(encoding="utf-8"))["modifiers"]


def modifier_applies(applies: str, field: Field) -> bool:
    """Whether a modifier of this `applies` kind (modifiers.json) takes this field."""
    scalar = field.type != "object"
    return {
        "text": field.type == "string",
        "regexFlag": field.type == "string",
        "textValue": field.type in TEXT_VALUES,
        "ip": field.type == "string" and field.format == "ip",
        "number": field.type in NUMERIC_TYPES,
        "timePart": field.type == "dateTime",
        "scalar": scalar,
        "scalarOutsideArrays": scalar and not field.arrays,
        "any": True,
    }[applies]


def modifiers_for(field: Field, written: Iterable[str] = ()) -> list[str]:
    """The modifiers this field takes, leaving out those written already; the `re` flags only after `re`."""
    written = set(written)
    found = []
    for name, spec in modifiers().items():
        if name in written or not modifier_applies(spec["applies"], field):
            continue
        if spec["applies"] == "regexFlag" and "re" not in written:
            continue
        found.append(name)
    return found


@lru_cache(maxsize=2)
def json_schema(name: str) -> dict:
    return json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))


def _resolve(schema: dict, root: dict) -> list[dict]:
    """A schema with its $ref followed and its anyOf/oneOf/allOf alternatives spread out."""
    if not isinstance(schema, dict):
        return []
    if "$ref" in schema and schema["$ref"].startswith("#/"):
        target: Any = root
        for part in schema["$ref"][2:].split("/"):
            target = target.get(part, {})
        return _resolve(target, root) + _resolve({k: v for k, v in schema.items() if k != "$ref"}, root)
    found = [schema]
    for key in ("anyOf", "oneOf", "allOf"):
        for option in schema.get(key) or []:
            found += _resolve(option, root)
    return found


def schema_at(root: dict, path: Iterable[str]) -> list[dict]:
    """The schemas that describe the value at `path` (keys, `-` for a list item)."""
    current = _resolve(root, root)
    for part in path:
        following: list[dict] = []
        for schema in current:
            if part == "-":
                following += _resolve(schema.get("items", {}), root)
                continue
            properties = schema.get("properties") or {}
            if part in properties:
                following += _resolve(properties[part], root)
                continue
            matched = [s for p, s in (schema.get("patternProperties") or {}).items() if re.search(p, part)]
            if matched:
                for sub in matched:
                    following += _resolve(sub, root)
            elif isinstance(schema.get("additionalProperties"), dict):
                following += _resolve(schema["additionalProperties"], root)
        current = following
    return current


def schema_keys(root: dict, path: Iterable[str]) -> dict[str, str]:
    """key → its description, for the keys the schema names at `path`."""
    keys: dict[str, str] = {}
    for schema in schema_at(root, path):
        for key, sub in (schema.get("properties") or {}).items():
            if isinstance(sub, dict) and "not" in sub and not sub["not"]:
                continue  # a key the schema forbids (Sigma v1 `timeframe`)
            keys.setdefault(key, str(sub.get("description") or "") if isinstance(sub, dict) else "")
    return keys


def schema_values(root: dict, path: Iterable[str]) -> list[str]:
    """The values the schema allows at `path`, when it lists them."""
    values: list[str] = []
    for schema in schema_at(root, path):
        for value in [*(schema.get("enum") or []), *([schema["const"]] if "const" in schema else [])]:
            text = json.dumps(value) if isinstance(value, bool) else str(value)
            if text not in values:
                values.append(text)
        if schema.get("type") == "boolean":
            values += [v for v in ("true", "false") if v not in values]
    return values


def schema_description(root: dict, path: Iterable[str]) -> str | None:
    for schema in schema_at(root, path):
        if schema.get("description"):
            return str(schema["description"])
    return None


def attack_tags() -> list[tuple[str, str]]:
    """(tag, what it names) for every ATT&CK tactic and technique, tactics first."""
    data = attack_data()
    tags = [(f"attack.{t['shortname'].replace('-', '_')}", f"{t['name']} ({t['id']}, tactic)") for t in data["tactics"]]
    tags += [(f"attack.{tid.lower()}", f"{spec['name']} ({tid})") for tid, spec in sorted(data["techniques"].items())]
    return tags


def describe_tag(tag: str) -> str | None:
    """What an ATT&CK tag names: the technique's name (and its parent's) and its tactics, or the tactic."""
    data = attack_data()
    name = tag.lower().removeprefix("attack.")
    tactic = next((t for t in data["tactics"] if t["shortname"].replace("-", "_") == name.replace("-", "_")), None)
    if tactic is not None:
        return f"**{tactic['name']}** ({tactic['id']}): an ATT&CK tactic"
    if not TECHNIQUE_TAG.match(tag.lower()):
        return None
    technique = name.upper()
    spec = data["techniques"].get(technique)
    if spec is None:
        return f"{technique}: no such ATT&CK technique (E301)"
    text = f"**{technique}: {spec['name']}**"
    parent = data["techniques"].get(technique.split(".")[0]) if "." in technique else None
    if parent is not None:
        text += f", a sub-technique of {technique.split('.')[0]} {parent['name']}"
    tactics = {t["shortname"]: t["name"] for t in data["tactics"]}
    text += "\n\nTactics: " + ", ".join(f"{tactics.get(t, t)} (`attack.{t.replace('-', '_')}`)" for t in spec["tactics"])
    return text

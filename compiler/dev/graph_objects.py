"""Hold the field catalog against real Microsoft Graph beta `signIn` objects.

The catalog (`schemas/signin-catalog.json`) is generated from Graph's published metadata; the
objects the API actually returns are the other half of the evidence. Every key an object
carries (through arrays) must be a catalog path (or one the catalog lists as not supported),
every value must have the JSON kind the catalog's type implies, and every enum value must be one
of the enum's members as the catalog spells them. Used by maintainers and by tests; never at
run time.
"""

from __future__ import annotations

from typing import Any

from .realrows import GraphObject, dotted_keys

# Catalog type → the JSON kinds an API value of that type may have (null aside).
KINDS: dict[str, tuple[type, ...]] = {
    "string": (str,), "enum": (str,), "dateTime": (str,), "guid": (str,),
    "int": (int,), "long": (int,), "double": (int, float), "bool": (bool,), "object": (dict,),
}


def _members(catalog: dict[str, Any], enum: str) -> set[str]:
    return set(catalog["enums"][enum]["members"])


def disagreements(objects: list[GraphObject], catalog: dict[str, Any]) -> list[str]:
    """One line per (object, key) where the object and the catalog disagree; [] when they agree."""
    fields, unsupported = catalog["fields"], catalog["notSupported"]
    problems = []
    for obj in objects:
        for path, value in dotted_keys(obj.values):
            spec = fields.get(path)
            if spec is None:
                if path not in unsupported:
                    problems.append(f"{obj.source}: {path}: not in the catalog")
                continue
            if value is None:
                continue
            if spec.get("collection") and not isinstance(value, list):
                problems.append(f"{obj.source}: {path}: a {type(value).__name__}, where the catalog has a collection")
                continue
            if spec.get("collection"):  # its elements are walked as keys of their own
                continue
            kinds = KINDS.get(spec["type"])
            if kinds is None:
                problems.append(f"{obj.source}: {path}: catalog type {spec['type']!r} has no JSON kind here")
            elif isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
                problems.append(f"{obj.source}: {path}: a {type(value).__name__}, where the catalog has {spec['type']}")
            elif spec["type"] == "enum":
                members = _members(catalog, spec["enum"])
                unknown = [part for part in value.split(",") if part.strip() not in members]
                if unknown:
                    problems.append(f"{obj.source}: {path}: {value!r} is not a member of {spec['enum']}")
    return problems

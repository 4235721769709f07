"""The beta `signIn` field catalog (`schemas/signin-catalog.json`): types, enums, arrays.

Rules are written in Graph beta names; this catalog is the vocabulary they are checked
against, and the source of the generated field reference in docs/.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .paths import SCHEMAS_DIR

CATALOG_PATH = SCHEMAS_DIR / "signin-catalog.json"

NUMERIC_TYPES = ("int", "long", "double")


@dataclass(frozen=True)
class Enum:
    name: str
    members: tuple[str, ...]
    flags: bool

    def canonical(self, value: str) -> str | None:
        """The member spelled as Graph spells it, matched case-insensitively."""
        lowered = value.lower()
        return next((m for m in self.members if m.lower() == lowered), None)

    def suggest(self, value: str) -> str | None:
        lowered = {m.lower(): m for m in self.members}
        close = difflib.get_close_matches(value.lower(), list(lowered), n=1, cutoff=0.5)
        if close:
            return lowered[close[0]]
        # abbreviations such as PRT → primaryRefreshToken
        initials = {
            "".join(ch for i, ch in enumerate(m) if i == 0 or ch.isupper()).lower(): m
            for m in self.members
        }
        return initials.get(value.lower())


@dataclass(frozen=True)
class Field:
    path: str
    type: str
    enum: str | None
    arrays: tuple[str, ...]
    collection: bool
    format: str | None
    description: str | None
    flags: bool = False  # a flags enum: values may list several members, comma-separated

    @property
    def array_root(self) -> str | None:
        """The innermost collection this path runs through (or is)."""
        return self.arrays[-1] if self.arrays else None

    @property
    def is_scalar(self) -> bool:
        return self.type != "object"


class Catalog:
    def __init__(self, fields: dict[str, Field], enums: dict[str, Enum]):
        self.fields = fields
        self.enums = enums
        self._lower = {path.lower(): path for path in fields}

    @classmethod
    def from_file(cls, path: Path = CATALOG_PATH) -> "Catalog":
        data = json.loads(path.read_text(encoding="utf-8"))
        enums = {
            name: Enum(name, tuple(spec["members"]), bool(spec.get("flags")))
            for name, spec in data["enums"].items()
        }
        fields = {
            name: Field(
                path=name,
                type=spec["type"],
                enum=spec.get("enum"),
                arrays=tuple(spec.get("arrays") or ()),
                collection=bool(spec.get("collection")),
                format=spec.get("format"),
                description=spec.get("description"),
                flags=bool(spec.get("enum") and enums.get(spec["enum"]) and enums[spec["enum"]].flags),
            )
            for name, spec in data["fields"].items()
        }
        return cls(fields, enums)

    def get(self, path: str) -> Field | None:
        return self.fields.get(path)

    def enum_of(self, field: Field) -> Enum | None:
        return self.enums.get(field.enum) if field.enum else None

    def suggest(self, path: str) -> str | None:
        """A likely intended path: same spelling in another case, a `[]` path, the full path of
        a leaf name used alone (`errorCode` → `status.errorCode`), or a close match."""
        found = self.suggestions(path)
        return found[0] if found else None

    def suggestions(self, path: str) -> list[str]:
        """Every likely intended path, best first (a leaf name may end several paths)."""
        cleaned = path.replace("[]", "")
        if cleaned in self.fields:
            return [cleaned]
        if cleaned.lower() in self._lower:
            return [self._lower[cleaned.lower()]]
        leaf = "." + cleaned.lower()
        ending = sorted(self._lower[p] for p in self._lower if p.endswith(leaf))
        if ending:
            return ending
        close = difflib.get_close_matches(cleaned.lower(), list(self._lower), n=1, cutoff=0.75)
        return [self._lower[close[0]]] if close else []


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    return Catalog.from_file()

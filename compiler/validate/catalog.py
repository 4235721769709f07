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

from ..paths import SCHEMAS_DIR

CATALOG_PATH = SCHEMAS_DIR / "signin-catalog.json"

NUMERIC_TYPES = ("int", "long", "double")


@dataclass(frozen=True)
class Enum:
    name: str
    members: tuple[str, ...]
    flags: bool
    values: tuple[tuple[str, int], ...] = ()  # member → its number (flags enums: its bit)

    def number(self, member: str) -> int | None:
        return dict(self.values).get(member)

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
    # What real rows show (signin-catalog.json `realData`; evidence in `evidence`):
    false_when_absent: bool = False  # false is written by leaving the key out: false means "not true"
    bitmask: bool = False  # a flags enum the tables store as its number
    never_filled: str | None = None  # never filled in the tables; the path to read instead
    spellings: tuple[tuple[str, str], ...] = ()  # member → how the tables spell it
    element_key: str | None = None  # array elements may be objects holding the value under this key
    evidence: tuple[tuple[str, str], ...] = ()  # flag → the real rows behind it

    @property
    def array_root(self) -> str | None:
        """The innermost collection this path runs through (or is)."""
        return self.arrays[-1] if self.arrays else None

    @property
    def is_scalar(self) -> bool:
        return self.type != "object"


def _real_data(real: dict) -> dict:
    """The Field attributes a catalog entry's `realData` sets."""
    evidence = {}
    for flag, value in real.items():
        evidence[flag] = value if isinstance(value, str) else value["evidence"]
    spellings = (real.get("spellings") or {}).get("values") or {}
    return {
        "false_when_absent": "falseWhenAbsent" in real,
        "bitmask": "bitmask" in real,
        "never_filled": real["neverFilled"]["instead"] if "neverFilled" in real else None,
        "spellings": tuple(sorted(spellings.items())),
        "element_key": real["elementKey"]["key"] if "elementKey" in real else None,
        "evidence": tuple(sorted(evidence.items())),
    }


def real_data_notes(field: Field) -> list[str]:
    """What real rows show about a field, one sentence each, with the evidence: for `entra-sigma
    fields` and the generated field reference."""
    evidence = dict(field.evidence)
    notes = []
    if field.false_when_absent:
        notes.append(f"false is written as absence: `false` matches rows without the key ({evidence['falseWhenAbsent']})")
    if field.bitmask:
        notes.append(f"stored as a number (a bitmask): a member matches when its bit is set ({evidence['bitmask']})")
    if field.never_filled:
        notes.append(f"never filled in the tables ({evidence['neverFilled']}); read `{field.never_filled}` instead")
    if field.spellings:
        spelt = ", ".join(f"{member} as {text}" for member, text in field.spellings)
        notes.append(f"the tables spell {spelt} ({evidence['spellings']})")
    if field.element_key:
        notes.append(f"elements may be objects, whose `{field.element_key}` is then the value ({evidence['elementKey']})")
    return notes


class Catalog:
    def __init__(self, fields: dict[str, Field], enums: dict[str, Enum], not_supported: dict[str, dict] | None = None):
        self.fields = fields
        self.enums = enums
        self.not_supported = not_supported or {}  # keys the logs carry that are not Graph properties
        self._lower = {path.lower(): path for path in fields}

    @classmethod
    def from_file(cls, path: Path = CATALOG_PATH) -> "Catalog":
        data = json.loads(path.read_text(encoding="utf-8"))
        enums = {
            name: Enum(name, tuple(spec["members"]), bool(spec.get("flags")), tuple(sorted((spec.get("values") or {}).items())))
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
                **_real_data(spec.get("realData") or {}),
            )
            for name, spec in data["fields"].items()
        }
        return cls(fields, enums, data.get("notSupported") or {})

    def get(self, path: str) -> Field | None:
        return self.fields.get(path)

    def enum_of(self, field: Field) -> Enum | None:
        return self.enums.get(field.enum) if field.enum else None

    def unsupported(self, path: str) -> str | None:
        """Why a key the logs carry, but Graph does not define, cannot be matched (or None)."""
        lowered = path.replace("[]", "").lower()
        return next((e["reason"] for p, e in self.not_supported.items() if p.lower() == lowered), None)

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

"""Diagnostics: located, comparable findings about rules.

User mistakes never raise; every step returns `Diagnostic` values so that one bad
rule cannot hide another, and tests can compare whole lists of findings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Iterable, Literal

Severity = Literal["error", "warning"]


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A place in a rule file: path as given (relative where possible), 1-based line and column."""

    path: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.path}:{self.line}:{self.column}"
        return self.path


@dataclass(frozen=True)
class Diagnostic:
    """One finding. `code` is stable (documented in docs/errors.md); `message` is for people."""

    code: str
    message: str
    location: SourceLocation
    rule: str | None = None
    hint: str | None = None
    severity: Severity = "error"
    target: str | None = field(default=None, compare=True)

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity}: {self.message}"
        if self.rule:
            text += f" in rule '{self.rule}'"
        if self.target:
            text += f" [{self.target}]"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def to_json(self) -> dict:
        data = asdict(self)
        data["location"] = asdict(self.location)
        return data


def sort_key(diagnostic: Diagnostic) -> tuple:
    return (diagnostic.location, diagnostic.code, diagnostic.message, diagnostic.target or "")


def format_text(diagnostics: Iterable[Diagnostic]) -> str:
    return "".join(f"{d}\n" for d in sorted(diagnostics, key=sort_key))


def format_json(diagnostics: Iterable[Diagnostic]) -> str:
    items = [d.to_json() for d in sorted(diagnostics, key=sort_key)]
    return json.dumps({"diagnostics": items}, indent=2, sort_keys=True) + "\n"


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)

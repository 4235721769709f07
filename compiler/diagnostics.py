"""Diagnostics: located, comparable findings about rules.

User mistakes never raise; every step returns `Diagnostic` values so that one bad
rule cannot hide another, and tests can compare whole lists of findings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Iterable, Literal

from .console import json_for_console, one_line

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
        return one_line(text)  # the message, title and path may hold any text a rule file does

    def to_json(self) -> dict:
        data = asdict(self)
        data["location"] = asdict(self.location)
        return data


def sort_key(diagnostic: Diagnostic) -> tuple:
    return (diagnostic.location, diagnostic.code, diagnostic.message, diagnostic.target or "")


def format_text(diagnostics: Iterable[Diagnostic]) -> str:
    return "".join(f"{d}\n" for d in sorted(diagnostics, key=sort_key))


def format_text_summary(diagnostics: Iterable[Diagnostic]) -> str:
    """Errors in full; warnings one line per cause (code, message, target) with a count and the
    first place it occurs. A build of many rules repeats a handful of Defender gaps otherwise."""
    diagnostics = sorted(diagnostics, key=sort_key)
    warnings = [d for d in diagnostics if d.severity == "warning"]
    if len(warnings) < 2:
        return format_text(diagnostics)
    causes: dict[tuple, list[Diagnostic]] = {}
    for warning in warnings:
        causes.setdefault((warning.code, warning.message, warning.target, warning.hint), []).append(warning)
    lines = [f"{d}\n" for d in diagnostics if d.severity != "warning"]
    for (code, message, target, hint), found in sorted(causes.items(), key=lambda c: (-len(c[1]), c[0][1])):
        rules = len({(d.location.path, d.rule) for d in found})
        text = f"warning: {message}{f' [{target}]' if target else ''}{f' ({hint})' if hint else ''}"
        lines.append(one_line(f"{text}: {rules} rule(s) ({code}, e.g. {found[0].location})") + "\n")
    files = len({d.location.path for d in warnings})
    lines.append(f"{len(warnings)} warning(s) of {len(causes)} kind(s) in {files} file(s); --verbose lists each one\n")
    return "".join(lines)


def format_json(diagnostics: Iterable[Diagnostic]) -> str:
    items = [d.to_json() for d in sorted(diagnostics, key=sort_key)]
    return json_for_console(json.dumps({"diagnostics": items}, indent=2, sort_keys=True)) + "\n"


def format_sarif(diagnostics: Iterable[Diagnostic], version: str) -> str:
    """SARIF 2.1.0, for code-scanning views (GitHub, Azure DevOps) that annotate the rule files."""
    items = sorted(diagnostics, key=sort_key)
    codes = sorted({d.code for d in items})
    results = []
    for d in items:
        region = {"startLine": d.location.line, "startColumn": d.location.column} if d.location.line else None
        physical = {"artifactLocation": {"uri": d.location.path}}
        if region:
            physical["region"] = region
        text = d.message + (f" in rule '{d.rule}'" if d.rule else "") + (f" ({d.hint})" if d.hint else "")
        results.append({
            "ruleId": d.code,
            "ruleIndex": codes.index(d.code),
            "level": d.severity,
            "message": {"text": text + (f" [{d.target}]" if d.target else "")},
            "locations": [{"physicalLocation": physical}],
        })
    log = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "entra-sigma",
                "version": version,
                "rules": [{"id": code, "help": {"text": f"See docs/errors.md#{code.lower()}"}} for code in codes],
            }},
            "results": results,
        }],
    }
    return json_for_console(json.dumps(log, indent=2, sort_keys=True)) + "\n"


def _github_data(text: str) -> str:
    """Escape a workflow command's message the way GitHub's own toolkit does (`escapeData`)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """Escape a property value (`escapeProperty`): `:` and `,` would end it early."""
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(diagnostics: Iterable[Diagnostic]) -> str:
    """GitHub Actions workflow commands: each diagnostic becomes an annotation on its file and
    line in the run summary and the pull request (`::error file=…,line=…,col=…,title=…::…`)."""
    lines = []
    for d in sorted(diagnostics, key=sort_key):
        properties = [("file", d.location.path)]
        if d.location.line:
            properties += [("line", str(d.location.line)), ("col", str(d.location.column))]
        properties.append(("title", f"entra-sigma {d.code}"))
        text = d.message + (f" in rule '{d.rule}'" if d.rule else "") + (f" [{d.target}]" if d.target else "")
        text += f" ({d.hint})" if d.hint else ""
        command = "error" if d.severity == "error" else "warning"
        joined = ",".join(f"{key}={_github_property(value)}" for key, value in properties)
        lines.append(f"::{command} {joined}::{_github_data(text)}\n")
    return "".join(lines)


def error_summary(diagnostics: Iterable[Diagnostic], files: int) -> str:
    """The text form's last line: `3 error(s) in 2 of 7 file(s)` (errors, files with an error,
    files read); '' without errors. A path that is no file (E000) was not read: when files with
    an error outnumber the files read, the count of files read is left out, never `1 of 0`."""
    errors = [d for d in diagnostics if d.severity == "error"]
    if not errors:
        return ""
    failed = len({d.location.path for d in errors})
    return f"{len(errors)} error(s) in {failed} of {files} file(s)\n" if failed <= files else \
        f"{len(errors)} error(s) in {failed} file(s)\n"


def has_errors(diagnostics: Iterable[Diagnostic]) -> bool:
    return any(d.severity == "error" for d in diagnostics)

"""What the rules say should be deployed: exactly the files `build` writes, read back.

The rules are built with the build's own code (`incremental.build`, one format), so a plan
compares the service with the very bytes `build` would write. A rule with errors stops the
deploy before any request, as it stops a build; a rule the platform cannot express (most
often Defender) is skipped with the build's warning and its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from ...build import Compiler
from ...diagnostics import Diagnostic, SourceLocation, has_errors
from ...project.environment import Environment
from ..incremental import rebuild as incremental
from .rules import DesiredRule


@dataclass
class DesiredSet:
    rules: dict[str, DesiredRule] = field(default_factory=dict)  # lower-cased id → rule
    skipped: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # lower-cased id → (title, source, reason)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    files: int = 0

    @property
    def ok(self) -> bool:
        return not has_errors(self.diagnostics)


def desired_rules(
    make_compiler: Callable[[], Compiler], paths: list[Path], platform: str, output_format: str, read: Callable,
    environment: Environment | None = None,
) -> DesiredSet:
    """`read(text, source)` turns one built file into a DesiredRule (the target's parser);
    `environment`: the one the compiler was made for, whose name the markers carry."""
    outputs = incremental.build(make_compiler, paths, (output_format,), environment=environment)
    diagnostics = [d for d in outputs.diagnostics if platform == "defender" or d.target != "defender"]
    result = DesiredSet(diagnostics=diagnostics, files=outputs.rules)
    if not outputs.ok:
        return result
    for entry in outputs.manifest["rules"]:
        key = entry["id"].lower()
        built = list(entry["files"])
        if not built:
            reason = entry["skipped"].get(output_format, "not built")
            result.skipped[key] = (entry["title"], entry["source"], reason)
            continue
        try:
            rule = replace(read(outputs.files[built[0]], entry["source"]), environment=environment.name if environment else None)
            if rule.id.lower() != key:
                raise ValueError(f"it names the rule {rule.id!r}, not the rule's id {entry['id']!r}")
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            result.diagnostics.append(Diagnostic(
                "E604", f"the built file {built[0]} is not a deployable {platform} rule: {error}",
                SourceLocation(entry["source"]), entry["title"], hint="check your --templates override", target=platform,
            ))
            continue
        result.rules[key] = rule
    return result

"""`diff --env`: an environment as it was at the base revision, and one report for several.

An environment's outputs depend on more than the rules: its project file and its filters. The
base side is built with the environment as those files were at the base revision (read from
git like the rules), so a change to `filters/prod/` shows under prod only. With several
environments each is compared on its own, and a change is listed once with the environments
it reaches.
"""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Iterator

from ...project.environment import Environment, build_environment
from ...project.file import read_project
from .compare import RuleChange, RuleDiff
from .gitrev import files_at_revision

MISSING = object()  # the environment did not exist at the base revision


@contextmanager
def environment_at_revision(repo: Path, commit: str, environment: Environment | None) -> Iterator[Environment | None | object]:
    """The environment as its files were at `commit`; MISSING when it did not exist there."""
    if environment is None or environment.project is None:
        yield environment
        return
    try:
        relative = environment.project.path.relative_to(repo.resolve())
    except ValueError:  # a project file outside the repository has no history here
        yield environment
        return
    with tempfile.TemporaryDirectory(prefix="entra-sigma-diff-env-") as temporary:
        root = Path(temporary)
        files_at_revision(repo, commit, [relative.as_posix()], root)
        project, _ = read_project(root / relative) if (root / relative).is_file() else (None, [])
        if project is None or (environment.name is not None and environment.name not in project.environments):
            yield MISSING
            return
        project = replace(project, display=environment.project.display)  # diagnostics name the working tree's file
        if environment.name is None:
            yield Environment(None, project)
            return
        data = project.data
        entries = [*(data.get("defaults") or {}).get("filters", []), *data["environments"][environment.name].get("filters", [])]
        files_at_revision(repo, commit, [(relative.parent / entry).as_posix() for entry in entries], root)
        base, problems = build_environment(project, environment.name)
        yield base.with_problems(problems)


def _key(change: RuleChange) -> tuple:
    return (
        change.kind, change.id, change.source, tuple(d.text for d in change.diffs), tuple(change.hidden),
        tuple(map(str, change.new_diagnostics)), tuple(map(str, change.resolved_diagnostics)), change.not_built,
    )


def merge_diffs(results: list[tuple[str, RuleDiff]]) -> RuleDiff:
    """One report of several environments' diffs: each change once, with the environments where
    it is the same change (a change that differs between two environments is listed for each)."""
    first = results[0][1]
    merged: dict[str, dict[tuple, RuleChange]] = {"added": {}, "removed": {}, "changed": {}}
    for name, result in results:
        for kind, changes in (("added", result.added), ("removed", result.removed), ("changed", result.changed)):
            for change in changes:
                key = _key(change)
                if key in merged[kind]:
                    held = merged[kind][key]
                    merged[kind][key] = replace(held, environments=held.environments + (name,))
                else:
                    merged[kind][key] = replace(change, environments=(name,))
    diagnostics = list(dict.fromkeys(d for _, result in results for d in result.diagnostics))
    documents = first.documents

    def ordered(kind: str) -> list[RuleChange]:
        return sorted(merged[kind].values(), key=lambda c: (c.name.casefold(), c.id or "", c.source or "", c.environments))

    return RuleDiff(
        first.rules_dir, first.base, ordered("added"), ordered("removed"), ordered("changed"),
        min(result.unchanged for _, result in results), diagnostics, documents,
        environments=tuple(name for name, _ in results),
    )

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


def merge_diffs(results: list[tuple[str, RuleDiff]]) -> RuleDiff:
    """One report of several environments' diffs: each rule once, with the environments its
    change reaches, and each changed file once, with the environments it changes in (an
    environment without Defender has no Defender query to change)."""
    first = results[0][1]
    merged: dict[str, dict[tuple, RuleChange]] = {"added": {}, "removed": {}, "changed": {}}
    for name, result in results:
        for kind, changes in (("added", result.added), ("removed", result.removed), ("changed", result.changed)):
            for change in changes:
                key = (change.id, change.source if change.id is None else None)
                held = merged[kind].get(key)
                if held is None:
                    held = merged[kind][key] = replace(change, environments=(), diffs=[], hidden=[], new_diagnostics=[],
                                                       resolved_diagnostics=[], diagnostics=[], settings=[], notes=[])
                _absorb(held, change, name)

    def ordered(kind: str) -> list[RuleChange]:
        return sorted(merged[kind].values(), key=lambda c: (c.name.casefold(), c.id or "", c.source or ""))

    return RuleDiff(
        first.rules_dir, first.base, ordered("added"), ordered("removed"), ordered("changed"),
        min(result.unchanged for _, result in results),
        list(dict.fromkeys(d for _, result in results for d in result.diagnostics)), first.documents,
        environments=tuple(name for name, _ in results),
    )


def _absorb(held: RuleChange, change: RuleChange, name: str) -> None:
    """Add one environment's change of a rule to the merged one."""
    held.environments += (name,)
    for item in change.diffs:
        same = next((d for d in held.diffs if (d.old, d.new, d.text) == (item.old, item.new, item.text)), None)
        if same is None:
            held.diffs.append(replace(item, environments=(name,)))
        else:
            same.environments += (name,)
    held.hidden += [path for path in change.hidden if path not in held.hidden]
    held.settings += [setting for setting in change.settings if setting not in held.settings]  # one row per change
    held.notes += [note for note in change.notes if note not in held.notes]
    for field in ("new_diagnostics", "resolved_diagnostics", "diagnostics"):
        mine = getattr(held, field)
        mine += [d for d in getattr(change, field) if d not in mine]
    held.has_errors = held.has_errors or change.has_errors
    held.not_built = held.not_built or change.not_built

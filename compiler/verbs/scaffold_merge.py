"""`entra-sigma init` in a repository that has files of its own: add ours to theirs where a file
can hold both, and say what was added.

- `.gitignore`: the lines it lacks, under a comment;
- `.pre-commit-config.yaml`: our hooks' repository entry, when none of its hooks is there (the
  text is appended, never re-dumped, so the team's comments stay; the result must read back
  as their repos plus ours, or the file is left as it is);
- `.vscode/extensions.json`: the recommendations it lacks;
- `.vscode/settings.json`: the settings it does not have (a schema association too); a value
  the team set stays theirs.

Anything else that exists is kept as it is. Each merge says what it did: the new text and what
it added, nothing (the file has ours already), or why it could not (JSON with comments, a
configuration laid out so that ours cannot be appended).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import yaml


@dataclass(frozen=True)
class Merged:
    text: str | None = None  # the file with ours added; None: leave it as it is
    added: str = ""  # what was added, for the user
    problem: str | None = None  # why ours could not be added (None: it is there already)


HAS_OURS = Merged()


def merge_gitignore(theirs: str, ours: str) -> Merged:
    present = {line.strip() for line in theirs.splitlines()}
    missing = [line for line in ours.splitlines() if line.strip() and not line.startswith("#") and line.strip() not in present]
    if not missing:
        return HAS_OURS
    text = theirs + ("" if theirs.endswith("\n") or not theirs else "\n")
    text += "\n# entra-sigma's outputs\n" + "".join(f"{line}\n" for line in missing)
    return Merged(text, ", ".join(missing))


def _repos(text: str) -> list | None:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None
    if data is None:
        return []
    repos = data.get("repos") if isinstance(data, dict) else None
    return repos if isinstance(repos, list) else None


def _hook_ids(repos: list) -> set[str]:
    return {hook.get("id") for repo in repos if isinstance(repo, dict) for hook in repo.get("hooks") or [] if isinstance(hook, dict)}


def merge_pre_commit(theirs: str, ours: str) -> Merged:
    their_repos, our_repos = _repos(theirs), _repos(ours)
    if their_repos is None or not our_repos:
        return Merged(problem="it is not a pre-commit configuration with a list of repos")
    if _hook_ids(our_repos) & _hook_ids(their_repos):
        return HAS_OURS  # the hooks are there (perhaps as the team changed them)
    block = ours[ours.index("repos:\n") + len("repos:\n"):]
    indent = next((line[: len(line) - len(line.lstrip())] for line in theirs.splitlines() if line.lstrip().startswith("- repo:")), "  ")
    ours_indent = next(line[: len(line) - len(line.lstrip())] for line in block.splitlines() if line.lstrip().startswith("- repo:"))
    lines = [indent + line[len(ours_indent):] if line.startswith(ours_indent) else line for line in block.splitlines()]
    base = theirs if theirs.endswith("\n") or not theirs else theirs + "\n"
    if not their_repos and "repos:" not in base:
        base += "repos:\n"
    text = base + "\n".join(lines) + "\n"
    if _repos(text) != their_repos + our_repos:  # appending did not extend their list (a flow list, another key last)
        return Merged(problem="its repos list does not end the file: add the hooks entra-sigma-validate and "
                              "entra-sigma-test by hand (see `entra-sigma init` in an empty folder)")
    return Merged(text, "the hooks entra-sigma-validate and entra-sigma-test")


NOT_PLAIN_JSON = Merged(problem="it is not plain JSON (comments?): add ours by hand (see `entra-sigma init` in an empty folder)")


def _json(text: str) -> dict | None:
    try:
        data = json.loads(text)
    except ValueError:  # VS Code allows comments and trailing commas: leave such a file alone
        return None
    return data if isinstance(data, dict) else None


def merge_vscode_settings(theirs: str, ours: str) -> Merged:
    their_data, our_data = _json(theirs), _json(ours)
    if their_data is None or our_data is None:
        return NOT_PLAIN_JSON
    added, merged = [], dict(their_data)
    for key, value in our_data.items():
        if key not in merged:
            merged[key] = value
            added.append(key)
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            missing = {k: v for k, v in value.items() if k not in merged[key]}
            if missing:
                merged[key] = {**merged[key], **missing}
                added += [f"{key}: {k}" for k in missing]
    if not added:
        return HAS_OURS
    return Merged(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", ", ".join(added))


def merge_vscode_extensions(theirs: str, ours: str) -> Merged:
    their_data, our_data = _json(theirs), _json(ours)
    if their_data is None or our_data is None or not isinstance(their_data.get("recommendations", []), list):
        return NOT_PLAIN_JSON
    have = their_data.get("recommendations", [])
    missing = [name for name in our_data.get("recommendations", []) if name not in have]
    if not missing:
        return HAS_OURS
    return Merged(json.dumps({**their_data, "recommendations": have + missing}, indent=2, ensure_ascii=False) + "\n",
                  ", ".join(missing))


MERGERS: dict[str, Callable[[str, str], Merged]] = {
    ".gitignore": merge_gitignore,
    ".pre-commit-config.yaml": merge_pre_commit,
    ".vscode/settings.json": merge_vscode_settings,
    ".vscode/extensions.json": merge_vscode_extensions,
}

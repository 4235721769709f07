"""`entra-sigma init`: a new detection repository, from the files in templates/init/.

The templates use `[[ value ]]`, not Jinja's usual `{{ }}`, because the GitHub workflow is
full of `${{ }}` expressions of its own. In a repository that has files of its own, `init`
never overwrites one (unless `force`): it adds ours to those that can hold both (.gitignore,
the pre-commit configuration, the editor settings: scaffold_merge.py), keeps the others as they
are, and says which it did.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from .. import __version__
from ..paths import RULE_PACK_DIR, SCHEMAS_DIR, TEMPLATES_DIR

INIT_TEMPLATES = TEMPLATES_DIR / "init"
EXAMPLE_RULE = "rules/scripting-client-signin.yml"

# file in the new repository → template in templates/init/
RENDERED = {
    "README.md": "README.md",
    ".gitignore": "gitignore",
    ".github/workflows/detections.yml": "workflow.yml",
    ".pre-commit-config.yaml": "pre-commit-config.yaml",
    ".vscode/settings.json": "vscode-settings.json",  # the schemas, and `entra-sigma lsp` (Generic LSP Client)
    ".vscode/extensions.json": "vscode-extensions.json",
    "entra-sigma.toml": "entra-sigma.toml",
    EXAMPLE_RULE: "example-rule.yml",
    EXAMPLE_RULE.replace(".yml", ".tests.yml"): "example-rule.tests.yml",
}
# file in the new repository → a file in templates/init/ copied as it is (TOML's `[[table]]` is not a template value)
VERBATIM = {
    ".helix/languages.toml": "helix-languages.toml",  # the language server in Helix (other editors: docs/editor.md)
}
# file in the new repository → the bundled schema it copies (for the editor settings)
SCHEMAS = {
    "schemas/rule.schema.json": "rule.schema.json",
    "schemas/rule-tests.schema.json": "rule-tests.schema.json",
    "schemas/project.schema.json": "project.schema.json",
    "schemas/filter.schema.json": "filter.schema.json",
}


class InitError(Exception):
    """The folder cannot take the new repository (a file would be overwritten, or it is not a folder)."""


@dataclass(frozen=True)
class Scaffold:
    files: dict[str, str]  # relative posix path → text


def scaffold(with_pack: bool = False, rule_id: str | None = None) -> Scaffold:
    """Every file of a new detection repository. The example rule gets a fresh id."""
    environment = Environment(
        loader=FileSystemLoader(str(INIT_TEMPLATES)),
        variable_start_string="[[", variable_end_string="]]",
        block_start_string="[%", block_end_string="%]",
        comment_start_string="[#", comment_end_string="#]",
        undefined=StrictUndefined, keep_trailing_newline=True, autoescape=False,
    )
    values = {"version": __version__, "rule_id": rule_id or str(uuid.uuid4()), "with_pack": with_pack}
    files = {target: environment.get_template(source).render(values) for target, source in RENDERED.items()}
    files.update({target: (INIT_TEMPLATES / source).read_text(encoding="utf-8") for target, source in VERBATIM.items()})
    files.update({target: (SCHEMAS_DIR / source).read_text(encoding="utf-8") for target, source in SCHEMAS.items()})
    if with_pack:
        for path in sorted(RULE_PACK_DIR.rglob("*.y*ml")):
            files[f"rules/{path.relative_to(RULE_PACK_DIR).as_posix()}"] = path.read_text(encoding="utf-8")
    return Scaffold(files)


def conflicts(folder: Path, files: dict[str, str]) -> tuple[list[str], list[str]]:
    """(files that exist already, paths blocked by a folder or a file in the way)."""
    existing, blocked = [], []
    for relative in sorted(files):
        target = folder / relative
        if target.is_dir() or any(p.exists() and not p.is_dir() for p in target.parents):
            blocked.append(relative)
        elif target.exists():
            existing.append(relative)
    return existing, blocked


@dataclass
class Written:
    """What `init` did to each file: written new, merged into the team's, or kept as it was."""

    written: list[str] = field(default_factory=list)
    merged: list[tuple[str, str]] = field(default_factory=list)  # (file, what was added)
    kept: list[str] = field(default_factory=list)  # existed: left as it is
    unmerged: list[tuple[str, str]] = field(default_factory=list)  # (file, why ours could not be added): left as it is
    overwritten: list[str] = field(default_factory=list)  # existed: replaced (--force)


def write_scaffold(folder: Path, files: dict[str, str], force: bool = False) -> Written:
    """Write the files under `folder`. A file that exists is merged with ours where it can be,
    else kept; with `force`, replaced. A folder (or a file) where a file goes stops everything."""
    from .scaffold_merge import MERGERS

    if folder.exists() and not folder.is_dir():
        raise InitError(f"{folder} is not a folder")
    existing, blocked = conflicts(folder, files)
    if blocked:
        raise InitError(f"{folder}: cannot write {listing(blocked)}: a folder or file is in the way")
    done, texts = Written(), {}
    for relative in sorted(files):
        if relative not in existing:
            texts[relative] = files[relative]
            done.written.append(relative)
        elif force:
            texts[relative] = files[relative]
            done.overwritten.append(relative)
        elif relative in MERGERS:
            try:
                merged = MERGERS[relative]((folder / relative).read_text(encoding="utf-8"), files[relative])
            except (OSError, UnicodeDecodeError) as error:
                done.unmerged.append((relative, f"cannot read it: {error}"))
                continue
            if merged.text is not None:
                texts[relative] = merged.text
                done.merged.append((relative, merged.added))
            elif merged.problem is not None:
                done.unmerged.append((relative, merged.problem))
            else:
                done.kept.append(relative)
        else:
            done.kept.append(relative)
    mode = current_file_mode()
    try:
        for relative in sorted(texts):
            write_file(folder / relative, texts[relative], mode)
    except OSError as error:
        raise InitError(f"cannot write {folder}: {error.strerror or error}") from error
    return done


def report_lines(done: Written, shown: str) -> list[str]:
    """What `init` says it did, file by file where a file was there before."""
    from ..console import one_line

    new = [*done.written, *done.overwritten]
    rules = sum(1 for path in new if path.startswith("rules/") and not path.endswith((".tests.yml", ".tests.yaml")))
    lines = [f"wrote {len(new)} file(s) to {shown}, with {rules} rule(s) in {shown}/rules"]
    lines += [f"overwrote {path} (--force)" for path in done.overwritten]
    lines += [f"added to {path}: {added}" for path, added in done.merged]
    if done.kept:
        lines.append(f"kept as they are (they exist; --force overwrites them): {', '.join(done.kept)}")
    lines += [f"kept {path} as it is: {why}" for path, why in done.unmerged]
    return [one_line(line) for line in lines]


def listing(paths: list[str]) -> str:
    return ", ".join(paths[:5]) + (f" and {len(paths) - 5} more" if len(paths) > 5 else "")


def current_file_mode() -> int:
    """The mode a plain `open()` would give a new file (0644 under the usual umask)."""
    from ..write import umask_mode

    return umask_mode()


def write_file(target: Path, text: str, mode: int) -> None:
    """One file, whole or not at all (a temporary file renamed into place), with LF line endings."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
            stream.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

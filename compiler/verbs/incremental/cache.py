"""A content-hash cache of per-file build results, for incremental builds.

An entry is what one rule file contributed to a build (its output files, manifest entries
and diagnostics). Its key hashes everything that output can depend on: the file's bytes
and its display path, the arguments the build was given, the options, the compiler's own
code, bundled data and templates, the user's templates and table schemas, and the versions
of the libraries that parse and render. Change any of them and the entry is simply not
found again; nothing is ever invalidated in place. Delete the folder to reclaim space.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from ...across_files import DocumentKeys, OutputName
from ...diagnostics import Diagnostic, SourceLocation
from ...paths import PACKAGE_DIR, SCHEMAS_DIR, TEMPLATES_DIR

FORMAT = 3  # bump when FileResult changes shape
LIBRARIES = ("sigma", "jinja2", "yaml", "jsonschema")  # their versions can change output


@dataclass
class FileResult:
    """One rule file's share of a build. Plain data: it is stored as JSON and sent between processes."""

    display: str
    files: dict[str, str] = field(default_factory=dict)  # output path → text
    queries: list[str] = field(default_factory=list)  # `compile`: its rules' queries, in order
    entries: list[dict] = field(default_factory=list)  # manifest entries
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # what the checks across files read (across_files.py): its documents' keys, its rules' output names
    documents: list[DocumentKeys] = field(default_factory=list)
    names: list[OutputName] = field(default_factory=list)
    counted: int = 0  # its share of OutputSet.rules
    correlated: bool = False  # holds a correlation or a rule one references: never stored

    @property
    def referable(self) -> set[str]:
        """The ids and Sigma names of its documents, lower-cased: what a correlation refers to."""
        return {value.strip().lower() for d in self.documents for key, value, _ in d.keys if key in ("id", "name")}

    def to_json(self) -> str:
        data = asdict(self)
        data["diagnostics"] = [d.to_json() for d in self.diagnostics]
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> "FileResult":
        data = json.loads(text)
        data["diagnostics"] = [
            Diagnostic(**{**d, "location": SourceLocation(**d["location"])}) for d in data["diagnostics"]
        ]
        data["documents"] = [
            DocumentKeys(
                d["display_path"], d["title"], tuple((k, v, SourceLocation(**at)) for k, v, at in d["keys"]),
                tuple((k, v) for k, v in d["logsource"]), d["correlation"],
            )
            for d in data["documents"]
        ]
        data["names"] = [OutputName(**{**n, "location": SourceLocation(**n["location"])}) for n in data["names"]]
        return cls(**data)


def _hash_tree(digest, root: Path, suffixes: tuple[str, ...] | None = None) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        if suffixes is None or path.suffix in suffixes:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")


def _library_versions() -> list[str]:
    """Installed versions from the dist-info folder names (importlib.metadata takes 0.15 s)."""
    versions = []
    for name in LIBRARIES:
        spec = importlib.util.find_spec(name)
        location = Path(spec.origin).parent if spec and spec.origin else None
        site = location.parent if location else None
        found = sorted(p.name for p in site.iterdir() if p.suffix == ".dist-info") if site and site.is_dir() else []
        versions.append(f"{name}:{site}:{','.join(found)}")
    return versions


def context_key(options: dict, user_files: Iterable[Path] = ()) -> str:
    """Everything a build's output depends on besides the rule files themselves."""
    digest = hashlib.sha256()
    digest.update(json.dumps({
        "format": FORMAT, "python": sys.version_info[:2], "libraries": _library_versions(), "options": options,
    }, sort_keys=True, default=str).encode())
    _hash_tree(digest, PACKAGE_DIR, (".py",))
    _hash_tree(digest, SCHEMAS_DIR)
    _hash_tree(digest, TEMPLATES_DIR)
    for path in user_files:  # --templates folders and --table-schema files
        if path.is_dir():
            digest.update(b"dir:" + str(path.resolve()).encode())
            _hash_tree(digest, path)
        else:
            digest.update(b"file:" + str(path.resolve()).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def entry_key(context: str, display: str, data: bytes) -> str:
    """The key of one rule file's entry: its bytes and display path, in a build `context`."""
    digest = hashlib.sha256(context.encode())
    digest.update(b"\0" + display.encode() + b"\0" + data)
    return digest.hexdigest()


class Cache:
    """Entries under `folder/v<FORMAT>/<2 hex>/<key>.json`, written atomically."""

    def __init__(self, folder: Path, context: str):
        self.folder = folder / f"v{FORMAT}"
        self.context = context

    def key(self, display: str, data: bytes) -> str:
        return entry_key(self.context, display, data)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> FileResult | None:
        try:
            return FileResult.from_json(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError, TypeError, KeyError):
            return None  # missing, or unreadable: compile the file again

    def put(self, key: str, result: FileResult) -> None:
        """Store an entry; a cache that cannot be written only makes the next build slower."""
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(result.to_json())
            os.replace(temporary, path)
        except OSError:
            Path(temporary).unlink(missing_ok=True)

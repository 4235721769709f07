"""A content-hash cache of per-file build results, for incremental builds.

An entry is what one rule file contributed to a build (its output files, manifest entries
and diagnostics). Its key hashes everything that output can depend on: the file's bytes
and its display path, the arguments the build was given, the options, the compiler's own
code, bundled data and templates, the user's templates and table schemas, and the versions
of the libraries that parse and render. Change any of them and the entry is simply not
found again; nothing is ever invalidated in place. Delete the folder to reclaim space.

Anyone can compute a key, so an entry is not trusted for being found under one: each is
signed (HMAC-SHA256 over its key and text) with a secret made on first use and kept in the
user's cache folder, outside any repository, and checked against what it claims to be (the
file it is for, output paths of the known layout only) before it is used. An entry that
fails is not used: the file is compiled again. A cache folder inside the repository of the
rules is refused unless asked for (`cache_location_problem`), since a pull request can add
files there.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
import os
import re
import secrets
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

from ...across_files import DocumentKeys, OutputName
from ...diagnostics import Diagnostic, SourceLocation
from ...paths import PACKAGE_DIR, SCHEMAS_DIR, TEMPLATES_DIR

FORMAT = 4  # bump when FileResult or the entry file changes shape (3: environments; 4: signed entries too)
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


# -- trust: a secret outside the repository, entries checked against what they claim ----------
SECRET_FILE = "cache-secret"  # in the user's cache folder (platformdirs), never in a repository
_SECRET = re.compile(rb"[0-9a-f]{64}")


def secret_folder() -> Path:
    """Where this user's cache secret lives: ~/.cache/entra-sigma on Linux (XDG_CACHE_HOME),
    ~/Library/Caches/entra-sigma on macOS, %LOCALAPPDATA%\\entra-sigma\\Cache on Windows."""
    import platformdirs

    return platformdirs.user_cache_path("entra-sigma", appauthor=False)


def cache_secret(folder: Path | None = None) -> bytes | None:
    """The key that signs this user's cache entries, made on first use (readable by the user
    only); None when it can be neither read nor made (the build then runs without the cache)."""
    path = (folder or secret_folder()) / SECRET_FILE
    for _ in range(2):
        try:
            data = path.read_bytes().strip()
            return data if _SECRET.fullmatch(data) else None  # a damaged secret: no cache, never a guess
        except FileNotFoundError:
            pass
        except OSError:
            return None
        try:  # made aside and linked into place: of two builds starting at once, one secret wins
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".secret.")
            with os.fdopen(handle, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32) + "\n")
            try:
                os.link(temporary, path)
            except FileExistsError:
                pass
            except OSError:  # no hard links here: the first rename wins as well
                if not path.exists():
                    os.replace(temporary, path)
            finally:
                Path(temporary).unlink(missing_ok=True)
        except OSError:
            return None
    return None


def _signature(secret: bytes, key: str, text: str) -> str:
    return hmac.new(secret, key.encode() + b"\0" + text.encode("utf-8"), hashlib.sha256).hexdigest()


def _output_layouts() -> list[tuple[str, str]]:
    """(prefix, suffix) of every output file's path (`kql/{name}.kql` → ('kql/', '.kql'))."""
    from ...render.formats import FORMATS

    return [tuple(f.layout.split("{name}")) for f in FORMATS]


def output_name_is_safe(name: str) -> bool:
    """A rule's output name: a relative path below the output folder, nothing else."""
    from ...write import is_relative_path

    return is_relative_path(name)


def entry_problem(result: FileResult, display: str) -> str | None:
    """Why an entry cannot be what it claims (None: it can): it must be the entry of the file
    it was looked up for, and name output files of the known layout only."""
    if result.display != display:
        return f"it is the entry of {result.display!r}, looked up for {display!r}"
    layouts = _output_layouts()
    for path in result.files:
        if not any(path.startswith(p) and path.endswith(s) and output_name_is_safe(path[len(p):len(path) - len(s)])
                   for p, s in layouts):
            return f"it names {path!r}, which is not an output file of the build's layout"
    for entry in result.entries:
        if entry.get("source") != display or not set(entry.get("files", ())) <= result.files.keys():
            return "its manifest entries name another file, or files it does not hold"
    if any(d.location.path != display for d in result.diagnostics) or any(n.source != display for n in result.names):
        return "it holds findings about another file"
    return None


def cache_location_problem(cache: Path, rules: Path) -> str | None:
    """Why `cache` must not hold this build's cache (None: it may): a folder inside the
    repository the rules are in (or inside the rules folder) can be filled by a pull request."""
    rules = rules.resolve()
    repository = next((p for p in (rules, *rules.parents) if (p / ".git").exists()), rules)
    folder = cache.resolve()
    if folder == repository or repository in folder.parents:
        where = "the rules folder" if repository == rules else f"the repository {repository}"
        return (f"--cache {cache} is inside {where}, where a pull request can add entries: keep the cache outside "
                f"it (e.g. --cache {secret_folder() / 'build'}), or add --cache-in-repo if no one else writes there")
    return None


class Cache:
    """Entries under `folder/v<FORMAT>/<2 hex>/<key>.json`, written atomically: a signature
    line, then the entry as JSON. `secret`: what signs them (default: this user's, made on
    first use; None, or none to be had: nothing is read or written)."""

    def __init__(self, folder: Path, context: str, secret: bytes | None | bool = True):
        self.folder = folder / f"v{FORMAT}"
        self.context = context
        self.secret = cache_secret() if secret is True else secret or None
        self.rejected: list[str] = []  # why entries found were not used

    def key(self, display: str, data: bytes) -> str:
        return entry_key(self.context, display, data)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str, display: str) -> FileResult | None:
        """The entry of `display`'s file under `key`, if it is there, signed and what it claims."""
        if self.secret is None:
            return None
        try:
            signature, _, text = self._path(key).read_text(encoding="utf-8").partition("\n")
        except (OSError, ValueError):
            return None  # missing, or unreadable: compile the file again
        if not hmac.compare_digest(signature.encode("utf-8", "surrogatepass"), _signature(self.secret, key, text).encode()):
            self.rejected.append(f"{display!r}: its signature is not this user's")
            return None
        try:
            result = FileResult.from_json(text)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # signed, yet not an entry this code can read
        problem = entry_problem(result, display)
        if problem is not None:
            self.rejected.append(f"{display!r}: {problem}")
            return None
        return result

    def put(self, key: str, result: FileResult) -> None:
        """Store an entry; a cache that cannot be written only makes the next build slower."""
        if self.secret is None:
            return
        path = self._path(key)
        text = result.to_json()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(_signature(self.secret, key, text) + "\n" + text)
            os.replace(temporary, path)
        except OSError:
            Path(temporary).unlink(missing_ok=True)

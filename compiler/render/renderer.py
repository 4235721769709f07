"""Render step: Jinja templates give every output its shape; values enter through escaping filters.

The environment is sandboxed (users may lay their own templates over ours with
`--templates DIR`), strict about undefined names, and produces LF text ending in one newline (finish()). A blank
line inside KQL would split the query in Log Analytics, so templates never emit one.
"""

from __future__ import annotations

import json
import re
import traceback
from pathlib import Path
from types import CodeType
from typing import Any

import yaml
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader, StrictUndefined, TemplateError, TemplateNotFound
from jinja2.bccache import Bucket, BytecodeCache
from jinja2.sandbox import ImmutableSandboxedEnvironment

from ..convert.kql import comment_text
from ..model.durations import iso_duration
from ..paths import TEMPLATES_DIR
from .formats import QUERY_TEMPLATES
from .readback import arm_value, block_scalar_holds


def kql_comment(value: Any) -> str:
    """Text safe inside a `//` comment: one line, hidden characters spelt out (convert/kql.py)."""
    return comment_text(value)


YAML_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\x00": "\\0"}


def yaml_quoted(text: str) -> str:
    """A YAML double-quoted scalar on one line, for any text: what is not printable (controls,
    line breaks such as U+0085 and U+2028, format characters, surrogates) is escaped."""
    out = []
    for ch in text:
        if ch in YAML_ESCAPES:
            out.append(YAML_ESCAPES[ch])
        elif ch.isprintable() and not "\ud800" <= ch <= "\udfff":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


# A word YAML reads back as that same string, which PyYAML writes plain: what most values of the
# analytics rule are (severities, tactics, tables, identifiers, columns). Words YAML 1.1 reads as
# booleans or null are left to PyYAML, which quotes them.
PLAIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_./-]*")
YAML_WORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null"})


def yaml_str(value: Any) -> str:
    """A YAML scalar that round-trips exactly (quoted when needed)."""
    if isinstance(value, str):
        if PLAIN_WORD.fullmatch(value) and value.lower() not in YAML_WORDS:
            return value  # what PyYAML writes for it, without its emitter (a build writes thousands)
        if not value.isprintable():
            return yaml_quoted(value)  # PyYAML would emit some of these raw (U+2028) or fold them
    elif isinstance(value, bool):
        return "true" if value else "false"
    elif isinstance(value, int):
        return str(value)
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30).strip().removesuffix("\n...")


def yaml_text(value: Any, indent: int = 2) -> str:
    """Free text (a description) as a literal block (`|`), which reads well in review; text a
    block would change (hidden characters, line breaks other than LF, trailing spaces, which
    finish() strips, or an indented first line) as a double-quoted string instead."""
    text = str(value)
    if block_scalar_holds(text):
        return "|\n" + "\n".join(" " * indent + line if line else line for line in text.split("\n"))
    return yaml_quoted(text)


def to_json(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, indent=indent, ensure_ascii=False, sort_keys=False)


def arm_json(value: Any, indent: int | None = None) -> str:
    """JSON for an ARM template: every string (object keys too) that ARM would take for an
    expression is escaped (`[…]` → `[[…]`), so rule text stays text (render/readback.py)."""
    return to_json(arm_value(value), indent)


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """Templates may read the values they are given, never files, rule documents or state."""

    blocked_attributes = frozenset({"document", "data", "settings", "path", "rule"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        if attr in self.blocked_attributes or isinstance(value, Path):
            return False
        return super().is_safe_attribute(obj, attr, value)


class CompiledTemplates(BytecodeCache):
    """Each template compiled once per process, whichever Renderer asks for it (a test run,
    `diff` and `deploy` make many). Keyed by template name and file and checked against the
    source's checksum, so an edited or overriding template is compiled anew."""

    def __init__(self) -> None:
        self._code: dict[str, tuple[str, CodeType]] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        found = self._code.get(bucket.key)
        if found is not None and found[0] == bucket.checksum:
            bucket.code = found[1]

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is not None:
            self._code[bucket.key] = (bucket.checksum, bucket.code)


COMPILED_TEMPLATES = CompiledTemplates()


def make_environment(overrides: Path | None = None) -> TemplateSandbox:
    """User templates first, then ours; ours stay reachable as `bundled/...` so an override
    can wrap the original instead of copying it."""
    bundled = FileSystemLoader(str(TEMPLATES_DIR))
    loaders = [FileSystemLoader(str(overrides))] if overrides else []
    loaders += [bundled, PrefixLoader({"bundled": bundled})]
    environment = TemplateSandbox(
        loader=ChoiceLoader(loaders),
        undefined=StrictUndefined,
        keep_trailing_newline=False,  # an included query must not end in a blank line; finish() adds the final newline
        autoescape=False,
        trim_blocks=False,
        lstrip_blocks=False,
        bytecode_cache=COMPILED_TEMPLATES,  # every environment here has these same settings
    )
    environment.filters.update(
        kql_comment=kql_comment, yaml_str=yaml_str, yaml_text=yaml_text, tojson=to_json, arm_json=arm_json,
        iso_duration=iso_duration,
    )
    return environment


def finish(text: str) -> str:
    """One trailing newline, LF only, no trailing spaces: stable diffs on every machine."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return "\n".join(lines).strip("\n") + "\n"


def _template_line(error: BaseException) -> int | None:
    """Jinja rewrites tracebacks so template frames carry the template's own line numbers."""
    line = None
    for frame in traceback.extract_tb(error.__traceback__):
        if frame.filename.endswith(".j2"):
            line = frame.lineno
    return line


class TemplateFailure(Exception):
    """A template (usually a user's override) is broken: reported as a usage error, not a crash."""


class Renderer:
    def __init__(self, overrides: Path | None = None):
        self.environment = make_environment(overrides)
        self._sources: dict[str, tuple[str, bool]] = {}

    def render(self, template: str, **context: Any) -> str:
        try:
            return finish(self.environment.get_template(template).render(**context))
        except TemplateError as error:
            where = getattr(error, "name", None) or template
            # a missing template has no line of its own (the traceback's is the includer's)
            line = None if isinstance(error, TemplateNotFound) else getattr(error, "lineno", None) or _template_line(error)
            raise TemplateFailure(
                f"template {where}{f':{line}' if line else ''}: {type(error).__name__}: {error.message or error}"
            ) from error

    def sources(self, template: str) -> tuple[str, bool]:
        """The template's source text, with the bundled one's when a user's lays over it (to
        tell what the template itself writes from what values bring), and whether the template
        used is ours."""
        if template not in self._sources:
            loader = self.environment.loader
            source, filename, _ = loader.get_source(self.environment, template)
            bundled = Path(filename).resolve() == (TEMPLATES_DIR / template).resolve()
            if not bundled and (TEMPLATES_DIR / template).is_file():
                source += "\n" + loader.get_source(self.environment, "bundled/" + template)[0]
            self._sources[template] = (source, bundled)
        return self._sources[template]

    def query(self, query) -> str:
        return self.render(QUERY_TEMPLATES[query.platform], rule=query.rule, query=query)

"""The settings a rule's deployable files carry, compared between the two sides of a diff.

A reviewer reads the KQL diff; a change of threshold, schedule, severity, grouping, entity
mappings, tactics or Defender actions lives in the Sentinel YAML, the ARM template and the
Defender detection instead. Those files are read here as their readers read them (YAML, JSON,
ARM's `[[` escape) and compared leaf by leaf, so that every difference between the built files
shows as a setting: nothing can change unseen. The query inside a file is left out when it is
the rule's KQL (the diff shows that once); if a template changed it, it is a setting like any
other. The same change in two files (`triggerThreshold` in the YAML and the ARM template) is
one row naming both.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import yaml

from ...render.formats import BY_NAME
from ...render.readback import arm_read
from ..deploy.content import duration_seconds, flatten

# where each deployable format keeps the query, and the prefix its settings sit under
QUERY_PATH = {"sentinel-yaml": "query", "arm": "resources.0.properties.query", "defender-detection": "queryCondition.queryText"}
PREFIX = {"arm": "resources.0.properties."}
# The rule's level becomes a severity in each platform's spelling; a level change that keeps it
# deploys nothing new (the level is only a comment in the query).
SEVERITY_PATHS = {"arm": "resources.0.properties.severity", "defender-detection": "detectionAction.alertTemplate.severity"}


WRITTEN, NOT_WRITTEN = "written", "not written"


@dataclass(frozen=True)
class SettingChange:
    name: str  # the setting's path in the file, below `properties` for ARM
    before: Any  # None: absent
    after: Any
    formats: tuple[str, ...]  # the output formats it changed in, in FORMATS order
    also: tuple[str, ...] = ()  # the other names the same text has (a Defender alert's description)

    @property
    def text_block(self) -> bool:
        """A value that spans lines (a description): shown as a diff, not in a table cell."""
        return any(isinstance(v, str) and "\n" in v for v in (self.before, self.after))


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    """flatten(), with a list of one object (an ARM template's resources) opened up by index."""
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict) and path == "resources":
        return {f"{path}.0.{k}": v for k, v in flatten(value[0]).items()}
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{path}.{key}" if path else str(key)))
        return out
    return {path: value}


def read_settings(fmt: str, text: str, query: str | None) -> dict[str, Any]:
    """Every leaf of a deployable file by path, as its reader reads it, without the query when
    that is `query` (the rule's KQL). A file that does not parse is one leaf: its text."""
    try:
        data = yaml.safe_load(text) if fmt == "sentinel-yaml" else json.loads(text)
    except (ValueError, yaml.YAMLError):
        return {"(file)": text}
    if fmt == "arm":
        data = arm_read(data)
    leaves = _leaves(data)
    if query is not None and leaves.get(QUERY_PATH.get(fmt, "")) == query:
        leaves.pop(QUERY_PATH[fmt])
    return leaves


SENTINEL_DURATION = re.compile(r"^(\d+)([mhd])$")  # the Sentinel YAML's spelling: 5m, 1h, 1d
SENTINEL_UNITS = {"m": 60, "h": 3600, "d": 86400}


def _meaning(value: Any) -> str:
    """What a value means, for telling one change in two files from two changes: a length of
    time in seconds however it is spelt (`1h`, `PT1H`), text without its final line break."""
    if isinstance(value, str):
        if match := SENTINEL_DURATION.match(value):
            return f"duration:{int(match[1]) * SENTINEL_UNITS[match[2]]}"
        if (seconds := duration_seconds(value)) is not None:
            return f"duration:{seconds}"
        return json.dumps(value.rstrip("\n"))
    return json.dumps(value, sort_keys=True, default=str)


def setting_changes(pairs: list[tuple[str, str | None, str | None]], old_queries: dict[str, str], new_queries: dict[str, str]) -> list[SettingChange]:
    """The settings that differ, from (format, old text, new text) of each deployable file of a
    rule; `*_queries`: each platform's KQL on that side. One change seen in several files is
    one row: same name and meaning (`queryFrequency` 1h → 2h in the YAML, PT1H → PT2H in ARM),
    or for text that spans lines, the same text under any name (a description). A file built
    on one side only is one row, not every leaf of it."""
    rows: dict[tuple, dict] = {}

    def add(key: tuple, name: str, fmt: str, before: Any, after: Any) -> None:
        row = rows.setdefault(key, {"names": [], "formats": [], "before": before, "after": after})
        if name not in row["names"]:
            row["names"].append(name)
        if fmt not in row["formats"]:
            row["formats"].append(fmt)

    for fmt, old_text, new_text in pairs:
        platform = BY_NAME[fmt].platform
        if old_text is None or new_text is None:
            name = f"({BY_NAME[fmt].layout.split('/')[0]} file)"
            written = tuple(WRITTEN if t is not None else NOT_WRITTEN for t in (old_text, new_text))
            add((name, *written), name, fmt, *written)
            continue
        old = read_settings(fmt, old_text, old_queries.get(platform))
        new = read_settings(fmt, new_text, new_queries.get(platform))
        prefix = PREFIX.get(fmt, "")
        for path in sorted(old.keys() | new.keys()):
            before, after = old.get(path), new.get(path)
            if before == after:
                continue
            name = path[len(prefix):] if prefix and path.startswith(prefix) else path
            meaning = (_meaning(before), _meaning(after))
            text_block = any(isinstance(v, str) and "\n" in v for v in (before, after))
            add(("text", *meaning) if text_block else (name, *meaning), name, fmt, before, after)
    order = list(BY_NAME)
    changes = [
        SettingChange(min(row["names"], key=lambda n: (len(n), n)), row["before"], row["after"],
                      tuple(sorted(row["formats"], key=order.index)),
                      tuple(sorted(set(row["names"]) - {min(row["names"], key=lambda n: (len(n), n))})))
        for row in rows.values()
    ]
    return sorted(changes, key=lambda c: (c.name, order.index(c.formats[0])))


def deployed_severities(files: dict[str, str]) -> dict[str, str]:
    """format → the severity a deployable file deploys, from `files` (format → text)."""
    severities = {}
    for fmt, path in SEVERITY_PATHS.items():
        if fmt in files:
            value = read_settings(fmt, files[fmt], None).get(path)
            if isinstance(value, str):
                severities[fmt] = value
    return severities

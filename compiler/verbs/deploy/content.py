"""What counts as a rule's content, so that a rule compares equal to what was written.

A service returns more than it was sent: read-only fields (ETags, timestamps, run details),
`@odata` annotations, nulls and empty lists for optional fields, durations it may spell
another way. `normalize` keeps only what a deploy writes and a person can change, in one
spelling; plans, drift checks and the marker's hash all compare normalised content.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

ISO_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
SECONDS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


def duration_seconds(text: str) -> int | None:
    match = ISO_DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        return None
    return sum(int(value) * SECONDS[unit] for unit, value in match.groupdict().items() if value)


def canonical_duration(text: str) -> str:
    """One spelling per length of time (`PT24H` and `P1D` are both `P1D`); text that is not an
    ISO 8601 duration is left as it is, for the service to judge."""
    seconds = duration_seconds(text)
    if seconds is None:
        return text
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{u}" for n, u in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    return ("P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")) if days or time else "PT0S"


def is_empty(value: Any) -> bool:
    return value is None or value == [] or value == {}


def normalize(value: Any, ignored: frozenset[str], durations: frozenset[str], path: str = "") -> Any:
    """`value` without `ignored` paths (dotted; `[]` stands for any list item), `@odata.*`
    annotations and empty values, with `durations` in canonical spelling."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if child in ignored or key.startswith("@odata."):
                continue
            item = normalize(item, ignored, durations, child)
            if not is_empty(item):
                out[key] = item
        return out
    if isinstance(value, list):
        return [normalize(item, ignored, durations, f"{path}[]") for item in value]
    if isinstance(value, str) and path in durations:
        return canonical_duration(value)
    return value


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Leaves by dotted path; lists are leaves (their order matters, and they read best whole)."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{path}.{key}" if path else key))
        return out
    return {path: value}


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any  # None: absent
    after: Any


def field_changes(before: dict, after: dict) -> list[FieldChange]:
    old, new = flatten(before), flatten(after)
    return [
        FieldChange(path, old.get(path), new.get(path))
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    ]


# where each service keeps the query (a text whose `//` lines are comments, which run as nothing)
QUERY_FIELDS = frozenset({"properties.query", "queryCondition.queryText"})


def without_comments(text: str) -> str:
    """A query without its whole-line `//` comments (the header entra-sigma writes: title, id,
    level, source file)."""
    return "".join(line for line in text.splitlines(keepends=True) if not line.lstrip().startswith("//"))


def comment_only(change: FieldChange) -> bool:
    """Whether a change is to the query's comments alone: it changes what the service holds,
    not what it runs or shows (a moved rule file, a level that keeps the severity)."""
    return (change.path in QUERY_FIELDS and isinstance(change.before, str) and isinstance(change.after, str)
            and without_comments(change.before) == without_comments(change.after))


def comment_changes(change: FieldChange, severity: object = None) -> list[str]:
    """The comment lines that differ, in words (for the plan's note): the rule file moved, the
    level changed to one of the same `severity`, or the lines themselves."""
    old = [line.strip() for line in str(change.before).splitlines() if line.lstrip().startswith("//")]
    new = [line.strip() for line in str(change.after).splitlines() if line.lstrip().startswith("//")]
    removed, added = [line for line in old if line not in new], [line for line in new if line not in old]
    words = []
    for before, after in zip(removed, added):
        label, _, was = before.partition(":")
        if label == after.partition(":")[0] and label in ("// source", "// level"):
            now = after.partition(":")[2].strip()
            if label == "// source":
                words.append(f"the rule file moved from {was.strip()} to {now}")
            else:
                same = f", which deploys the same severity ({severity})" if severity else ""
                words.append(f"level {was.strip()} -> {now}{same}")
        else:
            words.append(f"{before} -> {after}")
    return words + removed[len(added):] + [f"+ {line}" for line in added[len(removed):]]

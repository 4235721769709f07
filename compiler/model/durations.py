"""Durations as rules write them (`5m`, `1h`, `14d`) and as the APIs want them (ISO 8601)."""

from __future__ import annotations

import re
from datetime import timedelta

DURATION = re.compile(r"^([1-9][0-9]*)([mhd])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """The duration; one too long for a timedelta (`99999999999d`) is the longest there is:
    every duration is checked against bounds of minutes to days, which it then exceeds."""
    number, unit = DURATION.match(text).groups()
    try:
        return timedelta(**{UNITS[unit]: int(number)})
    except OverflowError:
        return timedelta.max


def iso_duration(text: str) -> str:
    """`5m` → `PT5M`, `1h` → `PT1H`, `2d` → `P2D` (ARM and Graph want ISO 8601)."""
    number, unit = DURATION.match(text).groups()
    return f"P{number}D" if unit == "d" else f"PT{number}{unit.upper()}"

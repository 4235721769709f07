"""Sigma's time modifiers on one detection key: where they stand and what values they take.

`createdDateTime|hour: 3` reads the hour of a date-time (modifiers appendix 2.1.0, "Time
Modifiers"). pySigma parses them, but says little when one is misplaced and silently cuts a
fraction (`hour: 3.5` is hour 3), so each key is checked here first, against the value
ranges the appendix gives, with messages that name the key. Whether the field is a date-time
is the catalog's business (validate/fields.py).
"""

from __future__ import annotations

from ..model.operators import TIME_PARTS

# What may follow a time modifier: its value is a number, compared or negated.
AFTER_TIME_PART = ("gt", "gte", "lt", "lte", "neq", "all")
# Names of time parts Sigma does not have, and what to write instead.
NOT_SIGMA = {
    "weekday": "Sigma has no day-of-week modifier: 'day' is the day of the month",
    "dayofweek": "Sigma has no day-of-week modifier: 'day' is the day of the month",
    "day_of_week": "Sigma has no day-of-week modifier: 'day' is the day of the month",
    "second": "Sigma's time modifiers stop at the minute",
    "dayofyear": "Sigma has no day-of-year modifier: use 'month' and 'day'",
}

Problem = tuple[str, str, "str | None"]  # (code, message, hint)


def time_part_problems(field: str, modifiers: list[str], values: list) -> list[Problem]:
    """What is wrong with a key's time modifier and its values (nothing if it has none)."""
    parts = [m for m in modifiers if m in TIME_PARTS]
    if not parts:
        return []
    part = parts[0]
    if len(parts) > 1:
        return [("E110", f"one time modifier per key, not '{parts[0]}' and '{parts[1]}'",
                 "write a selection for each, or two keys in one selection")]
    if modifiers[0] != part:
        fixed = "|".join([field, part, *(m for m in modifiers if m != part)])
        return [("E110", f"'{part}' must come right after the field", f"write '{fixed}'")]
    wrong = [m for m in modifiers[1:] if m not in AFTER_TIME_PART]
    if wrong:
        return [("E110", f"'{wrong[0]}' cannot follow '{part}': a time part is a number",
                 f"compare it with {', '.join(AFTER_TIME_PART[:-1])}")]
    low, high = TIME_PARTS[part]
    problems: list[Problem] = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
            continue
        hint = None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            hint = f"write the number without quotes: {value.strip()}"
        elif part == "week" and value == 53:
            hint = "the appendix numbers weeks 1 to 52; ISO week 53 (late December in some years) matches 'week|gte: 52'"
        problems.append(("E107", f"'{part}' takes a whole number from {low} to {high}, not {value!r}", hint))
    return problems

"""Validate step 1: the rule document against `schemas/rule.schema.json`.

The same schema serves editors (YAML language server) and the compiler, so the shape
of a rule is defined once.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING

from ..diagnostics import Diagnostic
from ..load.loader import RuleDocument
from ..model import sigmahq
from ..paths import SCHEMAS_DIR

if TYPE_CHECKING:  # jsonschema is imported when a rule needs its messages (a tenth of a second)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

RULE_SCHEMA_PATH = SCHEMAS_DIR / "rule.schema.json"
FAST_PATH_MINIMUM = 50  # documents; fewer do not repay compiling the fast validator (0.1 s)


@lru_cache(maxsize=1)
def rule_validator() -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    # The schema is committed data; tests/test_schema.py checks it against the meta-schema
    # (doing that on every run cost 0.1 s of each command's start-up).
    schema = json.loads(RULE_SCHEMA_PATH.read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@lru_cache(maxsize=1)
def fast_rule_check():
    """The same schema compiled to Python by fastjsonschema: about 7x faster than jsonschema on
    a valid rule, the common case. It only says yes or no; the located messages still come
    from jsonschema. The schema uses draft-07 keywords only, and tests/test_schema.py checks
    that both validators agree on every rule file in the repository."""
    import fastjsonschema

    schema = json.loads(RULE_SCHEMA_PATH.read_text(encoding="utf-8"))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema)


def is_valid_fast(data) -> bool:
    from fastjsonschema import JsonSchemaException

    try:
        fast_rule_check()(data)
    except JsonSchemaException:
        return False
    return True


def describe_error(error: ValidationError) -> str:
    """One schema violation in words a rule author reads (shared by rule and test files)."""
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return f"missing required key '{missing}'" + (f" in '{where}'" if where else "")
    if where == "logsource.product" and error.validator in ("enum", "const"):
        return f"'logsource.product' must be entra (or azure, with service signinlogs as SigmaHQ writes it), not {error.instance!r}"
    if error.validator in ("enum", "const"):
        allowed = error.validator_value if error.validator == "enum" else [error.validator_value]
        return f"'{where}' must be one of {', '.join(map(str, allowed))}, not {error.instance!r}"
    if error.validator == "pattern" and where == "correlation.timespan":
        return f"'correlation.timespan' must be a number and s, m, h, d or w, not {error.instance!r} (months and years have no fixed length)"
    if error.validator == "pattern" and where == "id":
        return f"'id' must be a UUID, not {error.instance!r}"
    if error.validator == "not" and where.endswith("timeframe"):
        return "Sigma v1 aggregation ('timeframe') is not supported: write a correlation rule (docs/correlations.md)"
    if "propertyNames" in error.schema_path:
        return f"invalid key {error.instance!r} in '{where}'" if where else f"invalid key {error.instance!r}"
    return f"'{where}': {error.message}" if where else error.message


# Keys only the deployment planner reads: a schema error there leaves the detection to be checked
# (every problem of a rule at once), and the rule gets no deployable file.
SETTINGS_KEYS = frozenset({"sentinel", "defender"})


def validate_document(document: RuleDocument, fast: bool = False) -> list[Diagnostic]:
    """Every schema violation of one rule document, each located at the offending key. With
    `fast` (many documents), a valid rule is recognised by the compiled validator first."""
    return rule_schema_problems(document, fast)[0]


def rule_schema_problems(document: RuleDocument, fast: bool = False) -> tuple[list[Diagnostic], bool]:
    """`validate_document`'s diagnostics, and whether they lie only in the deployment settings
    (SETTINGS_KEYS), so that the rest of the rule can still be checked."""
    if not isinstance(document.data, dict):
        return [Diagnostic("E002", "a rule must be a YAML mapping", document.location())], False
    diagnostics = []
    data = sigmahq.schema_view(document.data)  # SigmaHQ's azure signinlogs is read as its entra service
    if fast and is_valid_fast(data):
        return [], False
    from jsonschema.exceptions import best_match

    errors = sorted(rule_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    settings_only = bool(errors)
    for error in errors:
        path = list(error.absolute_path)
        settings_only = settings_only and bool(path) and path[0] in SETTINGS_KEYS
        if error.validator == "additionalProperties" and error.validator_value is False and isinstance(error.instance, dict):
            diagnostics += unknown_keys(document, error)
            continue
        if empty_selection(error):
            where = ".".join(map(str, path))
            diagnostics.append(Diagnostic(
                "E002", f"'{where}' is empty: a selection maps fields to values (or lists values or such maps)",
                document.location(*path), rule=document.title,
            ))
            continue
        if error.context:  # anyOf: a mapping's problem is in the branch that takes mappings
            branches = [e for e in error.context if e.validator != "type"] if isinstance(error.instance, dict) else []
            error = best_match(branches or error.context) or error
        diagnostics.append(
            Diagnostic(
                "E002",
                describe_error(error),
                document.location(*error.absolute_path),
                rule=document.title,
                hint=unexpected_key_hint(error),
            )
        )
    return diagnostics, settings_only


def unknown_keys(document: RuleDocument, error: ValidationError) -> list[Diagnostic]:
    """One diagnostic per key the schema does not allow, at the key, with the nearest allowed one."""
    import difflib

    allowed = sorted(error.schema.get("properties", {}))
    path = list(error.absolute_path)
    where = ".".join(map(str, path))
    found = []
    for key in sorted((k for k in error.instance if k not in allowed), key=str):
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else (f"{where or 'a rule'} takes {', '.join(allowed)}" if allowed else None)
        found.append(Diagnostic("E002", f"unknown key '{key}'" + (f" in '{where}'" if where else ""),
                                document.location(*path, key), rule=document.title, hint=hint))
    return found


def empty_selection(error: ValidationError) -> bool:
    """A detection selection given as `{}` or `[]` (whose schema message says only 'not of type')."""
    path = list(error.absolute_path)
    return len(path) == 2 and path[0] == "detection" and path[1] != "condition" and error.instance in ({}, [])


# -- the other documents a project holds: entra-sigma.toml, Sigma filters --------------------------
# Each schema is self-contained (editors resolve no reference to another file); where one
# repeats a definition of rule.schema.json (an override's settings, a filter's selections),
# tests/test_project.py checks that the copy is the rule schema's own.
@lru_cache(maxsize=4)
def schema_validator(name: str) -> Draft202012Validator:
    """The validator of `schemas/<name>` (the project file, a filter, a tests file)."""
    from jsonschema import Draft202012Validator

    schema = json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


@lru_cache(maxsize=4)
def fast_schema_check(name: str):
    """`schemas/<name>` compiled by fastjsonschema: a yes or no without importing jsonschema (a
    build served from the cache reads the project file, and should not pay for it)."""
    import fastjsonschema

    schema = json.loads((SCHEMAS_DIR / name).read_text(encoding="utf-8"))
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    return fastjsonschema.compile(schema)


def schema_problems(data, name: str) -> list[tuple[tuple, str, str | None]]:
    """(key path, message, hint) for each way `data` breaks `schemas/<name>`; an unknown key is
    located at itself, with the nearest allowed key as a did-you-mean."""
    from fastjsonschema import JsonSchemaException

    try:
        fast_schema_check(name)(data)
        return []
    except JsonSchemaException:
        pass  # the located messages come from jsonschema
    errors = sorted(schema_validator(name).iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    return [problem for error in errors for problem in _problems(error)]


DURATION_PATTERN = "^[1-9][0-9]*[mhd]$"


def _problems(error: ValidationError) -> list[tuple[tuple, str, str | None]]:
    import difflib

    path = tuple(error.absolute_path)
    where = ".".join(str(p) for p in path)
    if error.validator == "additionalProperties" and error.validator_value is False:
        allowed = sorted(error.schema.get("properties", {}))
        problems = []
        for key in sorted(set(error.instance) - set(allowed)):
            close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else (f"keys: {', '.join(allowed)}" if allowed else None)
            problems.append((path + (key,), f"unknown key '{key}'" + (f" in '{where}'" if where else ""), hint))
        return problems
    if error.validator in ("anyOf", "oneOf") and error.context:
        branches: dict[int, list] = {}
        for inner in error.context:
            branches.setdefault(inner.relative_schema_path[0], []).append(inner)
        for inner_errors in branches.values():  # the branch written for this kind of value
            if not any(e.validator == "type" and not e.relative_path for e in inner_errors):
                return [problem for inner in inner_errors for problem in _problems(inner)]
        kinds = sorted({k for e in error.context if e.validator == "type" for k in _as_list(e.validator_value)})
        return [(path, f"'{where}' must be {' or '.join(kinds) or 'something else'}, not {error.instance!r}", None)]
    if error.validator == "pattern" and error.validator_value == DURATION_PATTERN:
        return [(path, f"'{where}' must be a duration such as 5m, 1h or 14d, not {error.instance!r}", None)]
    if error.validator == "pattern" and str(error.schema.get("description", "")).startswith("a "):
        return [(path, f"'{where}' must be {error.schema['description']}, not {error.instance!r}", None)]
    if error.validator == "minItems" and error.validator_value == 1 and error.instance == []:
        return [(path, f"'{where}' is empty: give at least one value", None)]
    return [(path, describe_error(error), None)]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def unexpected_key_hint(error: ValidationError) -> str | None:
    """`did you mean 'neq'?` for a key the schema does not allow (`ne:` in a condition)."""
    import difflib

    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return None
    allowed = list(error.schema.get("properties") or {})
    for key in error.instance:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.5)
            return f"did you mean '{close[0]}'?" if close else None
    return None

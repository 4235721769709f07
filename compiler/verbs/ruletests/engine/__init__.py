"""The local engine's extension of duckdb-kql: what our queries use and the pinned release lacks.

duckdb-kql 1.1.2 refuses `mv-apply` (every rule on an array field: authenticationDetails,
appliedConditionalAccessPolicies, ...) and `ipv4_is_in_range`/`ipv6_is_in_range` (every
`cidr`). This package adds them, plus `ipv4_is_match` and `ipv4_is_in_any_range`, at a few
named seams of duckdb-kql (seams.py), without copying it:

- `mv_apply.py`: the operator, lowered to an IR node of ours and rendered as a LATERAL subquery
  over duckdb-kql's own `mv-expand` of each row;
- `ip_ranges.py`: the functions, as arithmetic over addresses read by the rules of duckdb-kql's
  `parse_ipv4`/`parse_ipv6`.

`install()` runs once per process. Each feature is switched on only when the installed
duckdb-kql is the pinned release and every seam it touches is byte for byte the one it was
written against; otherwise the engine is left as it was for that feature, and the queries that
need it are reported "not replayed" with the reason (`off_reason`). docs/engine-upstream.md is
this change written up for duckdb-kql's authors.
"""

from __future__ import annotations

import threading

from . import ip_ranges, mv_apply
from .seams import SeamCheck, check

FEATURES = ("mv-apply", "ip-ranges")
# the KQL constructs each feature adds, as a refusal names them (see replay.construct_name)
CONSTRUCTS = {"mv-apply": ("mv-apply",), "ip-ranges": tuple(f"{name}()" for name in ip_ranges.FUNCTIONS)}

_lock = threading.Lock()
_status: dict[str, SeamCheck] | None = None


def install() -> dict[str, SeamCheck]:
    """Switch on every feature whose seams check out (once per process); say which are off."""
    global _status
    with _lock:
        if _status is None:
            _status = {}
            for feature, installer in (("mv-apply", _install_mv_apply), ("ip-ranges", _install_ip_ranges)):
                result = check(feature)
                if result.ok:
                    problem = installer()
                    result = result if problem is None else SeamCheck(feature, problem)
                _status[feature] = result
        return dict(_status)


def off_reason(construct: str) -> str | None:
    """Why the extension does not run `construct` here, if it is one of ours and is off."""
    for feature, result in (_status or {}).items():
        if not result.ok and construct in CONSTRUCTS[feature]:
            return result.problem
    return None


def _install_mv_apply() -> str | None:
    from duckdb_kql import lower, schema, translate

    if not hasattr(translate, "_NAMES_STATE"):
        return "duckdb-kql's translator keeps no per-statement schema where the mv-apply extension reads it"

    lower_operator, substitute_operator = lower._lower_operator, lower._substitute_operator
    render_operator, operator_columns = translate.render_operator, schema._operator_columns_unchecked

    def lower_with_mv_apply(node):
        found = node
        while lower._cls(found) in ("PipedOperator", "AfterPipeOperator") and lower._rule_children(found):
            found = lower._rule_children(found)[0]
        found = lower._collapse(found)
        if lower._cls(found) == "MvapplyOperator":
            return mv_apply.lower(found)
        return lower_operator(node)

    def substitute_with_mv_apply(op, scalars):
        if isinstance(op, mv_apply.MvApply):
            return mv_apply.substitute(op, scalars)
        return substitute_operator(op, scalars)

    def render_with_mv_apply(op, prev, cols=None):
        if isinstance(op, mv_apply.MvApply):
            return mv_apply.render(op, prev, cols, _current_schema(translate))
        return render_operator(op, prev, cols)

    def columns_with_mv_apply(op, cols, schema_):
        if isinstance(op, mv_apply.MvApply):
            return mv_apply.columns(op, cols, schema_)
        return operator_columns(op, cols, schema_)

    lower._lower_operator = lower_with_mv_apply
    lower._substitute_operator = substitute_with_mv_apply
    translate.render_operator = render_with_mv_apply
    schema._operator_columns_unchecked = columns_with_mv_apply
    return None


def _current_schema(translate):
    """The schema of the pipeline being rendered (its `let`s included), for the subquery's own
    joins; render_operator is not handed it."""
    names = translate._NAMES_STATE.get()
    return names.schemas[-1] if names is not None and names.schemas else None


def _install_ip_ranges() -> str | None:
    from duckdb_kql import translate

    forms = getattr(translate, "_SPECIAL_FORMS", None)
    if not isinstance(forms, dict) or forms.get("coalesce") is not translate._render_coalesce \
            or set(forms) & set(ip_ranges.FUNCTIONS):
        return "duckdb-kql's table of special functions is not the one the ip-ranges extension was written against"
    forms.update(ip_ranges.FUNCTIONS)
    forms["coalesce"] = ip_ranges.coalesce_of_booleans(forms["coalesce"])
    return None

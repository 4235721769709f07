"""Printing a plan (and what apply did): text for logs, Markdown for a pull-request comment, JSON for machines.

All three are deterministic: changes sorted by kind and rule id, no timestamps. Field values
are shown as JSON; text that spans lines (the query) as a unified diff, deployed → rules.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from ...console import json_for_console, one_line
from ...render.markdown import code_span, fenced, html_text, markdown_text
from .content import FieldChange
from .plan import CREATE, DELETE, DRIFT, FOREIGN, KEEP, SKIPPED, UNCHANGED, UPDATE, Change, Plan

ORDER = (FOREIGN, CREATE, UPDATE, DRIFT, DELETE, KEEP, SKIPPED, UNCHANGED)
MARKS = {CREATE: "+", UPDATE: "~", DRIFT: "!", DELETE: "-", KEEP: " ", FOREIGN: "x", SKIPPED: " ", UNCHANGED: "="}
HEADINGS = {
    FOREIGN: "Cannot deploy", CREATE: "To create", UPDATE: "To update", DRIFT: "Drift", DELETE: "To delete",
    KEEP: "No longer in RULES (kept)", SKIPPED: "Skipped", UNCHANGED: "Unchanged",
}


def ordered(plan: Plan) -> list[Change]:
    return sorted(plan.changes, key=lambda c: (ORDER.index(c.action), c.id.lower()))


def summary(plan: Plan) -> str:
    parts = [
        f"{plan.count(CREATE)} to create", f"{plan.count(UPDATE)} to update", f"{plan.count(DRIFT)} drifted",
        f"{plan.count(DELETE)} to delete", f"{plan.count(UNCHANGED)} unchanged",
    ]
    parts += [f"{plan.count(a)} {w}" for a, w in ((KEEP, "kept (not in RULES)"), (SKIPPED, "skipped"), (FOREIGN, "blocked")) if plan.count(a)]
    return ", ".join(parts)


def applied_summary(plan: Plan) -> str:
    done: dict[str, int] = {}
    for change in plan.changes:
        if change.outcome is not None:
            done[change.outcome.done] = done.get(change.outcome.done, 0) + 1
    words = ("created", "updated", "restored", "deleted", "failed", "conflict")
    return ", ".join(f"{done.get(w, 0)} {w}" for w in words)


def value_text(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value, ensure_ascii=False)


def is_text_block(change: FieldChange) -> bool:
    return any(isinstance(v, str) and "\n" in v for v in (change.before, change.after))


def unified(change: FieldChange) -> str:
    before = (change.before or "") if isinstance(change.before, str) else value_text(change.before)
    after = (change.after or "") if isinstance(change.after, str) else value_text(change.after)
    lines = difflib.unified_diff(
        before.splitlines(keepends=True), after.splitlines(keepends=True),
        f"deployed/{change.path}", f"rules/{change.path}", n=2,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def note(change: Change, plan: Plan) -> str:
    """One line on why, for changes that need one."""
    if change.action == DRIFT:
        then = "left as it is (--keep-drifted)" if change.kept else "apply restores the rules' version"
        return f"changed on the service since the last deploy; {then}"
    if change.action == UPDATE and change.drifted:
        then = "left as it is (--keep-drifted)" if change.kept else "apply overwrites those edits too"
        return f"the rules changed, and the rule was also changed on the service since the last deploy; {then}"
    return change.reason


def outcome_text(change: Change) -> str:
    outcome = change.outcome
    if outcome is None:
        return ""
    text = f"{outcome.done}" + (f": error {outcome.code}: {outcome.message}" if outcome.code else "")
    return text + "".join(f"; warning {code}: {message}" for code, message in outcome.warnings)


# -- text ------------------------------------------------------------------------------------
def render_text(plan: Plan) -> str:
    out = [f"Plan for {plan.scope}: {summary(plan)}"]
    for change in ordered(plan):
        if change.action == UNCHANGED and not change.reason:  # a reason: a difference that deploys nothing
            continue
        line = f"{MARKS[change.action]} {change.action:<8} {change.title} [{change.id}]"
        if change.source:
            line += f"  {change.source}"
        out.append(line)
        why = note(change, plan)
        if change.action == FOREIGN:
            why = f"error E603: {why}"
        if why:
            out.append(f"    {why}")
        for field in change.fields if change.action in (UPDATE, DRIFT) else []:
            if is_text_block(field):
                out.append(f"    {field.path}:")
                out += [f"      {line}" for line in unified(field).rstrip("\n").split("\n")]
            else:
                out.append(f"    {field.path}: {value_text(field.before)} -> {value_text(field.after)}")
        if change.outcome is not None:
            out.append(f"    => {outcome_text(change)}")
    if plan.others:
        out.append(f"{plan.others} other rule(s) there were not created by entra-sigma: left alone")
    if plan.applied:
        out.append(f"Done: {applied_summary(plan)}")
    elif not plan.has_changes:
        out.append("Nothing to do.")
    # titles, queries and error messages come from rule files and from the service: one line each
    return "\n".join(one_line(line) for line in out) + "\n"


# -- markdown --------------------------------------------------------------------------------
def render_markdown(plan: Plan) -> str:
    verb = "apply" if plan.applied else "plan"
    out = [f"### entra-sigma deploy {plan.target} {verb}: {summary(plan)}", "", markdown_text(plan.scope) + "."]
    if plan.applied:
        out += ["", f"Done: {applied_summary(plan)}."]
    elif not plan.has_changes and not plan.errors:
        out += ["", "Nothing to do."]
    for action in ORDER:
        items = [c for c in ordered(plan) if c.action == action and (action != UNCHANGED or c.reason)]
        if not items:
            continue
        out += ["", f"**{HEADINGS[action]}**", ""]
        for change in items:
            detailed = change.action in (UPDATE, DRIFT) and change.fields
            if not detailed:
                line = f"- {markdown_text(change.title)} ({code_span(change.id)})"
                if change.source:
                    line += f" — {code_span(change.source)}"
                why = note(change, plan)
                if why:
                    line += f": {markdown_text(why)}"
                if change.outcome is not None:
                    line += f" — **{markdown_text(outcome_text(change))}**"
                out.append(line)
                continue
            out += _markdown_details(change, plan)
    if plan.others:
        out += ["", f"{plan.others} other rule(s) there were not created by entra-sigma: left alone."]
    return "\n".join(out) + "\n"


def _markdown_details(change: Change, plan: Plan) -> list[str]:
    source = f" — <code>{html_text(change.source)}</code>" if change.source else ""
    out = ["<details>", f"<summary>{html_text(change.title)} (<code>{html_text(change.id)}</code>){source}</summary>", ""]
    why = note(change, plan)
    if why:
        out += [markdown_text(why), ""]
    simple = [f for f in change.fields if not is_text_block(f)]
    if simple:
        out += ["| field | deployed | rules |", "|---|---|---|"]
        out += [f"| {code_span(f.path)} | {_cell(f.before)} | {_cell(f.after)} |" for f in simple]
        out.append("")
    for field in change.fields:
        if is_text_block(field):
            out += [fenced(unified(field), "diff"), ""]
    if change.outcome is not None:
        out += [f"**{markdown_text(outcome_text(change))}**", ""]
    out.append("</details>")
    return out


def _cell(value: Any) -> str:
    return code_span(value_text(value)).replace("|", "\\|")


# -- json ------------------------------------------------------------------------------------
def render_json(plan: Plan) -> str:
    changes = []
    for change in ordered(plan):
        item: dict[str, Any] = {
            "action": change.action, "id": change.id, "title": change.title, "source": change.source,
            "drifted": change.drifted, "kept": change.kept, "reason": note(change, plan) or None,
            "fields": [{"path": f.path, "deployed": f.before, "rules": f.after} for f in change.fields],
        }
        if change.outcome is not None:
            item["outcome"] = {
                "done": change.outcome.done, "code": change.outcome.code, "message": change.outcome.message or None,
                "warnings": [{"code": c, "message": m} for c, m in change.outcome.warnings],
            }
        changes.append(item)
    counts = {action: plan.count(action) for action in ORDER}
    document = {
        "target": plan.target, **({"environment": plan.environment} if plan.environment else {}),
        "scope": plan.scope, "applied": plan.applied, "prune": plan.prune,
        "changes_pending": plan.has_changes and not plan.applied,
        "summary": {**counts, "others": plan.others},
        "changes": changes,
        "errors": [{"code": c.error[0], "id": c.id, "message": c.error[1]} for c in ordered(plan) if c.error],
    }
    return json_for_console(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


def render_failure(target: str, scope: str, prune: bool, errors: list[dict], environment: str | None = None) -> str:
    """The JSON document of a deploy that stopped before its plan: no changes, and why."""
    document = {
        "target": target, **({"environment": environment} if environment else {}),
        "scope": scope, "applied": False, "prune": prune, "changes_pending": False,
        "summary": {**{action: 0 for action in ORDER}, "others": 0},
        "changes": [],
        "errors": errors,
    }
    return json_for_console(json.dumps(document, indent=2, ensure_ascii=False)) + "\n"


RENDERERS = {"text": render_text, "markdown": render_markdown, "json": render_json}

"""Printing a `diff` result: plain text for terminals, Markdown for pull-request comments.

Both are deterministic: sorted, no timestamps, no temporary paths.
"""

from __future__ import annotations

import difflib
import json
from typing import Any

from ...console import one_line
from ...render.markdown import code_span, fenced, html_text, markdown_text
from .compare import RuleChange, RuleDiff
from .settings import SettingChange


def _counts(result: RuleDiff) -> str:
    return (
        f"{len(result.changed)} changed, {len(result.added)} added, {len(result.removed)} removed, "
        f"{result.unchanged} unchanged"
    )


def _rule_line(change: RuleChange) -> str:
    line = f"{change.name} [{change.id}]" if change.id else change.name
    return line + _where(change)


def _where(change: RuleChange) -> str:
    """The environments a change reaches (diff --env)."""
    if not change.environments:
        return ""
    return f" (in {', '.join(change.environments)})"


def _diff_text(change: RuleChange, item) -> str:
    """A file's diff; headed by the environments it is in when the rule changed in others too."""
    if item.environments and item.environments != change.environments:
        return f"# in {', '.join(item.environments)}\n" + item.text
    return item.text


def _compared(result: RuleDiff) -> str:
    if not result.environments:
        return ""
    return f" in environment{'s' if len(result.environments) > 1 else ''} {', '.join(result.environments)}"


def _hidden_note(change: RuleChange) -> str:
    if change.not_built:
        return "no outputs: the rule has errors in the working tree"
    return f"also changed: {', '.join(change.hidden)} (--all-formats shows them)"


def value_text(value: Any) -> str:
    return "(absent)" if value is None else json.dumps(value, ensure_ascii=False)


def setting_diff(setting: SettingChange) -> str:
    """A setting whose value spans lines (a description), as a unified diff."""
    before, after = ((v if isinstance(v, str) else value_text(v)) for v in (setting.before or "", setting.after or ""))
    lines = difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                 f"a/{setting.name}", f"b/{setting.name}", n=2)
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _setting_where(setting: SettingChange) -> str:
    return ", ".join(setting.formats) + "".join(f"; also {name}" for name in setting.also)


def _setting_lines(change: RuleChange) -> list[str]:
    """The settings that changed, one line each (a text block as a diff), for the text report."""
    out = [f"  {note}" for note in change.notes]
    if change.settings:
        out.append("  settings:")
    for setting in change.settings:
        where = _setting_where(setting)
        if setting.text_block:
            out.append(f"    {setting.name}: ({where})")
            out += [f"      {line}" for line in setting_diff(setting).rstrip("\n").split("\n")]
        else:
            out.append(f"    {setting.name}: {value_text(setting.before)} -> {value_text(setting.after)}  ({where})")
    return out


def render_text(result: RuleDiff) -> str:
    out = [f"{result.rules_dir.rstrip('/')}/ at {result.base.describe()} -> working tree{_compared(result)}"]
    if not result.any_change:
        out.append(f"no changes ({result.unchanged} rule(s) unchanged)")
        return _console(out)
    out.append(_counts(result))
    for title, mark, items in (("added", "+", result.added), ("removed", "-", result.removed), ("changed", "~", result.changed)):
        if items:
            out.append("")
            out.append(f"{title}:")
            out += [f"  {mark} {_rule_line(c)}" for c in items]
    for change in result.added:
        out += ["", f"+ {_rule_line(change)}"]
        out += [f"  {d}" for d in change.new_diagnostics]
        for item in change.diffs:
            out += _diff_text(change, item).rstrip("\n").split("\n")
    for change in result.changed:
        out += ["", f"~ {_rule_line(change)}"]
        out += [f"  new: {d}" for d in change.new_diagnostics]
        out += [f"  resolved: {d}" for d in change.resolved_diagnostics]
        out += _setting_lines(change)
        if change.hidden and change.settings and not change.not_built:
            out.append(f"  in: {', '.join(change.hidden)} (--all-formats shows the files whole)")
        elif change.hidden:
            out.append(f"  {_hidden_note(change)}")
        for item in change.diffs:
            out += _diff_text(change, item).rstrip("\n").split("\n")
    return _console(out)


def _console(lines: list[str]) -> str:
    """Titles, paths and the lines of output files (a description's lines) as console lines."""
    return "\n".join(one_line(line) for line in lines) + "\n"


def _markdown_rule(change: RuleChange) -> str:
    name = markdown_text(change.name)
    text = f"{name} ({code_span(change.id)})" if change.id else name
    return text + (f" in {', '.join(code_span(e) for e in change.environments)}" if change.environments else "")


def render_markdown(result: RuleDiff) -> str:
    """A pull-request comment."""
    where = f"Rules in {code_span(result.rules_dir)} at {result.base.describe(code_span)} compared with the working tree"
    if result.environments:
        where += f" in environment{'s' if len(result.environments) > 1 else ''} {', '.join(code_span(e) for e in result.environments)}"
    out: list[str] = []
    if not result.any_change:
        out += ["### entra-sigma diff: no rule changes", "", f"{where}; {result.unchanged} rule(s) unchanged."]
    else:
        out += [f"### entra-sigma diff: {_counts(result)}", "", f"{where}."]
    if result.errors:
        out += ["", f"**{result.errors} error(s)** in the working tree's rules: the build fails."]
    if result.added:
        out += ["", "**Added**"]
    for change in result.added:
        out += ["", "<details>", f"<summary>{_summary(change)}</summary>", ""]
        if change.new_diagnostics:
            out += [fenced("".join(f"{d}\n" for d in change.new_diagnostics), "text"), ""]
        if change.diffs:
            out += [fenced("".join(_diff_text(change, item) for item in change.diffs), "diff"), ""]
        out.append("</details>")
    if result.removed:
        out += ["", "**Removed**", ""]
        out += [f"- {_markdown_rule(change)}" for change in result.removed]
    if result.changed:
        out += ["", "**Changed**"]
    for change in result.changed:
        out += ["", "<details>", f"<summary>{_summary(change)}</summary>", ""]
        if change.new_diagnostics or change.resolved_diagnostics:
            lines = [f"new: {d}\n" for d in change.new_diagnostics] + [f"resolved: {d}\n" for d in change.resolved_diagnostics]
            out += [fenced("".join(lines), "text"), ""]
        out += [markdown_text(note) + "\n" for note in change.notes]
        if change.not_built:
            out += [markdown_text(_hidden_note(change)), ""]
        if change.diffs:
            out += [fenced("".join(_diff_text(change, item) for item in change.diffs), "diff"), ""]
        out += _markdown_settings(change)
        out.append("</details>")
    return "\n".join(out) + "\n"


def _markdown_settings(change: RuleChange) -> list[str]:
    """The changed settings as a table (a text block as a diff below it), and the files they are in."""
    if not change.settings:
        if change.hidden and not change.not_built:
            paths = ", ".join(code_span(path) for path in change.hidden)
            return [f"Also changed: {paths} ({code_span('--all-formats')} shows them).", ""]
        return []
    out = ["| setting | before | after | in |", "|---|---|---|---|"]
    for setting in change.settings:
        if setting.text_block:
            before, after = "(see below)", "(see below)"
        else:
            before, after = _cell(setting.before), _cell(setting.after)
        also = "".join(f"; also {code_span(name)}" for name in setting.also)
        out.append(f"| {code_span(setting.name)} | {before} | {after} | {', '.join(setting.formats)}{also} |")
    out.append("")
    out += [fenced(setting_diff(s), "diff") + "\n" for s in change.settings if s.text_block]
    if change.hidden:
        paths = ", ".join(code_span(path) for path in change.hidden)
        out += [f"In {paths} ({code_span('--all-formats')} shows the files whole).", ""]
    return out


def _cell(value: Any) -> str:
    return code_span(value_text(value)).replace("|", "\\|")


def _summary(change: RuleChange) -> str:
    text = html_text(change.name)
    if change.id:
        text += f" (<code>{html_text(change.id)}</code>)"
    if change.environments:
        text += " in " + ", ".join(f"<code>{html_text(e)}</code>" for e in change.environments)
    if change.has_errors:
        text += " — <b>has errors</b>"
    return text

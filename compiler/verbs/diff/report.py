"""Printing a `diff` result: plain text for terminals, Markdown for pull-request comments.

Both are deterministic: sorted, no timestamps, no temporary paths.
"""

from __future__ import annotations

import html
import re

from .compare import RuleChange, RuleDiff


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


def render_text(result: RuleDiff) -> str:
    out = [f"{result.rules_dir.rstrip('/')}/ at {result.base.describe()} -> working tree{_compared(result)}"]
    if not result.any_change:
        out.append(f"no changes ({result.unchanged} rule(s) unchanged)")
        return "\n".join(out) + "\n"
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
            out.append(_diff_text(change, item).rstrip("\n"))
    for change in result.changed:
        out += ["", f"~ {_rule_line(change)}"]
        out += [f"  new: {d}" for d in change.new_diagnostics]
        out += [f"  resolved: {d}" for d in change.resolved_diagnostics]
        if change.hidden:
            out.append(f"  {_hidden_note(change)}")
        for item in change.diffs:
            out.append(_diff_text(change, item).rstrip("\n"))
    return "\n".join(out) + "\n"


_MARKDOWN_INLINE = re.compile(r"([\\`*_\[\]<>|~&])")


def markdown_text(text: str) -> str:
    """Plain text as one line of markdown, every character literal."""
    text = _MARKDOWN_INLINE.sub(r"\\\1", " ".join(text.split()))
    return re.sub(r"^([#+\-=>]|\d+(?=[.)]))", r"\\\1", text)


def code_span(text: str) -> str:
    text = " ".join(text.split())
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(text: str, info: str) -> str:
    """A fenced code block that no run of backticks inside can close."""
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


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
        if change.not_built:
            out += [markdown_text(_hidden_note(change)), ""]
        elif change.hidden:
            paths = ", ".join(code_span(path) for path in change.hidden)
            out += [f"Also changed: {paths} ({code_span('--all-formats')} shows them).", ""]
        if change.diffs:
            out += [fenced("".join(_diff_text(change, item) for item in change.diffs), "diff"), ""]
        out.append("</details>")
    return "\n".join(out) + "\n"


def _html_text(text: str) -> str:
    """Text inside an HTML block: escaped for HTML, and markdown's inline marks as entities
    (GitHub renders some markdown inside <summary>)."""
    return html.escape(text).translate({ord("`"): "&#96;", ord("*"): "&#42;", ord("_"): "&#95;"})


def _summary(change: RuleChange) -> str:
    text = _html_text(change.name)
    if change.id:
        text += f" (<code>{_html_text(change.id)}</code>)"
    if change.environments:
        text += " in " + ", ".join(f"<code>{_html_text(e)}</code>" for e in change.environments)
    if change.has_errors:
        text += " — <b>has errors</b>"
    return text

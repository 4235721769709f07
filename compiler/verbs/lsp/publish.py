"""Findings → LSP: diagnostics at the range of the key at fault, with their code, and the
quick fixes as code actions."""

from __future__ import annotations

from lsprotocol import types

from ...diagnostics import Diagnostic
from .checks import TEST_SOURCE, Findings
from .fixes import Fix, fixes_for
from .text import key_range

SOURCE = "entra-sigma"
SEVERITY = {"error": types.DiagnosticSeverity.Error, "warning": types.DiagnosticSeverity.Warning}


def span(lines: list[str], line: int, column: int) -> types.Range:
    start_line, start, end_line, end = key_range(lines, line, column)
    return types.Range(types.Position(start_line, start), types.Position(end_line, end))


def message_of(diagnostic: Diagnostic, name_rule: bool) -> str:
    """The diagnostic as `validate` words it, without the place (the editor shows that)."""
    text = diagnostic.message
    if name_rule and diagnostic.rule:
        text += f" in rule '{diagnostic.rule}'"
    if diagnostic.target:
        text += f" [{diagnostic.target}]"
    if diagnostic.hint:
        text += f" ({diagnostic.hint})"
    return text


def lsp_diagnostic(diagnostic: Diagnostic, lines: list[str], name_rule: bool) -> types.Diagnostic:
    return types.Diagnostic(
        range=span(lines, diagnostic.location.line, diagnostic.location.column),
        message=message_of(diagnostic, name_rule),
        severity=SEVERITY[diagnostic.severity],
        code=diagnostic.code,
        source=SOURCE,
    )


def lsp_diagnostics(findings: Findings, lines: list[str]) -> tuple[list[types.Diagnostic], list[Fix]]:
    """The LSP diagnostics of a file and the quick fixes for them."""
    several = len({d.rule for d in findings.diagnostics if d.rule}) > 1
    published = [lsp_diagnostic(d, lines, several) for d in findings.diagnostics]
    for location, why in findings.failures:
        published.append(types.Diagnostic(
            range=span(lines, location.line, location.column), message=f"the case fails: {why}",
            severity=types.DiagnosticSeverity.Error, source=TEST_SOURCE,
        ))
    fixes = [fix for d in findings.diagnostics for fix in fixes_for(d, lines)]
    return published, fixes


def code_action(fix: Fix, uri: str, lines: list[str]) -> types.CodeAction:
    edits = [
        types.TextEdit(types.Range(types.Position(a, b), types.Position(c, d)), text)
        for a, b, c, d, text in fix.edits
    ]
    return types.CodeAction(
        title=fix.title,
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[lsp_diagnostic(fix.diagnostic, lines, False)],
        edit=types.WorkspaceEdit(changes={uri: edits}),
        is_preferred=fix.preferred or None,
    )


def overlaps(a: types.Range, b: types.Range) -> bool:
    return (a.start.line, a.start.character) <= (b.end.line, b.end.character) and \
        (b.start.line, b.start.character) <= (a.end.line, a.end.character)

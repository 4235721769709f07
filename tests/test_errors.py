"""Every bad input in tests/cases/bad/ gives exactly the expected message, located, as a whole string.

Each `<case>.yml` has a `<case>.expected` beside it holding the complete diagnostics
output (`path:line:column: error: message ...`). A run over all bad cases plus a good rule
still compiles the good rule and reports every bad one.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from entra_sigma.build import Compiler
from entra_sigma.diagnostics import format_text
from entra_sigma.load.loader import parse_yaml

from .helpers import CASES

BAD = CASES / "bad"
CASES_BAD = sorted(p.stem for p in BAD.glob("*.yml"))


def diagnose(names: list[str], extra: dict[str, str] | None = None) -> tuple[list, list]:
    compiler = Compiler()
    documents, diagnostics = [], []
    sources = {f"bad/{n}.yml": (BAD / f"{n}.yml").read_text(encoding="utf-8") for n in names}
    sources.update(extra or {})
    for display, text in sources.items():
        document, problems = parse_yaml(text, Path(display), display)
        diagnostics += problems
        if document:
            documents.append(document)
    rules, problems = compiler.rules(documents)
    diagnostics += problems
    compiled = []
    for rule in rules:
        result, problems = compiler.compile_rule(rule, ("sentinel",))
        diagnostics += problems
        if result.texts:
            compiled.append(result)
    return compiled, diagnostics


def test_every_bad_case_has_an_expectation():
    assert len(CASES_BAD) >= 20
    missing = [n for n in CASES_BAD if not (BAD / f"{n}.expected").exists()]
    assert not missing


@pytest.mark.parametrize("case", CASES_BAD)
def test_bad_input_gives_exactly_the_expected_message(case):
    compiled, diagnostics = diagnose([case])
    assert compiled == []
    assert format_text(diagnostics) == (BAD / f"{case}.expected").read_text(encoding="utf-8")
    assert len(diagnostics) == 1


GOOD = """title: good rule among bad ones
id: 0e0a7f64-1c1e-4f3b-9a0e-6f1f6b1a2b3c
logsource: {product: entra, service: interactive}
detection:
  sel:
    userPrincipalName|endswith: '@contoso.com'
  condition: sel
"""


def test_one_bad_rule_never_hides_the_others():
    compiled, diagnostics = diagnose(CASES_BAD, {"good.yml": GOOD})
    assert [c.rule.title for c in compiled] == ["good rule among bad ones"]
    reported = {d.location.path for d in diagnostics}
    assert reported == {f"bad/{n}.yml" for n in CASES_BAD}

"""How `entra-sigma test` prints: problem cases in detail, then a table per rule and a total."""

from __future__ import annotations

from ...console import one_line
from .run import FAILED, NOT_REPLAYED, PASSED, TestRun

LABELS = {PASSED: "PASS", FAILED: "FAIL", NOT_REPLAYED: "NOT REPLAYED"}


def render_text(run: TestRun, verbose: bool = False) -> str:
    lines = []
    for report in run.reports:
        for result in report.results:
            if result.outcome == PASSED and not verbose:
                continue
            lines.append(f"{LABELS[result.outcome]}  {report.source}: {result.case.name}")
            if result.detail:
                lines.append(f"    {result.detail}")
    if lines:
        lines.append("")
    width = max([len(r.source) for r in run.reports] + [len("rule")])
    header = f"{'rule':<{width}}  passed  failed  not replayed"
    lines += [header, "-" * len(header)]
    for report in run.reports:
        lines.append(f"{report.source:<{width}}  {report.count(PASSED):>6}  {report.count(FAILED):>6}  {report.count(NOT_REPLAYED):>12}")
    lines.append("-" * len(header))
    lines.append(f"{'total':<{width}}  {run.count(PASSED):>6}  {run.count(FAILED):>6}  {run.count(NOT_REPLAYED):>12}")
    total = sum(len(r.results) for r in run.reports)
    lines.append(
        f"{total} case(s) in {len(run.reports)} rule file(s): {run.count(PASSED)} passed, {run.count(FAILED)} failed, "
        f"{run.count(NOT_REPLAYED)} not replayed"
        + (" (the local engine could not run the shipped query; see docs/testing-rules.md)" if run.count(NOT_REPLAYED) else "")
    )
    # case names, row values and file names come from the user's files: each line stays one line
    return "\n".join(one_line(line) for line in lines) + "\n"

"""An environment's part in a rule, before the rule is checked: overrides, filters, placeholders.

`prepare` runs first in `Compiler.rules`. Each rule document comes back with the environment's
overrides written into its settings, the filters that apply merged into its detection, and its
placeholders expanded; every piece keeps the position of the file it came from, so the
checks that follow locate a problem where it was written (the rule, a filter, the project
file). A rule whose placeholders cannot be expanded comes back as None, with the reason.
"""

from __future__ import annotations

from ..diagnostics import Diagnostic, has_errors
from ..load.loader import RuleDocument
from .environment import NO_ENVIRONMENT, Environment
from .filters import apply_filters, check_filter
from .overrides import apply_override, names
from .placeholders import expand_placeholders


def prepare(
    documents: list[RuleDocument], environment: Environment | None, catalog,
) -> tuple[list[RuleDocument | None], list[Diagnostic]]:
    environment = environment or NO_ENVIRONMENT
    diagnostics: list[Diagnostic] = list(environment.problems)
    usable = []
    for filter in environment.filters:
        problems = check_filter(filter, environment, catalog)
        diagnostics += problems
        if not has_errors(problems):
            usable.append(filter)
    prepared: list[RuleDocument | None] = []
    for document in documents:
        if not isinstance(document.data, dict):
            prepared.append(document)
            continue
        for override in environment.overrides:
            if names(override, document.data):
                document = apply_override(document, override)
        document = apply_filters(document, tuple(usable))
        expanded, problems = expand_placeholders(document, environment)
        diagnostics += problems
        prepared.append(expanded)
    return prepared, diagnostics

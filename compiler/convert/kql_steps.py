"""KQL pipe steps and the small expressions they are made of, as builders.

Every piece of KQL syntax the query builders lay out (single-event legs, the correlation
steps) is written here, once, as pySigma keeps a backend's syntax in tokens: the builders
decide what to compute, these methods how it is spelt. `KqlGenerator` (convert/kql.py) inherits
them, so a dialect could respell a step by overriding one method.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

Assignment = tuple[str, str]  # (column, expression)

CHAIN_WIDTH = 64  # operands one `and`/`or` chain joins before it is split into parenthesised groups


def chained(operands: list[str], joiner: str) -> str:
    """`a or b or …`, in parenthesised groups of at most CHAIN_WIDTH once it is longer: Kusto
    parses a chain as nested binary expressions, and Kusto.Language refuses one of about 450
    operands ("KS245: Query syntax depth exceeds maximum safe limit"). The same meaning, with
    the depth of a balanced tree; a chain of CHAIN_WIDTH or fewer is written as it always was."""
    if len(operands) <= CHAIN_WIDTH:
        return joiner.join(operands)
    size = CHAIN_WIDTH
    while len(operands) > size * CHAIN_WIDTH:
        size *= CHAIN_WIDTH
    return joiner.join(f"({chained(operands[i:i + size], joiner)})" for i in range(0, len(operands), size))


class KqlSteps:
    """Pipe operators (`summarize`, `join`, `mv-expand`, ...) and expression pieces."""

    # a comparison written in a rule (correlation bounds, time parts) → its KQL operator
    comparisons: ClassVar[dict[str, str]] = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "==", "neq": "!="}

    # -- expressions -----------------------------------------------------------------------
    @staticmethod
    def call(function: str, *args: object) -> str:
        return f"{function}({', '.join(str(a) for a in args)})"

    @staticmethod
    def binary(left: object, operator: str, right: object) -> str:
        return f"{left} {operator} {right}"

    def compare(self, left: object, op: str, right: object) -> str:
        """`left <op> right` for a comparison named as a rule names it (`gte`, `neq`)."""
        return self.binary(left, self.comparisons[op], right)

    @staticmethod
    def all_of(parts: Sequence[str]) -> str:
        return chained(list(parts), " and ")

    @staticmethod
    def any_of(parts: Sequence[str]) -> str:
        return chained(list(parts), " or ")

    @staticmethod
    def group(expression: str) -> str:
        return f"({expression})"

    @staticmethod
    def negate(expression: str) -> str:
        return f"not({expression})"

    @staticmethod
    def between(value: str, low: str, high: str) -> str:
        return f"{value} between ({low} .. {high})"

    def bin(self, value: str, size: str) -> str:
        return self.call("bin", value, size)

    @staticmethod
    def columns(names: Sequence[str]) -> str:
        """A list of columns, as `by` and `on` clauses write them."""
        return ", ".join(names)

    @staticmethod
    def assign(name: str, expression: str) -> str:
        return f"{name} = {expression}"

    def assign_or_keep(self, name: str, expression: str) -> str:
        """`name = expression`, or just `name` when the expression is that column already."""
        return name if name == expression else self.assign(name, expression)

    # -- sources ---------------------------------------------------------------------------
    @staticmethod
    def pipeline(source: str, steps: Sequence[str]) -> str:
        """A source and its steps on one line (inside a join or a union)."""
        return " | ".join([source, *steps])

    def union(self, pipelines: Sequence[str]) -> str:
        return "union " + ", ".join(self.group(p) for p in pipelines)

    # -- pipe steps --------------------------------------------------------------------------
    @staticmethod
    def filter(expression: str) -> str:
        return f"where {expression}"

    def project(self, columns: Sequence[str]) -> str:
        return "project " + self.columns(columns)

    def project_away(self, columns: Sequence[str]) -> str:
        return "project-away " + self.columns(columns)

    def extend(self, assignments: Sequence[Assignment]) -> str:
        return "extend " + ", ".join(self.assign(name, expression) for name, expression in assignments)

    def distinct(self, columns: Sequence[str]) -> str:
        return "distinct " + self.columns(columns)

    def summarize(self, aggregates: Sequence[str | Assignment], by: Sequence[str]) -> str:
        """`summarize a = f(x), g(y) by k1, k2`: an aggregate is an assignment, or an
        expression that names its own columns (`arg_min(...)`); with none, only the groups."""
        written = [a if isinstance(a, str) else self.assign(*a) for a in aggregates]
        head = "summarize " + ", ".join(written) + " " if written else "summarize "
        return head + "by " + self.columns(by)

    def join(self, kind: str, right: str, on: Sequence[str]) -> str:
        return f"join kind={kind} {right} on {self.columns(on)}"

    def mv_expand(self, columns: Sequence[tuple[str, str]], index: str | None = None) -> str:
        """`mv-expand` of array columns, each to a type; `index` names the element's place."""
        expanded = ", ".join(f"{name} to typeof({kind})" for name, kind in columns)
        return "mv-expand " + (f"with_itemindex = {index} " if index else "") + expanded

"""KQL for placeholders that are Sentinel watchlists: their values are read when the query runs.

`_GetWatchlist('alias')` is the function every Sentinel workspace has; a placeholder's
watchlist becomes a table of its column's values inside the predicate that uses it. Only the
comparisons Kusto has over a column of values are written here (project/placeholders.py
refuses the others before): equality with one of them, and membership of one of their ranges.
"""

from __future__ import annotations

from ..map.lower import Predicate
from ..model import ir


class WatchlistPredicates:
    """Mixed into KqlGenerator: it supplies `string`, `member`, `null_safe` and `in_operators`."""

    def watchlist(self, watchlist: ir.Watchlist) -> str:
        """`_GetWatchlist('alias') | project column`, the watchlist's values as a table."""
        return f"_GetWatchlist({self.string(watchlist.alias)}) | project {self.member(watchlist.column)}"

    def in_watchlist(self, p: Predicate, text: str, kind: str) -> str:
        """Equal to one of the values: `in~` (`in` when cased); a number compares as its text."""
        exact = p.match.cased or p.field.type not in ("string", "enum")
        if p.field.type not in ("string", "enum") and kind != "string":
            text = f"tostring({text})"
        return f"{text} {self.in_operators[exact]} ({self.watchlist(p.match.value)})"

    def in_watchlist_ranges(self, watchlist: ir.Watchlist, text: str) -> str:
        """In one of the ranges: IPv4 ranges with ipv4_is_in_any_range and IPv6 ones with
        ipv6_is_in_any_range (a range of the other family would make either one null)."""
        column = self.member(watchlist.column)
        tests = []
        for family, keep in (("ipv4", "!contains"), ("ipv6", "contains")):
            ranges = f'toscalar({self.watchlist(watchlist)} | where {column} {keep} ":" | summarize make_list({column}))'
            tests.append(self.null_safe(f"{family}_is_in_any_range({text}, {ranges})"))
        return "(" + " or ".join(tests) + ")"

"""What a service's answer may be before it is used: bounded in size and depth, the shape the
code reads, and pages that end.

A service can be broken, or not the service at all (a hostile endpoint, a proxy in the way).
Its answers are read as untrusted input: an answer larger than MAX_ANSWER_BYTES is not read
further (stopped while it streams in, decompressed size counted); JSON nested deeper than
MAX_ANSWER_DEPTH, or not of the shape a caller names, fails the request as `InvalidResponse`;
a listing stops at MAX_PAGES pages, and a next link to a page already read is a loop, not
followed. Each failure is a `RequestFailed`, reported like any failed request.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Iterator
from urllib.parse import urlencode, urlsplit, urlunsplit

from azure.core.pipeline.transport import RequestsTransport

MAX_ANSWER_BYTES = 32 << 20  # one answer; a page of 100 Sentinel rules is a few MB
MAX_ANSWER_DEPTH = 64  # JSON nesting; a rule is about eight levels deep
MAX_PAGES = 1_000  # pages of one listing (100 rules each for ARM): far more rules than a workspace holds


class AnswerTooLarge(Exception):
    """Raised while an answer streams in, once it passes the limit (never retried)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes: not read further")


def _read_bounded(response, *args, limit: int, **kwargs):
    """A requests response hook: read the body here, at most `limit` bytes (after decompression),
    before requests would read all of it."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        response.close()
        raise AnswerTooLarge(limit)
    chunks, size = [], 0
    for chunk in response.iter_content(1 << 16):
        size += len(chunk)
        if size > limit:
            response.close()
            raise AnswerTooLarge(limit)
        chunks.append(chunk)
    response._content = b"".join(chunks)  # where requests keeps a body it has read itself
    return response


class BoundedTransport(RequestsTransport):
    """azure-core's requests transport, reading no answer past `limit` bytes."""

    def __init__(self, limit: int = MAX_ANSWER_BYTES, **kwargs) -> None:
        super().__init__(**kwargs)
        self.limit = limit

    def _init_session(self, session) -> None:
        super()._init_session(session)
        session.hooks["response"].append(partial(_read_bounded, limit=self.limit))


def depth(value: Any) -> int:
    """How deeply lists and objects nest in parsed JSON (without recursion)."""
    deepest, pending = 0, [(value, 1)]
    while pending:
        item, level = pending.pop()
        if isinstance(item, dict):
            items = item.values()
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, level)
        pending.extend((child, level + 1) for child in items)
    return deepest


TYPE_NAMES = {dict: "an object", list: "a list", str: "text", bool: "true or false", int: "a number", float: "a number",
              type(None): "null"}


def shape_problem(value: Any, shape: dict[str, tuple[type, ...]]) -> str | None:
    """Why `value` is not of `shape` (dotted path → allowed types; "" is the value itself; a
    path whose parent is absent is not checked), or None."""
    for path, allowed in shape.items():
        node, present = value, True
        for key in path.split(".") if path else []:
            if not isinstance(node, dict) or key not in node:
                present = False
                break
            node = node[key]
        if not present or isinstance(node, allowed) and not (isinstance(node, bool) and bool not in allowed):
            continue
        wanted = " or ".join(dict.fromkeys(TYPE_NAMES[t] for t in allowed))
        return f"{'the answer' if not path else repr(path)} is {TYPE_NAMES.get(type(node), type(node).__name__)}, not {wanted}"
    return None


PAGE = {"": (dict,), "value": (list,)}


def pages(client, path: str, params: dict | None, next_key: str, item_shape: dict[str, tuple[type, ...]]) -> Iterator[list[dict]]:
    """The items of every page of a listing, following `next_key` links on the same origin,
    each page once, at most MAX_PAGES of them."""
    from .pipeline import RequestFailed

    url, seen = path, set()
    for number in range(1, MAX_PAGES + 2):
        parts = urlsplit(client.url(url) + ("?" + urlencode(params) if params else ""))
        address = urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path, parts.query, ""))
        if number > MAX_PAGES:
            raise RequestFailed("GET", address, None, "TooManyPages", f"the listing goes on past {MAX_PAGES} pages: not followed further")
        if address in seen:
            raise RequestFailed("GET", address, None, "NextLinkLoop", "the next page is one already read: not followed")
        seen.add(address)
        response = client.send("GET", url, params=params)
        page = response.body
        problem = shape_problem(page, PAGE) or next(
            (f"item {index} of 'value': {p}" for index, item in enumerate(page.get("value") or []) if (p := shape_problem(item, item_shape))),
            None,
        ) or (None if isinstance(page.get(next_key), (str, type(None))) else
              f"{next_key!r} is {TYPE_NAMES.get(type(page[next_key]), 'something else')}, not text or null")
        if problem:
            raise RequestFailed("GET", address, response.status, "InvalidResponse", problem)
        yield page.get("value") or []
        url, params = page.get(next_key), None
        if not url:
            return
        if not client.endpoint.same_origin(url):
            raise RequestFailed("GET", url, None, "UnexpectedNextLink", "the next page is on another host: not followed")

"""Account ids in URL paths: any text an export can hold, '/' and '%' included.

An account id is one path segment: links quote every reserved character of
it (:func:`segment`), ``ACME/EU`` becomes ``ACME%2FEU``. The ASGI server
decodes the path before routing, which would turn that ``%2F`` back into a
separator; :class:`KeepEncodedSlashes` therefore re-decodes account paths from
the raw path, leaving ``%2F`` and ``%25`` encoded, and :func:`account_id`
decodes the segment once the route has matched.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote, unquote

# Paths whose segment after this prefix is an account id.
ACCOUNT_PREFIXES = ("/accounts/", "/api/accounts/")
_KEPT = re.compile(r"%(?:2[fF]|25)")


def segment(value: Any) -> str:
    """``value`` quoted as one URL path segment (``/``, ``?``, ``#``, ``%``, spaces, ...)."""
    return quote(str(value), safe="")


def account_id(raw: str) -> str:
    """The account id from its path segment as routed (see the module docstring)."""
    return unquote(raw)


def _partly_decoded(raw: bytes) -> str:
    text = raw.decode("latin-1")
    out: list[str] = []
    last = 0
    for m in _KEPT.finditer(text):
        out.append(unquote(text[last : m.start()]))
        out.append(m.group().upper())
        last = m.end()
    out.append(unquote(text[last:]))
    return "".join(out)


class KeepEncodedSlashes:
    """ASGI middleware: in account paths, ``%2F`` and ``%25`` stay encoded for routing."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw and scope["path"].startswith(ACCOUNT_PREFIXES):
            scope = dict(scope, path=_partly_decoded(raw.split(b"?", 1)[0]))
        await self.app(scope, receive, send)

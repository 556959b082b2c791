"""Authentication and authorization for every route but the health checks.

* REST API (``/api``): ``Authorization: Bearer <api key>``.
* Dashboard (``/``): the same API key, pasted once on ``/login``; the signed
  session cookie then holds only the key's id, re-checked on every request
  so a revoked key logs its sessions out. Cookie-authenticated forms and htmx
  requests carry a CSRF token (see :func:`check_csrf`).
* Ingestion (``/v1``): write keys, handled in :mod:`touchmodel.server.ingest`.

Roles: ``admin`` sees and changes everything; ``csm`` sees and changes only
the accounts in its CSM's book and the work items it owns.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from touchmodel.access.keys import Principal, authenticate, session_principal
from touchmodel.server.errors import ApiError
from touchmodel.state.db import Store

SESSION_KEY = "sid"  # the server-side session (web_sessions), never the key itself
CSRF_KEY = "csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"


def get_store(request: Request) -> Store:
    """The workspace's state store (opened once per server)."""
    store: Store = request.app.state.store
    return store


def db_session(request: Request) -> Iterator[Session]:
    """A session for one request; commits when the route returns without error."""
    with get_store(request).transaction() as session:
        yield session


# scope="function": the transaction commits before the response is sent, so a
# client never reads back a change that is not stored yet (nor gets a 200 for one
# whose commit failed). The default ("request") would commit after sending.
DbSession = Annotated[Session, Depends(db_session, scope="function")]


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def api_principal(request: Request) -> Principal:
    """The caller of an ``/api`` route, from its bearer token; 401 otherwise."""
    token = _bearer(request)
    if token is None:
        raise ApiError(
            401,
            "missing API token: send 'Authorization: Bearer <token>' "
            "(create one with `touchmodel keys create --kind api`)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    with get_store(request).transaction() as session:
        principal = authenticate(session, token)
    if principal is None:
        raise ApiError(401, "invalid or revoked API token", headers={"WWW-Authenticate": "Bearer"})
    if principal.kind != "api":
        raise ApiError(403, "a write key only sends events (/v1); use an API token here")
    return principal


class LoginRequired(Exception):
    """A dashboard page was asked for without a live session: redirect to /login."""


def web_principal(request: Request) -> Principal:
    """The signed-in dashboard user, or :class:`LoginRequired`."""
    sid = request.session.get(SESSION_KEY)
    if not isinstance(sid, str):
        raise LoginRequired
    with get_store(request).transaction() as session:
        principal = session_principal(session, sid)
    if principal is None or principal.kind != "api":
        request.session.clear()
        raise LoginRequired
    return principal


ApiUser = Annotated[Principal, Depends(api_principal)]
WebUser = Annotated[Principal, Depends(web_principal)]


def require_admin(principal: Principal) -> None:
    """403 unless ``principal`` is an admin."""
    if not principal.is_admin:
        raise ApiError(403, "this needs an admin token; a csm token sees only its own book")


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use), for forms and htmx headers."""
    token = request.session.get(CSRF_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_KEY] = token
    return token


async def check_csrf(request: Request) -> None:
    """Refuse a cookie-authenticated change without the session's CSRF token.

    The token comes from the ``X-CSRF-Token`` header (htmx sends it on every
    request, see base.html) or the ``csrf_token`` form field.
    """
    expected = request.session.get(CSRF_KEY)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and "form" in request.headers.get("content-type", ""):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    # Bytes: compare_digest refuses non-ASCII str, and a client's junk must be a 403.
    if (
        not isinstance(expected, str)
        or not sent
        or not hmac.compare_digest(expected.encode(), sent.encode("utf-8", "surrogatepass"))
    ):
        raise ApiError(403, "CSRF token missing or wrong: reload the page and try again")


Csrf = Depends(check_csrf)

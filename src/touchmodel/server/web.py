"""The dashboard: server-rendered pages (Jinja2 + htmx), charts drawn in the browser."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from touchmodel.access.keys import authenticate, end_session, start_session
from touchmodel.server.auth import SESSION_KEY, check_csrf, get_store
from touchmodel.server.pages import render

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    """Sign in with an API token (created by `touchmodel keys create --kind api`)."""
    return render(request, "login.html", {"error": None})


@router.post("/login", dependencies=[Depends(check_csrf)])
def login(request: Request, token: Annotated[str, Form()] = "") -> Response:
    with get_store(request).transaction() as session:
        principal = authenticate(session, token.strip())
        live = principal is not None and principal.kind == "api"
        sid = start_session(session, principal.key_id) if live and principal else None
    if sid is None:
        error = (
            "That is a write key: it only sends events. Sign in with an API token."
            if principal is not None
            else "That token is not a live API token."
        )
        return render(request, "login.html", {"error": error}, status=401)
    request.session.clear()  # a new session (and CSRF token) on sign-in: no fixation
    request.session[SESSION_KEY] = sid
    return RedirectResponse("/", status_code=303)


@router.post("/logout", dependencies=[Depends(check_csrf)])
def logout(request: Request) -> Response:
    sid = request.session.get(SESSION_KEY)
    if isinstance(sid, str):
        with get_store(request).transaction() as session:
            end_session(session, sid)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)

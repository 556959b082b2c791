"""Rendering dashboard pages: the Jinja2 environment (autoescaping on) and shared context."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape

from touchmodel.access.keys import Principal
from touchmodel.server.paths import segment

# Autoescape every template, .html or not: output is escaped everywhere.
_env = Environment(
    loader=PackageLoader("touchmodel.server", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Account ids in links: `/accounts/{{ id | segment }}` (an id may hold '/', '?', '#', ...).
_env.filters["segment"] = segment
templates = Jinja2Templates(env=_env)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status: int = 200,
) -> HTMLResponse:
    """A page or htmx fragment, with the CSRF token and the signed-in user in its context."""
    from touchmodel.server.auth import csrf_token

    ctx: dict[str, Any] = {"user": principal, "csrf_token": csrf_token(request)}
    ctx.update(context or {})
    return templates.TemplateResponse(request, template, ctx, status_code=status)


def render_error(
    request: Request, status: int, message: str, headers: dict[str, str] | None = None
) -> HTMLResponse:
    """An error as a page (the API answers errors as JSON instead), with the navigation
    when someone is signed in, so a 403 or 404 is not a dead end."""
    from touchmodel.server.auth import LoginRequired, csrf_token, web_principal

    user: Principal | None = None
    token = ""
    if "session" in request.scope:
        try:
            user = web_principal(request)
            token = csrf_token(request)
        except LoginRequired:
            user = None
        except Exception:  # an error page must render even when the store does not answer
            user = None
    response = templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "message": message, "user": user, "csrf_token": token},
        status_code=status,
    )
    if headers:
        response.headers.update(headers)
    return response

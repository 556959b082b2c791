"""The FastAPI application of one workspace: ``touchmodel serve`` runs it."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.middleware.sessions import SessionMiddleware

from touchmodel import __version__
from touchmodel.access.keys import SESSION_HOURS
from touchmodel.server.assets import check_vendor, vendor_dir
from touchmodel.server.auth import ApiUser, LoginRequired
from touchmodel.server.errors import install_error_handlers
from touchmodel.server.paths import KeepEncodedSlashes
from touchmodel.state.db import Store
from touchmodel.workspace import Workspace

SECRET_FILE = ".session-secret"
STATIC = Path(__file__).parent / "static"

# No inline scripts anywhere: chart data travels in <script type="application/json">
# blocks, which CSP does not execute.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def add_security_headers(response: Response) -> None:
    """The headers every response carries (also 500s, which bypass the middleware)."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("Content-Security-Policy", CSP)


def session_secret(ws: Workspace) -> str:
    """The key that signs dashboard session cookies: made once per workspace, mode 0600."""
    path = ws.root / SECRET_FILE
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


def create_app(ws: Workspace, *, store: Store | None = None) -> FastAPI:
    """The app for workspace ``ws``: REST API, ingestion and dashboard."""
    from touchmodel.server import (
        api_accounts,
        api_work,
        ingest,
        web,
        web_portfolio,
        web_queue,
        web_whatif,
    )

    vendor = vendor_dir()
    check_vendor(vendor)
    app = FastAPI(
        title="touchmodel",
        version=__version__,
        description=(
            "The touch model of one workspace: accounts, decisions, runs, work items, "
            "touchpoints, the plan, and Segment-compatible event ingestion. Every route but "
            "/healthz needs a key: `Authorization: Bearer <api key>` for /api, a write key "
            "(HTTP Basic user, or `writeKey` in the body) for /v1."
        ),
        # The schema is served below, behind a key like every other route; no
        # Swagger page (it loads scripts from a CDN, which the CSP rightly refuses).
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.ws = ws
    app.state.store = store or Store(ws.state_url, migrate=False)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(ws),
        session_cookie="touchmodel_session",
        same_site="strict",
        https_only=False,  # served on 127.0.0.1 by default; put TLS in front to expose it
        max_age=SESSION_HOURS * 3600,  # the server-side session expires then too
    )

    # Before routing: an account id holding '/' (sent as %2F) stays one path segment.
    app.add_middleware(KeepEncodedSlashes)

    @app.middleware("http")
    async def _security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        add_security_headers(response)
        return response

    install_error_handlers(app)

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, _exc: LoginRequired) -> Response:
        if request.headers.get("hx-request") == "true":
            # htmx swaps fragments; a redirect page inside one would be wrong.
            return Response(status_code=401, headers={"HX-Redirect": "/login"})
        return RedirectResponse("/login", status_code=303)

    @app.get("/healthz", tags=["health"], summary="Liveness: no key needed")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: the state store answers")
    def readyz() -> Response:
        from sqlalchemy import text

        try:
            with app.state.store.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)[:200]}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/api/openapi.json", tags=["meta"], summary="This API's OpenAPI document")
    def openapi(_user: ApiUser) -> dict[str, Any]:
        return app.openapi()

    # Only the built files base.html loads, not the packages' sources and manifests.
    for package in ("htmx.org", "chart.js"):
        app.mount(
            f"/static/vendor/{package}/dist",
            StaticFiles(directory=vendor / package / "dist"),
            name=f"vendor-{package}",
        )
    app.mount("/static/app", StaticFiles(directory=STATIC), name="static")
    # api_accounts: accounts, decisions, runs; api_work: work items, touchpoints, plan, model.
    app.include_router(api_accounts.router)
    app.include_router(api_work.router)
    app.include_router(ingest.router)
    app.include_router(ingest.events_router)
    app.include_router(web.router)
    # web_portfolio: portfolio, accounts, account page; web_queue: queue, capacity, model pages.
    app.include_router(web_portfolio.router)
    app.include_router(web_queue.router)
    app.include_router(web_whatif.router)
    return app

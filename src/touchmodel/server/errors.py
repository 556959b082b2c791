"""One error shape for every API and ingestion response, never a bare 500.

    {"error": {"status": 404, "code": "not_found", "message": "...", "details": [...]}}

``details`` lists one entry per problem (``{"field": "batch[3].type",
"reason": "..."}``) when there is more than one thing to say.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from touchmodel.errors import TouchmodelError

log = logging.getLogger("touchmodel.server")

CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


class ApiError(Exception):
    """An error a client caused (or can retry), answered in the one error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or CODES.get(status, "error")
        self.details = details or []
        self.headers = headers or {}


def error_body(
    status: int, message: str, code: str | None = None, details: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """The one error shape."""
    return {
        "error": {
            "status": status,
            "code": code or CODES.get(status, "error"),
            "message": message,
            "details": details or [],
        }
    }


# Paths only programs call: always answered in JSON, whatever the Accept header says.
MACHINE_PATHS = ("/api", "/v1", "/healthz", "/readyz")


def _machine_path(path: str) -> bool:
    return any(path == p or path.startswith(p + "/") for p in MACHINE_PATHS)


def wants_html(request: Request) -> bool:
    """Whether an error is answered with the dashboard's error page rather than JSON.

    Only a browser navigating the dashboard gets the page: a request outside the
    API, ingestion and health paths whose Accept header asks for HTML (what a
    browser sends, and JSON not asked for) and that is not an htmx swap. Anything
    else, ``curl`` or a script on any path included, gets the one JSON shape.
    """
    accept = request.headers.get("accept", "").lower()
    return (
        not _machine_path(request.url.path)
        and request.headers.get("hx-request") != "true"
        and "text/html" in accept
        and "application/json" not in accept
    )


def _respond(
    request: Request,
    status: int,
    message: str,
    code: str | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    if not wants_html(request):
        return JSONResponse(error_body(status, message, code, details), status, headers=headers)
    from touchmodel.server.pages import render_error

    return render_error(request, status, message, headers=headers)


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error, ours or the framework's, in the one shape."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return _respond(request, exc.status, exc.message, exc.code, exc.details, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else CODES.get(exc.status_code, "error")
        headers = dict(exc.headers) if exc.headers else None
        return _respond(request, exc.status_code, message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        details = [
            {"field": _field(e.get("loc", ())), "reason": e.get("msg", "")} for e in exc.errors()
        ]
        first = details[0] if details else {"field": "", "reason": "invalid request"}
        message = f"{first['field'] or 'request'}: {first['reason']}"
        if len(details) > 1:
            message += f" (and {len(details) - 1} more)"
        return _respond(request, 422, message, "invalid", details)

    @app.exception_handler(TouchmodelError)
    async def _user_error(request: Request, exc: TouchmodelError) -> Response:
        lines = [ln.strip().removeprefix("- ") for ln in str(exc).splitlines() if ln.strip()]
        return _respond(request, 400, "; ".join(lines))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        # A bug: logged with its traceback, answered without internals.
        from touchmodel.server.app import add_security_headers

        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = _respond(request, 500, "internal error; the server log has the details")
        add_security_headers(response)  # Starlette answers 500s outside the middleware
        return response

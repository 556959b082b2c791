"""Dashboard what-if: PATH=VALUE lines in a form, the before/after table as the answer (admin).

The work is :func:`touchmodel.fit.whatif.workspace_whatif` (the same as
``touchmodel whatif`` in the workspace), on the as-of date of the latest
completed run; nothing is written to the workspace.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from touchmodel.errors import TouchmodelError
from touchmodel.fit.whatif import settings_from_text, workspace_whatif
from touchmodel.server.auth import Csrf, DbSession, WebUser, require_admin
from touchmodel.server.pages import render
from touchmodel.views.planning import latest_run

router = APIRouter(include_in_schema=False)

EXAMPLE = "tiers[high].band.min=150000\ntriggers[risk.inactive].when=days_inactive >= 45"
MAX_TEXT = 5_000  # a few dozen settings; a longer post is refused, not truncated


def _as_of(session: Any) -> dt.date:
    run = latest_run(session)
    return run.as_of if run is not None else dt.date.today()


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


@router.get("/whatif")
def whatif_page(request: Request, user: WebUser, session: DbSession) -> Response:
    """The form, with an example."""
    require_admin(user)
    context = {"active": "whatif", "text": EXAMPLE, "as_of": _as_of(session), "result": None}
    return render(request, "whatif.html", context, principal=user)


@router.post("/whatif", dependencies=[Csrf])
async def whatif_post(request: Request, user: WebUser, session: DbSession) -> Response:
    """Run the what-if posted (a fragment for htmx, else the whole page)."""
    require_admin(user)
    form = await request.form()
    raw = form.get("settings")
    text = raw if isinstance(raw, str) else ""
    as_of = _as_of(session)
    context: dict[str, Any] = {"active": "whatif", "text": text, "as_of": as_of}
    context.update(result=None, error=None)
    status = 200
    try:
        if len(text) > MAX_TEXT:
            raise TouchmodelError(
                f"settings: {len(text):,} characters -- expected at most {MAX_TEXT:,}"
            )
        settings = settings_from_text(text)
        ws = request.app.state.ws
        # Two runs over the data: blocking work, off the event loop.
        context["result"] = await run_in_threadpool(workspace_whatif, ws, settings, as_of)
    except TouchmodelError as exc:
        context["error"] = str(exc)
        status = 400
    template = "fragments/whatif_result.html" if _is_htmx(request) else "whatif.html"
    return render(request, template, context, principal=user, status=status)

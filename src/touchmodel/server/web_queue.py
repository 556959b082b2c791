"""Dashboard pages: the CSM queue, capacity and economics, model choice, the touch model.

Forms post with htmx and swap a fragment in place; without JavaScript the same
forms post as plain forms (carrying the ``csrf_token`` field) and redirect
back. A user error (a date in the past, a blank reason) is shown inside the
fragment it concerns instead of replacing the page.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from touchmodel.access.keys import Principal
from touchmodel.errors import TouchmodelError
from touchmodel.server.api_work import view_errors
from touchmodel.server.auth import Csrf, DbSession, WebUser, get_store, require_admin
from touchmodel.server.errors import ApiError
from touchmodel.server.pages import render
from touchmodel.server.params import RowId, TextQuery
from touchmodel.views import model as model_view
from touchmodel.views import planning, queue
from touchmodel.views.csv_export import to_csv
from touchmodel.views.scope import book_of

router = APIRouter(include_in_schema=False)

# Chart colours (also in app.css's palette), one per dataset.
COLOURS = ("#2f5bd3", "#b54708", "#067647", "#b42318", "#5b6477")
SHOWN = 100  # rows on the queue page; the CSV has them all


def _is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def _queue_owner(user: Principal, owner: str | None) -> str | None:
    """A CSM's queue is their own; an admin's is the chosen owner's, or everyone's."""
    if not user.is_admin:
        return user.csm or ""
    return owner or None


@router.get("/queue")
def queue_page(
    request: Request,
    user: WebUser,
    session: DbSession,
    owner: TextQuery = None,
    account: TextQuery = None,
) -> Response:
    """Today's work: open items of the signed-in CSM (an admin picks an owner).

    ``account`` shows one account's open items instead (whoever owns them,
    within what the user may see): the account page links here.
    """
    today = dt.date.today()
    chosen = None if account else _queue_owner(user, owner)
    csm = book_of(user)
    page = queue.todays_work(
        session, csm, owner=chosen, today=today, limit=SHOWN, account_id=account or None
    )
    return render(
        request,
        "queue.html",
        {
            "active": "queue",
            "items": page.items,
            "total": page.total,
            "counts": queue.queue_counts(session, csm, owner=chosen, today=today),
            "owners": queue.queue_owners(session, csm) if user.is_admin else [],
            "owner": chosen or "",
            "account": account or "",
            "today": today,
            "tomorrow": today + dt.timedelta(days=1),
            "default_until": today + dt.timedelta(days=7),
        },
        principal=user,
    )


@router.get("/queue.csv")
def queue_csv(
    user: WebUser,
    session: DbSession,
    owner: TextQuery = None,
) -> Response:
    """The queue shown, as CSV (cells that look like formulas are neutralised)."""
    page = queue.work_items(
        session, book_of(user), status="open", owner=_queue_owner(user, owner), limit=100_000
    )
    return Response(
        to_csv(queue.WORK_ITEM_COLUMNS, queue.work_items_csv_rows(page)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="queue.csv"'},
    )


def _row(
    request: Request, user: Principal, record: dict[str, Any], error: str | None = None
) -> Response:
    today = dt.date.today()
    record.setdefault("overdue", record["status"] == "open" and record["due"] < today.isoformat())
    return render(
        request,
        "fragments/work_item_row.html",
        {
            "item": record,
            "error": error,
            "tomorrow": today + dt.timedelta(days=1),
            "default_until": today + dt.timedelta(days=7),
        },
        principal=user,
    )


def _current_row(request: Request, user: Principal, item_id: int, error: str) -> Response:
    """The row as it stands, with the error that stopped the action."""
    with view_errors(), get_store(request).transaction() as session:
        current = queue.work_item(session, item_id, book_of(user))
    return _row(request, user, current, error)


def _act(request: Request, user: Principal, item_id: int, action: str, **kw: Any) -> Response:
    """Snooze or close, then the row (htmx) or back to the queue (plain form)."""
    csm = book_of(user)
    try:
        with view_errors(), get_store(request).transaction() as session:
            if action == "snooze":
                record = queue.snooze_item(session, item_id, csm, **kw)
            else:
                record = queue.close_item(session, item_id, csm, **kw)
    except ApiError as exc:
        if not _is_htmx(request) or exc.status in (403, 404):
            raise
        return _current_row(request, user, item_id, exc.message)
    except TouchmodelError as exc:  # a rule of the core (e.g. not created yet on that day)
        if not _is_htmx(request):
            raise ApiError(400, str(exc)) from None
        return _current_row(request, user, item_id, str(exc))
    if not _is_htmx(request):
        return RedirectResponse("/queue", status_code=303)
    return _row(request, user, record)


@router.post("/queue/items/{item_id}/snooze", dependencies=[Csrf])
def snooze_form(
    request: Request,
    item_id: RowId,
    user: WebUser,
    until: Annotated[str, Form(max_length=40)] = "",
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The Snooze form of a queue row."""
    try:
        until_date = dt.date.fromisoformat(until.strip())
    except ValueError:
        message = f"until: {until!r} -- expected a date like 2026-12-01"
        if not _is_htmx(request):
            raise ApiError(422, message) from None
        return _current_row(request, user, item_id, message)
    return _act(
        request,
        user,
        item_id,
        "snooze",
        until=until_date,
        reason=reason,
        actor=user.actor,
        today=dt.date.today(),
    )


@router.post("/queue/items/{item_id}/close", dependencies=[Csrf])
def close_form(
    request: Request,
    item_id: RowId,
    user: WebUser,
    reason: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    """The Close form of a queue row."""
    return _act(
        request, user, item_id, "close", reason=reason, actor=user.actor,
        today=dt.date.today(),
    )  # fmt: skip


# ---------------------------------------------------------------- capacity


def _chart(
    kind: str, labels: list[str], datasets: list[dict[str, Any]], **options: Any
) -> dict[str, Any]:
    for i, d in enumerate(datasets):
        d.setdefault("backgroundColor", COLOURS[i % len(COLOURS)])
        d.setdefault("borderColor", COLOURS[i % len(COLOURS)])
    return {"type": kind, "data": {"labels": labels, "datasets": datasets}, "options": options}


def capacity_charts(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Chart.js configs: headcount per tier, cost and ARR per tier, the projection."""
    today = plan["plans"][0]
    tiers = today["tiers"]
    names = [t["tier"] for t in tiers]
    headcount: list[dict[str, Any]] = [
        {"label": "CSMs needed (target)", "data": [round(t["csms_target"], 2) for t in tiers]},
        {"label": "fewest", "data": [round(t["csms_fewest"], 2) for t in tiers]},
        {"label": "most", "data": [round(t["csms_most"], 2) for t in tiers]},
    ]
    if today["team_fte"] is not None:
        headcount.append(
            {"label": "on the team (FTE)", "data": [round(t["team_fte"] or 0, 2) for t in tiers]}
        )
    money: list[dict[str, Any]] = [
        {"label": "ARR", "data": [round(t["arr"]) for t in tiers], "yAxisID": "y"},
        {"label": "CS cost", "data": [round(t["cs_cost"]) for t in tiers], "yAxisID": "y1"},
    ]
    horizons = [p["label"] for p in plan["plans"]]
    projection: list[dict[str, Any]] = [
        {"label": "CSMs needed (target)", "data": [round(p["csms_target"], 2) for p in plan["plans"]]},
        {"label": "fewest", "data": [round(p["csms_fewest"], 2) for p in plan["plans"]]},
        {"label": "most", "data": [round(p["csms_most"], 2) for p in plan["plans"]]},
    ]  # fmt: skip
    if today["team_fte"] is not None:
        projection.append(
            {"label": "team today (FTE)", "data": [p["team_fte"] or 0 for p in plan["plans"]]}
        )
    for d in projection:
        d["fill"] = False
    axis = {"beginAtZero": True}
    return {
        "chart-headcount": _chart("bar", names, headcount, scales={"y": axis}),
        "chart-money": _chart(
            "bar",
            names,
            money,
            scales={
                "y": {**axis, "position": "left", "title": {"display": True, "text": "ARR $"}},
                "y1": {
                    **axis,
                    "position": "right",
                    "grid": {"drawOnChartArea": False},
                    "title": {"display": True, "text": "CS cost $"},
                },
            },
        ),
        "chart-projection": _chart("line", horizons, projection, scales={"y": axis}),
    }


@router.get("/capacity")
def capacity_page(
    request: Request,
    user: WebUser,
    session: DbSession,
    growth: Annotated[str, Query(max_length=20)] = "0%",
    margin: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """Capacity and economics with charts, and the 12/24-month projection (admin)."""
    require_admin(user)
    context: dict[str, Any] = {"active": "capacity", "growth": growth, "margin": margin}
    try:
        with view_errors():
            plan = planning.workspace_plan(
                request.app.state.ws, session, growth=growth, margin=margin or None
            )
    except ApiError as exc:
        context["error"] = exc.message
        return render(request, "capacity.html", context, principal=user, status=exc.status)
    except TouchmodelError as exc:  # bad growth/margin, invalid model or team file
        context["error"] = str(exc)
        return render(request, "capacity.html", context, principal=user, status=400)
    context.update(plan=plan, charts=capacity_charts(plan))
    return render(request, "capacity.html", context, principal=user)


# ---------------------------------------------------------------- model choice

_FIELDS = ("acv", "complexity", "segment", "margin", "positioning", "ratio")


@router.get("/model-choice")
def model_choice_page(request: Request, user: WebUser) -> Response:
    """The six questions as a form (admin)."""
    require_admin(user)
    return render(
        request,
        "model_choice.html",
        {"active": "model-choice", "questions": planning.questions(), "answers": {}},
        principal=user,
    )


@router.post("/model-choice", dependencies=[Csrf])
async def model_choice_post(request: Request, user: WebUser, session: DbSession) -> Response:
    """The recommendation for the answers posted (a fragment for htmx, else the whole page)."""
    require_admin(user)
    form = await request.form()
    answers: dict[str, Any] = {}
    for name in _FIELDS:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            answers[name] = value.strip()[:100]
    for name in ("complexity", "positioning"):  # a score 1-5 typed as a number
        if answers.get(name, "").isdigit():
            answers[name] = int(answers[name])
    from_data = form.get("from_data") == "1"
    context: dict[str, Any] = {"result": None, "error": None}

    def choose() -> Any:
        with view_errors():
            if from_data:
                return planning.model_choice(answers, ws=request.app.state.ws, session=session)
            return planning.model_choice(answers)

    try:
        # Reading the data is blocking work: off the event loop, like a sync route.
        context["result"] = await run_in_threadpool(choose)
    except ApiError as exc:
        context["error"] = exc.message
    except TouchmodelError as exc:
        context["error"] = str(exc)
    if _is_htmx(request):
        return render(request, "fragments/work_recommendation.html", context, principal=user)
    context.update(
        active="model-choice", questions=planning.questions(), answers=answers, from_data=from_data
    )
    return render(
        request,
        "model_choice.html",
        context,
        principal=user,
        status=400 if context["error"] else 200,
    )


# ---------------------------------------------------------------- model


@router.get("/model")
def model_page(request: Request, user: WebUser) -> Response:
    """The touch-model file as five answers per tier, or its validation problems."""
    view = model_view.workspace_model(request.app.state.ws)
    return render(request, "model.html", {"active": "model", "model": view}, principal=user)

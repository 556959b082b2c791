"""REST API: work items, touchpoints, the plan, the model choice and the touch model.

Thin routes: parse and validate (pydantic), check the role, call a read model
in :mod:`touchmodel.views` or a core action, serialize. A ``csm`` token sees
and changes only its own book; the plan and the model choice are admin only
(they show the whole company's economics); reading and checking the touch
model is open to both roles.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from touchmodel.server.auth import ApiUser, DbSession, require_admin
from touchmodel.server.errors import ApiError
from touchmodel.server.params import IsoDate, RowId, TextQuery
from touchmodel.views import model as model_view
from touchmodel.views import planning, queue
from touchmodel.views.csv_export import to_csv
from touchmodel.views.scope import book_of

router = APIRouter(prefix="/api")

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Missing, invalid or revoked API token (one error shape)"},
    403: {"description": "A write key, or a csm token outside its book (one error shape)"},
    422: {"description": "Invalid parameters or body (one error shape, one detail per field)"},
}


@contextmanager
def view_errors() -> Iterator[None]:
    """Read-model errors as HTTP statuses: unknown 404, not in the book 403, wrong state 409,
    a value the action cannot take 422."""
    try:
        yield
    except queue.NotFound as exc:
        raise ApiError(404, str(exc)) from None
    except queue.NotYours as exc:
        raise ApiError(403, str(exc)) from None
    except (queue.Conflict, planning.NoRun) as exc:
        raise ApiError(409, str(exc)) from None
    except queue.Invalid as exc:
        raise ApiError(422, str(exc), details=[{"field": exc.field, "reason": str(exc)}]) from None


# ---------------------------------------------------------------- models


class WorkItemOut(BaseModel):
    """A work item: what to do, for which account, by whom, by when, and why."""

    id: int
    account_id: str
    trigger: str
    kind: str = Field(description="trigger or migration")
    status: str = Field(description="open, snoozed or closed")
    priority: str = Field(description="urgent, high or normal")
    owner: str
    team: str
    action: str
    route: str
    channel: str | None
    due: dt.date
    created_on: dt.date
    last_seen_on: dt.date
    snoozed_until: dt.date | None
    snooze_reason: str | None
    closed_on: dt.date | None
    close_reason: str | None
    why: str
    expected_arr_kept: float | None = Field(
        description="At-risk items: churn risk x ARR x the route's save rate (the queue's order)"
    )
    over_capacity: bool = Field(description="Beyond the team's outreach time this week")


class HistoryEvent(BaseModel):
    on: dt.date
    action: str = Field(description="created, snoozed, woke, closed, auto_closed, reopened, ...")
    reason: str
    by: str = Field(description="Who did it: a CSM, a key's label, or touchmodel")


class WorkItemDetail(WorkItemOut):
    history: list[HistoryEvent]


class WorkItemPage(BaseModel):
    items: list[WorkItemOut]
    total: int = Field(description="Items matching the filters, over all pages")
    limit: int
    offset: int


class SnoozeIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"until": "2026-12-15", "reason": "customer on holiday"}]},
    )

    until: IsoDate = Field(description="Snooze until this date (after today, YYYY-MM-DD)")
    reason: str = Field(min_length=1, max_length=2000)


class CloseIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"reason": "called, renewal on track"}]}
    )

    reason: str = Field(min_length=1, max_length=2000)


class TouchpointOut(BaseModel):
    id: int
    account_id: str
    key: str
    sequence: str
    title: str
    due: dt.date
    channel: str
    automated: bool
    owner: str
    level: str
    template: str | None
    status: str
    reason: str
    planned_on: dt.date


class TouchpointPage(BaseModel):
    items: list[TouchpointOut]
    total: int
    limit: int
    offset: int


class PlanOut(BaseModel):
    """The plan of the workspace, from its latest completed run (see `touchmodel plan`)."""

    model: str
    as_of: dt.date
    run_id: int
    source: str
    source_note: str
    growth: float
    gross_margin: float
    cs_share: dict[str, float]
    team: str | None
    plans: list[dict[str, Any]] = Field(
        description="Today, then 12 and 24 months: tiers (headcount, cost, economics), "
        "hiring triggers, feasibility"
    )
    advice: dict[str, Any] = Field(description="Org phase, growth stage, next steps, mistakes")


class ModelChoiceIn(BaseModel):
    """The six questions of the model choice (docs/touch-model.md); ``scores`` gives a factor an explicit 1-5 score."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "acv": 25000,
                    "complexity": "medium",
                    "segment": "mid-market",
                    "margin": "75%",
                    "positioning": "standard",
                    "ratio": "1:50",
                }
            ]
        },
    )

    acv: float | str | None = Field(default=None, description="Average contract value, USD")
    complexity: str | int | None = Field(default=None, description="high, medium, low, or 1-5")
    segment: str | float | None = Field(
        default=None, description="enterprise, mid-market, smb, or an employee count"
    )
    margin: float | str | None = Field(default=None, description="Gross margin: 0.75 or 75%")
    positioning: str | int | None = Field(default=None, description="premium, standard or value")
    ratio: str | float | None = Field(default=None, description="1:10, 1:50, 1:500 or a number")
    scores: dict[Literal["acv", "complexity", "segment", "margin", "positioning", "ratio"], int] = (
        Field(default_factory=dict)
    )
    from_data: bool = Field(
        default=False,
        description="Fill missing ACV, segment and ratio from the latest run's accounts, "
        "and check their ACV zones (hybrid)",
    )


class FactorOut(BaseModel):
    factor: str
    answer: str
    score: int
    basis: str


class SelectionOut(BaseModel):
    factors: list[FactorOut]
    total: int
    band: str
    model: str
    recommendation: str = Field(description="high touch, low touch, tech touch or hybrid")
    reasons: list[str]
    zones: list[dict[str, Any]]
    hybrid_threshold: float | None
    zone_models: dict[str, str]


class ModelChoiceOut(BaseModel):
    selection: SelectionOut
    from_data: list[str] = Field(description="How answers were filled from the data")


class TierAnswersOut(BaseModel):
    id: str
    name: str
    level: str
    band_min: float
    band_max: float | None
    frequency: str
    channels: list[str]
    interaction: list[str]
    owner: str
    outcomes: list[str]
    coverage: str
    accounts_per_csm: dict[str, float | None] | None
    cost_per_account: dict[str, float | None]


class ModelOut(BaseModel):
    """The workspace's touch model: five answers per tier, or the file's problems."""

    source: str
    valid: bool
    name: str | None
    description: str
    tiering_signal: str | None
    tiers: list[TierAnswersOut]
    problems: list[str]


class ModelCheckOut(BaseModel):
    valid: bool
    problems: list[str] = Field(description="One line per problem: path, value, expectation")
    name: str | None = None
    tiers: int | None = None
    triggers: int | None = None


# ---------------------------------------------------------------- work items

StatusQ = Annotated[
    Literal["open", "snoozed", "closed", "all"], Query(description="open, snoozed, closed or all")
]
LimitQ = Annotated[int, Query(ge=1, le=1000, description="Page size")]
OffsetQ = Annotated[int, Query(ge=0, le=10_000_000)]
Text = TextQuery


@router.get(
    "/work-items",
    tags=["work items"],
    summary="The work queue, most urgent first",
    response_model=WorkItemPage,
    responses={
        **ERRORS,
        200: {"content": {"text/csv": {}}, "description": "JSON page, or CSV with format=csv"},
    },
)
def list_work_items(
    user: ApiUser,
    session: DbSession,
    status: StatusQ = "open",
    owner: Text = None,
    account_id: Text = None,
    trigger: Text = None,
    due_from: Annotated[IsoDate | None, Query(description="Due on or after (YYYY-MM-DD)")] = None,
    due_to: Annotated[IsoDate | None, Query(description="Due on or before (YYYY-MM-DD)")] = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
    format: Annotated[
        Literal["json", "csv"], Query(description="csv: every matching item, paging ignored")
    ] = "json",
) -> Any:
    """Work items; a csm token sees only those of its book. CSV cells cannot run as formulas."""
    csv = format == "csv"
    page = queue.work_items(
        session,
        book_of(user),
        status=status,
        owner=owner,
        account_id=account_id,
        trigger=trigger,
        due_from=due_from,
        due_to=due_to,
        limit=100_000 if csv else limit,
        offset=0 if csv else offset,
    )
    if csv:
        body = to_csv(queue.WORK_ITEM_COLUMNS, queue.work_items_csv_rows(page))
        return Response(
            body,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="work-items.csv"'},
        )
    return page


@router.get(
    "/work-items/{item_id}",
    tags=["work items"],
    summary="One work item and its history",
    response_model=WorkItemDetail,
    responses={**ERRORS, 404: {"description": "No such work item"}},
)
def get_work_item(item_id: RowId, user: ApiUser, session: DbSession) -> Any:
    """The item and every event of its life, oldest first."""
    with view_errors():
        return queue.work_item(session, item_id, book_of(user))


@router.post(
    "/work-items/{item_id}/snooze",
    tags=["work items"],
    summary="Snooze a work item until a date",
    response_model=WorkItemDetail,
    responses={
        **ERRORS,
        400: {"description": "The body is not JSON (one error shape)"},
        404: {"description": "No such work item"},
        409: {"description": "The item is closed, or another action changed it first"},
    },
)
def snooze_work_item(item_id: RowId, body: SnoozeIn, user: ApiUser, session: DbSession) -> Any:
    """Its trigger stops firing for the account until then; the history names the caller."""
    with view_errors():
        return queue.snooze_item(
            session,
            item_id,
            book_of(user),
            until=body.until,
            reason=body.reason,
            actor=user.actor,
            today=dt.date.today(),
        )


@router.post(
    "/work-items/{item_id}/close",
    tags=["work items"],
    summary="Close a work item with a reason",
    response_model=WorkItemDetail,
    responses={
        **ERRORS,
        400: {"description": "The body is not JSON (one error shape)"},
        404: {"description": "No such work item"},
        409: {"description": "Already closed, or another action changed it first"},
    },
)
def close_work_item(item_id: RowId, body: CloseIn, user: ApiUser, session: DbSession) -> Any:
    """The trigger's cooldown starts today; the history names the caller."""
    with view_errors():
        return queue.close_item(
            session,
            item_id,
            book_of(user),
            reason=body.reason,
            actor=user.actor,
            today=dt.date.today(),
        )


# ---------------------------------------------------------------- touchpoints


@router.get(
    "/touchpoints",
    tags=["touchpoints"],
    summary="Scheduled touchpoints by due date",
    response_model=TouchpointPage,
    responses=ERRORS,
)
def list_touchpoints(
    user: ApiUser,
    session: DbSession,
    status: Annotated[
        Literal["planned", "queued", "sent", "skipped", "cancelled", "all"], Query()
    ] = "planned",
    account_id: Text = None,
    owner: Text = None,
    channel: Text = None,
    due_from: Annotated[IsoDate | None, Query(description="Due on or after (YYYY-MM-DD)")] = None,
    due_to: Annotated[IsoDate | None, Query(description="Due on or before (YYYY-MM-DD)")] = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
) -> Any:
    """Calls, reviews and automated messages from the cadences; a csm token sees its book."""
    return queue.touchpoints(
        session,
        book_of(user),
        status=status,
        account_id=account_id,
        owner=owner,
        channel=channel,
        due_from=due_from,
        due_to=due_to,
        limit=limit,
        offset=offset,
    )


# ---------------------------------------------------------------- plan


@router.get(
    "/plan",
    tags=["plan"],
    summary="Capacity, hiring, economics and 12/24-month projections (admin)",
    response_model=PlanOut,
    responses={
        **ERRORS,
        400: {"description": "Bad growth or margin, or an invalid model/team file"},
        409: {"description": "No completed run yet"},
    },
)
def get_plan(
    request: Request,
    user: ApiUser,
    session: DbSession,
    growth: Annotated[str, Query(max_length=20, description="Yearly growth: 40% or 0.4")] = "0%",
    margin: Annotated[
        str | None, Query(max_length=20, description="Gross margin: 0.8 or 80%")
    ] = None,
) -> Any:
    """`touchmodel plan` for the workspace, on the accounts of its latest completed run."""
    require_admin(user)
    with view_errors():
        return planning.workspace_plan(request.app.state.ws, session, growth=growth, margin=margin)


@router.post(
    "/plan/model-choice",
    tags=["plan"],
    summary="Six answers -> recommended post-sale model (admin)",
    response_model=ModelChoiceOut,
    responses={**ERRORS, 400: {"description": "A missing or invalid answer"}},
)
def post_model_choice(
    body: ModelChoiceIn, request: Request, user: ApiUser, session: DbSession
) -> Any:
    """`touchmodel select`: score the six factors (docs/touch-model.md) and recommend, with reasons."""
    require_admin(user)
    answers = body.model_dump(exclude={"from_data"}, exclude_none=True)
    with view_errors():
        if body.from_data:
            return planning.model_choice(answers, ws=request.app.state.ws, session=session)
        return planning.model_choice(answers)


# ---------------------------------------------------------------- model


@router.get(
    "/model",
    tags=["model"],
    summary="The touch model as five answers per tier",
    response_model=ModelOut,
    responses=ERRORS,
)
def get_model(request: Request, user: ApiUser) -> Any:
    """Frequency, channels, interaction, owner and outcomes per tier; problems if invalid."""
    return model_view.workspace_model(request.app.state.ws).as_dict()


@router.post(
    "/model/check",
    tags=["model"],
    summary="Check a touch-model YAML text",
    response_model=ModelCheckOut,
    responses={
        **ERRORS,
        400: {"description": "An empty body (one error shape)"},
        413: {"description": "Body over 1 MB"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        }
    },
)
async def check_model(request: Request, user: ApiUser) -> Any:
    """The YAML body checked like `touchmodel model check`; an invalid text is a result."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > model_view.MAX_MODEL_BYTES:
        raise ApiError(413, f"model text over {model_view.MAX_MODEL_BYTES:,} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > model_view.MAX_MODEL_BYTES:
            raise ApiError(413, f"model text over {model_view.MAX_MODEL_BYTES:,} bytes")
    if not raw.strip():
        # Nothing to check is no "valid" model: the client forgot the body.
        raise ApiError(
            400, "body: empty; send the touch-model YAML text (Content-Type: application/yaml)"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return ModelCheckOut(
            valid=False, problems=[f"(file): byte {exc.start} is not UTF-8 -- expected UTF-8 text"]
        )
    # Checking compiles every expression: off the event loop.
    result = await run_in_threadpool(model_view.check_model_text, text)
    return ModelCheckOut(**result.__dict__)

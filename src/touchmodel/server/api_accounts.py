"""REST API: portfolio, accounts, decisions and runs (read-only).

Routes parse parameters, check access and serialize the read models of
:mod:`touchmodel.views`; they hold no queries of their own. A ``csm`` token
sees its own book only: lists are limited to it, another book's account is a
403 (an unknown one a 404), and the portfolio is the portfolio of the book.
Runs are the workspace's, the same for every token; a run's tier moves are
limited to the book.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from touchmodel.server.auth import ApiUser, DbSession
from touchmodel.server.errors import ApiError
from touchmodel.server.params import NO_NUL, AccountIdPath, IsoDate, RowId
from touchmodel.views import accounts as views
from touchmodel.views.csv_export import to_csv
from touchmodel.views.portfolio import portfolio as portfolio_view
from touchmodel.views.runs import completed_dates, list_runs, run_detail
from touchmodel.views.scope import book_of
from touchmodel.workspace import Workspace

router = APIRouter(prefix="/api")

LevelName = Literal["tech", "low", "medium", "high"]
StageName = Literal["onboarding", "growth", "renewal", "at_risk"]


# --- response models ----------------------------------------------------------------------


class _Out(BaseModel):
    # Built from the views' dataclasses by attribute.
    model_config = ConfigDict(from_attributes=True)


class ErrorBody(BaseModel):
    """The one error shape's inner object."""

    status: int
    code: str = Field(examples=["not_found"])
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorOut(BaseModel):
    """Every error: ``{"error": {"status", "code", "message", "details"}}``."""

    error: ErrorBody


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "No token, or not a live API token"},
    403: {"model": ErrorOut, "description": "A write key, or an account outside a csm's book"},
    422: {"model": ErrorOut, "description": "A query or path parameter is not valid"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "Not found"}}


class SliceOut(_Out):
    """Accounts and ARR in one group."""

    key: str = Field(description="Tier, touch level, stage or grade id")
    accounts: int
    arr: float
    pct_accounts: float = Field(description="Share of the accounts, in percent")
    pct_arr: float = Field(description="Share of the ARR, in percent")
    level: str | None = Field(default=None, description="A tier's own touch level")


class HistogramBinOut(_Out):
    """Accounts with a health score in [low, high); the last bin includes 100."""

    low: int
    high: int
    accounts: int


class TrendPointOut(_Out):
    """One completed run date."""

    as_of: dt.date
    accounts: int
    arr: float
    mean_health: float | None
    at_risk_accounts: int = Field(description="Accounts in lifecycle stage at_risk")
    at_risk_arr: float = Field(description="ARR of the at-risk accounts")
    by_level: dict[str, int] = Field(description="Accounts per effective touch level")


class PortfolioOut(_Out):
    """The portfolio on the latest completed run's date (a csm token: its book)."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2026-11-01",
                    "book": None,
                    "accounts": 292,
                    "arr": 7850820.0,
                    "mean_health": 77.4,
                    "at_risk_accounts": 81,
                    "at_risk_arr": 2499790.0,
                    "unscored_accounts": 0,
                    "by_tier": [
                        {
                            "key": "high",
                            "accounts": 19,
                            "arr": 2808890.0,
                            "pct_accounts": 6.5,
                            "pct_arr": 35.8,
                            "level": "high",
                        }
                    ],
                    "by_level": [],
                    "by_stage": [],
                    "by_grade": [],
                    "health_histogram": [{"low": 90, "high": 100, "accounts": 71}],
                    "trend": [],
                }
            ]
        },
    )

    as_of: dt.date | None = Field(description="Latest completed run date; null before any run")
    book: str | None = Field(description="The CSM whose book this is; null: every account")
    accounts: int
    arr: float
    mean_health: float | None
    at_risk_accounts: int
    at_risk_arr: float
    expected_arr_at_risk: float | None = Field(
        default=None,
        description="Sum of churn probability x ARR, from the model's fitted churn curve; "
        "null when the model has none (see touchmodel calibrate)",
    )
    unscored_accounts: int = Field(description="Accounts without a health score")
    by_tier: list[SliceOut]
    by_level: list[SliceOut]
    by_stage: list[SliceOut]
    by_grade: list[SliceOut]
    health_histogram: list[HistogramBinOut]
    trend: list[TrendPointOut]


class AccountRowOut(_Out):
    """An account in the list: its latest decision and CSM."""

    account_id: str = Field(examples=["ACC-000095"])
    name: str | None
    arr: float | None
    tier: str
    tier_level: str
    lifecycle_stage: str
    touch_level: str = Field(description="Effective touch level, after lifecycle overrides")
    health_score: float | None
    health_grade: str | None
    health_top_factor: str | None
    csm: str | None
    renewal_date: dt.date | None
    triggers: list[str]


class AccountPageOut(_Out):
    """A page of accounts."""

    as_of: dt.date | None
    total: int = Field(description="Accounts matching the filters, over all pages")
    limit: int
    offset: int
    accounts: list[AccountRowOut]


class HealthMeasureOut(_Out):
    """One measure of the health score for this account."""

    id: str
    label: str
    signal: str
    value: float | None = Field(description="The signal's value; null: missing, dropped out")
    score: float | None = Field(description="0..100 on the line from bad to good")
    weight: float = Field(description="Weight in the model")
    effective_weight: float = Field(description="Percent of the score, after reweighting")
    points_lost: float = Field(description="Points below 100 this measure costs")


class HealthOut(_Out):
    """The health score explained: points lost per measure add up to 100 minus the score."""

    score: float | None
    grade: str | None
    top_factor: str | None
    measures: list[HealthMeasureOut]
    missing: list[str] = Field(description="Measures whose input is missing for this account")
    grades: list[dict[str, Any]] = Field(description="Grade thresholds, best first")


class TriggerOut(_Out):
    """A fired trigger."""

    id: str
    description: str


class WorkItemOut(_Out):
    """A work item of the account (change it through /api/work-items)."""

    id: int
    trigger: str
    kind: str
    status: str
    priority: str
    owner: str
    team: str
    action: str
    route: str
    due: dt.date
    explanation: str
    created_on: dt.date
    snoozed_until: dt.date | None
    closed_on: dt.date | None
    close_reason: str | None


class TouchpointOut(_Out):
    """A planned touchpoint."""

    id: int
    key: str
    sequence: str
    title: str
    due: dt.date
    channel: str
    automated: bool
    owner: str
    level: str
    status: str


class AccountOut(_Out):
    """One account: latest decision and why, health explained, CSM, work, touchpoints."""

    account_id: str
    name: str | None
    arr: float | None
    contract_start: dt.date | None
    renewal_date: dt.date | None
    as_of: dt.date = Field(description="Date of the snapshot shown")
    csm: str | None
    csm_since: dt.date | None
    csm_reason: str | None
    tier: str
    tier_level: str
    lifecycle_stage: str
    touch_level: str
    level_reasons: list[str] = Field(description="Why this touch level: band, then overrides")
    health_score: float | None
    health_grade: str | None
    health_top_factor: str | None
    triggers: list[TriggerOut]
    routes: list[str]
    health: HealthOut | None = Field(description="Null when the run's signals file is gone")
    work_items: list[WorkItemOut] = Field(description="Open and snoozed, then the last closed")
    upcoming_touchpoints: list[TouchpointOut]
    latest_run: bool = Field(description="False: the account had no decision on the latest run")


class SnapshotOut(_Out):
    """The account's decision on one completed run date."""

    as_of: dt.date
    run_id: int
    tier: str
    tier_level: str
    lifecycle_stage: str
    touch_level: str
    level_reasons: list[str]
    health_score: float | None
    health_grade: str | None
    health_top_factor: str | None
    triggers: list[str]
    routes: list[str]
    arr: float | None


class TierChangeOut(_Out):
    """A move between tiers."""

    on: dt.date
    from_tier: str
    to_tier: str
    from_level: str | None
    to_level: str | None
    previous_run: dt.date | None


class BookChangeOut(_Out):
    """A move between CSM books."""

    on: dt.date
    from_csm: str | None
    to_csm: str | None
    reason: str


class AccountHistoryOut(_Out):
    """The account over time."""

    account_id: str
    snapshots: list[SnapshotOut]
    tier_changes: list[TierChangeOut]
    book_changes: list[BookChangeOut]


class DecisionOut(_Out):
    """A decision row (the columns of docs/data-contract.md)."""

    account_id: str
    as_of: dt.date
    tier: str
    tier_level: str
    lifecycle_stage: str
    touch_level: str
    level_reasons: list[str]
    health_score: float | None
    health_grade: str | None
    health_top_factor: str | None
    triggers: list[str]
    routes: list[str]


class DecisionPageOut(_Out):
    """A page of one date's decisions, by account id."""

    as_of: dt.date
    total: int
    limit: int
    offset: int
    decisions: list[DecisionOut]


class RunOut(_Out):
    """A run in the list."""

    id: int
    as_of: dt.date
    status: str = Field(examples=["completed"], description="running|completed|failed|abandoned")
    model_name: str
    model_hash: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    seconds: float | None
    accounts: int
    warnings: int = Field(description="How many warnings the run recorded")
    error: str | None


class RunPageOut(_Out):
    """Runs, newest first."""

    total: int
    limit: int
    offset: int
    runs: list[RunOut]


class RunDetailOut(_Out):
    """Everything recorded about one run."""

    id: int
    as_of: dt.date
    status: str
    model_name: str
    model_hash: str
    data_path: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    seconds: float | None
    accounts: int
    input_counts: dict[str, Any]
    rejects: dict[str, Any]
    excluded: dict[str, Any]
    changes: dict[str, Any] = Field(description="Items created/closed, touchpoints planned, ...")
    warnings: list[str]
    error: str | None
    tier_changes: list[dict[str, Any]] = Field(description="Tier moves on the run's date")
    diagnostics: dict[str, Any] | None = Field(
        default=None,
        description="How the model fit the run's data: findings and the at-risk load "
        "(docs/diagnostics.md); null for runs recorded before diagnostics existed",
    )


# --- routes -------------------------------------------------------------------------------


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


def _check_account(session: DbSession, account_id: str, book: str | None) -> None:
    found = views.access(session, account_id, book)
    if found == "missing":
        raise ApiError(404, f"account {account_id!r}: no such account")
    if found == "forbidden":
        raise ApiError(403, f"account {account_id!r} is not in {book}'s book")


TEXT = NO_NUL
AccountId = AccountIdPath
Limit = Annotated[int, Query(ge=1, le=1000, description="Page size")]
# Bounded: the database's integers are 64-bit, an overflow must be a 422, not a crash.
Offset = Annotated[int, Query(ge=0, le=1_000_000_000, description="Rows to skip")]


@router.get(
    "/portfolio",
    tags=["accounts"],
    summary="Accounts and ARR by tier, level, stage and grade; health; trend over runs",
    response_model=PortfolioOut,
    responses=ERRORS,
)
def get_portfolio(request: Request, user: ApiUser, session: DbSession) -> PortfolioOut:
    """The latest completed run's portfolio. A csm token gets the portfolio of its book."""
    order = views.grade_order(views.workspace_model(_ws(request)))
    return PortfolioOut.model_validate(portfolio_view(session, book_of(user), grade_order=order))


@router.get(
    "/accounts",
    tags=["accounts"],
    summary="Accounts on the latest run: filter, sort, page, or export as CSV",
    response_model=AccountPageOut,
    responses={
        **ERRORS,
        200: {
            "description": "A page of accounts (JSON), or every matching account (format=csv)",
            "content": {"text/csv": {"example": "account_id,name,arr,...\n"}},
        },
    },
)
def get_accounts(
    user: ApiUser,
    session: DbSession,
    tier: Annotated[str | None, Query(max_length=64, pattern=TEXT)] = None,
    level: Annotated[LevelName | None, Query(description="Effective touch level")] = None,
    stage: Annotated[StageName | None, Query(description="Lifecycle stage")] = None,
    grade: Annotated[str | None, Query(max_length=32, pattern=TEXT)] = None,
    csm: Annotated[
        str | None, Query(max_length=200, pattern=TEXT, description="The CSM's book")
    ] = None,
    q: Annotated[
        str | None, Query(max_length=200, pattern=TEXT, description="Search in account id and name")
    ] = None,
    sort: Annotated[views.SortKey, Query()] = "arr",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    limit: Limit = 50,
    offset: Offset = 0,
    format: Annotated[
        Literal["json", "csv"],
        Query(description="csv: every matching account (no paging), formula-safe cells"),
    ] = "json",
) -> Any:
    """A csm token lists its own book only (``csm=`` cannot widen it)."""
    f = views.AccountFilter(
        tier=tier,
        level=level,
        stage=stage,
        grade=grade,
        csm=csm,
        search=q,
        sort=sort,
        descending=order == "desc",
        limit=limit,
        offset=offset,
    )
    page = views.list_accounts(session, book_of(user), f, paged=format == "json")
    if format == "csv":
        header, rows = views.account_csv(page)
        name = f"accounts-{page.as_of.isoformat() if page.as_of else 'none'}.csv"
        return Response(
            to_csv(header, rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return AccountPageOut.model_validate(page)


@router.get(
    "/accounts/{account_id}",
    tags=["accounts"],
    summary="One account: decision and why, health explained, CSM, work items, touchpoints",
    response_model=AccountOut,
    responses={**ERRORS, **NOT_FOUND},
)
def get_account(
    request: Request, user: ApiUser, session: DbSession, account_id: AccountId
) -> AccountOut:
    """404 for an unknown account; 403 for a csm token and another book's account."""
    _check_account(session, account_id, book_of(user))
    detail = views.account_detail(session, _ws(request), account_id)
    if detail is None:
        raise ApiError(404, f"account {account_id!r}: no decision on a completed run yet")
    return AccountOut.model_validate(detail)


@router.get(
    "/accounts/{account_id}/history",
    tags=["accounts"],
    summary="The account's decision per run date, tier moves and CSM book moves",
    response_model=AccountHistoryOut,
    responses={**ERRORS, **NOT_FOUND},
)
def get_account_history(
    request: Request, user: ApiUser, session: DbSession, account_id: AccountId
) -> AccountHistoryOut:
    """Oldest first."""
    _check_account(session, account_id, book_of(user))
    history = views.account_history(session, _ws(request), account_id, with_signals=False)
    return AccountHistoryOut.model_validate(history)


@router.get(
    "/decisions",
    tags=["decisions"],
    summary="One run date's decisions (the decision output columns), by account id",
    response_model=DecisionPageOut,
    responses={**ERRORS, **NOT_FOUND},
)
def get_decisions(
    user: ApiUser,
    session: DbSession,
    as_of: Annotated[
        IsoDate | None, Query(description="A completed run's date; default: the latest")
    ] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> DecisionPageOut:
    """A csm token gets its own book's decisions."""
    page = views.decisions(session, book_of(user), as_of, limit=limit, offset=offset)
    if page is None:
        dates = ", ".join(d.isoformat() for d in completed_dates(session)[-5:]) or "none yet"
        what = f"as_of {as_of.isoformat()}" if as_of else "latest"
        raise ApiError(404, f"{what}: no completed run on that date (latest dates: {dates})")
    return DecisionPageOut.model_validate(page)


@router.get(
    "/runs",
    tags=["runs"],
    summary="Daily runs, newest first",
    response_model=RunPageOut,
    responses=ERRORS,
)
def get_runs(
    user: ApiUser, session: DbSession, limit: Limit = 50, offset: Offset = 0
) -> RunPageOut:
    """Runs belong to the workspace: every token sees the same list."""
    return RunPageOut.model_validate(list_runs(session, limit=limit, offset=offset))


@router.get(
    "/runs/{run_id}",
    tags=["runs"],
    summary="One run: status, inputs, rejects, changes, warnings, error, tier moves",
    response_model=RunDetailOut,
    responses={**ERRORS, **NOT_FOUND},
)
def get_run(user: ApiUser, session: DbSession, run_id: RowId) -> RunDetailOut:
    """A csm token sees only its own book's tier moves."""
    detail = run_detail(session, run_id, book=book_of(user))
    if detail is None:
        raise ApiError(404, f"run {run_id}: no such run (see GET /api/runs)")
    return RunDetailOut.model_validate(detail)

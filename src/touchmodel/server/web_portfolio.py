"""Dashboard pages: the portfolio (/), the accounts list (/accounts) and one account.

Routes read through :mod:`touchmodel.views` (the same read models as the
REST API, so both show the same numbers) and turn them into Chart.js
configurations: plain JSON that the page carries in
``<script type="application/json">`` blocks for ``static/app.js`` to draw,
so the Content-Security-Policy never has to allow inline code.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from touchmodel.fit.diagnostics import FINDING_LABELS
from touchmodel.server.auth import DbSession, WebUser
from touchmodel.server.errors import ApiError
from touchmodel.server.pages import render
from touchmodel.server.params import AccountIdPath
from touchmodel.views import accounts as views
from touchmodel.views.csv_export import to_csv
from touchmodel.views.portfolio import Portfolio
from touchmodel.views.portfolio import portfolio as portfolio_view
from touchmodel.views.runs import latest_diagnostics, list_runs
from touchmodel.views.scope import book_of
from touchmodel.workspace import Workspace

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
RECENT_RUNS = 5
TEXT = r"^[^\x00]*$"  # no NUL: PostgreSQL text cannot hold it
LEVEL_COLORS = {"high": "#2f5bd3", "medium": "#6b8de3", "low": "#a7bcef", "tech": "#cfd9f3"}
GRADE_COLORS = {"green": "#067647", "yellow": "#d4a72c", "red": "#b42318"}
SERIES_COLORS = ["#2f5bd3", "#b54708", "#067647", "#b42318", "#7a5af8", "#0e9384", "#5b6477"]
HIST_COLORS = ["#b42318"] * 4 + ["#d4a72c"] * 3 + ["#067647"] * 3


def _ws(request: Request) -> Workspace:
    ws: Workspace = request.app.state.ws
    return ws


# --- charts (Chart.js configurations as plain data) ----------------------------------------


def _axis(title: str, *, right: bool = False) -> dict[str, Any]:
    axis: dict[str, Any] = {"beginAtZero": True, "title": {"display": True, "text": title}}
    if right:
        axis |= {"position": "right", "grid": {"drawOnChartArea": False}}
    return axis


def portfolio_charts(p: Portfolio) -> dict[str, dict[str, Any]]:
    """The portfolio page's four charts, by element id."""
    charts: dict[str, dict[str, Any]] = {}
    if p.by_tier:
        charts["chart-arr-tier"] = {
            "type": "bar",
            "data": {
                "labels": [f"{s.key} ({s.level})" for s in p.by_tier],
                "datasets": [
                    {
                        "label": "ARR ($K)",
                        # Thousands: Chart.js would need a JS tick callback to shorten them.
                        "data": [round(s.arr / 1000) for s in p.by_tier],
                        "backgroundColor": [
                            LEVEL_COLORS.get(s.level or "", "#888") for s in p.by_tier
                        ],
                        "yAxisID": "y",
                        "order": 2,
                    },
                    {
                        "label": "Accounts",
                        "data": [s.accounts for s in p.by_tier],
                        "type": "line",
                        "borderColor": "#b54708",
                        "backgroundColor": "#b54708",
                        "yAxisID": "y1",
                        # Lower order is drawn on top: the line stays visible over the bars.
                        "order": 1,
                        "pointRadius": 5,
                    },
                ],
            },
            "options": {"scales": {"y": _axis("ARR ($K)"), "y1": _axis("accounts", right=True)}},
        }
    if p.by_level:
        charts["chart-level"] = {
            "type": "doughnut",
            "data": {
                "labels": [s.key for s in p.by_level],
                "datasets": [
                    {
                        "label": "Accounts",
                        "data": [s.accounts for s in p.by_level],
                        "backgroundColor": [LEVEL_COLORS.get(s.key, "#888") for s in p.by_level],
                    }
                ],
            },
            "options": {"plugins": {"legend": {"position": "right"}}},
        }
    if p.health_histogram and p.accounts:
        charts["chart-health"] = {
            "type": "bar",
            "data": {
                "labels": [f"{b.low}–{b.high}" for b in p.health_histogram],
                "datasets": [
                    {
                        "label": "Accounts by health score",
                        "data": [b.accounts for b in p.health_histogram],
                        "backgroundColor": HIST_COLORS[: len(p.health_histogram)],
                    }
                ],
            },
            "options": {
                "plugins": {"legend": {"display": False}},
                "scales": {
                    "y": _axis("accounts"),
                    "x": {"title": {"display": True, "text": "health score"}},
                },
            },
        }
    if p.trend:
        levels = list(p.trend[-1].by_level)
        datasets: list[dict[str, Any]] = [
            {
                "label": f"{lv} touch",
                "data": [t.by_level.get(lv, 0) for t in p.trend],
                "borderColor": LEVEL_COLORS.get(lv, "#888"),
                "backgroundColor": LEVEL_COLORS.get(lv, "#888"),
                "yAxisID": "y",
            }
            for lv in levels
        ]
        datasets.append(
            {
                "label": "mean health",
                "data": [t.mean_health for t in p.trend],
                "borderColor": "#067647",
                "backgroundColor": "#067647",
                "borderDash": [6, 4],
                "yAxisID": "y1",
            }
        )
        charts["chart-trend"] = {
            "type": "line",
            "data": {"labels": [t.as_of.isoformat() for t in p.trend], "datasets": datasets},
            "options": {
                "scales": {
                    "y": _axis("accounts"),
                    "y1": {**_axis("mean health", right=True), "max": 100},
                }
            },
        }
    return charts


def account_charts(
    history: views.AccountHistory, detail: views.AccountDetail
) -> dict[str, dict[str, Any]]:
    """The account page's charts: signals over time, health over time, points lost."""
    charts: dict[str, dict[str, Any]] = {}
    labels = [p.as_of.isoformat() for p in history.signals]
    if history.signals:
        keys = [k for k in history.signal_labels if any(k in p.signals for p in history.signals)]
        charts["chart-signals"] = {
            "type": "line",
            "data": {
                "labels": labels,
                "datasets": [
                    {
                        "label": history.signal_labels[k],
                        "data": [p.signals.get(k) for p in history.signals],
                        "borderColor": SERIES_COLORS[i % len(SERIES_COLORS)],
                        "backgroundColor": SERIES_COLORS[i % len(SERIES_COLORS)],
                    }
                    for i, k in enumerate(keys)
                ],
            },
            "options": {"scales": {"y": {"beginAtZero": True}}},
        }
        measures = [
            k for k in history.measure_labels if any(k in p.health for p in history.signals)
        ]
        charts["chart-health-trend"] = {
            "type": "line",
            "data": {
                "labels": labels,
                "datasets": [
                    {
                        "label": "health score",
                        "data": [p.health.get("score") for p in history.signals],
                        "borderColor": "#1d2433",
                        "backgroundColor": "#1d2433",
                        "borderWidth": 3,
                    },
                    *[
                        {
                            "label": history.measure_labels[k],
                            "data": [p.health.get(k) for p in history.signals],
                            "borderColor": SERIES_COLORS[i % len(SERIES_COLORS)],
                            "backgroundColor": SERIES_COLORS[i % len(SERIES_COLORS)],
                            "borderDash": [4, 3],
                            "borderWidth": 1,
                        }
                        for i, k in enumerate(measures)
                    ],
                ],
            },
            "options": {"scales": {"y": {"min": 0, "max": 100}}},
        }
    if detail.health is not None and detail.health.measures:
        scored = [m for m in detail.health.measures if m.score is not None]
        if scored:
            charts["chart-health-points"] = {
                "type": "bar",
                "data": {
                    "labels": [m.label for m in scored],
                    "datasets": [
                        {
                            "label": "points lost",
                            "data": [m.points_lost for m in scored],
                            "backgroundColor": "#b42318",
                        }
                    ],
                },
                "options": {
                    "indexAxis": "y",
                    "plugins": {"legend": {"display": False}},
                    "scales": {
                        "x": {
                            "beginAtZero": True,
                            "title": {"display": True, "text": "points lost"},
                        }
                    },
                },
            }
    return charts


# --- pages --------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
def portfolio_page(request: Request, user: WebUser, session: DbSession) -> Response:
    """The portfolio: KPI tiles, ARR by tier, accounts by level, health, trend over runs."""
    order = views.grade_order(views.workspace_model(_ws(request)))
    book = book_of(user)
    p = portfolio_view(session, book, grade_order=order)
    return render(
        request,
        "portfolio.html",
        {
            "active": "portfolio",
            "p": p,
            "charts": portfolio_charts(p),
            "runs": list_runs(session, limit=RECENT_RUNS),
            # Model-wide counts: for admins, not for a CSM limited to a book.
            "fit": latest_diagnostics(session) if book is None else None,
            "fit_labels": FINDING_LABELS,
        },
        principal=user,
    )


Level = Annotated[Literal["", "tech", "low", "medium", "high"], Query()]
Stage = Annotated[Literal["", "onboarding", "growth", "renewal", "at_risk"], Query()]
Text = Annotated[str, Query(max_length=200, pattern=TEXT)]


def _filter(
    tier: str,
    level: str,
    stage: str,
    grade: str,
    csm: str,
    q: str,
    sort: str,
    order: str,
    page: int,
) -> views.AccountFilter:
    return views.AccountFilter(
        tier=tier or None,
        level=level or None,
        stage=stage or None,
        grade=grade or None,
        csm=csm or None,
        search=q or None,
        sort=sort,
        descending=order == "desc",
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )


@router.get("/accounts", response_class=HTMLResponse)
def accounts_page(
    request: Request,
    user: WebUser,
    session: DbSession,
    tier: Text = "",
    level: Level = "",
    stage: Stage = "",
    grade: Text = "",
    csm: Text = "",
    q: Text = "",
    sort: Annotated[views.SortKey, Query()] = "arr",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    """The accounts table; an htmx request (the filters) gets only the table fragment."""
    f = _filter(tier, level, stage, grade, csm, q, sort, order, page)
    book = book_of(user)
    result = views.list_accounts(session, book, f)
    params = {
        "tier": tier, "level": level, "stage": stage, "grade": grade, "csm": csm, "q": q,
        "sort": sort, "order": order,
    }  # fmt: skip
    # Links carry only the filters in use, so URLs stay short and readable.
    params = {k: v for k, v in params.items() if v}
    pages = max(1, -(-result.total // PAGE_SIZE))
    ctx = {
        "active": "accounts",
        "result": result,
        "params": params,
        "page": page,
        "pages": pages,
        "book": book,
    }
    if (
        request.headers.get("hx-request") == "true"
        and request.headers.get("hx-target") == "acct-table"
    ):
        return render(request, "fragments/acct_table.html", ctx, principal=user)
    ctx["options"] = views.filter_options(session, book)
    return render(request, "accounts.html", ctx, principal=user)


@router.get("/accounts.csv")
def accounts_csv(
    user: WebUser,
    session: DbSession,
    tier: Text = "",
    level: Level = "",
    stage: Stage = "",
    grade: Text = "",
    csm: Text = "",
    q: Text = "",
    sort: Annotated[views.SortKey, Query()] = "arr",
    order: Annotated[Literal["asc", "desc"], Query()] = "desc",
) -> Response:
    """Every account matching the filters as a CSV whose cells no spreadsheet evaluates."""
    f = _filter(tier, level, stage, grade, csm, q, sort, order, 1)
    result = views.list_accounts(session, book_of(user), f, paged=False)
    header, rows = views.account_csv(result)
    name = f"accounts-{result.as_of.isoformat() if result.as_of else 'none'}.csv"
    return Response(
        to_csv(header, rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/accounts/{account_id:path}", response_class=HTMLResponse)
def account_page(
    request: Request,
    user: WebUser,
    session: DbSession,
    account_id: AccountIdPath,
) -> Response:
    """One account: why this touch level, health explained, signals over time, work, tiers."""
    book = book_of(user)
    found = views.access(session, account_id, book)
    if found == "missing":
        raise ApiError(404, f"account {account_id}: no such account")
    if found == "forbidden":
        raise ApiError(403, f"account {account_id} is not in {book}'s book")
    ws = _ws(request)
    detail = views.account_detail(session, ws, account_id)
    if detail is None:
        raise ApiError(404, f"account {account_id}: no decision on a completed run yet")
    history = views.account_history(session, ws, account_id)
    return render(
        request,
        "account.html",
        {
            "active": "accounts",
            "a": detail,
            "history": history,
            "charts": account_charts(history, detail),
        },
        principal=user,
    )

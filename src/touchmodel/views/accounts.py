"""Read models of accounts: the filtered list, one account in full, its history and decisions.

Sources: the state store (snapshots per account and date, the CSM book,
work items, touchpoints) and each completed run's ``signals.parquet`` (every
signal and health measure score behind a decision), read with DuckDB
filtered to one account, so an account page never loads a whole run.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import duckdb
from sqlalchemy import Select, case, func, or_, select
from sqlalchemy.orm import Session

from touchmodel.decide.rules import SEP
from touchmodel.errors import TouchmodelError
from touchmodel.model.loader import load_model
from touchmodel.model.schema import LEVELS, TouchModel
from touchmodel.ops.snapshots import tier_migrations
from touchmodel.state.tables import Assignment, AssignmentChange, Snapshot, Touchpoint, WorkItem
from touchmodel.views.runs import completed_dates
from touchmodel.views.scope import book_accounts, in_book
from touchmodel.workspace import Workspace

SortKey = Literal["account_id", "name", "arr", "health", "tier", "level", "stage", "csm", "renewal"]
SORT_KEYS: tuple[str, ...] = (
    "account_id", "name", "arr", "health", "tier", "level", "stage", "csm", "renewal"
)  # fmt: skip
Access = Literal["ok", "forbidden", "missing"]

# Signals charted on the account page, with the labels a user reads.
CHART_SIGNALS: dict[str, str] = {
    "usage_30d": "Usage, last 30 days",
    "active_users_30d": "Active users, last 30 days",
    "tickets_30d": "Tickets, last 30 days",
    "failed_payments_30d": "Failed payments, last 30 days",
}
UPCOMING_LIMIT = 20
CLOSED_ITEMS_LIMIT = 20


def _decided(s: Snapshot) -> dict[str, Any]:
    """The decision fields of a snapshot, as the history and the decisions list show them."""
    return {
        "as_of": s.as_of,
        "tier": s.tier,
        "tier_level": s.tier_level,
        "lifecycle_stage": s.lifecycle_stage,
        "touch_level": s.touch_level,
        "level_reasons": split(s.level_reasons),
        "health_score": s.health_score,
        "health_grade": s.health_grade,
        "health_top_factor": s.health_top_factor,
        "triggers": split(s.triggers),
        "routes": split(s.routes),
    }


def split(text: str | None) -> list[str]:
    """A snapshot's joined list column (reasons, triggers, routes) as a list."""
    return [p for p in (text or "").split(SEP) if p]


@functools.lru_cache(maxsize=8)
def _cached_model(spec: str, _mtime: float) -> TouchModel | None:
    try:
        return load_model(spec)
    except TouchmodelError:
        return None


def workspace_model(ws: Workspace) -> TouchModel | None:
    """The workspace's current touch model (cached until its file changes); None if broken.

    Used only to label things (measure names, trigger descriptions, grade
    order): a model file mid-edit must not take the dashboard down.
    """
    spec = ws.model_spec
    path = Path(spec)
    mtime = path.stat().st_mtime if path.is_file() else 0.0
    return _cached_model(spec, mtime)


def grade_order(model: TouchModel | None) -> list[str]:
    """Grade ids best first."""
    if model is None:
        return []
    return [g.id for g in sorted(model.health.grades, key=lambda g: g.min, reverse=True)]


# --- the list -----------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountFilter:
    """Filters, sort and page of the accounts list (None: no filter)."""

    tier: str | None = None
    level: str | None = None
    stage: str | None = None
    grade: str | None = None
    csm: str | None = None
    search: str | None = None
    sort: str = "arr"
    descending: bool = True
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True)
class AccountRow:
    """One account in the list: its latest decision and CSM."""

    account_id: str
    name: str | None
    arr: float | None
    tier: str
    tier_level: str
    lifecycle_stage: str
    touch_level: str
    health_score: float | None
    health_grade: str | None
    health_top_factor: str | None
    csm: str | None
    renewal_date: dt.date | None
    triggers: list[str]


@dataclass(frozen=True)
class AccountPage:
    """A page of the accounts list on the latest completed run's date."""

    as_of: dt.date | None
    total: int
    limit: int
    offset: int
    accounts: list[AccountRow]


@dataclass(frozen=True)
class FilterOptions:
    """The values each filter can take in what a principal sees (for the dashboard's selects)."""

    tiers: list[str]
    levels: list[str]
    stages: list[str]
    grades: list[str]
    csms: list[str]


def _sort_column(key: str) -> Any:
    levels = case({lv: i for i, lv in enumerate(LEVELS)}, value=Snapshot.touch_level, else_=-1)
    return {
        "account_id": Snapshot.account_id,
        "name": Snapshot.name,
        "arr": Snapshot.arr,
        "health": Snapshot.health_score,
        "tier": Snapshot.tier,
        "level": levels,
        "stage": Snapshot.lifecycle_stage,
        "csm": Assignment.csm,
        "renewal": Snapshot.renewal_date,
    }[key]


def _like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, with its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped.lower()}%"


def _filtered(as_of: dt.date, book: str | None, f: AccountFilter) -> Select[Snapshot, str]:
    q = (
        select(Snapshot, Assignment.csm)
        .outerjoin(Assignment, Assignment.account_id == Snapshot.account_id)
        .where(Snapshot.as_of == as_of)
    )
    if book is not None:
        q = q.where(Snapshot.account_id.in_(book_accounts(book)))
    for col, value in (
        (Snapshot.tier, f.tier),
        (Snapshot.touch_level, f.level),
        (Snapshot.lifecycle_stage, f.stage),
        (Snapshot.health_grade, f.grade),
        (Assignment.csm, f.csm),
    ):
        if value:
            q = q.where(col == value)
    if f.search and f.search.strip():
        pattern = _like(f.search.strip())
        q = q.where(
            or_(
                func.lower(Snapshot.name).like(pattern, escape="\\"),
                func.lower(Snapshot.account_id).like(pattern, escape="\\"),
            )
        )
    return q


def _account_row(snap: Snapshot, csm: str | None) -> AccountRow:
    return AccountRow(
        account_id=snap.account_id,
        name=snap.name,
        arr=snap.arr,
        tier=snap.tier,
        tier_level=snap.tier_level,
        lifecycle_stage=snap.lifecycle_stage,
        touch_level=snap.touch_level,
        health_score=snap.health_score,
        health_grade=snap.health_grade,
        health_top_factor=snap.health_top_factor,
        csm=csm,
        renewal_date=snap.renewal_date,
        triggers=split(snap.triggers),
    )


def list_accounts(
    session: Session, book: str | None, f: AccountFilter, *, paged: bool = True
) -> AccountPage:
    """Accounts on the latest completed run's date, filtered, sorted and paged.

    ``book`` limits the list to one CSM's book (a csm principal). Without
    ``paged`` every matching row is returned (the CSV export).
    """
    dates = completed_dates(session)
    if not dates:
        return AccountPage(as_of=None, total=0, limit=f.limit, offset=f.offset, accounts=[])
    as_of = dates[-1]
    q = _filtered(as_of, book, f)
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    col = _sort_column(f.sort if f.sort in SORT_KEYS else "arr")
    order = col.desc() if f.descending else col.asc()
    # Accounts without a value sort last either way; the id breaks ties so pages are stable.
    q = q.order_by(order.nulls_last(), Snapshot.account_id)
    if paged:
        q = q.limit(f.limit).offset(f.offset)
    rows = [_account_row(snap, csm) for snap, csm in session.execute(q).all()]
    return AccountPage(as_of=as_of, total=total, limit=f.limit, offset=f.offset, accounts=rows)


def filter_options(session: Session, book: str | None) -> FilterOptions:
    """Distinct tiers, levels, stages, grades and CSMs on the latest date, within ``book``."""
    dates = completed_dates(session)
    if not dates:
        return FilterOptions([], [], [], [], [])
    base = _filtered(dates[-1], book, AccountFilter()).subquery()

    def distinct(col: Any) -> list[str]:
        return [str(v) for v in session.scalars(select(col).distinct()) if v is not None]

    levels = set(distinct(base.c.touch_level))
    return FilterOptions(
        tiers=sorted(distinct(base.c.tier)),
        levels=[lv for lv in reversed(LEVELS) if lv in levels],
        stages=sorted(distinct(base.c.lifecycle_stage)),
        grades=sorted(distinct(base.c.health_grade)),
        csms=sorted(distinct(base.c.csm)),
    )


def account_csv(page: AccountPage) -> tuple[list[str], list[list[Any]]]:
    """The header and rows of the accounts CSV export (cells made safe by ``to_csv``)."""
    header = [
        "account_id", "name", "arr", "tier", "tier_level", "lifecycle_stage", "touch_level",
        "health_score", "health_grade", "health_top_factor", "csm", "renewal_date", "triggers",
        "as_of",
    ]  # fmt: skip
    rows = [
        [
            r.account_id,
            r.name,
            r.arr,
            r.tier,
            r.tier_level,
            r.lifecycle_stage,
            r.touch_level,
            r.health_score,
            r.health_grade,
            r.health_top_factor,
            r.csm,
            r.renewal_date.isoformat() if r.renewal_date else None,
            SEP.join(r.triggers),
            page.as_of.isoformat() if page.as_of else None,
        ]
        for r in page.accounts
    ]
    return header, rows


# --- one account --------------------------------------------------------------------------


def access(session: Session, account_id: str, book: str | None) -> Access:
    """Whether a principal limited to ``book`` may see ``account_id`` (or it does not exist).

    An account exists when it has a snapshot or a book; one outside the
    principal's book is "forbidden" (403), never hidden as "missing" (404).
    """
    known = (
        session.scalar(
            select(Snapshot.account_id).where(Snapshot.account_id == account_id).limit(1)
        )
        is not None
        or session.get(Assignment, account_id) is not None
    )
    if not known:
        return "missing"
    return "ok" if in_book(session, account_id, book) else "forbidden"


@dataclass(frozen=True)
class HealthMeasure:
    """One health measure for one account: the signal, its score, and the points it costs."""

    id: str
    label: str
    signal: str
    value: float | None
    score: float | None
    weight: float
    effective_weight: float
    points_lost: float


@dataclass(frozen=True)
class HealthExplanation:
    """How the health score came about: each measure's score and weight after reweighting."""

    score: float | None
    grade: str | None
    top_factor: str | None
    measures: list[HealthMeasure]
    missing: list[str]
    grades: list[dict[str, Any]]
    # From the model's fitted churn curve (none without one): the chance the
    # account churns within the curve's horizon, and that share of its ARR.
    churn_probability: float | None = None
    arr_at_risk: float | None = None
    churn_horizon_days: int | None = None


@dataclass(frozen=True)
class TriggerInfo:
    """A fired trigger, with the model's description of it."""

    id: str
    description: str


@dataclass(frozen=True)
class WorkItemRow:
    """A work item of the account (read-only here; the queue changes it)."""

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


@dataclass(frozen=True)
class TouchpointRow:
    """A planned touchpoint of the account."""

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


@dataclass(frozen=True)
class AccountDetail:
    """One account on its latest snapshot: decision, why, health, work and touchpoints."""

    account_id: str
    name: str | None
    arr: float | None
    contract_start: dt.date | None
    renewal_date: dt.date | None
    as_of: dt.date
    csm: str | None
    csm_since: dt.date | None
    csm_reason: str | None
    tier: str
    tier_level: str
    lifecycle_stage: str
    touch_level: str
    level_reasons: list[str]
    health_score: float | None
    health_grade: str | None
    health_top_factor: str | None
    triggers: list[TriggerInfo]
    routes: list[str]
    health: HealthExplanation | None
    work_items: list[WorkItemRow]
    upcoming_touchpoints: list[TouchpointRow]
    latest_run: bool = True


def _latest_snapshot(session: Session, account_id: str) -> Snapshot | None:
    """The account's snapshot on the newest completed run date it has one for."""
    dates = completed_dates(session)
    q = select(Snapshot).where(Snapshot.account_id == account_id)
    if dates:
        q = q.where(Snapshot.as_of.in_(dates))
    return session.scalars(q.order_by(Snapshot.as_of.desc()).limit(1)).first()


def _signal_rows(ws: Workspace, dates: Sequence[dt.date], account_id: str) -> list[dict[str, Any]]:
    """The account's rows of each date's signals.parquet, oldest first (DuckDB, filtered)."""
    files = [
        str(p)
        for p in (ws.out_dir(d.isoformat()) / "signals.parquet" for d in dates)
        if p.is_file()
    ]
    if not files:
        return []
    con = duckdb.connect()
    try:
        # union_by_name: a model change between runs may add or drop columns.
        cur = con.execute(
            "SELECT * FROM read_parquet(?, union_by_name=true, filename=true) WHERE account_id = ?",
            [files, account_id],
        )
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, values, strict=True)) for values in cur.fetchall()]
    finally:
        con.close()
    for row in rows:
        # runs/<as-of>/signals.parquet: the folder names the date.
        row["_as_of"] = dt.date.fromisoformat(Path(str(row["filename"])).parent.name[:10])
    return sorted(rows, key=lambda r: r["_as_of"])


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(out) or math.isinf(out) else out


def explain_health(
    model: TouchModel | None, row: dict[str, Any] | None
) -> HealthExplanation | None:
    """Each measure's score and effective weight for one account's signals row.

    Mirrors ``decide.health``: a measure whose signal is missing drops out
    and its weight is shared by the others; points lost = (100 - score) x
    effective weight / 100 each, so they add up to 100 - the score.
    """
    if model is None or row is None:
        return None
    present = [m for m in model.health.measures if f"health__{m.id}" in row]
    scored = [m for m in present if row.get(f"health__{m.id}") is not None]
    total = sum(m.weight for m in scored)
    raw: list[tuple[float, HealthMeasure]] = []
    for m in present:
        score = _number(row.get(f"health__{m.id}"))
        share = (m.weight / total) if (score is not None and total) else 0.0
        lost = (100.0 - score) * share if score is not None else 0.0
        raw.append(
            (
                lost,
                HealthMeasure(
                    id=m.id,
                    label=m.label or m.id,
                    signal=m.signal,
                    value=_number(row.get(m.signal)),
                    score=score,
                    weight=m.weight,
                    effective_weight=round(100.0 * share, 1),
                    points_lost=round(lost, 1),
                ),
            )
        )
    # Costliest first, by the unrounded points (the top factor is the largest of those).
    measures = [hm for _lost, hm in sorted(raw, key=lambda pair: -pair[0])]
    missing = [m.label or m.id for m in model.health.measures if m not in scored]
    curve = model.health.churn_probability
    return HealthExplanation(
        score=_number(row.get("health_score")),
        grade=None,
        top_factor=None,
        measures=measures,
        missing=missing,
        grades=[
            {"id": g.id, "min": g.min}
            for g in sorted(model.health.grades, key=lambda g: g.min, reverse=True)
        ],
        churn_probability=_number(row.get("churn_probability")),
        arr_at_risk=_number(row.get("arr_at_risk")),
        churn_horizon_days=curve.horizon_days if curve is not None else None,
    )


def _work_items(session: Session, account_id: str) -> list[WorkItemRow]:
    live = session.scalars(
        select(WorkItem)
        .where(WorkItem.account_id == account_id, WorkItem.status != "closed")
        .order_by(WorkItem.due, WorkItem.id)
    ).all()
    closed = session.scalars(
        select(WorkItem)
        .where(WorkItem.account_id == account_id, WorkItem.status == "closed")
        .order_by(WorkItem.closed_on.desc(), WorkItem.id.desc())
        .limit(CLOSED_ITEMS_LIMIT)
    ).all()
    return [
        WorkItemRow(
            id=w.id,
            trigger=w.trigger,
            kind=w.kind,
            status=w.status,
            priority=w.priority,
            owner=w.owner,
            team=w.team,
            action=w.action,
            route=w.route,
            due=w.due,
            explanation=w.explanation,
            created_on=w.created_on,
            snoozed_until=w.snoozed_until,
            closed_on=w.closed_on,
            close_reason=w.close_reason,
        )
        for w in [*live, *closed]
    ]


def _touchpoints(session: Session, account_id: str) -> list[TouchpointRow]:
    found = session.scalars(
        select(Touchpoint)
        .where(Touchpoint.account_id == account_id, Touchpoint.status == "planned")
        .order_by(Touchpoint.due, Touchpoint.id)
        .limit(UPCOMING_LIMIT)
    )
    return [
        TouchpointRow(
            id=t.id,
            key=t.key,
            sequence=t.sequence,
            title=t.title,
            due=t.due,
            channel=t.channel,
            automated=t.automated,
            owner=t.owner,
            level=t.level,
            status=t.status,
        )
        for t in found
    ]


def account_detail(session: Session, ws: Workspace, account_id: str) -> AccountDetail | None:
    """Everything the account page shows, or None when the account has no snapshot.

    The caller checks :func:`access` first; this does not look at books.
    """
    snap = _latest_snapshot(session, account_id)
    if snap is None:
        return None
    model = workspace_model(ws)
    described = {t.id: t.description for t in model.triggers} if model else {}
    rows = _signal_rows(ws, [snap.as_of], account_id)
    health = explain_health(model, rows[-1] if rows else None)
    if health is not None:
        # The stored decision is the record; the signals file adds the detail.
        health = replace(
            health,
            score=snap.health_score,
            grade=snap.health_grade,
            top_factor=snap.health_top_factor,
            churn_probability=snap.churn_probability,
            arr_at_risk=snap.arr_at_risk,
        )
    book = session.get(Assignment, account_id)
    dates = completed_dates(session)
    return AccountDetail(
        account_id=snap.account_id,
        name=snap.name,
        arr=snap.arr,
        contract_start=snap.contract_start,
        renewal_date=snap.renewal_date,
        as_of=snap.as_of,
        csm=book.csm if book else None,
        csm_since=book.assigned_on if book else None,
        csm_reason=book.reason if book else None,
        tier=snap.tier,
        tier_level=snap.tier_level,
        lifecycle_stage=snap.lifecycle_stage,
        touch_level=snap.touch_level,
        level_reasons=split(snap.level_reasons),
        health_score=snap.health_score,
        health_grade=snap.health_grade,
        health_top_factor=snap.health_top_factor,
        triggers=[TriggerInfo(t, described.get(t, "")) for t in split(snap.triggers)],
        routes=split(snap.routes),
        health=health,
        work_items=_work_items(session, account_id),
        upcoming_touchpoints=_touchpoints(session, account_id),
        latest_run=bool(dates) and snap.as_of == dates[-1],
    )


# --- history ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionFields:
    """What a run decided for an account on one date (from its snapshot)."""

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


@dataclass(frozen=True)
class SnapshotRow(DecisionFields):
    """The account's decision on one date, with its run and ARR then."""

    run_id: int
    arr: float | None


@dataclass(frozen=True)
class TierChange:
    """A move between tiers from one run date to the next."""

    on: dt.date
    from_tier: str
    to_tier: str
    from_level: str | None
    to_level: str | None
    previous_run: dt.date | None


@dataclass(frozen=True)
class BookChange:
    """A move between CSM books."""

    on: dt.date
    from_csm: str | None
    to_csm: str | None
    reason: str


@dataclass(frozen=True)
class SignalPoint:
    """Charted signals and health measure scores of the account on one run date."""

    as_of: dt.date
    signals: dict[str, float | None]
    health: dict[str, float | None]


@dataclass(frozen=True)
class AccountHistory:
    """The account over time: snapshots, tier and book moves, signals per run date."""

    account_id: str
    snapshots: list[SnapshotRow]
    tier_changes: list[TierChange]
    book_changes: list[BookChange]
    signals: list[SignalPoint] = field(default_factory=list)
    signal_labels: dict[str, str] = field(default_factory=dict)
    measure_labels: dict[str, str] = field(default_factory=dict)


def account_history(
    session: Session, ws: Workspace, account_id: str, *, with_signals: bool = True
) -> AccountHistory:
    """Every snapshot on a completed run date, tier and book moves, and charted signals."""
    dates = completed_dates(session)
    snaps = session.scalars(
        select(Snapshot)
        .where(Snapshot.account_id == account_id, Snapshot.as_of.in_(dates))
        .order_by(Snapshot.as_of)
    ).all()
    moves = [
        TierChange(
            on=dt.date.fromisoformat(m["on"]),
            from_tier=m["from_tier"],
            to_tier=m["to_tier"],
            from_level=m["from_level"],
            to_level=m["to_level"],
            previous_run=dt.date.fromisoformat(m["previous_run"]) if m["previous_run"] else None,
        )
        for m in tier_migrations(session, account_id=account_id)
    ]
    books = [
        BookChange(on=c.on, from_csm=c.from_csm, to_csm=c.to_csm, reason=c.reason)
        for c in session.scalars(
            select(AssignmentChange)
            .where(AssignmentChange.account_id == account_id)
            .order_by(AssignmentChange.on, AssignmentChange.id)
        )
    ]
    model = workspace_model(ws)
    measure_labels = {m.id: m.label or m.id for m in model.health.measures} if model else {}
    points: list[SignalPoint] = []
    if with_signals:
        for row in _signal_rows(ws, [s.as_of for s in snaps], account_id):
            points.append(
                SignalPoint(
                    as_of=row["_as_of"],
                    signals={k: _number(row.get(k)) for k in CHART_SIGNALS if k in row},
                    health={
                        k[len("health__") :]: _number(v)
                        for k, v in row.items()
                        if k.startswith("health__")
                    }
                    | {"score": _number(row.get("health_score"))},
                )
            )
    return AccountHistory(
        account_id=account_id,
        snapshots=[SnapshotRow(run_id=s.run_id, arr=s.arr, **_decided(s)) for s in snaps],
        tier_changes=moves,
        book_changes=books,
        signals=points,
        signal_labels=dict(CHART_SIGNALS),
        measure_labels=measure_labels,
    )


# --- decisions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision(DecisionFields):
    """One row of the decision output (docs/data-contract.md) for one account and date."""

    account_id: str


@dataclass(frozen=True)
class DecisionPage:
    """A page of one date's decisions, by account id."""

    as_of: dt.date
    total: int
    limit: int
    offset: int
    decisions: list[Decision]


def decisions(
    session: Session, book: str | None, as_of: dt.date | None, *, limit: int, offset: int
) -> DecisionPage | None:
    """The decisions of a completed run date (default: the latest); None if there is none."""
    dates = completed_dates(session)
    day = as_of if as_of is not None else (dates[-1] if dates else None)
    if day is None or day not in dates:
        return None
    q = select(Snapshot).where(Snapshot.as_of == day)
    if book is not None:
        q = q.where(Snapshot.account_id.in_(book_accounts(book)))
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    snaps = session.scalars(q.order_by(Snapshot.account_id).limit(limit).offset(offset))
    return DecisionPage(
        as_of=day,
        total=total,
        limit=limit,
        offset=offset,
        decisions=[Decision(account_id=s.account_id, **_decided(s)) for s in snaps],
    )

"""Read models of daily runs: the list, one run, and which dates have a completed run.

Only a *completed* run's date is a result: a failed run never publishes its
files (see ``ops.daily``), and a running one is not finished writing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from touchmodel.ops.snapshots import tier_migrations
from touchmodel.state.tables import Run

COMPLETED = "completed"


def completed_dates(session: Session) -> list[dt.date]:
    """Every as-of date with a completed run, oldest first."""
    q = select(Run.as_of).where(Run.status == COMPLETED).group_by(Run.as_of).order_by(Run.as_of)
    return list(session.scalars(q))


def latest_date(session: Session) -> dt.date | None:
    """The as-of date of the newest completed run (what "latest" means everywhere)."""
    found: dt.date | None = session.scalar(
        select(func.max(Run.as_of)).where(Run.status == COMPLETED)
    )
    return found


@dataclass(frozen=True)
class RunRow:
    """One run in the list."""

    id: int
    as_of: dt.date
    status: str
    model_name: str
    model_hash: str
    started_at: dt.datetime
    finished_at: dt.datetime | None
    seconds: float | None
    accounts: int
    warnings: int
    error: str | None


@dataclass(frozen=True)
class RunPage:
    """A page of runs, newest first."""

    total: int
    limit: int
    offset: int
    runs: list[RunRow]


@dataclass(frozen=True)
class RunDetail:
    """Everything recorded about one run, plus the tier moves its date saw."""

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
    changes: dict[str, Any]
    warnings: list[str]
    error: str | None
    tier_changes: list[dict[str, Any]] = field(default_factory=list)
    diagnostics: dict[str, Any] | None = None  # how the model fit the data (fit.diagnostics)


def _utc(at: dt.datetime | None) -> dt.datetime | None:
    """A stored timestamp as aware UTC: SQLite hands them back naive, but they are UTC."""
    return at.replace(tzinfo=dt.UTC) if at is not None and at.tzinfo is None else at


def _row(run: Run) -> RunRow:
    return RunRow(
        id=run.id,
        as_of=run.as_of,
        status=run.status,
        model_name=run.model_name,
        model_hash=run.model_hash,
        started_at=_utc(run.started_at) or run.started_at,
        finished_at=_utc(run.finished_at),
        seconds=run.seconds,
        accounts=run.accounts,
        warnings=len(run.warnings or []),
        error=run.error,
    )


def list_runs(session: Session, *, limit: int = 50, offset: int = 0) -> RunPage:
    """Runs newest first (by id: a re-run of an old date is still the newest run)."""
    total = session.scalar(select(func.count()).select_from(Run)) or 0
    runs = session.scalars(select(Run).order_by(Run.id.desc()).limit(limit).offset(offset))
    return RunPage(total=total, limit=limit, offset=offset, runs=[_row(r) for r in runs])


def run_detail(session: Session, run_id: int, *, book: str | None = None) -> RunDetail | None:
    """One run, or None when there is no such run.

    ``tier_changes`` are the accounts whose tier moved on the run's date; a
    principal limited to ``book`` sees only its own accounts' moves.
    """
    run = session.get(Run, run_id)
    if run is None:
        return None
    moves: list[dict[str, Any]] = []
    if run.status == COMPLETED:
        moves = [m for m in tier_migrations(session, since=run.as_of) if m["on"] == str(run.as_of)]
        if book is not None:
            from touchmodel.views.scope import book_accounts

            mine = set(session.scalars(book_accounts(book)))
            moves = [m for m in moves if m["account_id"] in mine]
    return RunDetail(
        id=run.id,
        as_of=run.as_of,
        status=run.status,
        model_name=run.model_name,
        model_hash=run.model_hash,
        # Where the server reads its files is the admin's business, not a CSM's.
        data_path=run.data_path if book is None else "",
        started_at=_utc(run.started_at) or run.started_at,
        finished_at=_utc(run.finished_at),
        seconds=run.seconds,
        accounts=run.accounts,
        input_counts=dict(run.input_counts or {}),
        rejects=dict(run.rejects or {}),
        excluded=dict(run.excluded or {}),
        changes=dict(run.changes or {}),
        warnings=list(run.warnings or []),
        error=run.error,
        tier_changes=moves,
        # Counts over the whole base, like data_path: not for a book-limited principal.
        diagnostics=run.diagnostics if book is None else None,
    )


@dataclass(frozen=True)
class RunDiagnostics:
    """The data-fit diagnostics of the newest completed run that has them."""

    run_id: int
    as_of: dt.date
    diagnostics: dict[str, Any]


def latest_diagnostics(session: Session) -> RunDiagnostics | None:
    """Diagnostics of the newest completed run (latest date, then latest run of it)."""
    run = session.scalars(
        select(Run)
        .where(Run.status == COMPLETED)
        .order_by(Run.as_of.desc(), Run.id.desc())
        .limit(1)
    ).first()
    if run is None or run.diagnostics is None:
        return None
    return RunDiagnostics(run_id=run.id, as_of=run.as_of, diagnostics=run.diagnostics)

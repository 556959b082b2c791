"""The portfolio read model: the latest run's accounts and ARR, health, and the trend.

Everything is aggregated by the database (GROUP BY over account snapshots),
never by looping over accounts in Python, so the page costs the same for 300
accounts as for 300,000. A principal limited to a book sees the portfolio of
that book (its current accounts, on every date of the trend).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from touchmodel.model.schema import LEVELS
from touchmodel.state.tables import Snapshot
from touchmodel.views.runs import completed_dates
from touchmodel.views.scope import book_accounts

AT_RISK = "at_risk"
# Health score histogram: ten bins of ten points; 100 falls into the last one.
BIN_WIDTH = 10
BINS = 10


@dataclass(frozen=True)
class Slice:
    """Accounts and ARR in one group (a tier, a touch level, a stage, a grade)."""

    key: str
    accounts: int
    arr: float
    pct_accounts: float
    pct_arr: float
    level: str | None = None  # a tier's own level (tier slices only)


@dataclass(frozen=True)
class HistogramBin:
    """Accounts whose health score is in [low, high) (the last bin includes 100)."""

    low: int
    high: int
    accounts: int


@dataclass(frozen=True)
class TrendPoint:
    """One completed run date: accounts per touch level, mean health, ARR at risk."""

    as_of: dt.date
    accounts: int
    arr: float
    mean_health: float | None
    at_risk_accounts: int
    at_risk_arr: float
    by_level: dict[str, int]


@dataclass(frozen=True)
class Portfolio:
    """What the portfolio page and ``GET /api/portfolio`` show."""

    as_of: dt.date | None
    book: str | None
    accounts: int = 0
    arr: float = 0.0
    mean_health: float | None = None
    at_risk_accounts: int = 0
    at_risk_arr: float = 0.0
    # Sum of churn probability x ARR: only with a fitted churn curve, else None.
    expected_arr_at_risk: float | None = None
    unscored_accounts: int = 0
    by_tier: list[Slice] = field(default_factory=list)
    by_level: list[Slice] = field(default_factory=list)
    by_stage: list[Slice] = field(default_factory=list)
    by_grade: list[Slice] = field(default_factory=list)
    health_histogram: list[HistogramBin] = field(default_factory=list)
    trend: list[TrendPoint] = field(default_factory=list)


def _scoped(q: Any, book: str | None) -> Any:
    return q if book is None else q.where(Snapshot.account_id.in_(book_accounts(book)))


def _pct(part: float, whole: float) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def _slices(
    session: Session, as_of: dt.date, book: str | None, *cols: Any
) -> list[tuple[Any, ...]]:
    q = select(*cols, func.count(), func.coalesce(func.sum(Snapshot.arr), 0.0)).where(
        Snapshot.as_of == as_of
    )
    return list(session.execute(_scoped(q, book).group_by(*cols)).all())


def _level_rank(level: str | None) -> int:
    return LEVELS.index(level) if level in LEVELS else -1  # type: ignore[arg-type]


def portfolio(
    session: Session, book: str | None, *, grade_order: list[str] | None = None
) -> Portfolio:
    """The portfolio on the latest completed run's date, limited to ``book`` when given.

    ``grade_order`` lists grade ids best first (from the model); grades it
    does not name follow in alphabetical order.
    """
    dates = completed_dates(session)
    if not dates:
        return Portfolio(as_of=None, book=book)
    as_of = dates[-1]
    totals = session.execute(
        _scoped(
            select(
                func.count(),
                func.coalesce(func.sum(Snapshot.arr), 0.0),
                func.avg(Snapshot.health_score),
                func.sum(case((Snapshot.lifecycle_stage == AT_RISK, 1), else_=0)),
                func.sum(case((Snapshot.lifecycle_stage == AT_RISK, Snapshot.arr), else_=0.0)),
                func.sum(case((Snapshot.health_score.is_(None), 1), else_=0)),
                func.sum(Snapshot.arr_at_risk),
            ).where(Snapshot.as_of == as_of),
            book,
        )
    ).one()
    n, arr = int(totals[0] or 0), float(totals[1] or 0.0)

    def slices(rows: list[tuple[Any, ...]], with_level: bool = False) -> list[Slice]:
        out = []
        for r in rows:
            key, count, money = (r[0], r[-2], r[-1])
            out.append(
                Slice(
                    key=str(key) if key is not None else "none",
                    accounts=int(count),
                    arr=float(money),
                    pct_accounts=_pct(count, n),
                    pct_arr=_pct(money, arr),
                    level=str(r[1]) if with_level else None,
                )
            )
        return out

    # Tiers from the most human touch down, as the CLI summary prints them.
    tiers = sorted(
        _slices(session, as_of, book, Snapshot.tier, Snapshot.tier_level),
        key=lambda r: (-_level_rank(r[1]), str(r[0])),
    )
    levels = sorted(
        _slices(session, as_of, book, Snapshot.touch_level), key=lambda r: -_level_rank(r[0])
    )
    stages = sorted(_slices(session, as_of, book, Snapshot.lifecycle_stage), key=lambda r: -r[1])
    order = {g: i for i, g in enumerate(grade_order or [])}
    grades = sorted(
        _slices(session, as_of, book, Snapshot.health_grade),
        key=lambda r: (r[0] is None, order.get(r[0], len(order)), str(r[0])),
    )
    return Portfolio(
        as_of=as_of,
        book=book,
        accounts=n,
        arr=arr,
        mean_health=round(float(totals[2]), 1) if totals[2] is not None else None,
        at_risk_accounts=int(totals[3] or 0),
        at_risk_arr=float(totals[4] or 0.0),
        expected_arr_at_risk=float(totals[6]) if totals[6] is not None else None,
        unscored_accounts=int(totals[5] or 0),
        by_tier=slices(tiers, with_level=True),
        by_level=slices(levels),
        by_stage=slices(stages),
        by_grade=slices(grades),
        health_histogram=_histogram(session, as_of, book),
        trend=_trend(session, dates, book),
    )


def _histogram(session: Session, as_of: dt.date, book: str | None) -> list[HistogramBin]:
    # Bin in a subquery, group outside: PostgreSQL does not see two CASEs with their own
    # bound parameters as the same expression, so GROUP BY <the CASE> would be refused.
    binned = _scoped(
        select(_bucket().label("bin")).where(
            Snapshot.as_of == as_of, Snapshot.health_score.is_not(None)
        ),
        book,
    ).subquery()
    q = select(binned.c.bin, func.count()).group_by(binned.c.bin)
    counts = {int(b): int(c) for b, c in session.execute(q).all()}
    return [
        HistogramBin(low=i * BIN_WIDTH, high=(i + 1) * BIN_WIDTH, accounts=counts.get(i, 0))
        for i in range(BINS)
    ]


def _bucket() -> Any:
    """The histogram bin of a health score, as a CASE (portable: no floor()/least())."""
    whens = [(Snapshot.health_score < (i + 1) * BIN_WIDTH, i) for i in range(BINS - 1)]
    return case(*whens, else_=BINS - 1)


def _trend(session: Session, dates: list[dt.date], book: str | None) -> list[TrendPoint]:
    """One point per completed run date: two grouped queries over all dates at once."""
    if not dates:
        return []
    where = Snapshot.as_of.in_(dates)
    totals = session.execute(
        _scoped(
            select(
                Snapshot.as_of,
                func.count(),
                func.coalesce(func.sum(Snapshot.arr), 0.0),
                func.avg(Snapshot.health_score),
                func.sum(case((Snapshot.lifecycle_stage == AT_RISK, 1), else_=0)),
                func.sum(case((Snapshot.lifecycle_stage == AT_RISK, Snapshot.arr), else_=0.0)),
            )
            .where(where)
            .group_by(Snapshot.as_of),
            book,
        )
    ).all()
    per_level: dict[dt.date, dict[str, int]] = {}
    for day, level, count in session.execute(
        _scoped(
            select(Snapshot.as_of, Snapshot.touch_level, func.count())
            .where(where)
            .group_by(Snapshot.as_of, Snapshot.touch_level),
            book,
        )
    ).all():
        per_level.setdefault(day, {})[str(level)] = int(count)
    return [
        TrendPoint(
            as_of=day,
            accounts=int(count),
            arr=float(money or 0.0),
            mean_health=round(float(mean), 1) if mean is not None else None,
            at_risk_accounts=int(risk or 0),
            at_risk_arr=float(risk_arr or 0.0),
            by_level={lv: per_level.get(day, {}).get(lv, 0) for lv in reversed(LEVELS)},
        )
        for day, count, money, mean, risk, risk_arr in sorted(totals, key=lambda r: r[0])
    ]

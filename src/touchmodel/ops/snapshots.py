"""Account snapshots: each account's decision per as-of date, the history behind trends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Date, func, select
from sqlalchemy.orm import Session

from touchmodel.state.tables import Snapshot

# Columns compared to decide whether a re-run changed a snapshot (run_id is not one).
VALUE_COLUMNS: tuple[str, ...] = (
    "model_hash", "name", "arr", "contract_start", "renewal_date", "tier", "tier_level",
    "lifecycle_stage", "touch_level", "level_reasons", "health_score", "health_grade",
    "health_top_factor", "triggers", "routes", "churn_probability", "arr_at_risk",
)  # fmt: skip


def write_snapshots(
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    *,
    as_of: dt.date,
    run_id: int,
    model_hash: str,
) -> int:
    """Insert or update the snapshots of ``rows`` for ``as_of``; returns how many changed.

    A row equal to the stored one is left alone (its run_id included), so
    re-running a day changes nothing.
    """
    if not rows:
        return 0
    ids = [r["account_id"] for r in rows]
    stored = {
        s.account_id: s
        for s in session.scalars(
            select(Snapshot).where(Snapshot.as_of == as_of, Snapshot.account_id.in_(ids))
        )
    }
    changed = 0
    for row in rows:
        values = {c: row.get(c) for c in VALUE_COLUMNS} | {"model_hash": model_hash}
        old = stored.get(row["account_id"])
        if old is None:
            session.add(
                Snapshot(account_id=row["account_id"], as_of=as_of, run_id=run_id, **values)
            )
            changed += 1
        elif any(getattr(old, c) != v for c, v in values.items()):
            for c, v in values.items():
                setattr(old, c, v)
            old.run_id = run_id
            changed += 1
    return changed


def previous_tiers(session: Session, before: dt.date) -> dict[str, str]:
    """Each account's tier on its latest snapshot strictly before ``before``.

    Strictly before, so that a re-run of a day (or the rest of a killed run)
    compares with the same past as the first attempt did.
    """
    latest = (
        select(Snapshot.account_id, func.max(Snapshot.as_of).label("as_of"))
        .where(Snapshot.as_of < before)
        .group_by(Snapshot.account_id)
        .subquery()
    )
    q = select(Snapshot.account_id, Snapshot.tier).join(
        latest, (Snapshot.account_id == latest.c.account_id) & (Snapshot.as_of == latest.c.as_of)
    )
    return {a: t for a, t in session.execute(q).all()}


def history(session: Session, account_id: str) -> list[Snapshot]:
    """Every snapshot of one account, oldest first."""
    return list(
        session.scalars(
            select(Snapshot).where(Snapshot.account_id == account_id).order_by(Snapshot.as_of)
        )
    )


def tier_migrations(
    session: Session, *, since: dt.date | None = None, account_id: str | None = None
) -> list[dict[str, Any]]:
    """Every change of tier between an account's consecutive snapshots, oldest first.

    One window query (LAG over each account's snapshots), on SQLite and PostgreSQL alike.
    """
    prev_tier = func.lag(Snapshot.tier).over(
        partition_by=Snapshot.account_id, order_by=Snapshot.as_of
    )
    prev_level = func.lag(Snapshot.touch_level).over(
        partition_by=Snapshot.account_id, order_by=Snapshot.as_of
    )
    prev_date = func.lag(Snapshot.as_of, type_=Date).over(
        partition_by=Snapshot.account_id, order_by=Snapshot.as_of
    )
    q = select(
        Snapshot.account_id,
        Snapshot.as_of,
        Snapshot.tier,
        Snapshot.touch_level,
        Snapshot.arr,
        prev_tier.label("from_tier"),
        prev_level.label("from_level"),
        prev_date.label("from_date"),
    )
    if account_id is not None:
        q = q.where(Snapshot.account_id == account_id)
    sub = q.subquery()
    moved = select(sub).where(sub.c.from_tier.is_not(None), sub.c.from_tier != sub.c.tier)
    if since is not None:
        moved = moved.where(sub.c.as_of >= since)
    moved = moved.order_by(sub.c.as_of, sub.c.account_id)
    return [
        {
            "account_id": r.account_id,
            "on": r.as_of.isoformat(),
            "from_tier": r.from_tier,
            "to_tier": r.tier,
            "from_level": r.from_level,
            "to_level": r.touch_level,
            "previous_run": r.from_date.isoformat() if r.from_date else None,
            "arr": r.arr,
        }
        for r in session.execute(moved)
    ]

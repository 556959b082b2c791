"""Account snapshots: each account's decision per as-of date, the history behind trends."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from touchmodel.state.tables import Snapshot

# Columns compared to decide whether a re-run changed a snapshot (run_id is not one).
VALUE_COLUMNS: tuple[str, ...] = (
    "model_hash", "name", "arr", "contract_start", "renewal_date", "tier", "tier_level",
    "lifecycle_stage", "touch_level", "level_reasons", "health_score", "health_grade",
    "health_top_factor", "triggers", "routes",
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

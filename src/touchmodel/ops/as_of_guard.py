"""Checks that keep a mistyped ``--as-of`` from damaging a workspace.

A workspace's run changes its state for good: work items, cooldowns, books,
touchpoints and messages. Two dates are almost certainly mistakes:

* a date far after the newest activity in the data: every "last 30 days"
  window is then empty, so accounts look inactive and at risk, items are
  created for all of them, and their cooldowns hold back the real triggers
  later;
* a date before the workspace's last run: its books and items were planned
  from a later view of the accounts.

Both refuse the run (before it writes anything) unless it is forced.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import ibis.expr.types as ir
from sqlalchemy import select

from touchmodel.errors import TouchmodelError
from touchmodel.state.db import Store
from touchmodel.state.tables import Run

# The timestamp of activity in each table (an invoice's due date may lie ahead: not activity).
ACTIVITY: dict[str, str] = {
    "usage_events": "timestamp",
    "tickets": "opened_at",
    "nps_responses": "responded_at",
    "payments": "paid_at",
}


class AsOfRefused(TouchmodelError):
    """The as-of date looks wrong for this workspace; ``--force`` runs anyway."""


def check_after_last_run(store: Store, as_of: dt.date) -> None:
    """Refuse a date before the workspace's last completed run (the same date re-runs it)."""
    with store.transaction() as s:
        last = s.execute(
            select(Run.id, Run.as_of)
            .where(Run.status == "completed")
            .order_by(Run.as_of.desc(), Run.id.desc())
            .limit(1)
        ).first()
    if last is not None and as_of < last.as_of:
        raise AsOfRefused(
            f"--as-of {as_of}: before the workspace's last run ({last.as_of}, run {last.id}); "
            "its books and work items were planned from a later view of the accounts. Nothing "
            "was changed. To look at a past date without changing the workspace, use "
            "`touchmodel run --no-state` or `--dry-run`; --force runs it anyway"
        )


def _as_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp
        value = value.to_pydatetime()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None  # NaT and the like: no activity


def newest_activity(tables: Mapping[str, ir.Table]) -> tuple[str, dt.date] | None:
    """The newest activity date in the data, and the ``table.column`` it comes from."""
    newest: tuple[str, dt.date] | None = None
    for table, column in ACTIVITY.items():
        t = tables.get(table)
        if t is None or column not in t.columns:
            continue
        day = _as_date(t[column].max().execute())
        if day is not None and (newest is None or day > newest[1]):
            newest = (f"{table}.{column}", day)
    return newest


def check_data_reaches(tables: Mapping[str, ir.Table], as_of: dt.date, max_days: int) -> None:
    """Refuse a date more than ``max_days`` after the newest activity in the data.

    Data without any activity table (accounts only) has nothing to compare with.
    """
    found = newest_activity(tables)
    if found is None:
        return
    where, newest = found
    lag = (as_of - newest).days
    if lag > max_days:
        raise AsOfRefused(
            f"--as-of {as_of}: {lag} days after the newest activity in the data ({where} "
            f"{newest}); the limit is {max_days} days (max_data_lag_days in touchmodel.yaml). "
            "Every recent-activity window would be empty, so accounts would look inactive and "
            "at risk. Nothing was changed. Check the date, or export fresh data; --force runs "
            "it anyway"
        )

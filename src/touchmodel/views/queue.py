"""The work queue and the touchpoint calendar as read models, limited to what a principal sees.

A CSM sees the work items and touchpoints of the accounts in their book, and
those they own (an item follows its owner even when the book moved since).
An admin sees everything. Snooze and close go through
:mod:`touchmodel.ops.workitems` after the same visibility check, so the API and
the dashboard refuse exactly the same things.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import Session

from touchmodel.errors import TouchmodelError
from touchmodel.ops import workitems
from touchmodel.ops.touchpoints import touchpoint_record
from touchmodel.state.tables import Touchpoint, WorkItem
from touchmodel.views.scope import book_accounts

STATUSES = ("open", "snoozed", "closed", "all")
TOUCHPOINT_STATUSES = ("planned", "queued", "sent", "skipped", "cancelled", "all")
# Same order as `touchmodel tasks`: expected ARR kept (highest first, items
# without a value after), then priority, then due date, then id.
_RANK = case((WorkItem.priority == "urgent", 0), (WorkItem.priority == "high", 1), else_=2)
_KEPT = func.coalesce(WorkItem.expected_arr_kept, -1.0).desc()
WORK_ITEM_COLUMNS = (
    "id", "account_id", "trigger", "kind", "status", "priority", "owner", "team", "action",
    "route", "channel", "due", "created_on", "last_seen_on", "snoozed_until", "snooze_reason",
    "closed_on", "close_reason", "why", "expected_arr_kept", "over_capacity",
)  # fmt: skip


class NotFound(TouchmodelError):
    """The thing asked for does not exist (404)."""


class NotYours(TouchmodelError):
    """The thing exists but lies outside the principal's book (403)."""


class Conflict(TouchmodelError):
    """The action does not fit the thing's state, e.g. closing a closed item (409)."""


class Invalid(TouchmodelError):
    """A value the action cannot take, naming the field (422)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def _check_reason(reason: str) -> None:
    # The core refuses a blank reason too; checked here to name the field, not a CLI flag.
    if not reason.strip():
        raise Invalid("reason", "reason: blank -- say why (it is kept in the item's history)")


@dataclass(frozen=True)
class Page:
    """One page of a list, with the total that matched the filters."""

    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class QueueCounts:
    """What a queue holds, for the headline of the queue page."""

    open: int = 0
    snoozed: int = 0
    urgent: int = 0
    overdue: int = 0
    by_priority: dict[str, int] = field(default_factory=dict)


def _visible_items(csm: str | None) -> ColumnElement[bool] | None:
    if csm is None:
        return None
    return or_(WorkItem.account_id.in_(book_accounts(csm)), WorkItem.owner == csm)


def _visible_touchpoints(csm: str | None) -> ColumnElement[bool] | None:
    if csm is None:
        return None
    return or_(Touchpoint.account_id.in_(book_accounts(csm)), Touchpoint.owner == csm)


def _item_query(
    csm: str | None,
    *,
    status: str | None,
    owner: str | None,
    account_id: str | None,
    trigger: str | None,
    due_from: dt.date | None,
    due_to: dt.date | None,
) -> Select[Any]:
    return _filtered(
        select(WorkItem),
        _visible_items(csm),
        [
            (WorkItem.status, None if status == "all" else status),
            (WorkItem.owner, owner),
            (WorkItem.account_id, account_id),
            (WorkItem.trigger, trigger),
        ],
        WorkItem.due,
        due_from,
        due_to,
    )


def _filtered(
    q: Select[Any],
    seen: ColumnElement[bool] | None,
    equal: list[tuple[Any, Any]],
    due: Any,
    due_from: dt.date | None,
    due_to: dt.date | None,
) -> Select[Any]:
    """``q`` limited to what is visible, each given value, and the due-date range."""
    if seen is not None:
        q = q.where(seen)
    for column, value in equal:
        if value:
            q = q.where(column == value)
    if due_from:
        q = q.where(due >= due_from)
    if due_to:
        q = q.where(due <= due_to)
    return q


def work_items(
    session: Session,
    csm: str | None,
    *,
    status: str | None = "open",
    owner: str | None = None,
    account_id: str | None = None,
    trigger: str | None = None,
    due_from: dt.date | None = None,
    due_to: dt.date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Work items visible to ``csm`` (None: all), most ARR kept then most urgent first, one page."""
    q = _item_query(
        csm,
        status=status,
        owner=owner,
        account_id=account_id,
        trigger=trigger,
        due_from=due_from,
        due_to=due_to,
    )
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(
        q.order_by(_KEPT, _RANK, WorkItem.due, WorkItem.id).limit(limit).offset(offset)
    ).all()
    return Page([workitems.item_record(i) for i in rows], total, limit, offset)


def todays_work(
    session: Session,
    csm: str | None,
    *,
    owner: str | None,
    today: dt.date,
    limit: int = 200,
    account_id: str | None = None,
) -> Page:
    """Open items of ``owner`` (a CSM's own queue): most ARR kept first, then urgent or overdue.

    ``owner`` None with an admin is the whole open queue; ``account_id`` limits
    it to one account (the account page links there).
    """
    overdue_or_urgent = case((or_(WorkItem.priority == "urgent", WorkItem.due < today), 0), else_=1)
    q = _item_query(
        csm,
        status="open",
        owner=owner,
        account_id=account_id,
        trigger=None,
        due_from=None,
        due_to=None,
    )
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(
        q.order_by(_KEPT, overdue_or_urgent, _RANK, WorkItem.due, WorkItem.id).limit(limit)
    ).all()
    out = []
    for item in rows:
        record = workitems.item_record(item)
        record["overdue"] = item.due < today
        out.append(record)
    return Page(out, total, limit, 0)


def queue_counts(
    session: Session, csm: str | None, *, owner: str | None, today: dt.date
) -> QueueCounts:
    """Open, snoozed, urgent and overdue counts of a queue."""
    q = _item_query(
        csm,
        status="all",
        owner=owner,
        account_id=None,
        trigger=None,
        due_from=None,
        due_to=None,
    ).subquery()
    rows = session.execute(
        select(q.c.status, q.c.priority, (q.c.due < today).label("late"), func.count())
        .where(q.c.status.in_(workitems.OPEN_STATES))
        .group_by(q.c.status, q.c.priority, "late")
    ).all()
    counts: dict[str, int] = {"open": 0, "snoozed": 0, "urgent": 0, "overdue": 0}
    by_priority: dict[str, int] = {}
    for status, priority, late, n in rows:
        counts[status] += n
        if status == "open":
            by_priority[priority] = by_priority.get(priority, 0) + n
            counts["urgent"] += n if priority == "urgent" else 0
            counts["overdue"] += n if late else 0
    return QueueCounts(by_priority=by_priority, **counts)


def queue_owners(session: Session, csm: str | None) -> list[str]:
    """Owners that have open items (the admin's owner filter on the queue page)."""
    q = select(WorkItem.owner).where(WorkItem.status == "open").distinct()
    seen = _visible_items(csm)
    if seen is not None:
        q = q.where(seen)
    return sorted(session.scalars(q).all())


def _visible_item(session: Session, item_id: int, csm: str | None) -> WorkItem:
    item = session.get(WorkItem, item_id)
    if item is None:
        raise NotFound(f"work item {item_id}: not found")
    if csm is not None:
        seen = _visible_items(csm)
        assert seen is not None
        ok = session.scalar(select(func.count()).where(WorkItem.id == item_id, seen))
        if not ok:
            raise NotYours(f"work item {item_id}: not in {csm}'s book")
    return item


def work_item(session: Session, item_id: int, csm: str | None) -> dict[str, Any]:
    """One work item visible to ``csm``, with its history (oldest event first)."""
    item = _visible_item(session, item_id, csm)
    record = workitems.item_record(item)
    record["history"] = workitems.item_history(session, item_id)
    return record


def snooze_item(
    session: Session,
    item_id: int,
    csm: str | None,
    *,
    until: dt.date,
    reason: str,
    actor: str,
    today: dt.date,
) -> dict[str, Any]:
    """Snooze an item the principal may change; the core checks the date and reason."""
    item = _visible_item(session, item_id, csm)
    if item.status == "closed":
        raise Conflict(f"work item {item_id}: closed; reopen it before snoozing")
    if until <= today:
        raise Invalid("until", f"until: {until} -- expected a date after today ({today})")
    _check_reason(reason)
    try:
        workitems.snooze(session, item_id, until=until, reason=reason, actor=actor, today=today)
    except workitems.WorkItemConflict as exc:  # another request changed it meanwhile
        raise Conflict(str(exc)) from None
    return work_item(session, item_id, csm)


def close_item(
    session: Session, item_id: int, csm: str | None, *, reason: str, actor: str, today: dt.date
) -> dict[str, Any]:
    """Close an item the principal may change, with a reason."""
    item = _visible_item(session, item_id, csm)
    if item.status == "closed":
        raise Conflict(f"work item {item_id}: already closed ({item.close_reason})")
    _check_reason(reason)
    try:
        workitems.close(session, item_id, reason=reason, actor=actor, today=today)
    except workitems.WorkItemConflict as exc:
        raise Conflict(str(exc)) from None
    return work_item(session, item_id, csm)


def work_items_csv_rows(page: Page) -> list[list[Any]]:
    """The rows of a work-item CSV export, in :data:`WORK_ITEM_COLUMNS` order."""
    return [[r[c] for c in WORK_ITEM_COLUMNS] for r in page.items]


def touchpoints(
    session: Session,
    csm: str | None,
    *,
    status: str | None = "planned",
    account_id: str | None = None,
    owner: str | None = None,
    channel: str | None = None,
    due_from: dt.date | None = None,
    due_to: dt.date | None = None,
    limit: int = 100,
    offset: int = 0,
) -> Page:
    """Touchpoints visible to ``csm`` (None: all), by due date, one page of them."""
    q = _filtered(
        select(Touchpoint),
        _visible_touchpoints(csm),
        [
            (Touchpoint.status, None if status == "all" else status),
            (Touchpoint.account_id, account_id),
            (Touchpoint.owner, owner),
            (Touchpoint.channel, channel),
        ],
        Touchpoint.due,
        due_from,
        due_to,
    )
    total = session.scalar(select(func.count()).select_from(q.subquery())) or 0
    rows = session.scalars(
        q.order_by(Touchpoint.due, Touchpoint.account_id, Touchpoint.key)
        .limit(limit)
        .offset(offset)
    ).all()
    return Page([touchpoint_record(t) for t in rows], total, limit, offset)

"""Work items (like CTAs): created from fired triggers and tier migrations, kept once.

The life of an item:

* **created** when its trigger fires for an account and no item with the same
  (account, trigger, reason) is open or snoozed, and the trigger's cooldown
  since the last such item was closed has passed. The reason of a trigger item
  is its route (an expansion that moves from inside sales to an AE is new work).
* **snoozed** by a user until a date, with a reason: the rule stops firing for
  that account until then; on that date it wakes (open again) if the condition
  still holds, else it is auto-closed.
* **auto-closed** by a run when its condition no longer holds (or the account
  is no longer a customer), with the reason.
* **closed** / **reopened** by a user, with a reason.

Every change is also a row of ``work_item_events``, so the queue can say why.

A user's change is a compare-and-set: the item is updated only if it is still
in the state the action was checked against (``UPDATE .. WHERE status = ..``,
row count checked), so of two people closing and snoozing the same item at
once exactly one wins and the other gets :class:`WorkItemConflict`, on SQLite
and PostgreSQL alike.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from touchmodel.errors import TouchmodelError
from touchmodel.model.schema import Route, TouchModel
from touchmodel.ops.books import MigrationTask
from touchmodel.state.tables import WorkItem, WorkItemEvent

# The route team whose work goes to the account's own CSM when it has one.
CSM_TEAM = "csm"
OPEN_STATES = ("open", "snoozed")
# Who closed an item when its account had no decision any more (no cooldown after it).
GONE = "auto:gone"


class WorkItemError(TouchmodelError):
    """A user action on a work item that cannot be done (unknown id, wrong state)."""


class WorkItemConflict(WorkItemError):
    """Another action changed the item between reading and writing it (a lost race)."""


# What a user action compares before it writes: the state it was checked against.
_COMPARED = ("status", "snoozed_until", "snooze_reason", "closed_on", "open_key")


def _compare_and_set(session: Session, item: WorkItem, **values: Any) -> None:
    """Write ``values`` to ``item`` only if its row is still as ``item`` was read.

    One conditional UPDATE: on PostgreSQL a concurrent writer's row lock makes it
    wait, then re-check the condition on the committed row; on SQLite the write
    lock serializes it. A row count of 0 means someone else won.
    """
    current = {name: getattr(item, name) for name in _COMPARED}
    same = [
        getattr(WorkItem, name).is_(None) if value is None else getattr(WorkItem, name) == value
        for name, value in current.items()
    ]
    result = session.execute(
        update(WorkItem)
        .where(WorkItem.id == item.id, *same)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        session.expire(item)
        raise WorkItemConflict(
            f"work item {item.id}: changed by someone else meanwhile (now {item.status}); "
            "nothing was done -- look at it again and retry"
        )
    for name, value in values.items():
        set_committed_value(item, name, value)


def open_key(account_id: str, trigger: str, reason_key: str) -> str:
    """The dedupe key of an open or snoozed item."""
    return f"{account_id}|{trigger}|{reason_key}"


@dataclass(frozen=True)
class Fired:
    """One trigger that fired for one account, with the context that explains it."""

    account_id: str
    trigger: str
    route: str
    context: str  # tier, level, health: why this account, in one line


@dataclass
class SyncResult:
    """What one sync did; every list holds the items touched (for notifications)."""

    created: list[WorkItem] = field(default_factory=list)
    woken: list[WorkItem] = field(default_factory=list)
    auto_closed: list[WorkItem] = field(default_factory=list)
    cooled_down: int = 0
    snoozed_skipped: int = 0

    def counts(self) -> dict[str, int]:
        """Counts for the run record."""
        return {
            "work_items_created": len(self.created),
            "work_items_woken": len(self.woken),
            "work_items_auto_closed": len(self.auto_closed),
            "work_items_in_cooldown": self.cooled_down,
            "work_items_snoozed": self.snoozed_skipped,
        }


def _priority(trigger: str, route: Route) -> str:
    # docs/touch-model.md: risk goes to customer success at once; every day of delay costs.
    if trigger.startswith("risk."):
        return "urgent"
    return "high" if route.sla_days == 0 else "normal"


def _event(
    session: Session, item: WorkItem, on: dt.date, action: str, reason: str, actor: str
) -> None:
    session.add(
        WorkItemEvent(work_item_id=item.id, on=on, action=action, reason=reason, actor=actor)
    )


def sync_trigger_items(
    session: Session,
    model: TouchModel,
    *,
    as_of: dt.date,
    account_ids: Iterable[str],
    fired: Iterable[Fired],
    owners: Mapping[str, str],
    run_id: int | None,
    gone_reason: str | None = None,
) -> SyncResult:
    """Bring the trigger items of ``account_ids`` in line with what fired on ``as_of``.

    ``account_ids``: the accounts this call is responsible for (a chunk of the
    run, or accounts without a decision); items of other accounts are not
    touched. ``owners``: account -> assigned CSM. ``gone_reason``: set when the
    accounts have no decision at all (e.g. churned), used as the close reason.
    Calling it again with the same inputs changes nothing.
    """
    ids = list(account_ids)
    result = SyncResult()
    if not ids:
        return result
    triggers = {t.id: t for t in model.triggers}
    items = session.scalars(
        select(WorkItem).where(
            WorkItem.account_id.in_(ids),
            WorkItem.kind == "trigger",
            WorkItem.status.in_(OPEN_STATES),
        )
    ).all()
    existing = {item.open_key or "": item for item in items}
    # The last close per (account, trigger), for the cooldown.
    last_closed = dict(
        session.execute(
            select(WorkItem.account_id + "|" + WorkItem.trigger, func.max(WorkItem.closed_on))
            .where(
                WorkItem.account_id.in_(ids),
                WorkItem.kind == "trigger",
                WorkItem.status == "closed",
                # An account that comes back is news: leaving does not start a cooldown.
                WorkItem.closed_by != GONE,
            )
            .group_by(WorkItem.account_id, WorkItem.trigger)
        ).all()
    )
    # A snooze silences the trigger for the account, whatever route it now takes.
    silenced = {
        (i.account_id, i.trigger)
        for i in items
        if i.status == "snoozed" and i.snoozed_until is not None and i.snoozed_until > as_of
    }
    holding: set[str] = set()
    for f in fired:
        key = open_key(f.account_id, f.trigger, f.route)
        holding.add(key)
        item = existing.get(key)
        if item is None and (f.account_id, f.trigger) in silenced:
            result.snoozed_skipped += 1
            continue
        if item is not None:
            if item.status == "snoozed":
                if item.snoozed_until is not None and item.snoozed_until > as_of:
                    result.snoozed_skipped += 1
                    continue
                item.status = "open"
                _event(
                    session,
                    item,
                    as_of,
                    "woke",
                    f"snooze ended {item.snoozed_until}; still holds",
                    "touchmodel",
                )
                item.snoozed_until = None
                result.woken.append(item)
            item.last_seen_on = max(item.last_seen_on, as_of)
            _follow_book(session, item, owners, as_of)
            continue
        trig = triggers[f.trigger]
        closed_on = last_closed.get(f"{f.account_id}|{f.trigger}")
        # At least a day: a re-run of the day an item was closed must not recreate it.
        cooldown = dt.timedelta(days=max(trig.cooldown_days, 1))
        if closed_on is not None and as_of < closed_on + cooldown:
            result.cooled_down += 1
            continue
        route = model.routes[f.route]
        assert isinstance(route, Route)  # switch routes are resolved by the engine
        owner = owners.get(f.account_id) if route.team == CSM_TEAM else None
        item = _create(
            session,
            as_of=as_of,
            run_id=run_id,
            account_id=f.account_id,
            trigger=f.trigger,
            reason_key=f.route,
            kind="trigger",
            open_key=key,
            priority=_priority(f.trigger, route),
            team=route.team,
            owner=owner or route.team,
            action=route.action,
            route=f.route,
            channel=route.channel,
            due=as_of + dt.timedelta(days=route.sla_days),
            explanation=f"{trig.description or trig.id}. {f.context}",
        )
        result.created.append(item)
    for key, item in existing.items():
        if key in holding:
            continue
        snoozing = item.status == "snoozed" and (item.snoozed_until or as_of) > as_of
        if gone_reason is None and (snoozing or item.keep_open):
            # A snooze holds the item as it is until its date; a user's reopen until a
            # user closes it. Neither outlives the account.
            continue
        trig_obj = triggers.get(item.trigger)
        why = gone_reason or (
            f"condition no longer holds on {as_of}: {trig_obj.when if trig_obj else item.trigger}"
        )
        _close(session, item, as_of, why, GONE if gone_reason else "auto")
        result.auto_closed.append(item)
    return result


def sync_migration_items(
    session: Session, *, as_of: dt.date, gone: Iterable[str], gone_reason: str
) -> list[WorkItem]:
    """Wake migration items whose snooze ended; close those of accounts that are gone.

    Migration items have no condition to re-check, so a snooze simply ends.
    Returns the items closed.
    """
    for item in session.scalars(
        select(WorkItem).where(
            WorkItem.kind == "migration",
            WorkItem.status == "snoozed",
            WorkItem.snoozed_until <= as_of,
        )
    ):
        _event(session, item, as_of, "woke", f"snooze ended {item.snoozed_until}", "touchmodel")
        item.status, item.snoozed_until = "open", None
    closed = []
    ids = list(gone)
    if ids:
        for item in session.scalars(
            select(WorkItem).where(
                WorkItem.kind == "migration",
                WorkItem.account_id.in_(ids),
                WorkItem.status.in_(OPEN_STATES),
            )
        ):
            _close(session, item, as_of, gone_reason, GONE)
            closed.append(item)
    return closed


def _follow_book(session: Session, item: WorkItem, owners: Mapping[str, str], on: dt.date) -> None:
    """A CSM item follows its account to a new book (rebalance, migration)."""
    csm = owners.get(item.account_id)
    if item.team == CSM_TEAM and csm is not None and item.owner != csm:
        _event(
            session, item, on, "reassigned", f"book moved from {item.owner} to {csm}", "touchmodel"
        )
        item.owner = csm


def reassign_open_items(
    session: Session, account_id: str, *, to_csm: str, on: dt.date, actor: str
) -> int:
    """Give an account's open and snoozed CSM items to its new CSM (after a book move)."""
    moved = 0
    for item in session.scalars(
        select(WorkItem).where(
            WorkItem.account_id == account_id,
            WorkItem.team == CSM_TEAM,
            WorkItem.kind == "trigger",
            WorkItem.status.in_(OPEN_STATES),
        )
    ):
        if item.owner != to_csm:
            _event(
                session, item, on, "reassigned", f"book moved from {item.owner} to {to_csm}", actor
            )
            item.owner = to_csm
            moved += 1
    return moved


def add_migration_items(
    session: Session, tasks: Iterable[MigrationTask], *, as_of: dt.date, run_id: int | None
) -> list[WorkItem]:
    """Create a work item per migration task, once per (account, rule, from->to)."""
    created: list[WorkItem] = []
    for t in tasks:
        reason_key = f"{t.from_tier}->{t.to_tier}"
        key = open_key(t.account_id, f"migration.{t.rule_id}", reason_key)
        if session.scalar(select(WorkItem.id).where(WorkItem.open_key == key)) is not None:
            continue
        already = session.scalar(
            select(WorkItem.id).where(
                WorkItem.account_id == t.account_id,
                WorkItem.trigger == f"migration.{t.rule_id}",
                WorkItem.reason_key == reason_key,
                WorkItem.created_on == as_of,
            )
        )
        if already is not None:  # done and closed the same day: a re-run must not recreate it
            continue
        item = _create(
            session,
            as_of=as_of,
            run_id=run_id,
            account_id=t.account_id,
            trigger=f"migration.{t.rule_id}",
            reason_key=reason_key,
            kind="migration",
            open_key=key,
            priority="high",
            team=t.team,
            owner=t.owner or t.team,
            action=t.task,
            route=t.team,
            channel=None,
            due=as_of + dt.timedelta(days=t.sla_days),
            explanation=f"Tier changed {t.from_tier} -> {t.to_tier} (rule {t.rule_id}).",
        )
        created.append(item)
    return created


def _create(session: Session, *, as_of: dt.date, run_id: int | None, **fields: Any) -> WorkItem:
    """Add an open item created on ``as_of``, with its first event; flushed, so it has an id."""
    item = WorkItem(
        status="open", created_on=as_of, created_run_id=run_id, last_seen_on=as_of, **fields
    )
    session.add(item)
    session.flush()
    _event(session, item, as_of, "created", item.explanation, "touchmodel")
    return item


def _closed_values(on: dt.date, reason: str, actor: str) -> dict[str, Any]:
    """The columns of an item closed on ``on``."""
    return {
        "status": "closed",
        "open_key": None,
        "keep_open": False,
        "closed_on": on,
        "close_reason": reason,
        "closed_by": actor,
        "snoozed_until": None,
    }


def _close(session: Session, item: WorkItem, on: dt.date, reason: str, actor: str) -> None:
    for name, value in _closed_values(on, reason, actor).items():
        setattr(item, name, value)
    _event(
        session, item, on, "auto_closed" if actor.startswith("auto") else "closed", reason, actor
    )


def get_item(session: Session, item_id: int, today: dt.date | None = None) -> WorkItem:
    item = session.get(WorkItem, item_id)
    if item is None:
        raise WorkItemError(f"work item {item_id}: not found")
    if today is not None and today < item.created_on:
        raise WorkItemError(
            f"work item {item_id}: created {item.created_on}, so nothing can happen to it on "
            f"{today} -- pass --on with a later date"
        )
    return item


def snooze(
    session: Session, item_id: int, *, until: dt.date, reason: str, actor: str, today: dt.date
) -> WorkItem:
    """Snooze an open item until a date: its rule stops firing for the account until then."""
    item = get_item(session, item_id, today)
    if item.status == "closed":
        raise WorkItemError(f"work item {item_id}: closed; reopen it before snoozing")
    if until <= today:
        raise WorkItemError(f"work item {item_id}: --until {until} must be after {today}")
    if not reason.strip():
        raise WorkItemError(f"work item {item_id}: a snooze needs a --reason")
    if item.status == "snoozed" and (item.snoozed_until, item.snooze_reason) == (until, reason):
        # Nothing would change: like closing a closed item, so that of the same
        # snooze sent twice at once one wins, and the history says it once.
        raise WorkItemConflict(f"work item {item_id}: already snoozed until {until} ({reason})")
    _compare_and_set(session, item, status="snoozed", snoozed_until=until, snooze_reason=reason)
    _event(session, item, today, "snoozed", f"until {until}: {reason}", actor)
    return item


def close(session: Session, item_id: int, *, reason: str, actor: str, today: dt.date) -> WorkItem:
    """Close an item by hand, with a reason (the trigger's cooldown starts today)."""
    item = get_item(session, item_id, today)
    if item.status == "closed":
        raise WorkItemError(f"work item {item_id}: already closed ({item.close_reason})")
    if not reason.strip():
        raise WorkItemError(f"work item {item_id}: closing needs a --reason")
    _compare_and_set(session, item, **_closed_values(today, reason, actor))
    _event(session, item, today, "closed", reason, actor)
    return item


def reopen(session: Session, item_id: int, *, reason: str, actor: str, today: dt.date) -> WorkItem:
    """Reopen a closed item, unless another open item already has its key.

    A reopened item stays open until a user closes it (or its account leaves):
    the user has said the work is not done, whatever the rule now says.
    """
    item = get_item(session, item_id, today)
    if item.status != "closed":
        raise WorkItemError(f"work item {item_id}: is {item.status}, not closed")
    key = open_key(item.account_id, item.trigger, item.reason_key)
    other = session.scalar(
        select(WorkItem.id).where(WorkItem.open_key == key, WorkItem.id != item_id)
    )
    if other is not None:
        raise WorkItemError(
            f"work item {item_id}: item {other} is already open for the same reason"
        )
    _compare_and_set(
        session,
        item,
        status="open",
        open_key=key,
        keep_open=True,
        closed_on=None,
        close_reason=None,
        closed_by=None,
    )
    _event(session, item, today, "reopened", reason, actor)
    return item


def list_items(
    session: Session,
    *,
    status: str | None = "open",
    owner: str | None = None,
    account_id: str | None = None,
    trigger: str | None = None,
    limit: int | None = None,
) -> list[WorkItem]:
    """Items for a queue: most expected ARR kept first, then most urgent (priority, due, id).

    ``status``: open, snoozed, closed, or None/"all" for every state; ``owner``
    matches ignoring case.
    """
    rank = {"urgent": 0, "high": 1, "normal": 2}
    q = select(WorkItem)
    if status and status != "all":
        q = q.where(WorkItem.status == status)
    if owner:
        # People type names as they say them ("dana reyes"): owners match ignoring case.
        q = q.where(func.lower(WorkItem.owner) == owner.lower())
    if account_id:
        q = q.where(WorkItem.account_id == account_id)
    if trigger:
        q = q.where(WorkItem.trigger == trigger)
    items = list(session.scalars(q).all())
    items.sort(key=lambda i: (-_kept(i), rank.get(i.priority, 9), i.due, i.id))
    return items[:limit] if limit else items


def _kept(item: WorkItem) -> float:
    # Items without a value (not at risk, or not valued yet) come after every valued one.
    return -1.0 if item.expected_arr_kept is None else item.expected_arr_kept


def item_history(session: Session, item_id: int) -> list[dict[str, Any]]:
    """An item's events, oldest first."""
    events = session.scalars(
        select(WorkItemEvent)
        .where(WorkItemEvent.work_item_id == item_id)
        .order_by(WorkItemEvent.id)
    )
    return [
        {"on": e.on.isoformat(), "action": e.action, "reason": e.reason, "by": e.actor}
        for e in events
    ]


def item_record(item: WorkItem) -> dict[str, Any]:
    """A work item as JSON-able data (``touchmodel tasks --json`` and the API)."""
    return {
        "id": item.id,
        "account_id": item.account_id,
        "trigger": item.trigger,
        "kind": item.kind,
        "status": item.status,
        "priority": item.priority,
        "owner": item.owner,
        "team": item.team,
        "action": item.action,
        "route": item.route,
        "channel": item.channel,
        "due": item.due.isoformat(),
        "created_on": item.created_on.isoformat(),
        "last_seen_on": item.last_seen_on.isoformat(),
        "snoozed_until": item.snoozed_until.isoformat() if item.snoozed_until else None,
        "snooze_reason": item.snooze_reason,
        "closed_on": item.closed_on.isoformat() if item.closed_on else None,
        "close_reason": item.close_reason,
        "why": item.explanation,
        "expected_arr_kept": item.expected_arr_kept,
        "over_capacity": bool(item.over_capacity),
    }

"""Work-item notifications: a webhook event and a Slack line per new or closed item."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy.orm import Session

from touchmodel.ops.outbox import enqueue
from touchmodel.ops.workitems import item_record
from touchmodel.state.tables import WorkItem


def notification_key(item: WorkItem, event: str, channel: str) -> str:
    """The idempotency key of one notification, from what the item *is*, not its row id.

    Row ids are not stable across a crash (PostgreSQL sequences do not roll
    back), so a resumed run would otherwise give the same news a new key. The
    close date is in it: an item reopened and closed again is news again.
    """
    key = (
        f"work_item:{item.account_id}|{item.trigger}|{item.reason_key}@{item.created_on}"
        f":{event}:{item.closed_on or ''}:{channel}"
    )
    if len(key) <= 300:
        return key
    return f"work_item:{hashlib.sha256(key.encode()).hexdigest()}:{event}:{channel}"


def notify_items(
    session: Session, items: Iterable[WorkItem], *, event: str, channels: Iterable[str]
) -> int:
    """Queue ``work_item.<event>`` for each item on the configured webhook and Slack channels.

    The idempotency key names the item and the event, so a re-run (or the
    rest of a killed run) cannot queue the same notification twice.
    """
    usable = [c for c in ("webhook", "slack") if c in set(channels)]
    queued = 0
    for item in items:
        record = item_record(item)
        for channel in usable:
            payload = {"event": f"work_item.{event}", "work_item": record}
            if channel == "slack":
                verb = "New" if event == "created" else event.replace("_", " ").capitalize()
                payload["text"] = (
                    f"{verb} {item.priority} work item #{item.id} for {item.account_id}: "
                    f"{item.action} (owner {item.owner}, due {item.due}). Why: {item.explanation}"
                    if event == "created"
                    else f"{verb} work item #{item.id} for {item.account_id}: {item.close_reason}"
                )
            message = enqueue(
                session,
                channel=channel,
                topic=f"work_item.{event}",
                idempotency_key=notification_key(item, event, channel),
                payload=payload,
                work_item_id=item.id,
            )
            queued += message is not None
    return queued

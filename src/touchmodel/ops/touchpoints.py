"""Touchpoints in the state: planned from cadences, re-planned, delivered once.

The planner (:mod:`touchmodel.ops.cadences`) says what is due in the window;
this module keeps the stored plan in line with it, per account:

* a planned occurrence not stored yet is stored (keyed by account and key, so
  a re-run or a resumed run finds it instead of adding it twice);
* a stored ``planned`` occurrence in the window that the plan no longer has
  (the tier or touch level changed) is ``cancelled``, with the reason;
* an automated occurrence that is due is handed to the outbox in the same
  transaction and becomes ``queued``; without an address or a configured
  channel it is ``skipped`` with that reason, never silently dropped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from touchmodel.ops.outbox import enqueue
from touchmodel.state.tables import Touchpoint

# Who signs automated mail for an account without a CSM.
SIGNATURE = "The Customer Success team"
# Automated channels and the outbox channel that delivers them.
DELIVERED_BY = {"email": "email", "in_app": "webhook"}


@dataclass
class TouchpointSync:
    """Counts of what one sync did."""

    planned: int = 0
    cancelled: int = 0
    queued: int = 0
    skipped: int = 0

    def counts(self) -> dict[str, int]:
        """Counts for the run record."""
        return {
            "touchpoints_planned": self.planned,
            "touchpoints_cancelled": self.cancelled,
            "messages_queued": self.queued,
            "touchpoints_skipped": self.skipped,
        }

    def add(self, other: TouchpointSync) -> None:
        """Add another sync's counts to these."""
        self.planned += other.planned
        self.cancelled += other.cancelled
        self.queued += other.queued
        self.skipped += other.skipped


def sync_touchpoints(
    session: Session,
    *,
    as_of: dt.date,
    window_end: dt.date,
    account_ids: Sequence[str],
    plan: Mapping[str, Sequence[Mapping[str, Any]]],
    owners: Mapping[str, str],
    names: Mapping[str, str],
    emails: Mapping[str, str],
    channels: Iterable[str],
) -> TouchpointSync:
    """Store, cancel and deliver the touchpoints of ``account_ids`` for ``as_of``.

    ``plan``: account -> planner rows. ``owners``: account -> assigned CSM
    (CSM touchpoints of an account without one are owned by the ``csm`` team).
    ``emails``: account -> primary contact address. ``channels``: the outbox
    channels configured in the workspace.
    """
    usable = set(channels)
    result = TouchpointSync()
    # Only what a sync can touch: still-planned rows, and anything in the window
    # (a planned occurrence has the same due date as its stored row).
    by_account: dict[str, dict[str, Touchpoint]] = {}
    for t in session.scalars(
        select(Touchpoint).where(
            Touchpoint.account_id.in_(account_ids),
            (Touchpoint.status == "planned") | (Touchpoint.due >= as_of),
        )
    ):
        by_account.setdefault(t.account_id, {})[t.key] = t
    for account in account_ids:
        rows = plan.get(account, ())
        keys = {r["key"] for r in rows}
        stored = by_account.setdefault(account, {})
        for row in rows:
            if row["key"] in stored:
                continue  # the first decision about an occurrence stands
            owner = owners.get(account, "csm") if row["owner_role"] == "csm" else row["owner_role"]
            tp = Touchpoint(
                account_id=account, key=row["key"], sequence=row["sequence"], title=row["title"],
                due=row["due"], channel=row["channel"], automated=row["automated"], owner=owner,
                level=row["level"], template=row["template"], status=row["status"],
                reason=row["reason"] or "", planned_on=as_of,
            )  # fmt: skip
            session.add(tp)
            stored[row["key"]] = tp
            if tp.status == "skipped":
                result.skipped += 1
            else:
                result.planned += 1
        csm = owners.get(account)
        for key, tp in stored.items():
            if tp.status != "planned":
                continue
            if csm is not None and not tp.automated and tp.owner != csm and tp.due >= as_of:
                tp.owner = csm  # a CSM touchpoint follows the account to its new book
            if as_of <= tp.due <= window_end and key not in keys:
                tp.status = "cancelled"
                tp.reason = f"re-planned on {as_of}: no longer in the plan (touch level now {_level(rows, tp.level)})"
                result.cancelled += 1
            elif tp.automated and tp.due <= as_of:
                _deliver(
                    session,
                    tp,
                    names.get(account, account),
                    emails.get(account),
                    usable,
                    result,
                    csm,
                )
    return result


def cancel_planned(
    session: Session, accounts: Sequence[str], *, as_of: dt.date, reason: str
) -> int:
    """Cancel the planned touchpoints of accounts that have no decision any more."""
    if not accounts:
        return 0
    cancelled = 0
    for tp in session.scalars(
        select(Touchpoint).where(
            Touchpoint.account_id.in_(list(accounts)), Touchpoint.status == "planned"
        )
    ):
        tp.status, tp.reason = "cancelled", reason
        cancelled += 1
    return cancelled


def _level(rows: Sequence[Mapping[str, Any]], old: str) -> str:
    levels = {r["level"] for r in rows if r["sequence"].startswith("calendar.")}
    return next(iter(levels)) if len(levels) == 1 else f"not {old}"


def _deliver(
    session: Session,
    tp: Touchpoint,
    account_name: str,
    email: str | None,
    usable: set[str],
    result: TouchpointSync,
    csm: str | None,
) -> None:
    channel = DELIVERED_BY.get(tp.channel)
    if channel is None or channel not in usable:
        tp.status = "skipped"
        tp.reason = (
            f"{tp.channel} delivery is not configured in touchmodel.yaml (delivery.{channel})"
            if channel
            else f"no automated delivery for channel {tp.channel}"
        )
        result.skipped += 1
        return
    if channel == "email" and not email:
        tp.status = "skipped"
        tp.reason = "no contact with an email address for this account"
        result.skipped += 1
        return
    session.flush()  # the touchpoint's id goes into the message
    payload = {
        "account_id": tp.account_id,
        "account_name": account_name,
        "contact_email": email or "",
        "touchpoint": tp.title,
        "key": tp.key,
        "due": tp.due.isoformat(),
        # Automated mail is signed by the account's CSM when it has one.
        "csm": csm or SIGNATURE,
    }
    enqueue(
        session,
        channel=channel,
        topic=f"touchpoint.{tp.channel}",
        idempotency_key=f"touchpoint:{tp.account_id}:{tp.key}",
        payload={**payload, "template": tp.template or "touchpoint"},
        recipient=email or "",
        touchpoint_id=tp.id,
    )
    tp.status = "queued"
    result.queued += 1


def touchpoint_record(t: Touchpoint) -> dict[str, Any]:
    """A touchpoint as JSON-able data."""
    return {
        "id": t.id, "account_id": t.account_id, "key": t.key, "sequence": t.sequence,
        "title": t.title, "due": t.due.isoformat(), "channel": t.channel,
        "automated": t.automated, "owner": t.owner, "level": t.level, "template": t.template,
        "status": t.status, "reason": t.reason, "planned_on": t.planned_on.isoformat(),
    }  # fmt: skip

"""Read model: the ingested messages of one account, newest first, by pages."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from touchmodel.state.tables import Assignment, IngestedMessage, Snapshot

MAX_LIMIT = 500


class BadCursor(ValueError):
    """A ``before`` cursor that this server did not hand out."""


@dataclass
class EventsPage:
    """One page of an account's ingested messages and the cursor of the next."""

    account_id: str
    events: list[dict[str, Any]] = field(default_factory=list)
    next_before: str | None = None


def account_known(session: Session, account_id: str) -> bool:
    """Whether any run decided for the account, it has a book, or messages name it."""
    for query in (
        select(Snapshot.account_id).where(Snapshot.account_id == account_id).limit(1),
        select(Assignment.account_id).where(Assignment.account_id == account_id).limit(1),
        select(IngestedMessage.id).where(IngestedMessage.group_id == account_id).limit(1),
    ):
        if session.execute(query).first() is not None:
            return True
    return False


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def encode_cursor(timestamp: dt.datetime, row_id: int) -> str:
    """An opaque cursor: the sort key (timestamp, id) of the last message of a page."""
    text = f"{_utc(timestamp).isoformat()}|{row_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """The sort key in a cursor from :func:`encode_cursor`; BadCursor otherwise."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, row_id = text.partition("|")
        when, number = _utc(dt.datetime.fromisoformat(stamp)), int(row_id)
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise BadCursor(f"before: {cursor!r} is not a cursor from this API") from exc
    # Row ids are 32-bit on PostgreSQL: a bigger one is no id of ours (and no 500).
    if not 0 <= number <= 2**31 - 1:
        raise BadCursor(f"before: {cursor!r} is not a cursor from this API")
    return when, number


def _event(row: IngestedMessage) -> dict[str, Any]:
    payload = row.payload if isinstance(row.payload, dict) else {}
    body = payload.get("traits") if row.type in ("identify", "group") else payload.get("properties")
    return {
        "type": row.type,
        "event": row.event,
        "userId": row.user_id,
        "anonymousId": row.anonymous_id,
        "groupId": row.group_id,
        "timestamp": _utc(row.timestamp).isoformat(),
        "receivedAt": _utc(row.received_at).isoformat(),
        "messageId": row.message_id,
        "properties" if row.type not in ("identify", "group") else "traits": body or {},
    }


def account_events(
    session: Session, account_id: str, *, limit: int = 100, before: str | None = None
) -> EventsPage:
    """The account's messages (its ``group_id``), newest first, ``limit`` per page.

    Pages are keyed by (timestamp, id), not offsets, so messages arriving
    meanwhile neither repeat nor skip rows on the next page.
    """
    limit = max(1, min(limit, MAX_LIMIT))
    # A track without a groupId belongs to the account its user joined by a group call.
    members = select(IngestedMessage.user_id).where(
        IngestedMessage.type == "group", IngestedMessage.group_id == account_id
    )
    query = select(IngestedMessage).where(
        or_(
            IngestedMessage.group_id == account_id,
            and_(IngestedMessage.group_id.is_(None), IngestedMessage.user_id.in_(members)),
        )
    )
    if before is not None:
        stamp, row_id = decode_cursor(before)
        query = query.where(
            or_(
                IngestedMessage.timestamp < stamp,
                and_(IngestedMessage.timestamp == stamp, IngestedMessage.id < row_id),
            )
        )
    rows = list(
        session.scalars(
            query.order_by(IngestedMessage.timestamp.desc(), IngestedMessage.id.desc()).limit(
                limit + 1
            )
        )
    )
    page = EventsPage(account_id, [_event(r) for r in rows[:limit]])
    if len(rows) > limit:
        last = rows[limit - 1]
        page.next_before = encode_cursor(last.timestamp, last.id)
    return page

"""Storing ingested messages: one keyed insert per request, committed before the 200.

``(key_id, message_id)`` is unique in ``ingested_messages`` and the insert
is ``INSERT .. ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL both have
it), so a client that resends a batch, because it never saw our answer,
stores nothing twice, and two concurrent resends cannot race each other
into a duplicate either.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from touchmodel.ingest.messages import Message
from touchmodel.state.tables import IngestedMessage

TABLE: Table = IngestedMessage.__table__  # type: ignore[assignment]


def message_rows(
    key_id: int, messages: Sequence[Message], received_at: dt.datetime
) -> list[dict[str, Any]]:
    """The ``ingested_messages`` rows of ``messages`` sent with write key ``key_id``."""
    return [
        {
            "key_id": key_id,
            "message_id": m.message_id,
            "type": m.type,
            "user_id": m.user_id,
            "anonymous_id": m.anonymous_id,
            "group_id": m.group_id,
            "event": m.event,
            "timestamp": m.timestamp,
            "received_at": received_at,
            "payload": m.payload,
        }
        for m in messages
    ]


def store_rows(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows, skipping those whose (key_id, message_id) is there; returns rows added
    (0 where the driver does not count the rows of a multi-row insert).

    The caller commits (one transaction per request: all of a batch or none).
    """
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    # One statement, many parameter sets: compiled once and cached, where a
    # multi-row VALUES would be compiled afresh for every batch (most of the cost).
    stmt = insert(TABLE).on_conflict_do_nothing(index_elements=["key_id", "message_id"])
    result = session.connection().execute(stmt, list(rows))
    return max(int(getattr(result, "rowcount", 0) or 0), 0)


def store_messages(
    session: Session, key_id: int, messages: Sequence[Message], received_at: dt.datetime
) -> int:
    """Store validated messages for write key ``key_id``; returns how many were new."""
    return store_rows(session, message_rows(key_id, messages, received_at))

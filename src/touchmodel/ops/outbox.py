"""The outbox: messages written with what caused them, then delivered with retries.

Writing
-------
:func:`enqueue` inserts a message *in the caller's transaction*, next to the
work item or touchpoint that causes it, so either both exist or neither does.
It is insert-if-absent on the idempotency key (``INSERT ... ON CONFLICT DO
NOTHING``, on SQLite and PostgreSQL alike, so two processes racing on one key
cannot fail each other's transaction): it returns the new row, or ``None``
when a message with that key already exists -- a re-run of a day queues
nothing twice, and ``None`` tells the caller not to count it as queued.

Delivering
----------
:func:`dispatch` sends every ``pending`` message that is due. Per message:

1. **claim**, in its own short transaction: one conditional ``UPDATE`` that
   counts the attempt and moves ``next_attempt_at`` past a lease, and matches
   only if ``attempts`` is still the value we read. Of two dispatchers, only
   one can match; the other skips the message. (Portable; no ``SKIP LOCKED``.)
2. **send**, outside any transaction (a slow receiver holds no lock).
3. **record**, in another transaction: ``sent`` (with ``sent_at``); or, on
   failure, ``last_error`` and ``next_attempt_at = now + backoff``, where
   backoff = ``min(backoff_max_seconds, backoff_seconds * 2**(attempts-1))``
   (no jitter: one dispatcher per store is the normal case, and a fixed
   schedule is easier to reason about). A permanent failure (a 4xx other than
   408/429, an SMTP 5xx for the recipient, a template that does not render),
   or the ``max_attempts``-th failure, makes the message ``dead``: it stays in
   the table, is listed by the CLI, and :func:`retry_dead` puts it back.

A process killed between send and record leaves the message ``pending`` with
the attempt counted and ``next_attempt_at`` at the end of the lease; the next
dispatch after that sends it again **with the same idempotency key**. Delivery
is therefore *at least once*, and *once in effect* at a receiver that applies
each key once (webhook receivers: see ``channels``; mail: the same
``Message-ID``). Slack has no such key, so a crash there can post twice. An
interrupted attempt that was the last allowed one makes the message dead
(it may or may not have arrived; the error says so).

Channels not usable
-------------------
A channel missing from ``delivery:`` (or whose secret's env var is not set)
is never attempted: its messages stay ``pending``, attempts unspent, with
``last_error`` saying ``channel X is not configured in touchmodel.yaml
delivery``. Dead would lose them to a configuration gap and force a manual
retry; pending means configuring the channel delivers them on the next
dispatch. ``DispatchReport.waiting`` counts them.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx
from sqlalchemy import Table, func, or_, select, update
from sqlalchemy.orm import Session

from touchmodel.ops.channels import Channels, Envelope, SendError, build_channels
from touchmodel.ops.delivery_config import CHANNELS, DeliveryConfig
from touchmodel.state.db import Store
from touchmodel.state.tables import OutboxMessage, utcnow

STATUSES: tuple[str, ...] = ("pending", "sent", "dead")
_OUTBOX = cast(Table, OutboxMessage.__table__)  # Core table: UPDATEs that report rowcount
_ERROR_CHARS = 2000  # last_error is for people; a whole HTML error page is not


def backoff_delay(attempts: int, base_seconds: float, max_seconds: float) -> float:
    """Seconds to wait after the ``attempts``-th failed attempt (1, 2, ...).

    ``min(max_seconds, base_seconds * 2**(attempts-1))``: 30 s, 60 s, 120 s, ...
    up to the cap. Never overflows, whatever ``attempts`` is.
    """
    if attempts < 1:
        raise ValueError(f"attempts is {attempts}, expected 1 or more")
    try:
        delay = math.ldexp(base_seconds, attempts - 1)
    except OverflowError:
        delay = math.inf
    return min(max_seconds, delay)


def lease_seconds(config: DeliveryConfig) -> float:
    """How long a claimed message is kept from other dispatchers while it is sent.

    httpx and smtplib time out per phase (connect, write, read), so one send
    can take a few times ``timeout_seconds``; a send slower than the lease may
    be repeated by another dispatcher (harmless: same idempotency key).
    """
    return 60.0 + 5 * config.timeout_seconds


def _utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# --- writing ------------------------------------------------------------------------


def enqueue(
    session: Session,
    *,
    channel: str,
    topic: str,
    idempotency_key: str,
    payload: dict[str, Any],
    recipient: str = "",
    work_item_id: int | None = None,
    touchpoint_id: int | None = None,
) -> OutboxMessage | None:
    """Queue a message in ``session``'s transaction unless its key is already queued.

    Returns the new row, or None when a message with ``idempotency_key``
    exists (whatever its status): enqueueing is idempotent, so re-running the
    code that caused the message is safe. ``payload`` must be JSON-serialisable;
    for email it holds the template's fields (see ``touchmodel.ops.channels``).
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel {channel!r} is not one of {', '.join(CHANNELS)}")
    # The column widths, checked here because SQLite does not enforce them.
    if not 0 < len(idempotency_key) <= 300:
        raise ValueError(f"idempotency_key {idempotency_key!r}: expected 1 to 300 characters")
    if not 0 < len(topic) <= 64:
        raise ValueError(f"topic {topic!r}: expected 1 to 64 characters")
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    else:
        raise ValueError(f"the outbox supports SQLite and PostgreSQL, not {dialect}")
    now = utcnow()
    stmt = (
        insert(OutboxMessage)
        .values(
            idempotency_key=idempotency_key,
            channel=channel,
            topic=topic,
            recipient=recipient,
            payload=payload,
            status="pending",
            attempts=0,
            next_attempt_at=now,
            created_at=now,
            work_item_id=work_item_id,
            touchpoint_id=touchpoint_id,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(OutboxMessage.id)
    )
    # The work item or touchpoint the message points at may still be unflushed.
    session.flush()
    new_id = session.execute(stmt).scalar_one_or_none()
    return None if new_id is None else session.get(OutboxMessage, new_id)


# --- delivering ---------------------------------------------------------------------


@dataclass
class DispatchReport:
    """What one :func:`dispatch` did, and what is left."""

    attempted: int = 0
    sent: int = 0
    retrying: int = 0  # attempts that failed and will be retried
    dead: int = 0  # messages that became dead during this dispatch
    lost_claims: int = 0  # messages another dispatcher claimed first
    # Pending messages of channels that cannot be used, by channel, and why.
    waiting: dict[str, int] = field(default_factory=dict)
    unavailable: dict[str, str] = field(default_factory=dict)
    pending: int = 0  # pending messages of usable channels left at the end
    next_attempt_at: dt.datetime | None = None  # when the earliest of them is due
    passes: int = 0


def dispatch(
    store: Store,
    config: DeliveryConfig,
    *,
    templates_dir: Path | None = None,
    now: dt.datetime | None = None,
    wait: bool = False,
    max_seconds: float = 600.0,
    environ: Mapping[str, str] | None = None,
    batch_size: int = 100,
) -> DispatchReport:
    """Send every pending message that is due; with ``wait``, keep going until done.

    ``templates_dir`` is the workspace's ``templates/`` folder (its
    ``email/<name>.txt`` override the shipped templates). ``now`` fixes the
    clock for one pass (tests, replays); it cannot be combined with ``wait``.
    With ``wait`` the dispatcher sleeps until the next retry is due and stops
    when no message of a usable channel is pending, or when the next one is
    not due within ``max_seconds`` of the start. Secrets are read from
    ``environ`` (default: the process environment). Each message is attempted
    at most once per pass.
    """
    if wait and now is not None:
        raise ValueError("dispatch(now=...) is one pass at a fixed time; it cannot wait")
    fixed = None if now is None else _utc(now)

    def clock() -> dt.datetime:
        return fixed if fixed is not None else utcnow()

    report = DispatchReport()
    deadline = time.monotonic() + max_seconds
    with httpx.Client(timeout=config.timeout_seconds, follow_redirects=False) as client:
        channels = build_channels(config, client, templates_dir=templates_dir, environ=environ)
        report.unavailable = dict(channels.unavailable)
        report.waiting = _mark_unusable(store, channels)
        usable = sorted(channels.senders)
        while True:
            report.passes += 1
            _one_pass(store, config, channels, clock, report, batch_size)
            report.pending, report.next_attempt_at = _pending_summary(store, usable)
            if not wait or report.next_attempt_at is None:
                break
            delay = max(0.0, (report.next_attempt_at - utcnow()).total_seconds())
            if time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
    return report


def _one_pass(
    store: Store,
    config: DeliveryConfig,
    channels: Channels,
    clock: Callable[[], dt.datetime],
    report: DispatchReport,
    batch_size: int,
) -> None:
    pass_now = clock()
    after_id = 0  # keyset paging by id: each message at most once per pass
    while True:
        with store.transaction() as session:
            rows = session.execute(
                select(OutboxMessage.id, OutboxMessage.attempts)
                .where(
                    OutboxMessage.status == "pending",
                    OutboxMessage.next_attempt_at <= pass_now,
                    OutboxMessage.channel.in_(sorted(channels.senders)),
                    OutboxMessage.id > after_id,
                )
                .order_by(OutboxMessage.id)
                .limit(batch_size)
            ).all()
        if not rows:
            return
        for message_id, attempts in rows:
            after_id = message_id
            _attempt(store, config, channels, message_id, attempts, clock, report)


def _attempt(
    store: Store,
    config: DeliveryConfig,
    channels: Channels,
    message_id: int,
    seen_attempts: int,
    clock: Callable[[], dt.datetime],
    report: DispatchReport,
) -> None:
    table = _OUTBOX
    claim_at = clock()
    still_ours = (
        (table.c.id == message_id)
        & (table.c.status == "pending")
        & (table.c.attempts == seen_attempts)
        & (table.c.next_attempt_at <= claim_at)
    )
    if seen_attempts >= config.max_attempts:
        # Its last attempt was claimed but never recorded (the process died), or
        # max_attempts was lowered since: no attempt left.
        with store.transaction() as session:
            done = session.connection().execute(
                update(table)
                .where(still_ours)
                .values(
                    status="dead",
                    last_error=f"attempt {seen_attempts} of {config.max_attempts} was "
                    "interrupted before its result was recorded (it may have been delivered)",
                )
            )
        report.dead += done.rowcount
        return

    attempt = seen_attempts + 1
    lease = max(
        backoff_delay(attempt, config.backoff_seconds, config.backoff_max_seconds),
        lease_seconds(config),
    )
    with store.transaction() as session:
        claimed = session.connection().execute(
            update(table)
            .where(still_ours)
            .values(attempts=attempt, next_attempt_at=claim_at + dt.timedelta(seconds=lease))
        )
        if claimed.rowcount != 1:
            report.lost_claims += 1
            return
        row = session.get_one(OutboxMessage, message_id)
        envelope = Envelope(
            id=row.id,
            idempotency_key=row.idempotency_key,
            channel=row.channel,
            topic=row.topic,
            recipient=row.recipient,
            payload=dict(row.payload),
            attempt=attempt,
        )

    report.attempted += 1
    failure: SendError | None = None
    try:
        channels.senders[envelope.channel](envelope)
    except SendError as exc:
        failure = exc
    except Exception as exc:
        # A sender bug must not stop the other messages; it is recorded and retried.
        failure = SendError(f"unexpected {type(exc).__name__}: {exc}")

    done_at = clock()
    with store.transaction() as session:
        conn = session.connection()
        if failure is None:
            # Recorded even if our lease ran out meanwhile: it *was* delivered.
            conn.execute(
                update(table)
                .where((table.c.id == message_id) & (table.c.status == "pending"))
                .values(status="sent", sent_at=done_at, last_error=None)
            )
            report.sent += 1
            return
        error = f"attempt {attempt}: {failure}"[:_ERROR_CHARS]
        mine = (
            (table.c.id == message_id)
            & (table.c.status == "pending")
            & (table.c.attempts == attempt)
        )
        if failure.permanent or attempt >= config.max_attempts:
            conn.execute(update(table).where(mine).values(status="dead", last_error=error))
            report.dead += 1
            return
        delay = backoff_delay(attempt, config.backoff_seconds, config.backoff_max_seconds)
        if failure.retry_after is not None:
            # The receiver asked for a pause; honour it, within our own cap.
            delay = max(delay, min(failure.retry_after, config.backoff_max_seconds))
        conn.execute(
            update(table)
            .where(mine)
            .values(last_error=error, next_attempt_at=done_at + dt.timedelta(seconds=delay))
        )
        report.retrying += 1


def _mark_unusable(store: Store, channels: Channels) -> dict[str, int]:
    """Say on each pending message of an unusable channel why it waits; count them."""
    table = _OUTBOX
    usable = sorted(channels.senders)
    with store.transaction() as session:
        counts = {
            channel: int(n)
            for channel, n in session.execute(
                select(OutboxMessage.channel, func.count())
                .where(OutboxMessage.status == "pending", OutboxMessage.channel.not_in(usable))
                .group_by(OutboxMessage.channel)
            )
        }
        for channel in counts:
            reason = channels.unavailable.get(
                channel, f"unknown channel {channel!r}: expected one of {', '.join(CHANNELS)}"
            )
            session.connection().execute(
                update(table)
                .where(
                    (table.c.status == "pending")
                    & (table.c.channel == channel)
                    & or_(table.c.last_error.is_(None), table.c.last_error != reason)
                )
                .values(last_error=reason)
            )
    return counts


def _pending_summary(store: Store, usable: list[str]) -> tuple[int, dt.datetime | None]:
    with store.transaction() as session:
        count, earliest = session.execute(
            select(func.count(), func.min(OutboxMessage.next_attempt_at)).where(
                OutboxMessage.status == "pending", OutboxMessage.channel.in_(usable)
            )
        ).one()
    return int(count), None if earliest is None else _utc(earliest)


# --- the CLI's view -----------------------------------------------------------------


def retry_dead(
    store: Store, ids: list[int] | None = None, *, now: dt.datetime | None = None
) -> int:
    """Put dead messages (all, or those in ``ids``) back to pending with fresh attempts.

    Returns how many were revived. Their idempotency keys are unchanged, so a
    message that did arrive before it was declared dead is not applied twice.
    """
    table = _OUTBOX
    condition = table.c.status == "dead"
    if ids is not None:
        condition = condition & table.c.id.in_(ids)
    with store.transaction() as session:
        result = session.connection().execute(
            update(table)
            .where(condition)
            .values(
                status="pending",
                attempts=0,
                last_error=None,
                next_attempt_at=_utc(now) if now is not None else utcnow(),
            )
        )
    return result.rowcount


def list_messages(store: Store, status: str | None = None, limit: int = 100) -> list[OutboxMessage]:
    """The newest ``limit`` messages, optionally of one status (detached rows)."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
    query = select(OutboxMessage).order_by(OutboxMessage.id.desc()).limit(limit)
    if status is not None:
        query = query.where(OutboxMessage.status == status)
    with store.transaction() as session:
        return list(session.scalars(query).all())


def status_counts(store: Store) -> dict[str, int]:
    """How many messages are in each status (every status present, zero or not)."""
    with store.transaction() as session:
        found = {
            status: int(n)
            for status, n in session.execute(
                select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
            )
        }
    return {status: int(found.get(status, 0)) for status in STATUSES} | {
        s: int(n) for s, n in found.items() if s not in STATUSES
    }

"""The state store's tables (SQLAlchemy 2 ORM).

Every change to these classes needs an Alembic migration in
``touchmodel/state/migrations/versions``; ``tests/test_state_migrations.py``
fails when the models and the migrations disagree.

Idempotency lives in the keys, not in the code paths: a snapshot is keyed by
(account, as-of date), an open work item by its dedupe key, a touchpoint by
(account, key), an outbox message by its idempotency key. Re-running a day, or
finishing a run that was killed half way, can only find the rows already there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.expression import false

# Named constraints, so migrations can alter them on SQLite and PostgreSQL alike.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(200)


def utcnow() -> dt.datetime:
    """Now, timezone-aware UTC (stored timestamps are always UTC)."""
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSON,
        dt.datetime: DateTime(timezone=True),
    }


class Run(Base):
    """One invocation of a daily run: what went in, what came out, how long it took."""

    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, index=True)
    # running | completed | failed | abandoned | undone
    status: Mapped[str] = mapped_column(String(16))
    model_name: Mapped[str] = mapped_column(String(200))
    model_hash: Mapped[str] = mapped_column(String(64))
    data_path: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float)
    accounts: Mapped[int] = mapped_column(Integer, default=0)
    input_counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    rejects: Mapped[dict[str, Any]] = mapped_column(default=dict)
    excluded: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # What the run changed: items created/closed, touchpoints planned, messages queued.
    changes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    # What a user should look at: books over cap, tiers no CSM covers.
    warnings: Mapped[list[str]] = mapped_column(JSON, default=list)
    # How the model fit the run's data (fit.diagnostics); NULL for runs before it existed.
    diagnostics: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class RunChange(Base):
    """One row a daily run changed, as it was before the run and as the run left it.

    Written in the same transaction as the change (see :mod:`touchmodel.ops.run_journal`),
    so ``touchmodel runs undo`` can put the row back, and can tell when someone
    changed it since (a message sent, an item closed by a user).
    """

    __tablename__ = "run_changes"
    __table_args__ = (UniqueConstraint("run_id", "table_name", "row_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    table_name: Mapped[str] = mapped_column(String(64))
    row_key: Mapped[str] = mapped_column(String(600))  # the primary key, as JSON
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # None: the run inserted it
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # None: the run deleted it


class Snapshot(Base):
    """An account's decision on one as-of date: the history of tiers, levels and health."""

    __tablename__ = "account_snapshots"
    # The dashboard and the API read one date across all accounts (the latest run).
    __table_args__ = (Index("ix_account_snapshots_as_of", "as_of"),)

    account_id: Mapped[str] = mapped_column(ID, primary_key=True)
    as_of: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"))
    model_hash: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(Text)
    arr: Mapped[float | None] = mapped_column(Float)
    contract_start: Mapped[dt.date | None] = mapped_column(Date)
    renewal_date: Mapped[dt.date | None] = mapped_column(Date)
    tier: Mapped[str] = mapped_column(String(64))
    tier_level: Mapped[str] = mapped_column(String(16))
    lifecycle_stage: Mapped[str] = mapped_column(String(16))
    touch_level: Mapped[str] = mapped_column(String(16))
    level_reasons: Mapped[str] = mapped_column(Text, default="")
    health_score: Mapped[float | None] = mapped_column(Float)
    health_grade: Mapped[str | None] = mapped_column(String(32))
    health_top_factor: Mapped[str | None] = mapped_column(String(64))
    triggers: Mapped[str] = mapped_column(Text, default="")
    routes: Mapped[str] = mapped_column(Text, default="")
    # From the model's fitted churn curve; null when the model has none.
    churn_probability: Mapped[float | None] = mapped_column(Float)
    arr_at_risk: Mapped[float | None] = mapped_column(Float)


class Assignment(Base):
    """The CSM whose book an account is in (sticky across runs)."""

    __tablename__ = "assignments"

    account_id: Mapped[str] = mapped_column(ID, primary_key=True)
    csm: Mapped[str] = mapped_column(String(200), index=True)
    tier: Mapped[str] = mapped_column(String(64))
    assigned_on: Mapped[dt.date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)


class AssignmentChange(Base):
    """Every move of an account between books, with why."""

    __tablename__ = "assignment_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ID, index=True)
    on: Mapped[dt.date] = mapped_column(Date)
    from_csm: Mapped[str | None] = mapped_column(String(200))
    to_csm: Mapped[str | None] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))


class WorkItem(Base):
    """A task for a person or team (a CTA): from a fired trigger or a tier migration."""

    __tablename__ = "work_items"
    __table_args__ = (Index("ix_work_items_account_trigger", "account_id", "trigger"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ID)
    trigger: Mapped[str] = mapped_column(String(120))
    reason_key: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(16))  # trigger | migration
    # (account, trigger, reason) while the item is open or snoozed, NULL once closed:
    # a unique index on it makes a duplicate open item impossible, even across processes.
    open_key: Mapped[str | None] = mapped_column(String(600), unique=True)
    status: Mapped[str] = mapped_column(String(16), index=True)  # open | snoozed | closed
    priority: Mapped[str] = mapped_column(String(16))  # urgent | high | normal
    team: Mapped[str] = mapped_column(String(120))
    owner: Mapped[str] = mapped_column(String(200), index=True)
    action: Mapped[str] = mapped_column(Text)
    route: Mapped[str] = mapped_column(String(120))
    channel: Mapped[str | None] = mapped_column(String(32))
    due: Mapped[dt.date] = mapped_column(Date)
    explanation: Mapped[str] = mapped_column(Text)
    created_on: Mapped[dt.date] = mapped_column(Date)
    created_run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    last_seen_on: Mapped[dt.date] = mapped_column(Date)
    snoozed_until: Mapped[dt.date | None] = mapped_column(Date)
    snooze_reason: Mapped[str | None] = mapped_column(Text)
    closed_on: Mapped[dt.date | None] = mapped_column(Date)
    close_reason: Mapped[str | None] = mapped_column(Text)
    closed_by: Mapped[str | None] = mapped_column(String(200))
    # Reopened by a user: runs no longer auto-close it.
    keep_open: Mapped[bool] = mapped_column(Boolean, default=False)
    # Set by each run for at-risk items (touchmodel.fit.allocate): churn risk x ARR
    # x the route's save rate, and whether the item is beyond the team's weekly
    # outreach time. NULL / false for other work. The queue is ordered by it.
    expected_arr_kept: Mapped[float | None] = mapped_column(Float)
    over_capacity: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class WorkItemEvent(Base):
    """The audit trail of a work item: created, snoozed, woken, closed, reopened."""

    __tablename__ = "work_item_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_items.id"), index=True)
    on: Mapped[dt.date] = mapped_column(Date)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, default="")
    actor: Mapped[str] = mapped_column(String(200), default="touchmodel")


class Touchpoint(Base):
    """A scheduled touch from a cadence: a call, a review, an automated message."""

    __tablename__ = "touchpoints"
    __table_args__ = (UniqueConstraint("account_id", "key"), Index("ix_touchpoints_due", "due"))

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[str] = mapped_column(ID)
    key: Mapped[str] = mapped_column(String(200))  # e.g. onboarding_email.d3, qbr@2027-02-01
    sequence: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    due: Mapped[dt.date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(32))
    automated: Mapped[bool] = mapped_column(Boolean)
    owner: Mapped[str] = mapped_column(String(200))
    level: Mapped[str] = mapped_column(String(16))
    template: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(16))  # planned | sent | skipped | cancelled
    reason: Mapped[str] = mapped_column(Text, default="")
    planned_on: Mapped[dt.date] = mapped_column(Date)


class OutboxMessage(Base):
    """A message to deliver, written in the same transaction as what caused it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(300), unique=True)
    channel: Mapped[str] = mapped_column(String(16))  # webhook | email | slack
    topic: Mapped[str] = mapped_column(String(64))  # work_item.created, touchpoint.email, ...
    recipient: Mapped[str] = mapped_column(Text, default="")
    payload: Mapped[dict[str, Any]] = mapped_column()
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending | sent | dead
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[dt.datetime | None]
    work_item_id: Mapped[int | None] = mapped_column(ForeignKey("work_items.id"))
    touchpoint_id: Mapped[int | None] = mapped_column(ForeignKey("touchpoints.id"))


class ApiKey(Base):
    """A credential: an API token (dashboard, REST API) or a write key (event ingestion).

    Only the SHA-256 of a key is stored; the key itself is printed once, when
    it is created. Keys are 32 random bytes, so a plain hash is enough (a slow
    password hash protects guessable secrets, and these are not guessable).
    """

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # api | write
    role: Mapped[str | None] = mapped_column(String(16))  # admin | csm (api keys only)
    # The CSM whose book a csm-role key sees and changes (a name from team.yaml).
    csm: Mapped[str | None] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(Text, default="")
    prefix: Mapped[str] = mapped_column(String(32), index=True)  # shown in lists, never secret
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]


class IngestedMessage(Base):
    """One Segment-compatible message (track, identify, group, page, screen) as received.

    Written, and committed, before the HTTP 200 goes out. ``(key_id,
    message_id)`` is unique: a client retrying a batch finds its messages
    already there and nothing is stored twice.
    """

    __tablename__ = "ingested_messages"
    __table_args__ = (
        UniqueConstraint("key_id", "message_id"),
        Index("ix_ingested_messages_type_ts", "type", "timestamp"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"))
    message_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))  # track | identify | group | page | screen
    user_id: Mapped[str | None] = mapped_column(String(200), index=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(200))
    # groupId of a group call, or context.groupId / properties.groupId of the others.
    group_id: Mapped[str | None] = mapped_column(String(200), index=True)
    event: Mapped[str | None] = mapped_column(Text)  # track: the event name; page/screen: the name
    timestamp: Mapped[dt.datetime] = mapped_column()  # when it happened (client clock)
    received_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    payload: Mapped[dict[str, Any]] = mapped_column()  # the whole message, as sent


class WebSession(Base):
    """A dashboard sign-in. The cookie holds a random id; only its SHA-256 is stored.

    Kept server-side so that signing out really ends it: a copy of the cookie
    taken before is refused afterwards, as it is once the key is revoked.
    """

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("api_keys.id"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column()
    ended_at: Mapped[dt.datetime | None]

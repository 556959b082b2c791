"""What a daily run changed, row by row, and undoing the latest run.

While a run writes, :class:`RunJournal` watches its sessions: for every row of
the state the run inserts, updates or deletes (work items and their history,
touchpoints, books, outbox messages, changed snapshots) it keeps, in
``run_changes`` and in the same transaction, the columns it changed as they
were before the run (none if the run inserted it; the whole row if it deleted
it) and a fingerprint of the row as the run left it. The journal is written
from SQLAlchemy's flush events, so the code that makes the changes does not
need to know about it; a new snapshot needs no entry (it carries its run's
id). Only the latest ``UNDO_DEPTH`` runs keep their journal.

:func:`undo_latest_run` puts every such row back as it was before the run.
Cooldowns need no row of their own: they are counted from the items' close
dates, so reopening what the run closed and removing what it created undoes
them. A row someone changed since the run (a message sent, an item closed or
snoozed by a user) cannot be put back without losing that change: undo then
refuses and names the rows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Date,
    DateTime,
    Table,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.orm import Session, UOWTransaction, object_session

from touchmodel.errors import TouchmodelError
from touchmodel.state.db import Store
from touchmodel.state.tables import (
    Assignment,
    AssignmentChange,
    Base,
    OutboxMessage,
    Run,
    RunChange,
    Snapshot,
    Touchpoint,
    WorkItem,
    WorkItemEvent,
)

# Parents before children: restored in this order, removed in the reverse.
TRACKED: tuple[type[Base], ...] = (
    Snapshot, Assignment, AssignmentChange, WorkItem, WorkItemEvent, Touchpoint, OutboxMessage,
)  # fmt: skip
BY_TABLE: dict[str, type[Base]] = {c.__tablename__: c for c in TRACKED}
# Rows only ever added (a history): a later change to them is not a conflict.
APPEND_ONLY = (WorkItemEvent, AssignmentChange)
# The journal's own row saying "this run kept a journal" (runs from before it did not).
MARKER = "runs"
# Journals of this many latest runs are kept: undo can go back that many runs.
UNDO_DEPTH = 10


class UndoError(TouchmodelError):
    """The latest run cannot be undone (in progress, no journal, changed since)."""


def _plain(value: Any) -> Any:
    """A column value as JSON: dates as ISO text, timestamps in UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _typed(cls: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    """The inverse of :func:`_plain` for the columns of ``cls``."""
    out: dict[str, Any] = {}
    attrs = inspect(cls).column_attrs
    for attr, value in values.items():
        col = attrs[attr].columns[0]
        if value is not None and isinstance(col.type, DateTime):
            value = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC)
        elif value is not None and isinstance(col.type, Date):
            value = dt.date.fromisoformat(value)
        out[attr] = value
    return out


def _attrs(cls: type[Base]) -> list[str]:
    return [p.key for p in inspect(cls).column_attrs]


def _key(obj: Base) -> str:
    ident = inspect(obj).mapper.primary_key_from_instance(obj)
    return json.dumps([_plain(v) for v in ident])


def _now(obj: Base) -> dict[str, Any]:
    return {a: _plain(getattr(obj, a)) for a in _attrs(type(obj))}


def _was(obj: Base, only_changed: bool) -> dict[str, Any]:
    """The row (or only its changed columns) as before this flush's pending changes."""
    state = inspect(obj)
    out: dict[str, Any] = {}
    for a in _attrs(type(obj)):
        hist = state.attrs[a].history
        if hist.deleted:
            out[a] = _plain(hist.deleted[0])
        elif not only_changed:
            out[a] = _plain(state.attrs[a].value)
    return out


def _digest(values: dict[str, Any]) -> str:
    """A short fingerprint of a row: enough to tell whether it changed since."""
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# ``after`` of a row whose later changes do not matter (a history row, an outbox
# message: whether it was sent is read from its status).
NO_CHECK = ""


@dataclass
class RunJournal:
    """Records what the sessions of one run change; see the module docstring.

    Kept small, since a run touches every open item: an update keeps only the
    columns it changed (as they were), and the row as the run left it only as
    a fingerprint.
    """

    run_id: int
    # (table, key) -> the row's columns as before the run (None: the run inserted it).
    _before: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)
    # Changes seen during the current flush, written to run_changes when it ends.
    _pending: list[tuple[str, str, Any, Any]] = field(default_factory=list)

    def attach(self, session: Session) -> None:
        """Watch ``session``: every tracked row it changes goes to ``run_changes`` with it."""
        session.info[_SESSION_KEY] = self
        event.listen(session, "after_flush", self._after_flush)
        event.listen(session, "before_commit", self._before_commit)

    def _write(self, session: Session, changes: list[tuple[str, str, Any, Any]]) -> None:
        conn = session.connection()
        table = RunChange.__table__
        assert isinstance(table, Table)
        new: list[dict[str, Any]] = []
        for t, k, before, after in changes:
            if (t, k) not in self._before:
                self._before[(t, k)] = before
                new.append(
                    {"run_id": self.run_id, "table_name": t, "row_key": k,
                     "before": before, "after": after}
                )  # fmt: skip
                continue
            # Changed again by the same run: what it was before the run stays; columns
            # changed only now are added as they were until now (= before the run).
            kept = self._before[(t, k)]
            if kept is not None and before is not None:
                kept = {**before, **kept}
                self._before[(t, k)] = kept
            where = (
                (table.c.run_id == self.run_id) & (table.c.table_name == t) & (table.c.row_key == k)
            )
            conn.execute(update(table).where(where).values(before=kept, after=after))
        if new:
            conn.execute(insert(table), new)

    def _after_flush(self, session: Session, _ctx: UOWTransaction) -> None:
        changes, self._pending = self._pending, []
        if (MARKER, str(self.run_id)) not in self._before:
            changes.insert(0, (MARKER, str(self.run_id), None, NO_CHECK))
        self._write(session, changes)

    def _before_commit(self, session: Session) -> None:
        # Outbox messages are inserted by a core INSERT (idempotent on their key), not
        # added to the session: the run's transactions load nothing else of the outbox,
        # so a message in the session that the journal does not know was just enqueued.
        fresh = [
            (OutboxMessage.__tablename__, _key(obj), None, NO_CHECK)
            for obj in list(session.identity_map.values())
            if isinstance(obj, OutboxMessage)
            and (OutboxMessage.__tablename__, _key(obj)) not in self._before
        ]
        self._write(session, fresh)


# Mapper events see exactly the rows a flush writes (scanning the session's
# dirty set at every autoflush costs seconds on a large run); they queue the
# change on the journal of the session, if it has one, for _after_flush.
_SESSION_KEY = "touchmodel.run_journal"


def _journal_of(target: Base) -> RunJournal | None:
    session = object_session(target)
    return None if session is None else session.info.get(_SESSION_KEY)


def _on_insert(_mapper: Any, _conn: Any, target: Base) -> None:
    journal = _journal_of(target)
    # A new snapshot carries its run's id: undo finds it without a journal row.
    if journal is not None and not isinstance(target, Snapshot):
        after = NO_CHECK if isinstance(target, APPEND_ONLY) else _digest(_now(target))
        journal._pending.append((target.__tablename__, _key(target), None, after))


def _on_update(_mapper: Any, _conn: Any, target: Base) -> None:
    journal = _journal_of(target)
    if journal is None:
        return
    was = _was(target, True)
    if was:  # no net change: no UPDATE either
        after = NO_CHECK if isinstance(target, Snapshot) else _digest(_now(target))
        journal._pending.append((target.__tablename__, _key(target), was, after))


def _on_delete(_mapper: Any, _conn: Any, target: Base) -> None:
    journal = _journal_of(target)
    if journal is not None:
        journal._pending.append((target.__tablename__, _key(target), _was(target, False), None))


for _cls in TRACKED:
    event.listen(_cls, "after_insert", _on_insert)
    event.listen(_cls, "before_update", _on_update)
    event.listen(_cls, "before_delete", _on_delete)


def prune_journals(session: Session, keep: int) -> None:
    """Drop the journals of all but the latest ``keep`` runs (undo goes back that far)."""
    recent = select(Run.id).order_by(Run.id.desc()).limit(keep).subquery()
    oldest_kept = session.scalar(select(func.min(recent.c.id)))
    if oldest_kept is not None:
        session.execute(delete(RunChange).where(RunChange.run_id < oldest_kept))


@dataclass
class UndoResult:
    """What :func:`undo_latest_run` put back."""

    run_id: int
    as_of: dt.date
    removed: dict[str, int] = field(default_factory=dict)  # rows the run had added
    restored: dict[str, int] = field(default_factory=dict)  # rows put back as they were


def _conflicts(session: Session, changes: Sequence[RunChange]) -> list[str]:
    """Rows changed since the run; putting them back would lose that change."""
    found: list[str] = []
    for ch in changes:
        cls = BY_TABLE[ch.table_name]
        if cls in APPEND_ONLY or cls is Snapshot or ch.after is None:
            continue  # a history row, a snapshot of the run's date, a row the run deleted
        row = session.get(cls, _ident(cls, ch.row_key))
        if row is None:
            found.append(f"{ch.table_name} {ch.row_key}: deleted since the run")
            continue
        if isinstance(row, OutboxMessage):
            if row.status == "sent":
                found.append(f"outbox message {row.id} ({row.topic} to {row.recipient}) was sent")
            continue  # a message not sent yet is only withdrawn
        if ch.after != NO_CHECK and _digest(_now(row)) != ch.after:
            found.append(f"{ch.table_name} {ch.row_key}: changed since the run")
    return found


def _ident(cls: type[Base], row_key: str) -> tuple[Any, ...]:
    pk = inspect(cls).primary_key
    values = json.loads(row_key)
    typed = _typed(
        cls,
        {inspect(cls).get_property_by_column(c).key: v for c, v in zip(pk, values, strict=True)},
    )
    return tuple(typed.values())


def _latest(session: Session) -> Run:
    run = session.scalar(select(Run).where(Run.status != "undone").order_by(Run.id.desc()).limit(1))
    if run is None:
        raise UndoError("runs undo: no run to undo in this workspace")
    if run.status == "running":
        raise UndoError(
            f"runs undo: run {run.id} ({run.as_of}) is still running (or was killed: run that "
            "day again to finish it, then undo)"
        )
    return run


def undo_latest_run(store: Store, *, run_id: int | None = None) -> UndoResult:
    """Put every row the latest run changed back as it was; mark the run ``undone``.

    ``run_id``, when given, must be the latest run (a guard against undoing
    another run than the one the user looked at). Refuses, changing nothing,
    when a row was changed since the run (see :func:`_conflicts`).
    """
    with store.transaction() as s:
        run = _latest(s)
        if run_id is not None and run_id != run.id:
            raise UndoError(
                f"runs undo: run {run_id} is not the latest run ({run.id} on {run.as_of}); "
                "only the latest run can be undone"
            )
        changes = list(s.scalars(select(RunChange).where(RunChange.run_id == run.id)))
        if not any(c.table_name == MARKER for c in changes):
            raise UndoError(
                f"runs undo: run {run.id} ({run.as_of}) has no journal of its changes: only the "
                f"latest {UNDO_DEPTH} runs keep one, and runs recorded by an older touchmodel "
                "have none"
            )
        rows = [c for c in changes if c.table_name != MARKER]
        problems = _conflicts(s, rows)
        if problems:
            more = f" and {len(problems) - 5} more" if len(problems) > 5 else ""
            raise UndoError(
                f"runs undo: run {run.id} ({run.as_of}) cannot be undone, nothing was changed: "
                + "; ".join(problems[:5])
                + more
            )
        result = UndoResult(run.id, run.as_of)
        _remove_added(s, rows, run.id, result)
        _restore(s, rows, result)
        done = s.execute(
            update(Run).where(Run.id == run.id, Run.status == run.status).values(status="undone")
        )
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise UndoError(f"runs undo: run {run.id} changed while undoing it; try again")
    return result


def _remove_added(
    session: Session, rows: Iterable[RunChange], run_id: int, result: UndoResult
) -> None:
    """Delete what the run inserted, children first."""
    added: dict[str, list[str]] = {}
    for ch in rows:
        if ch.before is None:
            added.setdefault(ch.table_name, []).append(ch.row_key)
    for cls in reversed(TRACKED):
        name = cls.__tablename__
        count = 0
        for key in added.get(name, []):
            obj = session.get(cls, _ident(cls, key))
            if obj is not None:
                session.delete(obj)
                count += 1
        session.flush()
        if count:
            result.removed[name] = count


def _restore(session: Session, rows: Iterable[RunChange], result: UndoResult) -> None:
    """Put back what the run updated or deleted, parents first; then drop its new snapshots."""
    before: dict[str, list[RunChange]] = {}
    for ch in rows:
        if ch.before is not None:
            before.setdefault(ch.table_name, []).append(ch)
    for cls in TRACKED:
        for ch in before.get(cls.__tablename__, []):
            assert ch.before is not None
            values = _typed(cls, ch.before)
            obj = session.get(cls, _ident(cls, ch.row_key))
            if obj is None:
                session.add(cls(**values))
            else:
                for attr, value in values.items():
                    setattr(obj, attr, value)
        session.flush()
        if before.get(cls.__tablename__):
            result.restored[cls.__tablename__] = len(before[cls.__tablename__])
    # The snapshots the run inserted carry its id (restored ones now carry the earlier run's).
    gone = session.execute(delete(Snapshot).where(Snapshot.run_id == result.run_id))
    if gone.rowcount:  # type: ignore[attr-defined]
        result.removed[Snapshot.__tablename__] = gone.rowcount  # type: ignore[attr-defined]

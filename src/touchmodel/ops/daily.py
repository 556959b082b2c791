"""The daily run in a workspace: decide, then turn decisions into state and work.

Order of a run, and why it is safe to kill at any point:

1. Decide for every account (the engine; nothing written to the state yet).
2. Record the run as ``running``.
3. Plan books and touchpoints for all accounts at once, in memory, from the
   state as it was *before* this as-of date.
4. Write per chunk of accounts, one transaction each: snapshots, book
   assignments, work items, touchpoints, and the outbox messages they cause.
   Every write is keyed (snapshot by account and date, open item by its
   dedupe key, touchpoint by its key, message by its idempotency key), so a
   chunk written before a crash is found, not written again, by the re-run.
5. Close the items of accounts that have no decision any more; mark the run
   ``completed``.
6. Dispatch the outbox (at-least-once, keyed: see :mod:`touchmodel.ops.outbox`).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pyarrow as pa
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from touchmodel.decide.decisions import SEP
from touchmodel.engine import Engine, RunResult, run_record
from touchmodel.errors import TouchmodelError
from touchmodel.ingest.feed import ingest_warnings, ingested_input
from touchmodel.model.schema import TouchModel
from touchmodel.ops.as_of_guard import AsOfRefused, check_after_last_run, check_data_reaches
from touchmodel.ops.assignments import release_gone, write_assignments
from touchmodel.ops.books import BookPlan, MigrationTask, assign_books
from touchmodel.ops.cadences import INPUT_COLUMNS as PLAN_INPUT_COLUMNS
from touchmodel.ops.cadences import plan_touchpoints
from touchmodel.ops.contacts import primary_emails
from touchmodel.ops.notify import notify_items
from touchmodel.ops.outbox import DispatchReport, dispatch
from touchmodel.ops.run_journal import UNDO_DEPTH, RunJournal, prune_journals
from touchmodel.ops.snapshots import previous_tiers, write_snapshots
from touchmodel.ops.staffing import staff_open_items
from touchmodel.ops.touchpoints import TouchpointSync, cancel_planned, sync_touchpoints
from touchmodel.ops.workitems import (
    Fired,
    SyncResult,
    add_migration_items,
    sync_migration_items,
    sync_trigger_items,
)
from touchmodel.plan.team import Team, load_book_owners, load_team
from touchmodel.spark import engine_options
from touchmodel.state.db import RolledBackStore, Store
from touchmodel.state.tables import (
    Assignment,
    Run,
    RunChange,
    Snapshot,
    Touchpoint,
    WorkItem,
    utcnow,
)
from touchmodel.workspace import Workspace

Progress = Callable[[str], None]


@dataclass
class DayResult:
    """One daily run: the engine's result plus what the state store recorded."""

    run_id: int
    result: RunResult
    changes: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    book_warnings: int = 0  # the first this many warnings are about books (over cap, ...)
    model: TouchModel | None = None
    delivery: DispatchReport | None = None
    dry_run: bool = False  # nothing of it was kept


def _chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _split(text: str | None) -> list[str]:
    return [p for p in (text or "").split(SEP) if p]


def _context(row: dict[str, Any]) -> str:
    """Why this account, in one line: tier, level and its reasons, health."""
    text = f"Tier {row['tier']}, touch level {row['touch_level']}"
    if row.get("level_reasons"):
        text += f" ({row['level_reasons']})"
    if row.get("health_score") is not None:
        text += (
            f"; health {row['health_score']:.0f} ({row['health_grade']}), "
            f"weakest: {row['health_top_factor']}"
        )
    return text + "."


def _snapshot_rows(result: RunResult) -> dict[str, dict[str, Any]]:
    """Decision rows joined with the account columns a snapshot keeps, by account."""
    want = [
        c
        for c in ("name", "arr", "contract_start", "renewal_date", "csm")
        if c in result.accounts.column_names
    ]
    extra = {r["account_id"]: r for r in result.accounts.select(["account_id", *want]).to_pylist()}
    rows: dict[str, dict[str, Any]] = {}
    for row in result.decisions.to_pylist():
        merged = {**extra.get(row["account_id"], {}), **row}
        for col in ("level_reasons", "triggers", "routes"):
            merged[col] = merged.get(col) or ""
        rows[row["account_id"]] = merged
    return rows


def run_day(
    ws: Workspace,
    *,
    as_of: dt.date,
    data: Path | str | None = None,
    mapping: Path | None = None,
    model: str | None = None,
    out: Path | None = None,
    max_reject_rate: float | None = None,
    progress: Progress | None = None,
    dispatch_messages: bool = True,
    allow_missing_accounts: bool = False,
    force: bool = False,
    dry_run: bool = False,
    engine_flags: tuple[str | None, str | None, Path | None] = (None, None, None),
) -> DayResult:
    """Run the touch model for ``as_of`` in a workspace and record everything in its state.

    With ``dispatch_messages`` the outbox is dispatched once at the end (one
    pass: failed messages wait for their backoff and the next run or
    ``touchmodel outbox dispatch``). A run whose data lacks many accounts
    that the previous run decided (a partial export?) stops before changing
    anything, unless ``allow_missing_accounts``: their work would be closed.
    Every run is recorded, a failed one with its error.

    An as-of date before the last run, or far after the newest activity in the
    data, is refused before anything is written, unless ``force`` (see
    :mod:`touchmodel.ops.as_of_guard`). Every row the run changes is journaled
    so that ``touchmodel runs undo`` can put it back. ``dry_run`` does
    everything but keep it: the state is rolled back, no file is written, no
    message sent; the result says what the run would have changed.
    ``engine_flags`` (engine, Spark master, Spark staging folder) override the
    workspace's.
    """
    step = progress or (lambda _msg: None)
    cfg = ws.config
    spark = engine_options(
        *engine_flags, defaults=(cfg.engine, cfg.spark_master, cfg.spark_staging)
    )
    started = time.perf_counter()
    folder = data or ws.data_path
    if folder is None:
        raise TouchmodelError("--data: no data folder given and touchmodel.yaml names none")
    engine = Engine.from_spec(model or ws.model_spec)
    store = RolledBackStore(ws.state_url) if dry_run else Store(ws.state_url)
    final = out or ws.out_dir(as_of.isoformat())
    # Files go to a staging folder and replace the day's folder only when the run
    # succeeds: a failed run never leaves decision files that look like a result.
    staging = final.with_name(final.name + ".incomplete")
    if dry_run:
        staging = Path(tempfile.mkdtemp(prefix="touchmodel-dry-run-"))
    shutil.rmtree(staging, ignore_errors=True)

    def on_loaded(tables: Mapping[str, ir.Table]) -> None:
        _check_missing_accounts(store, tables, as_of, allow=allow_missing_accounts)
        if not force:
            check_data_reaches(tables, as_of, ws.config.max_data_lag_days)

    try:
        if not force:
            check_after_last_run(store, as_of)
        run_id = _start_run(store, engine, as_of, folder)
        try:
            step("reading ingested events")
            ingested = ingested_input(store, as_of)
            result = engine.run(
                folder,
                as_of=as_of,
                mapping=mapping or ws.mapping_path,
                out=staging,
                max_reject_rate=max_reject_rate,
                progress=step,
                on_loaded=on_loaded,
                ingested=None if ingested.empty else ingested,
                team=_team(ws, engine.model),
                spark=spark,
            )
            notes = ingest_warnings(ingested, result.rejects)
            store.on_session.append(RunJournal(run_id).attach)
            day = _record(ws, store, engine, result, run_id, step, started, notes)
        except AsOfRefused:
            if not dry_run:
                _forget_run(store, run_id)  # refused before writing: nothing to record
                shutil.rmtree(staging, ignore_errors=True)
            raise
        except Exception as exc:
            if not dry_run:
                _fail_run(store, run_id, exc, started)
            raise
        day.model = engine.model
        if dry_run:
            day.dry_run = True
            result.files = {}  # written to a scratch folder, removed below
            return day
        _publish(staging, final, result)
        if dispatch_messages and _configured_channels(ws):
            step("delivering messages")
            day.delivery = dispatch(store, ws.config.delivery, templates_dir=ws.templates_dir)
        return day
    finally:
        store.close()
        if dry_run:
            shutil.rmtree(staging, ignore_errors=True)


def _team(ws: Workspace, model: TouchModel) -> Team | None:
    """The workspace's team, for the diagnostics' at-risk load (None without a team file)."""
    if ws.team_path is None or not ws.team_path.is_file():
        return None
    return load_team(ws.team_path, model)[0]


def _configured_channels(ws: Workspace) -> list[str]:
    d = ws.config.delivery
    return [name for name in ("webhook", "slack", "email") if getattr(d, name) is not None]


def _plan_input(rows: dict[str, dict[str, Any]]) -> pa.Table:
    cols = PLAN_INPUT_COLUMNS
    return pa.table(
        {c: [r.get(c) for r in rows.values()] for c in cols},
        schema=pa.schema(
            [
                (c, pa.date32() if c in ("contract_start", "renewal_date") else pa.string())
                for c in cols
            ]
        ),
    )


def _existing_touchpoints(store: Store, since: dt.date) -> pa.Table:
    """Stored touchpoints from ``since`` on: what the weekly cap must count."""
    with store.transaction() as s:
        found = s.execute(
            select(
                Touchpoint.account_id, Touchpoint.key, Touchpoint.due,
                Touchpoint.automated, Touchpoint.status, Touchpoint.reason,
            ).where(Touchpoint.due >= since)
        ).all()  # fmt: skip
    return pa.table(
        {
            "account_id": pa.array([r[0] for r in found], pa.string()),
            "key": pa.array([r[1] for r in found], pa.string()),
            "due": pa.array([r[2] for r in found], pa.date32()),
            "automated": pa.array([r[3] for r in found], pa.bool_()),
            "status": pa.array([r[4] for r in found], pa.string()),
            "reason": pa.array([r[5] for r in found], pa.string()),
        }
    )


def _start_run(store: Store, engine: Engine, as_of: dt.date, folder: Path | str) -> int:
    """Record the run as ``running`` before anything else happens."""
    with store.transaction() as s:
        run = Run(
            as_of=as_of,
            status="running",
            model_name=engine.model.name,
            model_hash=engine.hash,
            data_path=str(folder),
            changes={},
        )
        s.add(run)
        s.flush()
        return run.id


def _forget_run(store: Store, run_id: int) -> None:
    """Remove the record of a run refused before it wrote anything."""
    with store.transaction() as s:
        s.execute(delete(RunChange).where(RunChange.run_id == run_id))
        s.execute(delete(Run).where(Run.id == run_id))


def _fail_run(store: Store, run_id: int, exc: Exception, started: float) -> None:
    """Mark a run ``failed`` with its error (the state it wrote so far is consistent)."""
    with store.transaction() as s:
        run = s.get(Run, run_id)
        if run is not None:
            run.status = "failed"
            run.error = f"{type(exc).__name__}: {exc}"[:4000]
            run.finished_at = utcnow()
            run.seconds = round(time.perf_counter() - started, 3)


# A run may lose this many previously decided accounts without question; more
# looks like a partial export, and closing their work would be wrong.
MISSING_ACCOUNTS_LIMIT = (10, 0.05)


def _publish(staging: Path, final: Path, result: RunResult) -> None:
    """Put a successful run's files where the day's files go, replacing an earlier run's."""
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    result.files = {k: final / v.name for k, v in result.files.items()}
    (final / "run.json").write_text(json.dumps(run_record(result), indent=2, default=str))


def _check_missing_accounts(
    store: Store, tables: Mapping[str, ir.Table], as_of: dt.date, *, allow: bool
) -> None:
    """Stop when the data lacks many accounts the previous run decided (not churned: absent)."""
    if allow:
        return
    with store.transaction() as s:
        last = s.scalar(select(func.max(Snapshot.as_of)).where(Snapshot.as_of < as_of))
        if last is None:
            return
        before = set(s.scalars(select(Snapshot.account_id).where(Snapshot.as_of == last)))
    present = set(tables["accounts"].select("account_id").to_pyarrow()["account_id"].to_pylist())
    missing = sorted(before - present)
    limit = max(MISSING_ACCOUNTS_LIMIT[0], MISSING_ACCOUNTS_LIMIT[1] * len(before))
    if len(missing) > limit:
        raise TouchmodelError(
            f"accounts: {len(missing):,} of the {len(before):,} accounts decided on {last} are "
            f"missing from the data (e.g. {', '.join(missing[:3])}) -- a partial export? Nothing "
            "was changed; run again with --allow-missing-accounts to close their work"
        )


def _record(
    ws: Workspace,
    store: Store,
    engine: Engine,
    result: RunResult,
    run_id: int,
    step: Progress,
    started: float,
    notes: Sequence[str] = (),
) -> DayResult:
    as_of = result.as_of
    model = engine.model
    rows = _snapshot_rows(result)
    ids = sorted(rows)
    channels = _configured_channels(ws)
    step("assigning books")
    books = _plan_books(ws, store, model, rows, as_of)
    owners = {a: x.csm for a, x in books.assignments.items() if x.csm is not None}
    migrations_by_account: dict[str, list[MigrationTask]] = {}
    for task in books.migrations:
        migrations_by_account.setdefault(task.account_id, []).append(task)
    step("planning touchpoints")
    # The whole ISO week of as_of counts towards the weekly cap of automated messages.
    week_start = as_of - dt.timedelta(days=as_of.weekday())
    plan = plan_touchpoints(
        model, _plan_input(rows), as_of, existing=_existing_touchpoints(store, week_start)
    )
    plan_by_account: dict[str, list[dict[str, Any]]] = {}
    for prow in plan.to_pylist():
        plan_by_account.setdefault(prow["account_id"], []).append(prow)
    window_end = as_of + dt.timedelta(days=model.cadences.horizon_days)
    emails = primary_emails(result.tables)
    names = {a: r.get("name") or a for a, r in rows.items()}
    totals: dict[str, int] = {
        "snapshots_written": 0, "book_changes": 0, "migration_items_created": 0,
        "notifications_queued": 0,
    }  # fmt: skip
    sync_total = SyncResult()
    touch_total = TouchpointSync()
    step(f"recording {len(ids):,} accounts")
    for chunk in _chunks(ids, ws.config.chunk_size):
        with store.transaction() as s:
            chunk_rows = [rows[a] for a in chunk]
            totals["snapshots_written"] += write_snapshots(
                s, chunk_rows, as_of=as_of, run_id=run_id, model_hash=engine.hash
            )
            fired = [
                Fired(r["account_id"], trig, route, _context(r))
                for r in chunk_rows
                for trig, route in zip(_split(r["triggers"]), _split(r["routes"]), strict=True)
            ]
            totals["book_changes"] += write_assignments(
                s, {a: books.assignments[a] for a in chunk if a in books.assignments},
                as_of=as_of, run_id=run_id,
            )  # fmt: skip
            synced = sync_trigger_items(
                s, model, as_of=as_of, account_ids=chunk, fired=fired, owners=owners, run_id=run_id
            )
            moved = add_migration_items(
                s, [t for a in chunk for t in migrations_by_account.get(a, [])],
                as_of=as_of, run_id=run_id,
            )  # fmt: skip
            totals["migration_items_created"] += len(moved)
            synced.created += moved
            totals["notifications_queued"] += _notify(s, synced, channels)
            _merge(sync_total, synced)
            touch_total.add(
                sync_touchpoints(
                    s,
                    as_of=as_of,
                    window_end=window_end,
                    account_ids=chunk,
                    plan=plan_by_account,
                    owners=owners,
                    names=names,
                    emails=emails,
                    channels=channels,
                )
            )
    with store.transaction() as s:
        decided = set(ids)
        gone = sorted(_with_open_state(s) - decided)
        why = f"no decision on {as_of}: not a customer (churned, not started, or not in the data)"
        totals["book_changes"] += release_gone(s, decided, as_of=as_of, run_id=run_id)
        synced = sync_trigger_items(
            s, model, as_of=as_of, account_ids=gone, fired=[], owners=owners, run_id=run_id,
            gone_reason=why,
        )  # fmt: skip
        synced.auto_closed += sync_migration_items(s, as_of=as_of, gone=gone, gone_reason=why)
        touch_total.cancelled += cancel_planned(s, gone, as_of=as_of, reason=why)
        totals["notifications_queued"] += _notify(s, synced, channels)
        _merge(sync_total, synced)
        totals.update(sync_total.counts())
        # Value the open at-risk items and mark those beyond the team's weekly time.
        totals.update(staff_open_items(s, model, result, ws.team_path))
        totals.update(touch_total.counts())
        # A run killed earlier for this date never finished; this one supersedes it.
        s.execute(
            update(Run)
            .where(Run.as_of == as_of, Run.status == "running", Run.id != run_id)
            .values(status="abandoned")
        )
        run_row = s.get(Run, run_id)
        assert run_row is not None
        run_row.status = "completed"
        run_row.accounts = result.decisions.num_rows
        run_row.input_counts = dict(result.counts)
        run_row.rejects = dict(result.rejects)
        run_row.excluded = dict(result.excluded)
        run_row.finished_at = utcnow()
        run_row.seconds = round(time.perf_counter() - started, 3)
        run_row.changes = totals
        run_row.warnings = [*books.warnings, *notes]
        run_row.diagnostics = None if result.diagnostics is None else result.diagnostics.as_dict()
        prune_journals(s, UNDO_DEPTH)
    return DayResult(
        run_id=run_id,
        result=result,
        changes=totals,
        warnings=[*books.warnings, *notes],
        book_warnings=len(books.warnings),
    )


def _plan_books(
    ws: Workspace, store: Store, model: TouchModel, rows: dict[str, dict[str, Any]], as_of: dt.date
) -> BookPlan:
    """Books for this run, planned from the state as it was before ``as_of``."""
    owners = (
        load_book_owners(ws.team_path, model) if ws.team_path and ws.team_path.is_file() else []
    )
    with store.transaction() as s:
        assigned = {a.account_id: (a.csm, a.tier) for a in s.scalars(select(Assignment))}
        before = previous_tiers(s, as_of)
    current: dict[str, tuple[str | None, str]] = {
        a: (assigned.get(a, (None, tier))[0], tier) for a, tier in before.items()
    }
    for a, (csm, tier) in assigned.items():
        current.setdefault(a, (csm, tier))
    accounts = [
        {"account_id": a, "tier": r["tier"], "crm_csm": r.get("csm")} for a, r in rows.items()
    ]
    return assign_books(accounts, current, owners, model)


def _notify(session: Session, synced: SyncResult, channels: list[str]) -> int:
    return notify_items(session, synced.created, event="created", channels=channels) + notify_items(
        session, synced.auto_closed, event="auto_closed", channels=channels
    )


def _with_open_state(session: Session) -> set[str]:
    """Accounts with open or snoozed items, planned touchpoints, or a book."""
    return (
        set(session.scalars(select(WorkItem.account_id).where(WorkItem.status != "closed")))
        | set(session.scalars(select(Touchpoint.account_id).where(Touchpoint.status == "planned")))
        | set(session.scalars(select(Assignment.account_id)))
    )


def _merge(total: SyncResult, part: SyncResult) -> None:
    total.created += part.created
    total.woken += part.woken
    total.auto_closed += part.auto_closed
    total.cooled_down += part.cooled_down
    total.snoozed_skipped += part.snoozed_skipped

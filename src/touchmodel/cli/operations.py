"""Operations commands: init a workspace, the work queue, runs and account history."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from touchmodel.cli._common import CliApp, parse_as_of, user_errors
from touchmodel.model.loader import DEFAULT_PRESET, PRESETS
from touchmodel.state.db import Store
from touchmodel.workspace import Workspace

console = Console()

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help="Workspace folder (default: the current one or a parent)."
    ),
]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who does it (default: your login name).")]
OnOpt = Annotated[
    str | None, typer.Option("--on", help="The day it counts as done (YYYY-MM-DD; default today).")
]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why: kept in the item's history.")]


@contextmanager
def open_store(workspace: Path | None) -> Iterator[tuple[Workspace, Store]]:
    """The workspace and its state database, closed afterwards."""
    from touchmodel.workspace import require_workspace

    ws = require_workspace(workspace)
    store = Store(ws.state_url, migrate=False)
    try:
        yield ws, store
    finally:
        store.close()


@contextmanager
def _store(workspace: Path | None) -> Iterator[Store]:
    with open_store(workspace) as (_ws, store):
        yield store


def _actor(by: str | None) -> str:
    if by:
        return by
    try:
        return getpass.getuser()
    except OSError:
        return "cli"


def register(app: typer.Typer) -> None:
    """Add the operations commands to the main app."""
    app.command("init")(init)
    app.command("tasks")(tasks)
    app.command("task")(task)
    app.command("snooze")(snooze)
    app.command("close")(close)
    app.command("reopen")(reopen)
    runs_app = CliApp(invoke_without_command=True)
    runs_app.callback()(runs)
    runs_app.command("undo")(runs_undo)
    app.add_typer(runs_app, name="runs")
    app.command("history")(history)
    app.command("migrations")(migrations)
    app.command("touchpoints")(touchpoints)
    app.command("books")(books)
    app.command("rebalance")(rebalance)
    from touchmodel.cli.outbox import outbox_app

    app.add_typer(outbox_app, name="outbox")
    db_app = CliApp(help="The workspace's state database.", no_args_is_help=True)
    db_app.command("upgrade")(db_upgrade)
    app.add_typer(db_app, name="db")


@user_errors
def init(
    folder: Annotated[Path, typer.Argument(help="Folder to create the workspace in.")],
    preset: Annotated[
        str, typer.Option(help=f"Touch model to start from: {', '.join(PRESETS)}.")
    ] = DEFAULT_PRESET,
    state: Annotated[
        str | None,
        typer.Option(help="State database URL (default: SQLite file state.db in the workspace)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Rewrite an existing touchmodel.yaml.")] = False,
) -> None:
    """Create a workspace: touchmodel.yaml, model.yaml, team.yaml, data/, and the state database."""
    from touchmodel.workspace import init_workspace, workspace_summary

    ws = init_workspace(folder, preset=preset, state=state, force=force)
    console.print(f"Created workspace {ws.root}")
    for key, value in workspace_summary(ws).items():
        console.print(f"  {key:10} {value}", soft_wrap=True, highlight=False)
    console.print(
        f"Next: put accounts.csv (and usage_events, tickets, ...) in {ws.data_path}, then\n"
        f"  cd {folder} && touchmodel run --as-of {dt.date.today()}\n  touchmodel tasks",
        soft_wrap=True,
        highlight=False,
    )


@user_errors
def tasks(
    owner: Annotated[
        str | None, typer.Option("--owner", help="Only this owner's items (any case).")
    ] = None,
    status: Annotated[str, typer.Option("--status", help="open, snoozed, closed or all.")] = "open",
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    trigger: Annotated[str | None, typer.Option("--trigger", help="Only this trigger id.")] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", min=1, help="At most this many (default: 50 shown, all in --json)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (a list of items).")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """The work queue: what to do, for whom, by when, and why (most ARR kept, then most urgent, first)."""
    from touchmodel.cli.ops_render import render_tasks
    from touchmodel.errors import TouchmodelError
    from touchmodel.ops.workitems import item_record, list_items

    if status not in ("open", "snoozed", "closed", "all"):
        raise TouchmodelError(
            f"--status: value {status!r} -- expected open, snoozed, closed or all"
        )
    with _store(workspace) as store, store.transaction() as s:
        items = list_items(s, status=status, owner=owner, account_id=account, trigger=trigger)
        records = [item_record(i) for i in items]
    if as_json:
        typer.echo(json.dumps(records[:limit] if limit else records, indent=2))
    else:
        render_tasks(console, records[: limit or 50], status, total=len(records))


@user_errors
def task(
    item_id: Annotated[int, typer.Argument(help="Work item id (see `touchmodel tasks`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """One work item and its history: created, snoozed, woken, closed, reopened, reassigned."""
    from touchmodel.cli.ops_render import render_task
    from touchmodel.ops.workitems import get_item, item_history, item_record

    with _store(workspace) as store, store.transaction() as s:
        record = item_record(get_item(s, item_id))
        record["history"] = item_history(s, item_id)
    if as_json:
        typer.echo(json.dumps(record, indent=2))
    else:
        render_task(console, record)


def _act(workspace: Path | None, action: str, item_id: int, **kwargs: object) -> None:
    from touchmodel.ops import workitems

    with _store(workspace) as store, store.transaction() as s:
        item = getattr(workitems, action)(s, item_id, **kwargs)
        record = workitems.item_record(item)
    console.print(
        f"work item {record['id']} ({record['account_id']}, {record['trigger']}): {record['status']}"
        + (f" until {record['snoozed_until']}" if record["snoozed_until"] else ""),
        highlight=False,
    )


@user_errors
def snooze(
    item_id: Annotated[int, typer.Argument(help="Work item id (see `touchmodel tasks`).")],
    until: Annotated[str, typer.Option("--until", help="Snooze until this date (YYYY-MM-DD).")],
    reason: ReasonOpt,
    by: ByOpt = None,
    on: OnOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Snooze a work item: its trigger stops firing for the account until the date."""
    try:
        until_date = dt.date.fromisoformat(until)
    except ValueError:
        from touchmodel.errors import TouchmodelError

        raise TouchmodelError(
            f"--until: value {until!r} -- expected a date like 2026-12-01"
        ) from None
    _act(
        workspace,
        "snooze",
        item_id,
        until=until_date,
        reason=reason,
        actor=_actor(by),
        today=parse_as_of(on, "--on"),
    )


@user_errors
def close(
    item_id: Annotated[int, typer.Argument(help="Work item id (see `touchmodel tasks`).")],
    reason: ReasonOpt,
    by: ByOpt = None,
    on: OnOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Close a work item with a reason (its trigger's cooldown starts)."""
    _act(
        workspace, "close", item_id, reason=reason, actor=_actor(by), today=parse_as_of(on, "--on")
    )


@user_errors
def reopen(
    item_id: Annotated[
        int, typer.Argument(help="Work item id (see `touchmodel tasks --status closed`).")
    ],
    reason: ReasonOpt,
    by: ByOpt = None,
    on: OnOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Reopen a closed work item."""
    _act(
        workspace, "reopen", item_id, reason=reason, actor=_actor(by), today=parse_as_of(on, "--on")
    )


@user_errors
def runs(
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many runs.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOpt = None,
    *,
    ctx: typer.Context,
) -> None:
    """Recorded runs, newest first: date, status, model version, inputs, changes, duration."""
    if ctx.invoked_subcommand is not None:
        return  # `runs undo`
    from sqlalchemy import select

    from touchmodel.cli.ops_render import render_runs, run_record
    from touchmodel.state.tables import Run

    with _store(workspace) as store, store.transaction() as s:
        records = [
            run_record(r) for r in s.scalars(select(Run).order_by(Run.id.desc()).limit(limit))
        ]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    else:
        render_runs(console, records)


@user_errors
def runs_undo(
    run_id: Annotated[
        int | None,
        typer.Argument(help="The run to undo (default: the latest); it must be the latest."),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Undo the latest run: remove the work items, touchpoints and unsent messages it added,
    put back what it changed (closed items, books, cooldowns, snapshots).

    Refuses, changing nothing, when a message of the run was sent or a user
    changed one of its rows since. Run it again to undo the run before.
    """
    from touchmodel.ops.run_journal import undo_latest_run

    with open_store(workspace) as (ws, store):
        done = undo_latest_run(store, run_id=run_id)
    parts = [f"removed {n:,} {t.replace('_', ' ')}" for t, n in sorted(done.removed.items())]
    parts += [f"restored {n:,} {t.replace('_', ' ')}" for t, n in sorted(done.restored.items())]
    console.print(
        f"Run {done.run_id} ({done.as_of}) undone: {', '.join(parts) or 'it had changed nothing'}. "
        f"Its decision files in {ws.out_dir(done.as_of.isoformat())} were left in place.",
        soft_wrap=True,
        highlight=False,
    )


@user_errors
def history(
    account_id: Annotated[str, typer.Argument(help="An account id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """One account over time: tier, touch level, health and triggers per run date."""
    from touchmodel.cli.ops_render import render_history, snapshot_record
    from touchmodel.errors import TouchmodelError
    from touchmodel.ops.snapshots import history as account_history

    with _store(workspace) as store, store.transaction() as s:
        records = [snapshot_record(x) for x in account_history(s, account_id)]
    if not records:
        raise TouchmodelError(f"account {account_id!r}: no recorded decisions in this workspace")
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    else:
        render_history(console, account_id, records)


@user_errors
def touchpoints(
    owner: Annotated[
        str | None, typer.Option("--owner", help="Only this owner's touchpoints.")
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    status: Annotated[
        str, typer.Option("--status", help="planned, queued, skipped, cancelled or all.")
    ] = "planned",
    due_by: Annotated[
        str | None, typer.Option("--due-by", help="Due on or before this date (YYYY-MM-DD).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="At most this many (default: all).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Scheduled touchpoints from the cadences: calls, reviews and automated messages."""
    from sqlalchemy import func, select

    from touchmodel.cli.ops_render import render_touchpoints
    from touchmodel.ops.touchpoints import touchpoint_record
    from touchmodel.state.tables import Touchpoint

    q = select(Touchpoint).order_by(Touchpoint.due, Touchpoint.account_id, Touchpoint.key)
    if status != "all":
        q = q.where(Touchpoint.status == status)
    if owner:
        q = q.where(func.lower(Touchpoint.owner) == owner.lower())  # as `tasks --owner`
    if account:
        q = q.where(Touchpoint.account_id == account)
    if due_by:
        q = q.where(Touchpoint.due <= parse_as_of(due_by, "--due-by"))
    if limit:
        q = q.limit(limit)
    with _store(workspace) as store, store.transaction() as s:
        records = [touchpoint_record(t) for t in s.scalars(q)]
    if as_json:
        typer.echo(json.dumps(records, indent=2))
    else:
        render_touchpoints(console, records)


@user_errors
def books(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Each CSM's book per tier against its cap (from team.yaml and the tier ratios)."""
    from touchmodel.cli.ops_render import render_books
    from touchmodel.ops.rebalance import book_loads

    with open_store(workspace) as (ws, store), store.transaction() as s:
        rows = book_loads(ws, s)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    else:
        render_books(console, rows)


@user_errors
def rebalance(
    apply: Annotated[bool, typer.Option("--apply", help="Make the proposed moves.")] = False,
    on: OnOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Propose moves from over-cap books to CSMs of the same tier with room; --apply makes them."""
    from touchmodel.cli.ops_render import render_moves
    from touchmodel.ops.rebalance import apply_moves, book_loads, propose

    with open_store(workspace) as (ws, store):
        with store.transaction() as s:
            moves = propose(ws, s)
            over = [r for r in book_loads(ws, s) if r["over_cap"]]
        if apply and moves:
            with store.transaction() as s:
                apply_moves(s, moves, on=parse_as_of(on, "--on"))
    render_moves(console, moves, applied=apply, over_cap=over)


@user_errors
def migrations(
    since: Annotated[
        str | None, typer.Option("--since", help="Only moves on or after this date (YYYY-MM-DD).")
    ] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Tier migrations: accounts whose tier changed between two recorded runs."""
    from touchmodel.cli.ops_render import render_migrations
    from touchmodel.ops.snapshots import tier_migrations

    with _store(workspace) as store, store.transaction() as s:
        moves = tier_migrations(
            s, since=parse_as_of(since, "--since") if since else None, account_id=account
        )
    if as_json:
        typer.echo(json.dumps(moves, indent=2))
    else:
        render_migrations(console, moves)


@user_errors
def db_upgrade(workspace: WorkspaceOpt = None) -> None:
    """Migrate the state database to this touchmodel's schema (runs do it by themselves)."""
    from touchmodel.state.db import current_revision, head_revision, safe_url
    from touchmodel.workspace import require_workspace

    ws = require_workspace(workspace)
    store = Store(ws.state_url)  # migrates on open
    try:
        console.print(
            f"{safe_url(ws.state_url)}: schema {current_revision(store.engine)} "
            f"(newest {head_revision()})",
            highlight=False,
            soft_wrap=True,
        )
    finally:
        store.close()

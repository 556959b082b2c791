"""``touchmodel outbox``: see, deliver and retry queued messages (dead letters included)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from touchmodel.cli._common import CliApp, user_errors
from touchmodel.cli.operations import WorkspaceOpt, open_store

console = Console()
outbox_app = CliApp(
    help="Queued messages: list, dispatch, retry dead letters.", no_args_is_help=True
)


@outbox_app.command("list")
@user_errors
def list_(
    status: Annotated[
        str | None, typer.Option("--status", help="pending, sent or dead (default: all).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="At most this many messages, newest first.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Messages newest first, with their attempts and last error; totals by status."""
    from touchmodel.errors import TouchmodelError
    from touchmodel.ops.outbox import list_messages, status_counts

    if status not in (None, "pending", "sent", "dead"):
        raise TouchmodelError(f"--status: value {status!r} -- expected pending, sent or dead")
    with open_store(workspace) as (_ws, store):
        messages = list_messages(store, status=status, limit=limit)
        counts = status_counts(store)
    records: list[dict[str, Any]] = [
        {
            "id": m.id, "channel": m.channel, "topic": m.topic, "recipient": m.recipient,
            "status": m.status, "attempts": m.attempts, "idempotency_key": m.idempotency_key,
            "last_error": m.last_error, "created_at": m.created_at.isoformat(),
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
        }
        for m in messages
    ]  # fmt: skip
    if as_json:
        typer.echo(json.dumps({"counts": counts, "messages": records}, indent=2))
        return
    console.print(
        "Outbox: " + (", ".join(f"{n:,} {s}" for s, n in sorted(counts.items())) or "empty")
    )
    if not records:
        return
    table = Table()
    for col in ("id", "channel", "topic", "to", "status", "attempts", "last error"):
        table.add_column(col, overflow="fold")
    for r in records:
        table.add_row(
            str(r["id"]), r["channel"], r["topic"], escape(r["recipient"] or "-"), r["status"],
            str(r["attempts"]), escape(r["last_error"] or ""),
        )  # fmt: skip
    console.print(table)


@outbox_app.command("dispatch")
@user_errors
def dispatch_(
    wait: Annotated[
        bool, typer.Option("--wait", help="Keep retrying (with backoff) until nothing is pending.")
    ] = False,
    max_seconds: Annotated[
        float, typer.Option("--max-seconds", min=0, help="With --wait: give up after this long.")
    ] = 600.0,
    workspace: WorkspaceOpt = None,
) -> None:
    """Deliver every pending message that is due (runs do one pass by themselves)."""
    from touchmodel.cli.ops_render import render_dispatch
    from touchmodel.ops.outbox import dispatch

    with open_store(workspace) as (ws, store):
        report = dispatch(
            store,
            ws.config.delivery,
            templates_dir=ws.templates_dir,
            wait=wait,
            max_seconds=max_seconds,
        )
    render_dispatch(console, report)


@outbox_app.command("retry")
@user_errors
def retry(
    ids: Annotated[
        list[int] | None, typer.Argument(help="Message ids (default: every dead one).")
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Put dead-lettered messages back in the queue (after fixing what made them fail)."""
    from touchmodel.ops.outbox import retry_dead

    with open_store(workspace) as (_ws, store):
        n = retry_dead(store, ids or None)
    console.print(
        f"{n} dead message(s) back to pending; deliver with `touchmodel outbox dispatch`."
    )

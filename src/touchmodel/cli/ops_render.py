"""Rich rendering of the operations commands: the queue, runs, history, a day's changes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from touchmodel.ops.books import Move
from touchmodel.ops.daily import DayResult
from touchmodel.ops.outbox import DispatchReport
from touchmodel.state.tables import Run, Snapshot


def render_tasks(
    console: Console,
    records: list[dict[str, Any]],
    status: str,
    total: int | None = None,
    *,
    heading: bool = True,
) -> None:
    """The work queue, one block per item: what, for whom, by when, and why.

    Blocks rather than a table: the why is a sentence, and a table folds it
    into a column a few characters wide on a normal terminal.
    """
    if not records:
        console.print(f"No work items ({status}).")
        return
    total = len(records) if total is None else total
    shown = f" (the first {len(records)}; --limit N for more)" if total > len(records) else ""
    if heading:
        console.print(f"[bold]Work items ({status}): {total:,}{shown}[/bold]")
    colour = {"urgent": "red", "high": "yellow", "normal": "default"}
    for r in records:
        head = (
            f"[bold]#{r['id']}[/bold] [{colour.get(r['priority'], 'default')}]{r['priority']}"
            f"[/] due {r['due']}  {escape(r['account_id'])}  {escape(r['trigger'])}  "
            f"owner {escape(r['owner'])}  [dim]{r['status']}[/dim]"
        )
        if r["snoozed_until"]:
            head += f" until {r['snoozed_until']} ({escape(r['snooze_reason'] or '')})"
        if r.get("expected_arr_kept") is not None:
            head += f"  keeps ~${r['expected_arr_kept']:,.0f}"
        if r.get("over_capacity"):
            head += "  [yellow]over capacity this week[/yellow]"
        console.print(head, soft_wrap=True, highlight=False)
        console.print(f"    {escape(r['action'])}", soft_wrap=True, highlight=False)
        why = r["why"] if r["status"] != "closed" else f"closed: {r['close_reason']}"
        console.print(f"    [dim]why:[/dim] {escape(why)}", soft_wrap=True, highlight=False)


def run_record(run: Run) -> dict[str, Any]:
    """A recorded run as JSON-able data."""
    return {
        "id": run.id,
        "as_of": run.as_of.isoformat(),
        "status": run.status,
        "model": run.model_name,
        "model_hash": run.model_hash,
        "accounts": run.accounts,
        "input_rows": run.input_counts,
        "rejects": run.rejects,
        "changes": run.changes,
        "seconds": run.seconds,
        "warnings": run.warnings,
        "error": run.error,
        "started_at": run.started_at.isoformat(),
    }


# Counted in a run record, but not changes: triggers held back by a cooldown or a snooze.
# Counts a run reports that are not changes: held back, or the queue's state.
HELD_BACK = (
    "work_items_in_cooldown",
    "work_items_snoozed",
    "at_risk_items_valued",
    "at_risk_items_over_capacity",
)


def _changed(changes: dict[str, Any]) -> bool:
    return any(v for k, v in changes.items() if k not in HELD_BACK)


LABELS = {
    "work_items_in_cooldown": "triggers held back by a cooldown",
    "work_items_snoozed": "triggers held back by a snooze",
    "at_risk_items_valued": "open at-risk items valued",
    "at_risk_items_over_capacity": "over this week's outreach capacity",
}


def _changes_text(changes: dict[str, Any]) -> str:
    done = [
        f"{LABELS.get(k, k.replace('_', ' '))} {v:,}"
        for k, v in changes.items()
        if isinstance(v, int) and v
    ]
    return ", ".join(done) if _changed(changes) else "nothing changed"


def render_runs(console: Console, records: list[dict[str, Any]]) -> None:
    """Recorded runs, newest first, one block each (the changes are a sentence)."""
    if not records:
        console.print("No runs recorded yet: `touchmodel run --data DATA --as-of DATE`.")
        return
    for r in records:
        colour = {"completed": "green", "running": "yellow"}.get(r["status"], "red")
        console.print(
            f"[bold]#{r['id']}[/bold] as of {r['as_of']}  [{colour}]{r['status']}[/]  "
            f"model {escape(r['model'])} ({r['model_hash'][:8]})  {r['accounts']:,} accounts  "
            f"{r['seconds'] or 0:.1f} s",
            soft_wrap=True,
            highlight=False,
        )
        console.print(f"    {_changes_text(r['changes'])}", soft_wrap=True, highlight=False)
        if r.get("error"):
            console.print(f"    [red]error:[/red] {escape(r['error'])}", soft_wrap=True)
        for warning in r.get("warnings") or []:
            console.print(f"    [yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)


def snapshot_record(s: Snapshot) -> dict[str, Any]:
    """One account's snapshot on one date as JSON-able data."""
    return {
        "as_of": s.as_of.isoformat(),
        "tier": s.tier,
        "touch_level": s.touch_level,
        "lifecycle_stage": s.lifecycle_stage,
        "level_reasons": s.level_reasons,
        "health_score": s.health_score,
        "health_grade": s.health_grade,
        "health_top_factor": s.health_top_factor,
        "triggers": s.triggers,
        "arr": s.arr,
    }


def render_history(console: Console, account_id: str, records: list[dict[str, Any]]) -> None:
    """An account's decisions over time."""
    table = Table(title=f"History of {account_id}")
    for col in ("as of", "tier", "level", "stage", "health", "triggers", "why this level"):
        table.add_column(col, overflow="fold")
    for r in records:
        health = (
            "-" if r["health_score"] is None else f"{r['health_score']:.0f} {r['health_grade']}"
        )
        table.add_row(
            r["as_of"], r["tier"], r["touch_level"], r["lifecycle_stage"], health,
            r["triggers"] or "-", r["level_reasons"] or "tier level",
        )  # fmt: skip
    console.print(table)


def render_day(console: Console, day: DayResult) -> None:
    """What a workspace run changed in the state (or, dry, would have changed)."""
    if day.dry_run:
        console.print(
            "Dry run: nothing was written (state, files and messages are as they were). "
            f"The run would make: {_changes_text(day.changes)}.",
            soft_wrap=True,
            highlight=False,
        )
    elif not _changed(day.changes):
        console.print(f"State: run {day.run_id} recorded; nothing changed (already up to date).")
    else:
        console.print(
            f"State: run {day.run_id} recorded: {_changes_text(day.changes)}.",
            soft_wrap=True,
            highlight=False,
        )
    # Books over cap can be many (one per CSM): shown up to 5, the rest in `books`.
    # Every other warning (ingested events without an account, ...) is always shown.
    books = day.warnings[: day.book_warnings]
    others = day.warnings[day.book_warnings :]
    shown = 5
    for warning in [*others, *books[:shown]]:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    if len(books) > shown:
        console.print(
            f"[yellow]warning:[/yellow] {len(books) - shown} more books over cap; "
            "see `touchmodel books` (all warnings: `touchmodel runs --json`)",
            soft_wrap=True,
        )
    if day.delivery is not None:
        render_dispatch(console, day.delivery)


def render_dispatch(console: Console, report: DispatchReport) -> None:
    """One line on delivery, plus why any channel could not be used."""
    console.print(
        f"Delivery: {report.sent} sent, {report.retrying} to retry, {report.dead} dead-lettered, "
        f"{report.pending} pending"
        + (
            f" (next attempt {report.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC)"
            if report.next_attempt_at
            else ""
        ),
        soft_wrap=True,
        highlight=False,
    )
    if report.dead:
        console.print(
            "Dead-lettered messages: `touchmodel outbox list --status dead` shows why; fix the "
            "cause, then `touchmodel outbox retry`.",
            soft_wrap=True,
        )
    for channel, why in report.unavailable.items():
        waiting = report.waiting.get(channel, 0)
        if not waiting:
            continue  # a channel nobody uses need not be configured
        console.print(
            f"[yellow]warning:[/yellow] {channel}: {escape(why)} ({waiting} waiting)",
            soft_wrap=True,
        )


def render_touchpoints(console: Console, records: list[dict[str, Any]]) -> None:
    """Touchpoints by due date."""
    if not records:
        console.print("No touchpoints.")
        return
    table = Table(title=f"Touchpoints: {len(records)}")
    for col in ("due", "account", "touchpoint", "channel", "owner", "status"):
        table.add_column(col, overflow="fold")
    for r in records:
        status = r["status"] + (f": {r['reason']}" if r["reason"] else "")
        table.add_row(
            r["due"], r["account_id"], escape(r["title"]),
            r["channel"] + (" (auto)" if r["automated"] else ""), escape(r["owner"]), escape(status),
        )  # fmt: skip
    console.print(table)


def render_books(console: Console, rows: list[dict[str, Any]]) -> None:
    """Books against caps; over-cap ones in red with a warning line."""
    table = Table(title="CSM books")
    for col in ("csm", "tier", "accounts", "cap", "load"):
        table.add_column(col, justify="right" if col in ("accounts", "cap", "load") else "left")
    for r in rows:
        load = f"{r['accounts'] / r['cap']:.0%}" if r["cap"] else "-"
        style = "red" if r["over_cap"] else None
        table.add_row(
            escape(r["csm"]), r["tier"], f"{r['accounts']:,}", f"{r['cap']:g}", load, style=style
        )
    console.print(table)
    for r in rows:
        if r["over_cap"]:
            console.print(
                f"[yellow]warning:[/yellow] {escape(r['csm'])} holds {r['accounts']} {r['tier']} "
                f"accounts, cap {r['cap']:g}: see `touchmodel rebalance`",
                soft_wrap=True,
            )


def render_task(console: Console, r: dict[str, Any]) -> None:
    """One work item, then its history."""
    render_tasks(console, [r], r["status"], heading=False)
    for e in r["history"]:
        console.print(
            f"    {e['on']}  {e['action']:<11} {escape(e['by'])}: {escape(e['reason'])}",
            soft_wrap=True,
            highlight=False,
        )


def render_moves(
    console: Console,
    moves: Sequence[Move],
    *,
    applied: bool,
    over_cap: Sequence[dict[str, Any]] = (),
) -> None:
    """Proposed (or applied) rebalance moves; without any, why not."""
    if not moves:
        if not over_cap:
            console.print("No moves: every book is within its cap.")
            return
        tiers = sorted({r["tier"] for r in over_cap})
        console.print(
            f"No moves: {len(over_cap)} book(s) over cap in tier(s) {', '.join(tiers)}, and no "
            "CSM covering those tiers has room. Hire (see `touchmodel plan`), add CSMs to the "
            "tier in team.yaml, or raise the tier's accounts_per_csm.",
            soft_wrap=True,
        )
        return
    table = Table(title=f"{'Applied' if applied else 'Proposed'} moves: {len(moves)}")
    for col in ("account", "tier", "from", "to", "why"):
        table.add_column(col, overflow="fold")
    for m in moves:
        table.add_row(m.account_id, m.tier, escape(m.from_csm), escape(m.to_csm), escape(m.reason))
    console.print(table)
    if not applied:
        console.print("Run `touchmodel rebalance --apply` to make these moves.")


def render_migrations(console: Console, moves: list[dict[str, Any]]) -> None:
    """Tier migrations between runs."""
    if not moves:
        console.print("No tier migrations recorded.")
        return
    table = Table(title=f"Tier migrations: {len(moves)}")
    for col in ("on", "account", "tier", "touch level", "ARR", "previous run"):
        table.add_column(col, overflow="fold")
    for m in moves:
        table.add_row(
            m["on"], m["account_id"], f"{m['from_tier']} -> {m['to_tier']}",
            f"{m['from_level']} -> {m['to_level']}",
            "-" if m["arr"] is None else f"${m['arr']:,.0f}", m["previous_run"] or "-",
        )  # fmt: skip
    console.print(table)

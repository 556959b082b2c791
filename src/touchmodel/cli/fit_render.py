"""Rich rendering of the at-risk staffing (``plan``) and of a what-if (``whatif``)."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from touchmodel.fit.allocate import CURVE, PROXY, NextCsm, Staffing
from touchmodel.fit.whatif import WhatIf, format_change, format_measure


def _hours(minutes: float) -> str:
    return f"{minutes / 60:,.1f} h"


def render_staffing(
    console: Console, staffing: Staffing, more: NextCsm | None, csm_cost: float, top: int = 5
) -> None:
    """This week's at-risk work against the team's outreach time, and what one more CSM keeps."""
    console.print()
    console.print("[bold]At-risk work this week[/bold]")
    n = staffing.items.num_rows
    if n == 0:
        console.print("  No risk trigger fired: no at-risk work.")
        return
    console.print(
        f"  {n:,} at-risk work items need {_hours(staffing.minutes_needed)} of CSM time; "
        + (
            "no team file, so no capacity to compare (--team)."
            if staffing.capacity_minutes is None
            else f"the team has {_hours(staffing.capacity_minutes)} a week for outreach."
        ),
        highlight=False,
        soft_wrap=True,
    )
    console.print(
        f"  Expected ARR kept by the work staffed: ${staffing.kept:,.0f}"
        + (
            f"; {staffing.over_capacity:,} items over capacity would keep ${staffing.left_over:,.0f} more."
            if staffing.over_capacity
            else "; every item fits."
        ),
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"  [dim]Risk measure: {escape(staffing.basis)}.[/dim]", soft_wrap=True)
    if staffing.basis == PROXY:
        console.print(
            "  [dim]With the health proxy these dollars rank the work; they are not a forecast.[/dim]",
            soft_wrap=True,
        )
    if more is not None:
        yearly = (
            f"; ${more.per_week * 52:,.0f} a year if every week's queue is like this one"
            if staffing.basis == CURVE
            else ""
        )
        console.print(
            f"  One more CSM ({_hours(more.minutes_per_week)} of outreach a week) would keep "
            f"${more.per_week:,.0f} more on this week's queue{yearly} "
            f"(a CSM costs ${csm_cost:,.0f} a year).",
            highlight=False,
            soft_wrap=True,
        )
    table = Table(title=f"Highest expected ARR kept (first {min(top, n)})", title_justify="left")
    for col in ("account", "trigger", "route", "min", "risk", "ARR kept", "staffed"):
        table.add_column(col, no_wrap=col != "route")
    for r in staffing.items.slice(0, top).to_pylist():
        table.add_row(
            escape(r["account_id"]),
            escape(r["trigger"]),
            escape(r["route"]),
            f"{r['minutes']:g}",
            f"{r['probability']:.2f}",
            f"${r['expected_arr_kept']:,.0f}",
            "yes" if r["staffed"] else "over capacity",
        )
    console.print(table)


def render_whatif(console: Console, result: WhatIf) -> None:
    """The changes made to the model, then every measure before -> after."""
    console.print(f"[bold]What if[/bold] ({escape(result.model)}, as of {result.as_of})")
    for c in result.changes:
        note = f"  [dim]({c.note})[/dim]" if c.note else ""
        console.print(
            f"  {escape(c.path)}: {escape(repr(c.before))} -> {escape(repr(c.after))}{note}",
            highlight=False,
            soft_wrap=True,
        )
    table = Table()
    table.add_column("measure")
    for col in ("before", "after", "change"):
        table.add_column(col, justify="right", no_wrap=True)
    for label, before, after in result.rows():
        table.add_row(
            escape(label),
            format_measure(label, before),
            format_measure(label, after),
            format_change(label, before, after),
        )
    console.print(table)
    console.print(f"[dim]At-risk value from the {escape(result.risk_basis)}.[/dim]")
    for note in result.notes:
        console.print(f"[dim]{escape(note)}[/dim]")

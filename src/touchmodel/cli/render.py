"""Rich rendering of run summaries. Presentation only: the numbers come from report.py."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from touchmodel.engine import RunResult
from touchmodel.fit.diagnostics import FINDING_LABELS, Diagnostics
from touchmodel.report import RunSummary


def _money(x: float) -> str:
    return f"${x:,.0f}"


def render_summary(console: Console, summary: RunSummary, result: RunResult) -> None:
    """Print the end-of-run summary: tiers, health, stages, triggers, inputs and files."""
    tiers = Table(
        title=f"Accounts and ARR per tier (as of {result.as_of}, model '{result.model_name}')"
    )
    for col, justify in [("tier", "left"), ("level", "left"), ("accounts", "right"),
                         ("% accounts", "right"), ("ARR", "right"), ("% ARR", "right")]:  # fmt: skip
        tiers.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in summary.tiers:
        tiers.add_row(r.tier, r.level, f"{r.accounts:,}", f"{r.share_accounts:.1%}", _money(r.arr),
                      f"{r.share_arr:.1%}")  # fmt: skip
    tiers.add_row(
        "total", "", f"{summary.accounts:,}", "100%", _money(summary.arr), "100%", style="bold"
    )
    console.print(tiers)

    health = Table(title="Health")
    health.add_column("grade")
    health.add_column("accounts", justify="right")
    for grade, n in sorted(summary.grades.items(), key=lambda kv: -kv[1]):
        health.add_row(grade, f"{n:,}")
    stages = Table(title="Lifecycle stage and touch level")
    stages.add_column("stage")
    stages.add_column("accounts", justify="right")
    for stage, n in sorted(summary.stages.items(), key=lambda kv: -kv[1]):
        stages.add_row(stage, f"{n:,}")
    for level in ("high", "medium", "low", "tech"):
        if level in summary.touch_levels:
            stages.add_row(f"touch level {level}", f"{summary.touch_levels[level]:,}", style="dim")
    console.print(health)
    q = summary.health_quartiles
    if q[0] is not None:
        console.print(
            f"Health score: min {q[0]}, p25 {q[1]}, median {q[2]}, p75 {q[3]}, max {q[4]}"
        )
    console.print(stages)

    trig = Table(title="Triggers fired, by family and route")
    trig.add_column("family")
    trig.add_column("route")
    trig.add_column("fired", justify="right")
    for (family, route), n in summary.triggers_by_route.items():
        trig.add_row(family, route, f"{n:,}")
    if not summary.triggers_by_route:
        trig.add_row("(none)", "", "0")
    console.print(trig)

    if result.inactive:
        console.print(
            "[yellow]Inactive rules[/yellow] (not evaluated; health.* measures give their "
            "weight to the others):"
        )
        by_cause: dict[str, list[str]] = {}
        for rule in result.inactive:
            # "needs X: table 't' is missing" -> group by the cause after the signal names
            cause = rule.reason.split(": ", 1)[-1]
            by_cause.setdefault(cause, []).append(rule.id)
        for cause, ids in by_cause.items():
            console.print(f"  {cause}: {', '.join(ids)}")
    if result.diagnostics is not None:
        render_diagnostics(console, result.diagnostics, inactive_shown=bool(result.inactive))
    excluded = {k: v for k, v in result.excluded.items() if v}
    if excluded:
        parts = [
            f"{n:,} {'churned' if k == 'churned' else 'not started yet'}"
            for k, n in excluded.items()
        ]
        console.print(f"Accounts not customers on {result.as_of} (no decision): {', '.join(parts)}")
    if result.missing_tables:
        console.print(f"Tables not provided: {', '.join(result.missing_tables)}")
    if "ingested_events" in result.counts or "ingested_groups" in result.counts:
        events = result.rejects.get("ingested_events", {})
        read = events.get("rows_read", 0)
        used = read - events.get("rejected", 0)
        groups = result.rejects.get("ingested_groups", {})
        calls = groups.get("rows_read", 0) - groups.get("rejected", 0)
        console.print(
            f"Ingested events (/v1): {used:,} of {read:,} used (stamped on or before "
            f"{result.as_of}); account traits from {calls:,} group call{'s' * (calls != 1)}"
        )
    rejected = {
        t: v for t, v in result.rejects.items() if v.get("rejected") or v.get("values_nulled")
    }
    if rejected:
        console.print("[yellow]Input problems[/yellow] (see rejected_rows.csv):")
        for table, v in rejected.items():
            console.print(
                f"  {table}: {v.get('rows_read', 0):,} rows read, {v.get('rejected', 0):,} rejected, "
                f"{v.get('values_nulled', 0):,} values set to null"
            )
    else:
        console.print("Input: no rejected rows.")
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}", soft_wrap=True)
    if result.files:
        console.print("Files written:")
        for name, path in result.files.items():
            console.print(f"  {name}: {path}")
    console.print(f"Done in {result.seconds:.1f}s.")


def render_diagnostics(console: Console, diag: Diagnostics, inactive_shown: bool = False) -> None:
    """How the model fits the data: one row per finding, then the at-risk load.

    ``inactive_shown``: the inactive rules are already listed (run summary),
    so the findings they make are not repeated.
    """
    risk = diag.risk
    line = (
        f"At risk: {risk.share:.1%} of accounts ({risk.at_risk:,} of {risk.accounts:,}); "
        f"risk work items for people: {risk.items_for_people:,}, for CSMs: "
        f"{risk.items_for_csms:,} (up to {risk.csm_items_per_week:,.0f} a week)"
    )
    if risk.capacity_per_week is not None:
        line += f"; the team's {risk.team_fte:g} CSMs can work {risk.capacity_per_week:,.0f} a week"
    findings = [f for f in diag.findings if not (inactive_shown and f.cause == "missing_input")]
    if not findings:
        console.print(f"Model fit: no findings. {line}.")
        return
    table = Table(title=f"Model fit: {len(findings)} finding(s) (see docs/diagnostics.md)")
    table.add_column("check", no_wrap=True)
    table.add_column("finding", overflow="fold")
    for f in findings:
        table.add_row(FINDING_LABELS.get(f.kind, f.kind), f.message)
    console.print(table)
    console.print(line + ".")

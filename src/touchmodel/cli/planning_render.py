"""Rich rendering of the planning commands' results (``plan``, ``select``, ``economics``,
``advise``); the commands themselves are in :mod:`touchmodel.cli.planning`.

Tables of figures are printed with :func:`_print_figures`: on a terminal too
narrow for them (80 columns) they drop their rules and padding rather than
cut numbers short.
"""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from touchmodel.plan import (
    Advice,
    CapacityPlan,
    PlanningDefaults,
    Selection,
    UnitEconomics,
    share_verdict_text,
)
from touchmodel.plan.defaults import Economics


def _money(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${x / 1e6:,.1f}M" if abs(x) >= 1_000_000 else f"${x:,.0f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f}"


# Ways to narrow a table of figures, mildest first: no vertical rules and outer
# edge (two spaces between columns), then no padding (one space between columns).
_NARROWER: tuple[dict[str, Any], ...] = (
    {"box": box.SIMPLE_HEAD, "show_edge": False, "pad_edge": False, "collapse_padding": True},
    {"padding": (0, 0)},
)


def _print_figures(console: Console, table: Table) -> None:
    """Print ``table``, narrowed just enough to fit the terminal if it is too wide.

    Rich would otherwise squeeze columns and cut their values (``$878,…``); a
    table that fits is printed unchanged.
    """
    unbounded = console.options.update_width(10_000)
    for style in _NARROWER:
        if console.measure(table, options=unbounded).maximum <= console.width:
            break
        for name, value in style.items():
            setattr(table, name, value)
    console.print(table)


# ---------------------------------------------------------------- plan


def _ratio_text(ratio: tuple[float, float, float] | None) -> str:
    if ratio is None:
        return "automation"
    if ratio[0] == ratio[2]:
        return f"1:{ratio[0]:g}+"
    return f"1:{ratio[2]:g}–{ratio[0]:g}"


def _headcount_table(plan: CapacityPlan) -> Table:
    t = Table(title=f"Headcount today: {plan.accounts:,} accounts, {_money(plan.arr)} ARR")
    for col in ("tier", "level", "accounts", "ARR", "accounts/CSM", "CSMs fewest", "target",
                "most", "team", "gap"):  # fmt: skip
        t.add_column(col, justify="left" if col in ("tier", "level", "accounts/CSM") else "right")
    for tp in plan.tiers:
        staffed = tp.ratio is not None or bool(tp.team_fte)
        t.add_row(
            tp.tier, tp.level, f"{tp.accounts:,}", _money(tp.arr), _ratio_text(tp.ratio),
            f"{tp.csms_fewest:.1f}", f"{tp.csms_target:.1f}", f"{tp.csms_most:.1f}",
            _num(tp.team_fte), "—" if tp.gap is None or not staffed else f"{tp.gap:+.1f}",
        )  # fmt: skip
    t.add_row(
        "total", "", f"{plan.accounts:,}", _money(plan.arr), "", f"{plan.csms_fewest:.1f}",
        f"{plan.csms_target:.1f}", f"{plan.csms_most:.1f}", _num(plan.team_fte),
        "—" if plan.team_fte is None else f"{plan.team_fte - plan.csms_target:+.1f}",
        style="bold",
    )  # fmt: skip
    return t


def _short(x: float) -> str:
    if abs(x) >= 1_000_000:
        return f"${x / 1e6:,.1f}M"
    return f"${x / 1e3:,.0f}K" if abs(x) >= 10_000 else f"${x:,.0f}"


def _economics_table(plan: CapacityPlan, econ: Economics) -> Table:
    ten = f"{econ.arr_per_csm_multiple:g}×"
    t = Table(title="Unit economics per tier (at the target headcount)")
    for col in ("tier", "CS cost", "per account", "tier range", "% ARR", "ARR/CSM", ten,
                "GM after CS"):  # fmt: skip
        t.add_column(col, justify="left" if col == "tier" else "right", no_wrap=True)
    for tp in plan.tiers:
        lo, hi = tp.cost_range
        rng = f"${lo:,.0f}–{'' if hi is None else f'{hi:,.0f}'}"
        ok = {None: "—", True: "ok", False: "[red]below[/]"}[tp.arr_per_csm_ok]
        per = _money(tp.cost_per_account)
        if tp.cost_verdict in ("above", "below"):
            per = f"[yellow]{per} {tp.cost_verdict}[/]"
        t.add_row(
            tp.tier, _short(tp.cs_cost), per, rng, _pct(tp.cost_share),
            _money(tp.arr_per_csm), ok, _pct(tp.margin_after_cs),
        )  # fmt: skip
    per_account = plan.cs_cost / plan.accounts if plan.accounts else None
    total_ok = {None: "—", True: "ok", False: "[red]below[/]"}[plan.arr_per_csm_ok]
    t.add_row(
        "total", _short(plan.cs_cost), _money(per_account), "", _pct(plan.cost_share),
        _money(plan.arr_per_csm), total_ok, _pct(plan.margin_after_cs), style="bold",
    )  # fmt: skip
    return t


def render_plan(
    console: Console, plans: list[CapacityPlan], growth: float, d: PlanningDefaults
) -> None:
    """Headcount and economics per tier today, verdicts, hiring triggers, feasibility, projections."""
    today = plans[0]
    econ = d.economics
    _print_figures(console, _headcount_table(today))
    _print_figures(console, _economics_table(today, econ))
    lines = []
    if today.cost_share is not None:
        lines.append(
            f"CS cost {_money(today.cs_cost)} = {today.cost_share:.1%} of revenue: "
            f"{share_verdict_text(today.cost_share, econ.cs_share)}."
        )
    if today.arr_per_csm is not None:
        staffed = [tp for tp in today.tiers if tp.csms_target > 0]
        avg = sum(tp.csms_target * tp.csm_cost for tp in staffed) / today.csms_target
        verdict = "meets" if today.arr_per_csm_ok else "[red]misses[/]"
        lines.append(
            f"ARR per CSM {_money(today.arr_per_csm)} {verdict} the {econ.arr_per_csm_multiple:g}× "
            f"rule: at least {econ.arr_per_csm_multiple:g} × {_money(avg)} (average CSM cost) = "
            f"{_money(econ.arr_per_csm_multiple * avg)}."
        )
    if today.margin_after_cs is not None:
        lines.append(
            f"Gross margin after CS: {today.margin_after_cs:.1%} "
            f"(gross margin {today.gross_margin:.0%}; set it with --margin or the team file)."
        )
    for line in lines:
        console.print(line, soft_wrap=True)
    h = Table(title="Hiring triggers (a CSM per N accounts in the ARR band)")
    for col in ("trigger", "ARR band", "accounts", "per CSM", "CSMs indicated", "on team", "hire"):
        h.add_column(col, justify="left" if col in ("trigger", "ARR band") else "right")
    for hc in today.hiring:
        band = f"{_money(hc.band[0])}–{'' if hc.band[1] is None else _money(hc.band[1])}"
        h.add_row(hc.label, band, f"{hc.accounts:,}", str(hc.accounts_per_csm),
                  str(hc.csms_indicated), f"{hc.on_team:g}",
                  f"[bold red]{hc.hires}[/]" if hc.fires else "0")  # fmt: skip
    _print_figures(console, h)
    console.print(
        "The triggers hire at each ratio's busiest end (a CSM per 50/30/15 accounts), ahead of "
        "need; feasibility below uses the target (middle) ratio, so it asks for fewer.",
        soft_wrap=True,
    )
    _render_feasibility(console, today)
    p = Table(
        title=f"Projection at {growth:+.0%} a year (same tier mix; hires by the hiring triggers)"
    )
    for col in ("when", "accounts", "ARR", "CSMs (range)", "team", "gap", "hires", "CS %",
                "feasible"):  # fmt: skip
        p.add_column(col, justify="left" if col == "when" else "right", no_wrap=True)
    for pl in plans:
        feas = pl.feasibility
        p.add_row(
            pl.label, f"{pl.accounts:,}", _money(pl.arr),
            f"{pl.csms_target:.1f} ({pl.csms_fewest:.1f}–{pl.csms_most:.1f})", _num(pl.team_fte),
            "—" if pl.team_fte is None else f"{pl.team_fte - pl.csms_target:+.1f}",
            str(sum(hc.hires for hc in pl.hiring)), _pct(pl.cost_share),
            "—" if feas is None else ("yes" if feas.feasible else f"[red]no, +{feas.hire}[/]"),
        )  # fmt: skip
    _print_figures(console, p)


def _render_feasibility(console: Console, plan: CapacityPlan) -> None:
    feas = plan.feasibility
    if feas is None:
        console.print("No team file (--team): gap and feasibility not computed.")
        return
    if feas.feasible:
        console.print(
            f"[green]Feasible:[/] the model needs {feas.required:.1f} CSMs at target ratios; "
            f"the team has {feas.team:g}.",
            soft_wrap=True,
        )
        return
    text = (
        f"[bold red]INFEASIBLE:[/] the model needs {feas.required:.1f} CSMs at target ratios; the "
        f"team has {feas.team:g}. Smallest fixes: hire {feas.hire} more CSM(s)"
    )
    best = feas.best_band_fix
    if best is None:
        text += "; no single band-edge raise is enough."
    else:
        text += (
            f"; or raise the '{best.tier}' band start from {_money(best.old_edge)} to "
            f"{_money(best.new_edge)} (moves {best.accounts_moved:,} accounts down to "
            f"'{best.lower_tier}', saving {best.csms_saved:.1f} CSMs)."
        )
    console.print(text, soft_wrap=True)


# ---------------------------------------------------------------- select


def render_selection(console: Console, sel: Selection, notes: list[str]) -> None:
    """Factor scores, total, recommendation and the ACV zones."""
    t = Table(title="Six-factor model choice")
    for col in ("factor", "answer", "score", "why"):
        t.add_column(col, justify="right" if col == "score" else "left")
    for f in sel.factors:
        t.add_row(f.factor, f.answer, str(f.score), f.basis)
    t.add_row("total", "", str(sel.total), "6–30", style="bold")
    console.print(t)
    for n in notes:
        console.print(f"From the data: {n}", soft_wrap=True)
    if sel.zones:
        z = Table(title=f"ACV zones (hybrid when no zone holds ≥ {sel.hybrid_threshold:.0%} "
                        "of both accounts and ARR)")  # fmt: skip
        for col in ("zone", "ACV", "accounts", "% accounts", "ARR", "% ARR"):
            z.add_column(col, justify="left" if col in ("zone", "ACV") else "right")
        for zone in sel.zones:
            acv = f"{_money(zone.min)}–{'' if zone.max is None else _money(zone.max)}"
            z.add_row(zone.touch, acv, f"{zone.accounts:,}", _pct(zone.share_accounts),
                      _money(zone.arr), _pct(zone.share_arr))  # fmt: skip
        console.print(z)
    console.print(f"[bold]Recommended: {sel.recommendation}[/]")
    for r in sel.reasons:
        console.print(f"  - {r}", soft_wrap=True)
    for zone_name, model in sel.zone_models.items():
        console.print(f"  - {zone_name} ACV zone: {model}", soft_wrap=True)


# ---------------------------------------------------------------- economics


def render_economics(console: Console, rows: list[UnitEconomics]) -> None:
    """The worked-economics table layout, then each verdict and the arithmetic behind it.

    The verdicts are printed below the table, not in it: as a column they left
    the numbers no room on an 80-column terminal.
    """
    shares = {r.budget_share for r in rows}
    budget = f"CS budget\nat {rows[0].budget_share:.0%}" if len(shares) == 1 else "CS\nbudget"
    t = Table(title="Unit economics: three worked cases")
    for col in ("case", "ACV", "gross\nmargin", "gross\nprofit", budget, "CSM cost /\naccounts",
                "cost per\naccount"):  # fmt: skip
        t.add_column(col, justify="left" if col == "case" else "right", no_wrap=True)
    for r in rows:
        ratio = (
            "—" if r.accounts_per_csm is None else f"${r.csm_cost:,.0f} / {r.accounts_per_csm:g}"
        )
        t.add_row(
            r.case, f"${r.acv:,.0f}", f"{r.gross_margin:.0%}", f"${r.gross_profit:,.0f}",
            f"${r.cs_budget:,.0f}", ratio,
            "—" if r.cost_per_account is None else f"${r.cost_per_account:,.0f}",
        )  # fmt: skip
    _print_figures(console, t)
    for r in rows:
        console.print(
            f"[bold]{r.case or 'this case'}: {r.verdict}[/] — {r.reason}.", soft_wrap=True
        )


# ---------------------------------------------------------------- advise


def render_advice(console: Console, adv: Advice) -> None:
    """Organisation phase, customer stage, the mistakes found in the data and next steps."""
    console.print(f"[bold]Organisation phase:[/] {adv.phase.name} — {adv.phase.basis}")
    console.print(f"[bold]Customer stage:[/] {adv.stage.name} — {adv.stage.basis}")
    t = Table(title="Common mistakes found in the data")
    for col in ("mistake", "found", "accounts", "ARR", "detail"):
        t.add_column(col, justify="right" if col in ("accounts", "ARR") else "left")
    for mk in adv.mistakes:
        found = {True: "[red]yes[/]", False: "no", None: "not checked"}[mk.detected]
        detail = mk.detail + ("" if not mk.examples else "\ne.g. " + ", ".join(mk.examples[:3]))
        count = "—" if mk.accounts is None else f"{mk.accounts:,}"
        t.add_row(mk.name, found, count, _money(mk.arr), detail)
    console.print(t)
    console.print("[bold]Next steps:[/]")
    for i, step in enumerate(adv.next_steps, 1):
        console.print(f"  {i}. {step}", soft_wrap=True)
    console.print(
        "Not visible in one snapshot: " + "; ".join(adv.not_detectable) + ".", soft_wrap=True
    )

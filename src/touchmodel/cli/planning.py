"""Planning commands: ``plan``, ``select``, ``economics`` and ``advise``.

Thin: parse flags, build the portfolio with the engine, call :mod:`touchmodel.plan`,
render Rich tables (or ``--json``). The main app calls :func:`register`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, TypeVar

import pyarrow as pa
import typer
from rich.console import Console
from rich.table import Table

from touchmodel.errors import TouchmodelError
from touchmodel.model.schema import TouchModel
from touchmodel.plan import (
    Answers,
    CapacityPlan,
    PlanningDefaults,
    Selection,
    UnitEconomics,
    advise,
    as_portfolio,
    fill_from_portfolio,
    load_team,
    parse_growth,
    parse_share,
    project,
    read_team_file,
    select_model,
    share_verdict_text,
    unit_economics,
    worked_economics,
)
from touchmodel.plan.defaults import Economics
from touchmodel.plan.select import FACTORS, QUESTIONS, SelectError, score_factor

F = TypeVar("F", bound=Callable[..., Any])


def _user_errors(fn: F) -> F:
    """User errors become one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TouchmodelError as exc:
            lines = [ln.strip().removeprefix("- ") for ln in str(exc).splitlines() if ln.strip()]
            typer.echo("error: " + "; ".join(lines), err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _as_of(value: str | None) -> dt.date:
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise TouchmodelError(
            f"--as-of: value {value!r} -- expected a date like 2026-11-01"
        ) from None


def load_portfolio(
    model_spec: str, data: Path, mapping: Path | None, as_of: dt.date
) -> tuple[TouchModel, pa.Table]:
    """Run the engine on a data folder; the model and its per-account table (tier, arr, ...)."""
    from touchmodel.engine import Engine

    engine = Engine.from_spec(model_spec)
    with Console(stderr=True).status("running the touch model on the data"):
        result = engine.run(data, as_of=as_of, mapping=mapping)
    return engine.model, result.accounts


def _json(obj: Any) -> None:
    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if hasattr(o, "item"):  # numpy scalars
            return o.item()
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    typer.echo(json.dumps(obj, indent=2, default=default))


def _money(x: float | None) -> str:
    if x is None:
        return "—"
    return f"${x / 1e6:,.1f}M" if abs(x) >= 1_000_000 else f"${x:,.0f}"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:,.1f}"


def shipped(path: Path | None, example: str) -> Path | None:
    """``example`` (when no such file exists here) means the example file shipped in the package."""
    if path is not None and str(path) == "example" and not path.exists():
        return Path(str(resources.files("touchmodel").joinpath(f"examples/{example}")))
    return path


def _defaults(team: Path | None) -> PlanningDefaults:
    return read_team_file(team).planning if team is not None else PlanningDefaults()


def _with_margin(d: PlanningDefaults, margin: str | None) -> PlanningDefaults:
    if margin is None:
        return d
    econ = d.economics.model_copy(update={"gross_margin": parse_share("--margin", margin)})
    return d.model_copy(update={"economics": econ})


ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Preset or touch-model YAML file.")]
DataOpt = Annotated[Path, typer.Option("--data", "-d", help="Folder of CSV/Parquet files.")]
MappingOpt = Annotated[
    Path | None, typer.Option("--mapping", help="Mapping file for your columns.")
]
TeamOpt = Annotated[
    Path | None,
    typer.Option(
        "--team", help="Team file (CSMs, tiers they cover, costs, overrides); 'example' for ours."
    ),
]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Date of the snapshot (YYYY-MM-DD).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


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
    console.print(_headcount_table(today))
    console.print(_economics_table(today, econ))
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
    h = Table(title="Hiring triggers (SPEC §6: a CSM per N accounts in the ARR band)")
    for col in ("trigger", "ARR band", "accounts", "per CSM", "CSMs indicated", "on team", "hire"):
        h.add_column(col, justify="left" if col in ("trigger", "ARR band") else "right")
    for hc in today.hiring:
        band = f"{_money(hc.band[0])}–{'' if hc.band[1] is None else _money(hc.band[1])}"
        h.add_row(hc.label, band, f"{hc.accounts:,}", str(hc.accounts_per_csm),
                  str(hc.csms_indicated), f"{hc.on_team:g}",
                  f"[bold red]{hc.hires}[/]" if hc.fires else "0")  # fmt: skip
    console.print(h)
    _render_feasibility(console, today)
    p = Table(title=f"Projection at {growth:+.0%} a year (same tier mix; hires = SPEC §6 triggers)")
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
    console.print(p)


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


def plan_cmd(
    data: DataOpt,
    model: ModelOpt = "standard",
    team: TeamOpt = None,
    growth: Annotated[str, typer.Option(help="Yearly growth in accounts: 40% or 0.4.")] = "0%",
    margin: Annotated[
        str | None, typer.Option(help="Gross margin for 'margin after CS': 0.8 or 80%.")
    ] = None,
    mapping: MappingOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Can we afford our touch model, and who must we hire? Today, at 12 and 24 months."""
    when = _as_of(as_of)
    team = shipped(team, "team.yaml")
    # Check every flag and the team file before the (slow) engine run.
    d = _with_margin(_defaults(team), margin)
    rate = parse_growth(growth, d.max_growth)
    tm, accounts = load_portfolio(model, data, mapping, when)
    crew = load_team(team, tm)[0] if team is not None else None
    plans = project(tm, as_portfolio(accounts), crew, rate, d)
    if as_json:
        _json({"model": tm.name, "as_of": when.isoformat(), "growth": rate,
               "team": None if crew is None else crew.name, "defaults": d.model_dump(),
               "plans": [pl.as_dict() for pl in plans]})  # fmt: skip
        return
    render_plan(Console(), plans, rate, d)


# ---------------------------------------------------------------- select


def _parse_scores(items: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in FACTORS or not value.strip().isdigit():
            raise SelectError(
                f"--score: value {item!r} -- expected FACTOR=N with FACTOR one of "
                f"{', '.join(FACTORS)} and N from 1 to 5"
            )
        out[name] = int(value)
    return out


def render_selection(console: Console, sel: Selection, notes: list[str]) -> None:
    """Factor scores, total, recommendation and the ACV zones."""
    t = Table(title="Six-factor model choice (SPEC §7)")
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


def select_cmd(
    acv: Annotated[str | None, typer.Option(help="Average contract value, USD.")] = None,
    complexity: Annotated[str | None, typer.Option(help="high, medium or low.")] = None,
    segment: Annotated[
        str | None, typer.Option(help="enterprise, mid-market, smb, or employees.")
    ] = None,
    margin: Annotated[str | None, typer.Option(help="Gross margin: 0.75 or 75%.")] = None,
    positioning: Annotated[str | None, typer.Option(help="premium, standard or value.")] = None,
    ratio: Annotated[str | None, typer.Option(help="1:10, 1:50, 1:500 or a number.")] = None,
    score: Annotated[
        list[str] | None, typer.Option(help="Explicit score, e.g. --score complexity=4.")
    ] = None,
    answers: Annotated[
        Path | None, typer.Option(help="YAML file with the six answers; 'example' for ours.")
    ] = None,
    data: Annotated[
        Path | None, typer.Option("--data", "-d", help="Data folder: ACV zones.")
    ] = None,
    model: ModelOpt = "standard",
    mapping: MappingOpt = None,
    team: TeamOpt = None,
    as_of: AsOfOpt = None,
    ask: Annotated[
        bool | None, typer.Option("--ask/--no-ask", help="Prompt for missing answers.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Which post-sale model fits us? Scores the six factors of SPEC §7."""
    team, answers = shipped(team, "team.yaml"), shipped(answers, "select-answers.yaml")
    d = _defaults(team)
    base = load_answers_file(answers) if answers is not None else Answers()
    flags = {"acv": acv, "complexity": complexity, "segment": segment, "margin": margin,
             "positioning": positioning, "ratio": ratio}  # fmt: skip
    update: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    update["scores"] = {**base.scores, **_parse_scores(score or [])}
    given = base.model_copy(update=update)
    portfolio = None
    notes: list[str] = []
    if data is not None:
        _, accounts = load_portfolio(model, data, mapping, _as_of(as_of))
        portfolio = as_portfolio(accounts)
        given, notes = fill_from_portfolio(given, portfolio, d)
    if given.missing() and (ask if ask is not None else sys.stdin.isatty()):
        given = _prompt_missing(given, d)
    sel = select_model(given, portfolio, d)
    if as_json:
        _json({"selection": sel.as_dict(), "from_data": notes})
        return
    render_selection(Console(), sel, notes)


def load_answers_file(path: Path) -> Answers:
    """The answers file (kept as a function so tests and the API share it)."""
    from touchmodel.plan.select import load_answers

    return load_answers(path)


def _prompt_missing(given: Answers, d: PlanningDefaults) -> Answers:
    update: dict[str, Any] = {}
    for f in given.missing():
        while True:
            value = typer.prompt(QUESTIONS[f])
            answer: Any = (
                int(value)
                if value.strip().isdigit() and f in ("complexity", "positioning")
                else value
            )
            try:
                score_factor(f, answer, d.six_factor, d.economics)
            except TouchmodelError as exc:
                typer.echo(f"  {exc}", err=True)
                continue
            update[f] = answer
            break
    return given.model_copy(update=update)


# ---------------------------------------------------------------- economics


def render_economics(console: Console, rows: list[UnitEconomics]) -> None:
    """The SPEC §7 worked-economics table layout, then the arithmetic behind each verdict."""
    shares = {r.budget_share for r in rows}
    budget = f"CS budget\nat {rows[0].budget_share:.0%}" if len(shares) == 1 else "CS\nbudget"
    t = Table(title="Unit economics (SPEC §7)")
    for col in ("case", "ACV", "gross\nmargin", "gross\nprofit", budget, "CSM cost /\naccounts",
                "cost per\naccount", "verdict"):  # fmt: skip
        left = col in ("case", "verdict")
        # Numbers never wrap; the verdict text does, on narrow terminals.
        t.add_column(col, justify="left" if left else "right", no_wrap=col != "verdict")
    for r in rows:
        ratio = (
            "—" if r.accounts_per_csm is None else f"${r.csm_cost:,.0f} / {r.accounts_per_csm:g}"
        )
        t.add_row(
            r.case, f"${r.acv:,.0f}", f"{r.gross_margin:.0%}", f"${r.gross_profit:,.0f}",
            f"${r.cs_budget:,.0f}", ratio,
            "—" if r.cost_per_account is None else f"${r.cost_per_account:,.0f}", r.verdict,
        )  # fmt: skip
    console.print(t)
    for r in rows:
        console.print(f"{r.case or 'this case'}: {r.reason}.", soft_wrap=True)


def economics_cmd(
    acv: Annotated[float | None, typer.Option(help="Annual contract value, USD.")] = None,
    margin: Annotated[str | None, typer.Option(help="Gross margin: 0.8 or 80%.")] = None,
    cs_share: Annotated[str | None, typer.Option(help="CS budget share of revenue (0.10).")] = None,
    csm_cost: Annotated[float | None, typer.Option(help="Fully loaded cost per CSM.")] = None,
    accounts_per_csm: Annotated[float | None, typer.Option(help="Accounts per CSM.")] = None,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Gross profit, CS budget, cost per account and verdict; without --acv, SPEC's worked table."""
    d = _defaults(shipped(team, "team.yaml"))
    if acv is None:
        rows = worked_economics(d.economics)
    else:
        if margin is None:
            raise TouchmodelError(
                "--margin: missing -- expected a gross margin like 0.8 with --acv"
            )
        share = None if cs_share is None else parse_share("--cs-share", cs_share)
        row = unit_economics(
            acv,
            parse_share("--margin", margin),
            budget_share=share,
            csm_cost=csm_cost,
            accounts_per_csm=accounts_per_csm,
            figures=d.economics,
            case="yours",
        )
        rows = [row]
    if as_json:
        _json([r.as_dict() for r in rows])
        return
    render_economics(Console(), rows)


# ---------------------------------------------------------------- advise


def advise_cmd(
    data: DataOpt,
    model: ModelOpt = "standard",
    team: TeamOpt = None,
    team_size: Annotated[
        float | None, typer.Option(min=0, help="CS people, when there is no team file.")
    ] = None,
    mapping: MappingOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """What stage is our CS organisation in, what next, and which mistakes show in the data?"""
    when = _as_of(as_of)
    tm, accounts = load_portfolio(model, data, mapping, when)
    team = shipped(team, "team.yaml")
    crew, d = load_team(team, tm) if team is not None else (None, PlanningDefaults())
    adv = advise(tm, as_portfolio(accounts), crew, d, team_size)
    if as_json:
        _json(adv.as_dict())
        return
    console = Console()
    console.print(f"[bold]Organisation phase:[/] {adv.phase.name} — {adv.phase.basis}")
    console.print(f"[bold]Customer stage:[/] {adv.stage.name} — {adv.stage.basis}")
    t = Table(title="Common mistakes (SPEC §7) found in the data")
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


def register(app: typer.Typer) -> None:
    """Add ``plan``, ``select``, ``economics`` and ``advise`` to the main app."""
    app.command("plan")(_user_errors(plan_cmd))
    app.command("select")(_user_errors(select_cmd))
    app.command("economics")(_user_errors(economics_cmd))
    app.command("advise")(_user_errors(advise_cmd))

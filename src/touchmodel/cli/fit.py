"""``touchmodel backtest`` and ``touchmodel calibrate``: fit the model to the churn you had.

Thin commands: load once, replay the dates (:mod:`touchmodel.fit.replay`),
then score (:mod:`touchmodel.fit.backtest`) or fit (:mod:`touchmodel.fit.calibrate`).
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from touchmodel.cli._common import parse_as_of, user_errors
from touchmodel.engine import Engine
from touchmodel.errors import TouchmodelError
from touchmodel.model.loader import DEFAULT_PRESET, model_from_dict

console = Console()

DataOpt = Annotated[
    Path, typer.Option("--data", "-d", help="Folder of CSV/Parquet files, one per table.")
]
MappingOpt = Annotated[
    Path | None, typer.Option("--mapping", help="Mapping file for the data folder.")
]
ModelOpt = Annotated[str, typer.Option("--model", "-m", help="Preset or model file.")]
FromOpt = Annotated[
    str | None, typer.Option("--from", help="First as-of date (default: 12 months before --to).")
]
ToOpt = Annotated[
    str | None,
    typer.Option("--to", help="Last as-of date (default: newest data minus the horizon)."),
]
EveryOpt = Annotated[
    str, typer.Option("--every", help="Step between dates: month, week, day or e.g. 14d.")
]
HorizonOpt = Annotated[
    int, typer.Option("--horizon", help="Days after each date in which churn counts.")
]
LabelOpt = Annotated[
    str | None,
    typer.Option(
        "--label", help="A true/false accounts column holding the outcome (a one-date snapshot)."
    ),
]
AsOfOpt = Annotated[
    str | None, typer.Option("--as-of", help="The snapshot's date with --label (default: today).")
]


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x:.1%}"


def _num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _replay(
    engine: Engine,
    data: Path,
    mapping: Path | None,
    start: str | None,
    stop: str | None,
    every: str,
    horizon: int,
    label: str | None,
    as_of: str | None,
) -> Any:
    from touchmodel.fit.replay import data_end, load_for_replay, month_dates, replay

    if horizon < 1:
        raise TouchmodelError(f"--horizon: value {horizon} -- expected a number of days, 1 or more")
    if label is not None:
        day = parse_as_of(as_of)
        _, loaded = load_for_replay(data, mapping, day)
        dates = [day]
    else:
        load_day = parse_as_of(stop) if stop else dt.date.today()
        _, loaded = load_for_replay(data, mapping, load_day)
        end = data_end(loaded)
        if end is None:
            raise TouchmodelError("the data has no dated activity: nothing to replay")
        last = parse_as_of(stop, "--to") if stop else end - dt.timedelta(days=horizon)
        first = parse_as_of(start, "--from") if start else _months_before(last, 11)
        dates = month_dates(first, last, every)
    with console.status(f"replaying {len(dates)} date(s)"):
        return replay(engine, loaded, dates, horizon, label_column=label), loaded


def _months_before(d: dt.date, months: int) -> dt.date:
    m = d.month - 1 - months
    year, month = d.year + m // 12, m % 12 + 1
    return dt.date(year, month, min(d.day, 28))


def backtest_cmd(
    data: DataOpt,
    mapping: MappingOpt = None,
    model: ModelOpt = DEFAULT_PRESET,
    start: FromOpt = None,
    stop: ToOpt = None,
    every: EveryOpt = "month",
    horizon: HorizonOpt = 90,
    label: LabelOpt = None,
    as_of: AsOfOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write an HTML report with charts.")
    ] = None,
) -> None:
    """How well the model would have predicted the churn you already had.

    Replays the model at past dates, labels each decided account by whether it
    churned within --horizon days, and reports the health score's ROC AUC,
    churn per grade and per decile, each trigger's precision and lift, and a
    gradient-boosting reference on the same signals (trained on earlier dates,
    tested on later ones).
    """
    from touchmodel.fit.backtest import backtest

    engine = Engine.from_spec(model)
    rep, _ = _replay(engine, data, mapping, start, stop, every, horizon, label, as_of)
    result = backtest(rep, [g.id for g in engine.model.health.grades])
    if html is not None:
        from touchmodel.fit.report_html import backtest_html

        html.write_text(backtest_html(result, engine.model.name))
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    render_backtest(result, engine.model.name)
    if html is not None:
        console.print(f"HTML report: {html}")


def render_backtest(result: Any, model_name: str) -> None:
    """The backtest as Rich tables."""
    d = result.dates
    span = f"{d[0]} to {d[-1]}" if len(d) > 1 else f"{d[0]}"
    console.print(
        f"Backtest of '{model_name}' over {len(d)} date(s), {span}; label: {result.label}. "
        f"{result.rows:,} account-dates, {result.churned:,} churned ({_pct(result.base_rate)})."
    )
    ci = result.health_auc_interval
    ci_text = f" (95% bootstrap interval {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
    console.print(f"Health score ROC AUC: {_num(result.health_auc)}{ci_text}. 0.5 is chance.")
    ref = result.reference
    if ref is not None:
        console.print(
            f"Reference (gradient boosting on {ref.features} signals, {ref.method}, "
            f"{ref.test_rows:,} rows): AUC {_num(ref.model_auc)} against the health score's "
            f"{_num(ref.health_auc)} on the same rows."
        )
    console.print(
        f"At risk (any risk trigger): {_pct(result.at_risk_share)} of account-dates; "
        f"precision {_pct(result.any_risk.precision)}, lift {_num(result.any_risk.lift, 2)}x."
    )
    grades = Table(title="Churn by health grade")
    for col in ("grade", "accounts", "churned", "churn rate"):
        grades.add_column(col, justify="right" if col != "grade" else "left")
    for b in result.grades:
        grades.add_row(b.name, f"{b.rows:,}", f"{b.churned:,}", _pct(b.rate))
    console.print(grades)
    deciles = Table(title="Churn by health decile (1 = lowest health)")
    for col in ("decile", "accounts", "churn rate", "lift"):
        deciles.add_column(col, justify="right")
    for b in result.deciles:
        lift = b.rate / result.base_rate if b.rate is not None and result.base_rate else None
        deciles.add_row(b.name, f"{b.rows:,}", _pct(b.rate), _num(lift, 2))
    console.print(deciles)
    trig = Table(title="Triggers against churn")
    for col in ("trigger", "fire rate", "precision", "recall", "lift"):
        trig.add_column(col, justify="left" if col == "trigger" else "right")
    for f in result.triggers:
        note = " (inactive)" if f.name in result.inactive else ""
        trig.add_row(
            f.name + note, _pct(f.fire_rate), _pct(f.precision), _pct(f.recall), _num(f.lift, 2)
        )
    console.print(trig)
    dates = Table(title="Per date")
    for col in ("as of", "accounts", "churned", "health AUC", "at risk"):
        dates.add_column(col, justify="right")
    for r in result.per_date:
        dates.add_row(
            str(r.as_of),
            f"{r.accounts:,}",
            f"{r.churned:,}",
            _num(r.health_auc),
            _pct(r.at_risk_share),
        )
    console.print(dates)


def calibrate_cmd(
    data: DataOpt,
    mapping: MappingOpt = None,
    model: ModelOpt = DEFAULT_PRESET,
    start: FromOpt = None,
    stop: ToOpt = None,
    every: EveryOpt = "month",
    horizon: HorizonOpt = 90,
    label: LabelOpt = None,
    as_of: AsOfOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Where to write the proposed model (default: next to yours)."
        ),
    ] = None,
    at_risk: Annotated[
        float,
        typer.Option(
            "--at-risk", help="Share of accounts the team can work as at risk (red grade)."
        ),
    ] = 0.10,
    min_lift: Annotated[
        float,
        typer.Option(
            "--min-lift", help="A risk trigger must reach this multiple of the base churn rate."
        ),
    ] = 2.0,
    max_measures: Annotated[
        int, typer.Option("--max-measures", help="At most this many health measures.")
    ] = 6,
) -> None:
    """Fit health measures, weights, grades, trigger thresholds and a churn curve to your history.

    Fits on the earlier dates, checks on the later ones, and writes a proposed
    model file with a diff and a before/after table. Your model file is never
    overwritten.
    """
    from touchmodel.fit.backtest import backtest
    from touchmodel.fit.calibrate import calibrate
    from touchmodel.fit.replay import replay

    if not 0 < at_risk < 1:
        raise TouchmodelError(f"--at-risk: value {at_risk} -- expected a share between 0 and 1")
    engine = Engine.from_spec(model)
    rep, loaded = _replay(engine, data, mapping, start, stop, every, horizon, label, as_of)
    try:
        prop = calibrate(
            rep, engine.model, max_measures=max_measures, at_risk_share=at_risk, min_lift=min_lift
        )
    except ValueError as exc:
        raise TouchmodelError(f"calibrate: {exc}") from None
    proposed = Engine(model_from_dict(prop.model, "proposed model"))
    target = out or _proposal_path(model)
    before_text = yaml.safe_dump(
        engine.model.model_dump(mode="json", exclude_none=True), sort_keys=False
    )
    after_text = yaml.safe_dump(prop.model, sort_keys=False)
    target.write_text(
        f"# Proposed by `touchmodel calibrate` from {model} on {dt.date.today()}:\n"
        f"# fitted on {prop.train_dates[0]}..{prop.train_dates[-1]}, checked on "
        f"{prop.test_dates[0]}..{prop.test_dates[-1]}.\n" + after_text
    )
    diff_path = target.with_suffix(".diff")
    diff_path.write_text(
        "".join(
            difflib.unified_diff(
                before_text.splitlines(True), after_text.splitlines(True), str(model), str(target)
            )
        )
    )
    # Before and after on the dates the fit did not see.
    test = prop.test_dates
    grades_before = [g.id for g in engine.model.health.grades]
    grades_after = [g.id for g in proposed.model.health.grades]
    if len(rep.dates) > 1:
        b = backtest(replay(engine, loaded, test, horizon, label), grades_before, reference=False)
        a = backtest(replay(proposed, loaded, test, horizon, label), grades_after, reference=False)
    else:
        b = backtest(rep, grades_before, reference=False)
        a = backtest(replay(proposed, loaded, test, horizon, label), grades_after, reference=False)
    ref = backtest(rep, grades_before).reference
    console.print(f"Measures chosen ({len(prop.measures)}):")
    for m in prop.measures:
        console.print(f"  {m['weight']:>3}  {m['label']}  (bad {m['bad']:g}, good {m['good']:g})")
    console.print("Grades: " + ", ".join(f"{g['id']} >= {g['min']:g}" for g in prop.grades))
    for ch in prop.triggers:
        after = "disabled" if ch.after is None else ch.after
        console.print(f"  {ch.trigger}: {ch.before!r} -> {after}  ({ch.reason})")
    for note in prop.notes:
        console.print(f"Note: {note}")
    table = Table(title=f"Before and after, on {test[0]}..{test[-1]} (not used for fitting)")
    for col in ("", "before", "after"):
        table.add_column(col, justify="left" if not col else "right")
    table.add_row("health AUC", _num(b.health_auc), _num(a.health_auc))
    table.add_row("at-risk share", _pct(b.at_risk_share), _pct(a.at_risk_share))
    table.add_row("at-risk precision", _pct(b.any_risk.precision), _pct(a.any_risk.precision))
    table.add_row("at-risk recall", _pct(b.any_risk.recall), _pct(a.any_risk.recall))
    low = [g for g in a.grades if g.name == grades_after[-1]]
    low_b = [g for g in b.grades if g.name == grades_before[-1]]
    table.add_row(
        "churn in the lowest grade",
        _pct(low_b[0].rate if low_b else None),
        _pct(low[0].rate if low else None),
    )
    if ref is not None:
        table.add_row("gradient-boosting reference AUC", _num(ref.model_auc), "")
    console.print(table)
    console.print(f"Proposed model: {target}\nDiff: {diff_path}")


def _proposal_path(model: str) -> Path:
    path = Path(model)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return path.with_name(path.stem + ".calibrated.yaml")
    return Path(f"{path.stem}.calibrated.yaml")


def register(app: typer.Typer) -> None:
    """Add ``backtest`` and ``calibrate`` to the main app."""
    app.command("backtest")(user_errors(backtest_cmd))
    app.command("calibrate")(user_errors(calibrate_cmd))

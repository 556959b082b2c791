"""Planning commands: ``plan``, ``select``, ``economics`` and ``advise``.

Thin: parse flags, build the portfolio with the engine, call :mod:`touchmodel.plan`,
render with :mod:`touchmodel.cli.planning_render` (or print ``--json``). The main
app calls :func:`register`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import pyarrow as pa
import typer
from rich.console import Console

from touchmodel.cli._common import parse_as_of, user_errors
from touchmodel.cli.fit_render import render_staffing
from touchmodel.cli.planning_render import (
    render_advice,
    render_economics,
    render_plan,
    render_selection,
)
from touchmodel.errors import TouchmodelError
from touchmodel.fit.allocate import plan_staffing, staffing_record
from touchmodel.model.loader import DEFAULT_PRESET
from touchmodel.model.schema import TouchModel
from touchmodel.plan import (
    Answers,
    PlanningDefaults,
    advise,
    as_portfolio,
    fill_from_portfolio,
    load_team,
    parse_growth,
    parse_share,
    project,
    read_team_file,
    select_model,
    unit_economics,
    worked_economics,
)
from touchmodel.plan.select import FACTORS, QUESTIONS, SelectError, score_factor
from touchmodel.workspace import find_workspace, holds_files


@dataclasses.dataclass(frozen=True)
class Inputs:
    """What a planning command reads: the flags, else the workspace's, else the defaults."""

    model: str
    data: Path | str | None
    team: Path | None
    mapping: Path | None


def workspace_inputs(
    workspace: Path | None,
    *,
    model: str | None,
    data: Path | None,
    team: Path | None,
    mapping: Path | None,
) -> Inputs:
    """Fill the flags not given from the workspace the command runs in, as ``run`` does.

    Outside a workspace the model defaults to the standard preset and there is
    no data folder or team file unless given.
    """
    ws = find_workspace(workspace)
    if ws is None:
        return Inputs(model or DEFAULT_PRESET, data, team, mapping)
    ws_team = ws.team_path if ws.team_path is not None and ws.team_path.is_file() else None
    return Inputs(
        model=model or ws.model_spec,
        data=data or ws.data_path,
        team=team if team is not None else ws_team,
        mapping=mapping or ws.mapping_path,
    )


def _need_data(data: Path | str | None) -> Path | str:
    if data is None:
        raise TouchmodelError(
            "--data: missing -- give a data folder, or run inside a workspace (`touchmodel init`)"
        )
    return data


if TYPE_CHECKING:
    from touchmodel.engine import RunResult


def load_run(
    model_spec: str, data: Path | str, mapping: Path | None, as_of: dt.date
) -> tuple[TouchModel, RunResult]:
    """Run the engine on a data folder; the model and the run (decisions, accounts)."""
    from touchmodel.engine import Engine

    engine = Engine.from_spec(model_spec)
    with Console(stderr=True).status("running the touch model on the data"):
        result = engine.run(data, as_of=as_of, mapping=mapping)
    return engine.model, result


def load_portfolio(
    model_spec: str, data: Path | str, mapping: Path | None, as_of: dt.date
) -> tuple[TouchModel, pa.Table]:
    """Run the engine on a data folder; the model and its per-account table (tier, arr, ...)."""
    model, result = load_run(model_spec, data, mapping, as_of)
    return model, result.accounts


def _json(obj: Any) -> None:
    def default(o: Any) -> Any:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return dataclasses.asdict(o)
        if hasattr(o, "item"):  # numpy scalars
            return o.item()
        raise TypeError(f"not JSON serialisable: {type(o).__name__}")

    typer.echo(json.dumps(obj, indent=2, default=default))


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


ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model",
        "-m",
        help=f"Preset or touch-model YAML file (default: the workspace's, else {DEFAULT_PRESET}).",
    ),
]
DataOpt = Annotated[
    Path | None,
    typer.Option("--data", "-d", help="Folder of CSV/Parquet files (default: the workspace's)."),
]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help="Workspace folder (default: the current one or a parent)."
    ),
]
MappingOpt = Annotated[
    Path | None, typer.Option("--mapping", help="Mapping file for your columns.")
]
TeamOpt = Annotated[
    Path | None,
    typer.Option(
        "--team",
        help="Team file (CSMs, tiers they cover, costs, overrides); 'example' for ours "
        "(default: the workspace's).",
    ),
]
AsOfOpt = Annotated[str | None, typer.Option("--as-of", help="Date of the snapshot (YYYY-MM-DD).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def plan_cmd(
    data: DataOpt = None,
    model: ModelOpt = None,
    team: TeamOpt = None,
    growth: Annotated[str, typer.Option(help="Yearly growth in accounts: 40% or 0.4.")] = "0%",
    margin: Annotated[
        str | None, typer.Option(help="Gross margin for 'margin after CS': 0.8 or 80%.")
    ] = None,
    mapping: MappingOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Can we afford our touch model, and who must we hire? Today, at 12 and 24 months."""
    when = parse_as_of(as_of)
    got = workspace_inputs(workspace, model=model, data=data, team=team, mapping=mapping)
    team = shipped(got.team, "team.yaml")
    # Check every flag and the team file before the (slow) engine run.
    d = _with_margin(_defaults(team), margin)
    rate = parse_growth(growth, d.max_growth)
    tm, result = load_run(got.model, _need_data(got.data), got.mapping, when)
    accounts = result.accounts
    crew = load_team(team, tm)[0] if team is not None else None
    plans = project(tm, as_portfolio(accounts), crew, rate, d)
    staffing, more = plan_staffing(tm, result, team, d)
    if as_json:
        _json({"model": tm.name, "as_of": when.isoformat(), "growth": rate,
               "team": None if crew is None else crew.name, "defaults": d.model_dump(),
               "plans": [pl.as_dict() for pl in plans],
               "at_risk_staffing": staffing_record(staffing, more)})  # fmt: skip
        return
    render_plan(Console(), plans, rate, d)
    render_staffing(Console(), staffing, more, d.economics.csm_cost)


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
    model: ModelOpt = None,
    mapping: MappingOpt = None,
    team: TeamOpt = None,
    as_of: AsOfOpt = None,
    ask: Annotated[
        bool | None, typer.Option("--ask/--no-ask", help="Prompt for missing answers.")
    ] = None,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """Which post-sale model fits us? Scores six factors (docs/touch-model.md)."""
    got = workspace_inputs(workspace, model=model, data=data, team=team, mapping=mapping)
    source = got.data
    if data is None and isinstance(source, Path) and not holds_files(source):
        source = None  # a new workspace: no data yet to read ACV zones
    team, answers = shipped(got.team, "team.yaml"), shipped(answers, "select-answers.yaml")
    d = _defaults(team)
    base = load_answers_file(answers) if answers is not None else Answers()
    flags = {"acv": acv, "complexity": complexity, "segment": segment, "margin": margin,
             "positioning": positioning, "ratio": ratio}  # fmt: skip
    update: dict[str, Any] = {k: v for k, v in flags.items() if v is not None}
    update["scores"] = {**base.scores, **_parse_scores(score or [])}
    given = base.model_copy(update=update)
    portfolio = None
    notes: list[str] = []
    if source is not None:
        _, accounts = load_portfolio(got.model, source, got.mapping, parse_as_of(as_of))
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


def economics_cmd(
    acv: Annotated[float | None, typer.Option(help="Annual contract value, USD.")] = None,
    margin: Annotated[str | None, typer.Option(help="Gross margin: 0.8 or 80%.")] = None,
    cs_share: Annotated[str | None, typer.Option(help="CS budget share of revenue (0.10).")] = None,
    csm_cost: Annotated[float | None, typer.Option(help="Fully loaded cost per CSM.")] = None,
    accounts_per_csm: Annotated[float | None, typer.Option(help="Accounts per CSM.")] = None,
    team: TeamOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Gross profit, CS budget, cost per account and verdict; without --acv, three worked cases."""
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
    data: DataOpt = None,
    model: ModelOpt = None,
    team: TeamOpt = None,
    team_size: Annotated[
        float | None, typer.Option(min=0, help="CS people, when there is no team file.")
    ] = None,
    mapping: MappingOpt = None,
    as_of: AsOfOpt = None,
    as_json: JsonOpt = False,
    workspace: WorkspaceOpt = None,
) -> None:
    """What stage is our CS organisation in, what next, and which mistakes show in the data?"""
    when = parse_as_of(as_of)
    got = workspace_inputs(workspace, model=model, data=data, team=team, mapping=mapping)
    tm, accounts = load_portfolio(got.model, _need_data(got.data), got.mapping, when)
    team = shipped(got.team, "team.yaml")
    crew, d = load_team(team, tm) if team is not None else (None, PlanningDefaults())
    adv = advise(tm, as_portfolio(accounts), crew, d, team_size)
    if as_json:
        _json(adv.as_dict())
        return
    render_advice(Console(), adv)


def register(app: typer.Typer) -> None:
    """Add ``plan``, ``select``, ``economics`` and ``advise`` to the main app."""
    app.command("plan")(user_errors(plan_cmd))
    app.command("select")(user_errors(select_cmd))
    app.command("economics")(user_errors(economics_cmd))
    app.command("advise")(user_errors(advise_cmd))

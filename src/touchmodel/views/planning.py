"""The workspace's plan and the six-factor model choice, as plain data.

``touchmodel plan`` runs the engine on a data folder; the server does not
re-run it per request. It reads the accounts of the latest completed run
instead (``signals.parquet`` in the run's output folder: ARR, tier, tier level,
strategic flag and employees, exactly what the engine handed the CLI), and
plans with the workspace's model and team file. When that file is gone, the
run's snapshots in the state store stand in (without strategic flags or
employee counts, which the source note says).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import select
from sqlalchemy.orm import Session

from touchmodel.errors import TouchmodelError
from touchmodel.model.loader import load_model
from touchmodel.model.schema import TouchModel
from touchmodel.plan import (
    Answers,
    PlanningDefaults,
    Portfolio,
    Team,
    advise,
    as_portfolio,
    fill_from_portfolio,
    load_team,
    parse_growth,
    parse_share,
    project,
    read_team_file,
    select_model,
)
from touchmodel.plan.select import FACTORS, QUESTIONS, SelectError
from touchmodel.state.tables import Run, Snapshot
from touchmodel.workspace import Workspace

PORTFOLIO_COLUMNS = ("account_id", "arr", "tier", "tier_level", "strategic", "employees")


class NoRun(TouchmodelError):
    """There is no completed run to plan from yet."""


@dataclass(frozen=True)
class PortfolioSource:
    """Where the planned accounts came from."""

    run_id: int
    as_of: dt.date
    accounts: int
    source: str  # "decision files" or "state snapshots"
    note: str


@dataclass(frozen=True)
class Inputs:
    """What every planning view needs: model, team, figures and the latest run's accounts."""

    model: TouchModel
    team: Team | None
    defaults: PlanningDefaults
    portfolio: Portfolio
    source: PortfolioSource


def latest_run(session: Session) -> Run | None:
    """The newest completed run (by as-of date, then id)."""
    return session.scalars(
        select(Run).where(Run.status == "completed").order_by(Run.as_of.desc(), Run.id.desc())
    ).first()


def _from_snapshots(session: Session, run: Run) -> pd.DataFrame:
    rows = session.execute(
        select(Snapshot.account_id, Snapshot.arr, Snapshot.tier, Snapshot.tier_level).where(
            Snapshot.as_of == run.as_of
        )
    ).all()
    return pd.DataFrame(rows, columns=["account_id", "arr", "tier", "tier_level"])


def planning_inputs(ws: Workspace, session: Session) -> Inputs:
    """Model, team and the latest completed run's accounts of workspace ``ws``."""
    model = load_model(ws.model_spec)
    team_path = ws.team_path
    if team_path is not None and team_path.exists():
        team, defaults = load_team(team_path, model)
    else:
        team, defaults = None, PlanningDefaults()
    run = latest_run(session)
    if run is None:
        raise NoRun("no completed run yet: run `touchmodel run` (or wait for the scheduled run)")
    file = ws.out_dir(run.as_of.isoformat()) / "signals.parquet"
    if file.exists():
        names = set(pq.read_schema(file).names)
        table = pq.read_table(file, columns=[c for c in PORTFOLIO_COLUMNS if c in names])
        portfolio = as_portfolio(table)
        source = PortfolioSource(
            run.id,
            run.as_of,
            len(portfolio),
            "decision files",
            f"accounts of the run of {run.as_of}",
        )
    else:
        portfolio = as_portfolio(_from_snapshots(session, run))
        source = PortfolioSource(
            run.id,
            run.as_of,
            len(portfolio),
            "state snapshots",
            f"the run of {run.as_of} from the state store ({file} is gone): "
            "no strategic flags or employee counts",
        )
    return Inputs(model, team, defaults, portfolio, source)


def workspace_plan(
    ws: Workspace, session: Session, *, growth: str = "0%", margin: str | None = None
) -> dict[str, Any]:
    """Capacity today and at 12/24 months, unit economics per tier, org phase and mistakes.

    ``growth``: yearly growth in accounts (``40%`` or ``0.4``); ``margin``:
    gross margin overriding the team file's (``0.8`` or ``80%``).
    """
    inputs = planning_inputs(ws, session)
    d = inputs.defaults
    if margin is not None:
        econ = d.economics.model_copy(update={"gross_margin": parse_share("margin", margin)})
        d = d.model_copy(update={"economics": econ})
    rate = parse_growth(growth, d.max_growth)
    plans = project(inputs.model, inputs.portfolio, inputs.team, rate, d)
    advice = advise(inputs.model, inputs.portfolio, inputs.team, d)
    return {
        "model": inputs.model.name,
        "as_of": inputs.source.as_of.isoformat(),
        "run_id": inputs.source.run_id,
        "source": inputs.source.source,
        "source_note": inputs.source.note,
        "growth": rate,
        "gross_margin": d.economics.gross_margin,
        "cs_share": {"min": d.economics.cs_share.min, "max": d.economics.cs_share.max},
        "team": None if inputs.team is None else inputs.team.name,
        "plans": [p.as_dict() for p in plans],
        "advice": advice.as_dict(),
    }


def model_choice(
    answers: dict[str, Any],
    *,
    ws: Workspace | None = None,
    session: Session | None = None,
) -> dict[str, Any]:
    """The six answers -> the recommended model with its reasons.

    With ``ws`` and ``session`` the latest run's accounts fill the answers left
    out (ACV, segment, ratio) and their ACV zones can make the answer hybrid.
    """
    try:
        given = Answers.model_validate(answers)
    except ValueError as exc:
        raise SelectError(f"answers: {exc}") from None
    portfolio = None
    notes: list[str] = []
    defaults = PlanningDefaults()
    if ws is not None and session is not None:
        if ws.team_path is not None and ws.team_path.exists():
            defaults = read_team_file(ws.team_path).planning
        inputs = planning_inputs(ws, session)
        portfolio = inputs.portfolio
        given, notes = fill_from_portfolio(given, portfolio, defaults)
    missing = given.missing()
    if missing:
        raise SelectError(
            f"missing answer(s): {', '.join(missing)} -- answer every question "
            "(or give a score 1-5 in 'scores')"
        )
    selection = select_model(given, portfolio, defaults)
    return {"selection": selection.as_dict(), "from_data": notes}


def questions() -> list[dict[str, str]]:
    """The six questions, in order, for a form."""
    return [{"factor": f, "question": QUESTIONS[f]} for f in FACTORS]

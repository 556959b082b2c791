"""Store the at-risk staffing on the open work items, so every queue is ordered by it.

After a daily run has synced its work items, the open ``risk.*`` items are
valued (:func:`touchmodel.fit.allocate.value_risk_items`) and the open ones
compete for the team's weekly outreach minutes (team file); snoozed items keep
their value but take no time this week. Items of other kinds get no value.
One read of the open items and one bulk update: no query per item.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from touchmodel.engine import Decided
from touchmodel.fit.allocate import arr_of, staff_items, value_risk_items
from touchmodel.model.schema import TouchModel
from touchmodel.plan.defaults import PlanningDefaults
from touchmodel.plan.team import outreach_minutes, read_team_file
from touchmodel.state.tables import WorkItem


def staff_open_items(
    session: Session, model: TouchModel, decided: Decided, team_path: Path | None
) -> dict[str, int]:
    """Set ``expected_arr_kept`` and ``over_capacity`` on every open or snoozed work item.

    Without a team file the capacity is unknown and no item is over capacity.
    Returns counts for the run record.
    """
    team = read_team_file(team_path) if team_path is not None and team_path.is_file() else None
    alloc = (team.planning if team is not None else PlanningDefaults()).allocation
    valued, basis = value_risk_items(
        model, decided.decisions, arr_of(decided.decisions, decided.accounts), alloc
    )
    rows = session.execute(
        select(WorkItem.id, WorkItem.account_id, WorkItem.trigger, WorkItem.route, WorkItem.status)
        .where(WorkItem.status != "closed", WorkItem.kind == "trigger")
        .where(WorkItem.trigger.startswith("risk."))
    ).all()
    session.execute(
        update(WorkItem)
        .where(WorkItem.status != "closed")
        .values(expected_arr_kept=None, over_capacity=False)
    )
    if not rows:
        return {"at_risk_items_valued": 0, "at_risk_items_over_capacity": 0}
    items = pa.table(
        {
            "id": [r[0] for r in rows],
            "account_id": [r[1] for r in rows],
            "trigger": [r[2] for r in rows],
            "route": [r[3] for r in rows],
            "open": [r[4] == "open" for r in rows],
        }
    )
    # An item valued today: its trigger fired on this route for this account.
    joined = items.join(valued, ["account_id", "trigger", "route"], join_type="inner")
    mask = joined["open"]
    capacity = None if team is None else outreach_minutes(team)
    staffed = staff_items(joined.filter(mask), capacity, basis).items
    over = set(staffed.filter(pc.invert(staffed["staffed"]))["id"].to_pylist())
    values = joined.select(["id", "expected_arr_kept"]).to_pylist()
    session.execute(
        update(WorkItem),
        [
            {
                "id": v["id"],
                "expected_arr_kept": v["expected_arr_kept"],
                "over_capacity": v["id"] in over,
            }
            for v in values
        ],
    )
    return {"at_risk_items_valued": len(values), "at_risk_items_over_capacity": len(over)}

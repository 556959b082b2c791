"""Books against their caps, and moving accounts out of over-cap books (``touchmodel rebalance``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from touchmodel.model.loader import load_model
from touchmodel.model.schema import TouchModel
from touchmodel.ops.books import Assignment as Planned
from touchmodel.ops.books import BookLoad, Move, propose_rebalance
from touchmodel.ops.workitems import reassign_open_items
from touchmodel.plan.team import BookOwner, load_book_owners
from touchmodel.state.tables import Assignment, AssignmentChange
from touchmodel.workspace import Workspace, WorkspaceError


def workspace_owners(ws: Workspace, model: TouchModel | None = None) -> list[BookOwner]:
    """The workspace's named CSMs and their caps (team.yaml against the model's tiers)."""
    if ws.team_path is None or not ws.team_path.is_file():
        raise WorkspaceError(
            f"{ws.root}: touchmodel.yaml names no team file, so there are no books"
        )
    return load_book_owners(ws.team_path, model or load_model(ws.model_spec))


def book_loads(ws: Workspace, session: Session) -> list[dict[str, Any]]:
    """Every (CSM, tier) book: accounts, cap, and whether it is over cap."""
    sizes: dict[tuple[str, str], int] = {}
    for csm, tier in session.execute(select(Assignment.csm, Assignment.tier)).all():
        sizes[(csm, tier)] = sizes.get((csm, tier), 0) + 1
    rows = []
    known = set()
    for owner in workspace_owners(ws):
        for tier, cap in owner.capacity.items():
            n = sizes.get((owner.name, tier), 0)
            known.add((owner.name, tier))
            rows.append(
                {
                    "csm": owner.name,
                    "tier": tier,
                    "accounts": n,
                    "cap": cap,
                    "over_cap": BookLoad(owner.name, tier, n, cap).over_cap,
                }
            )
    for (csm, tier), n in sorted(sizes.items()):
        if (csm, tier) not in known:  # a CSM who left team.yaml, or a tier they no longer cover
            rows.append({"csm": csm, "tier": tier, "accounts": n, "cap": 0.0, "over_cap": True})
    return rows


def propose(ws: Workspace, session: Session) -> list[Move]:
    """Moves that bring every over-cap book under its cap where another book has room."""
    stored = list(session.scalars(select(Assignment)))
    assignments = {a.account_id: Planned(a.csm, a.tier, a.reason) for a in stored}
    assigned_at = {a.account_id: a.assigned_on for a in stored}
    model = load_model(ws.model_spec)
    owners = workspace_owners(ws, model)
    return propose_rebalance(assignments, owners, model, assigned_at=assigned_at)


def apply_moves(session: Session, moves: Sequence[Move], *, on: dt.date) -> int:
    """Make the moves, each with a change row carrying its reason; returns how many were made."""
    made = 0
    for move in moves:
        row = session.get(Assignment, move.account_id)
        if row is None or row.csm != move.from_csm:
            continue  # changed since it was proposed
        row.csm, row.assigned_on, row.reason = move.to_csm, on, move.reason
        reassign_open_items(session, move.account_id, to_csm=move.to_csm, on=on, actor="rebalance")
        session.add(
            AssignmentChange(
                account_id=move.account_id, on=on, from_csm=move.from_csm, to_csm=move.to_csm,
                reason=f"rebalance: {move.reason}", run_id=None,
            )
        )  # fmt: skip
        made += 1
    return made

"""Books in the state: the stored assignment of each account, and every move of it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from touchmodel.ops.books import Assignment as Planned
from touchmodel.state.tables import Assignment, AssignmentChange


def write_assignments(
    session: Session, planned: Mapping[str, Planned], *, as_of: dt.date, run_id: int | None
) -> int:
    """Store the planned book of each account; returns how many assignments changed.

    A change row is written only when the stored assignment really changes,
    so a re-run, or the rest of a killed run, records each move once.
    """
    if not planned:
        return 0
    stored = {
        a.account_id: a
        for a in session.scalars(select(Assignment).where(Assignment.account_id.in_(list(planned))))
    }
    changed = 0
    for account, plan in planned.items():
        old = stored.get(account)
        if old is not None and old.csm == plan.csm:
            old.tier = plan.tier  # the tier follows the account; the book did not move
            continue
        if old is None and plan.csm is None:
            continue
        session.add(
            AssignmentChange(
                account_id=account, on=as_of, from_csm=old.csm if old else None,
                to_csm=plan.csm, reason=plan.reason, run_id=run_id,
            )
        )  # fmt: skip
        changed += 1
        if plan.csm is None:
            assert old is not None
            session.delete(old)
        elif old is None:
            session.add(
                Assignment(
                    account_id=account,
                    csm=plan.csm,
                    tier=plan.tier,
                    assigned_on=as_of,
                    reason=plan.reason,
                )
            )
        else:
            old.csm, old.tier, old.assigned_on, old.reason = plan.csm, plan.tier, as_of, plan.reason
    return changed


def release_gone(
    session: Session, decided: Collection[str], *, as_of: dt.date, run_id: int | None
) -> int:
    """Take accounts without a decision (churned, not started) out of their books."""
    gone = [a for a in session.scalars(select(Assignment)) if a.account_id not in decided]
    for a in gone:
        session.add(
            AssignmentChange(
                account_id=a.account_id, on=as_of, from_csm=a.csm, to_csm=None,
                reason=f"no decision on {as_of}: the account is not a customer", run_id=run_id,
            )
        )  # fmt: skip
        session.delete(a)
    return len(gone)

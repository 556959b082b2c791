"""What a principal may see: an admin everything, a CSM only their own book."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from touchmodel.access.keys import Principal
from touchmodel.state.tables import Assignment


def book_of(principal: Principal) -> str | None:
    """The CSM whose book limits what ``principal`` sees; None for an admin (sees all)."""
    return None if principal.is_admin else (principal.csm or "")


def book_accounts(csm: str) -> Select[Any]:
    """The account ids in ``csm``'s book (for ``.in_()`` filters)."""
    return select(Assignment.account_id).where(Assignment.csm == csm)


def in_book(session: Session, account_id: str, csm: str | None) -> bool:
    """Whether an account is visible to a principal limited to ``csm``'s book."""
    if csm is None:
        return True
    row = session.get(Assignment, account_id)
    return row is not None and row.csm == csm

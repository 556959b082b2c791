"""Who an automated email goes to: each account's primary contact."""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import ibis.expr.types as ir


def primary_emails(tables: Mapping[str, ir.Table]) -> dict[str, str]:
    """account_id -> email of its primary contact: the earliest created contact with an email.

    Empty when the data has no contacts table or no email column; touchpoints
    of accounts without an address are skipped with that reason, not sent.
    """
    contacts = tables.get("contacts")
    if contacts is None or "email" not in contacts.columns:
        return {}
    c = contacts.filter(contacts.email.notnull() & (contacts.email.strip() != ""))
    order = (
        [c.created_at.asc(nulls_first=False), c.contact_id]
        if "created_at" in c.columns
        else [c.contact_id]
    )
    ranked = c.mutate(_rank=ibis.row_number().over(group_by=c.account_id, order_by=order))
    first = ranked.filter(ranked._rank == 0).select("account_id", "email").to_pyarrow()
    return dict(zip(first["account_id"].to_pylist(), first["email"].to_pylist(), strict=True))

"""The ``payments`` table: monthly or annual invoices on the contract's dates."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from touchmodel.demo._accounts import CHURNED, DECLINING
from touchmodel.demo._common import (
    BlockInputs,
    contract_table,
    date_array,
    month_day,
    numbered_ids,
    pick,
    timestamp_array,
)

PAYMENT_DAYS = 183
PAYMENT_STATUSES = ("paid", "failed", "refunded")


def draw_payments(block: BlockInputs) -> tuple[np.ndarray, pa.Table]:
    """Each invoice's account (block index) and the invoices; advances ``block.counters.invoices``."""
    rng, days, acc, ids = block.rng, block.days, block.acc, block.ids
    counters = block.counters
    n = acc["arr"].size
    arr, start, archetype = acc["arr"], acc["start"], acc["archetype"]
    annual = rng.random(n) < np.where(arr >= 25_000, 0.85, 0.30)

    # Monthly invoices fall on the contract's day of month over the last 7 months.
    start_d = start.astype("datetime64[D]")
    dom = (start_d - start_d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)
    as_of_month = np.datetime64(days.as_of, "D").astype("datetime64[M]")
    back = np.arange(7)
    months = as_of_month - back.astype("timedelta64[M]")
    monthly_due = month_day(np.broadcast_to(months, (n, 7)), dom[:, None])
    monthly_ok = ~annual[:, None] & np.ones((n, 7), bool)
    # Annual invoices fall on the last anniversary (the contract start counts).
    years = np.datetime64(days.as_of, "D").astype("datetime64[Y]").astype(
        np.int64
    ) - start_d.astype("datetime64[Y]").astype(np.int64)
    cand = days.anniversary(start, years)
    annual_due = np.where(cand <= days.as_of, cand, days.anniversary(start, years - 1))

    due = np.concatenate([monthly_due, annual_due[:, None]], axis=1)
    ok = np.concatenate([monthly_ok, annual[:, None]], axis=1)
    churn_day = np.where(archetype == CHURNED, days.as_of - acc["churn_age"], days.as_of + 1)
    ok &= (due <= days.as_of) & (due > days.as_of - PAYMENT_DAYS)
    ok &= (due >= start[:, None]) & (due < churn_day[:, None])
    acct = np.nonzero(ok)[0]
    due = due[ok]
    order = np.lexsort((due, acct))
    acct, due = acct[order], due[order]
    m = acct.size

    amount = np.round(np.where(annual[acct], arr[acct], arr[acct] / 12), 2)
    fail_p = np.where(np.isin(archetype[acct], (DECLINING, CHURNED)), 0.07, 0.02)
    roll = rng.random(m)
    status = np.where(roll < fail_p, 1, np.where(roll > 0.996, 2, 0))
    lag = (rng.random(m) * np.minimum(7, days.as_of - due + 1)).astype(np.int64)
    paid = days.timestamps(days.as_of - due - lag)
    table = contract_table(
        "payments",
        {
            "account_id": ids.take(pa.array(acct)),
            "invoice_id": numbered_ids("INV-", counters.invoices + 1 + np.arange(m), 8),
            "due_date": date_array(due),
            "amount": pa.array(amount, pa.float64()),
            "status": pick(PAYMENT_STATUSES, status),
            "paid_at": timestamp_array(paid, status == 1),
        },
    )
    counters.invoices += m
    return acct, table

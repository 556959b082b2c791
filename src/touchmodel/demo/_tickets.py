"""The ``tickets`` table: support load by seats, bursts and complaints at risky accounts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from touchmodel.demo._accounts import CHURNED, DECLINING
from touchmodel.demo._common import (
    US_PER_DAY,
    BlockInputs,
    categorical,
    contract_table,
    numbered_ids,
    pick,
    repeat_index,
    timestamp_array,
)

TICKET_DAYS = 180
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
_PRIORITY_P = np.array([0.25, 0.50, 0.18, 0.07])
# Mean hours to close, by priority.
_PRIORITY_HOURS = np.array([60.0, 30.0, 16.0, 6.0])
TICKET_CATEGORIES = (
    "how-to",
    "billing",
    "bug",
    "integration",
    "complaint",
    "downgrade",
    "cancellation",
)
_CATEGORY_P_CALM = np.array([0.40, 0.13, 0.23, 0.14, 0.05, 0.03, 0.02])
_CATEGORY_P_RISK = np.array([0.25, 0.12, 0.22, 0.10, 0.14, 0.10, 0.07])
_SATISFACTION_P_CALM = np.array([0.05, 0.07, 0.15, 0.33, 0.40])
_SATISFACTION_P_RISK = np.array([0.28, 0.25, 0.22, 0.15, 0.10])


def draw_tickets(block: BlockInputs) -> tuple[np.ndarray, pa.Table]:
    """Each ticket's account (block index) and the tickets; advances ``block.counters.tickets``."""
    rng, days, acc, ids = block.rng, block.days, block.acc, block.ids
    counters = block.counters
    n = acc["arr"].size
    archetype = acc["archetype"]
    at_risk = np.isin(archetype, (DECLINING, CHURNED))
    t30 = 0.12 * acc["seats"] ** 0.3
    recent_mult = np.array([1.0, 2.5, 0.3, 1.2, 1.3, 1.5])[archetype]
    older = repeat_index(rng.poisson(t30 * 5))
    recent = repeat_index(rng.poisson(t30 * recent_mult))
    # A burst of issues: several tickets within two weeks.
    spike = repeat_index(
        np.where(rng.random(n) < np.where(at_risk, 0.05, 0.008), 3 + rng.poisson(0.7, n), 0)
    )
    cancel = np.flatnonzero((archetype == CHURNED) & (rng.random(n) < 0.6))
    acct = np.concatenate([older, recent, spike, cancel])
    age = np.concatenate(
        [
            days.ages(np.full(older.size, 30), np.full(older.size, TICKET_DAYS - 1)),
            days.ages(np.zeros(recent.size), np.full(recent.size, 29)),
            days.ages(np.zeros(spike.size), np.full(spike.size, 13)),
            acc["churn_age"][cancel] + rng.integers(3, 31, cancel.size),
        ]
    )
    m = acct.size
    category = np.where(
        at_risk[acct],
        categorical(rng, _CATEGORY_P_RISK, m),
        categorical(rng, _CATEGORY_P_CALM, m),
    )
    category[m - cancel.size :] = TICKET_CATEGORIES.index("cancellation")
    keep = (age <= acc["tenure"][acct]) & (age >= acc["churn_age"][acct])
    acct, age, category = acct[keep], age[keep], category[keep]
    opened = days.timestamps(age)
    order = np.lexsort((opened, acct))
    acct, opened, category = acct[order], opened[order], category[order]
    m = acct.size

    priority = categorical(rng, _PRIORITY_P, m)
    hours = rng.exponential(_PRIORITY_HOURS[priority])
    closed = opened + (hours * 3600).astype(np.int64) * 1_000_000
    end_of_as_of = (days.as_of + 1) * US_PER_DAY
    open_now = (closed >= end_of_as_of) | (rng.random(m) < 0.04)
    grim = at_risk[acct] | (category == TICKET_CATEGORIES.index("complaint"))
    score = 1 + np.where(
        grim, categorical(rng, _SATISFACTION_P_RISK, m), categorical(rng, _SATISFACTION_P_CALM, m)
    )
    rated = ~open_now & (rng.random(m) < 0.5)
    table = contract_table(
        "tickets",
        {
            "ticket_id": numbered_ids("TCK-", counters.tickets + 1 + np.arange(m), 8),
            "account_id": ids.take(pa.array(acct)),
            "opened_at": timestamp_array(opened),
            "closed_at": timestamp_array(closed, open_now),
            "priority": pick(TICKET_PRIORITIES, priority),
            "category": pick(TICKET_CATEGORIES, category),
            "satisfaction": pa.array(score.astype(np.float64), pa.float64(), mask=~rated),
        },
    )
    counters.tickets += m
    return acct, table

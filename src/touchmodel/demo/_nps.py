"""The ``nps_responses`` table: survey answers from the accounts' contacts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.demo._accounts import CHURNED, DECLINING, INACTIVE
from touchmodel.demo._common import (
    BlockInputs,
    categorical,
    contract_table,
    numbered_ids,
    pick,
    repeat_index,
    timestamp_array,
)

NPS_DAYS = 365
_NPS_COMMENTS = (
    (
        "Too slow for our volume.",
        "We keep hitting bugs in workflows.",
        "Hard to get value out of it.",
        "Considering alternatives at renewal.",
        "Support takes too long to answer.",
    ),
    (
        "Good overall, a few rough edges.",
        "Reporting could be more flexible.",
        "Does the job; pricing feels high.",
        "Would like more integrations.",
    ),
    (
        "Great product, the team loves it.",
        "Dashboards save us hours every week.",
        "Support is fast and helpful.",
        "Easy to roll out to new teams.",
    ),
)


def draw_nps_responses(block: BlockInputs, n_contacts: np.ndarray) -> tuple[np.ndarray, pa.Table]:
    """Each response's account (block index) and the responses, each from one of its contacts."""
    rng, days, acc, ids = block.rng, block.days, block.acc, block.ids
    counters = block.counters
    n = acc["arr"].size
    archetype = acc["archetype"]
    unhappy = np.isin(archetype, (DECLINING, INACTIVE, CHURNED))
    # ~46% drawn so that ~40% remain once young and churned accounts are masked.
    answered = rng.random(n) < 0.46
    acct = repeat_index(np.where(answered, 1 + rng.binomial(2, 0.3, n), 0))
    age = days.ages(np.zeros(acct.size), np.full(acct.size, NPS_DAYS - 1))
    keep = (age <= acc["tenure"][acct]) & (age >= acc["churn_age"][acct])
    acct, age = acct[keep], age[keep]
    stamp = days.timestamps(age)
    order = np.lexsort((stamp, acct))
    acct, stamp = acct[order], stamp[order]
    m = acct.size

    # Group 0 detractor, 1 passive, 2 promoter.
    group = np.where(
        unhappy[acct],
        categorical(rng, np.array([0.50, 0.30, 0.20]), m),
        categorical(rng, np.array([0.18, 0.32, 0.50]), m),
    )
    detractor = categorical(rng, np.array([0.03, 0.03, 0.05, 0.08, 0.12, 0.27, 0.42]), m)
    score = np.select([group == 0, group == 1], [detractor, 7 + rng.integers(0, 2, m)], 9)
    score = np.where(group == 2, 9 + rng.integers(0, 2, m), score)
    offsets = np.cumsum([0] + [len(c) for c in _NPS_COMMENTS])
    sizes = np.diff(offsets)
    comment_idx = offsets[group] + (rng.random(m) * sizes[group]).astype(np.int64)
    comments = [c for group_comments in _NPS_COMMENTS for c in group_comments]
    no_comment = rng.random(m) >= 0.35
    first_contact = np.concatenate([[0], np.cumsum(n_contacts)[:-1]])
    contact = counters.contacts + 1 + first_contact[acct]
    contact += (rng.random(m) * n_contacts[acct]).astype(np.int64)
    table = contract_table(
        "nps_responses",
        {
            "account_id": ids.take(pa.array(acct)),
            "responded_at": timestamp_array(stamp),
            "score": pa.array(score.astype(np.int64), pa.int64()),
            "contact_id": numbered_ids("CON-", contact, 8),
            "comment": pc.if_else(
                pa.array(no_comment), pa.scalar(None, pa.string()), pick(comments, comment_idx)
            ),
        },
    )
    return acct, table

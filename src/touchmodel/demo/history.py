"""A demo customer base with a history: months of data and churn with known causes.

The plain demo (:mod:`touchmodel.demo.generator`) shows one day of decisions.
To *backtest* and *calibrate* a touch model, a base needs what came before:
usage, tickets, NPS and invoices over many months, and accounts that churned
along the way. This generator writes such a folder (same files and columns
as the plain demo) with ``months`` of history before the as-of date.

How churn is planted (the ground truth the tests and docs rely on):

- **Adoption.** Every account has a latent adoption level in (0, 1). Its usage
  per 30 days grows with adoption and seats; the plan limits are set so that
  adoption shows in ``plan_utilization``. Low adoption raises the background
  churn risk (accounts that never got value leave at renewal).
- **Episodes.** About a quarter of the accounts go through a bad episode that
  starts on a random day (some start after the as-of date, so today's base
  has churn still to come). An episode has a primary cause, sometimes a
  second one:

  | cause | what the data shows from the episode start |
  |---|---|
  | declining usage | usage falls geometrically, to 12% of its level at churn; a core feature is dropped |
  | support pain | tickets arrive six times as often (and at least two a month), many bugs and complaints |
  | detractor | an NPS survey answered 0-5 soon after the start |
  | failed payments | most invoices due during the episode fail |

  70% of episodes end in churn 45-150 days after they start (often snapped to
  the renewal anniversary); the rest recover, so a signal is evidence, not
  proof. A downgrade or cancellation ticket precedes a quarter of the churns.
- **Noise.** Accounts with no episode churn too, rarely (more with low
  adoption); every account has random ticket bursts, detractor answers and
  failed payments at base rates, and usage varies period to period.

Churn days up to the as-of date are written as ``churned_on``; later ones are
not (those accounts are still customers), and the ground truth per account is
returned by :func:`draw_history` for tests. Everything is vectorized per
block of 1,000 accounts seeded with ``(seed, block)``, as in the plain demo.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from touchmodel.demo._accounts import (
    _CSMS,
    _PRICE_PER_SEAT,
    ARR_MAX,
    ARR_MEDIAN,
    ARR_MIN,
    ARR_SIGMA,
    NAME_FIRST,
    NAME_SECOND,
    PLANS,
)
from touchmodel.demo._common import (
    US_PER_DAY,
    contract_schema,
    contract_table,
    date_array,
    numbered_ids,
    pick,
    timestamp_array,
)
from touchmodel.demo._usage_events import CORE_EVENTS, INTEGRATION_EVENTS, PREMIUM_EVENTS
from touchmodel.demo.generator import BLOCK_ACCOUNTS, PROGRESS_STEP, TABLE_NAMES, DemoSummary

PERIOD = 15  # days: usage, tickets and invoices are drawn per period of this length
# Usage units per 30 days at which each plan's limit sits (~3x typical healthy use).
PLAN_LIMITS = np.array([30.0, 50.0, 80.0, 130.0])
_PLAN_ARR_BOUNDS = np.array([6_000.0, 20_000.0, 75_000.0])
CAUSES = ("usage_decline", "support_pain", "detractor", "payment_failure")
_CAUSE_P = np.array([0.45, 0.25, 0.20, 0.10])
EPISODE_CHURN_P = 0.7
_TITLES = ("CEO", "VP Operations", "Head of Analytics", "Operations Manager", "Analyst", "Admin")


@dataclass
class HistoryTruth:
    """The planted ground truth of one block (per account), for tests and docs."""

    churn_day: np.ndarray  # epoch day of churn, or -1 for none (also when after as_of)
    episode_start: np.ndarray  # epoch day, or -1
    cause: np.ndarray  # index into CAUSES of the primary cause, or -1
    adoption: np.ndarray


def _day(d: dt.date) -> int:
    return int(np.datetime64(d, "D").astype(np.int64))


def draw_history(
    seed: int, block: int, n: int, as_of: dt.date, months: int, width: int, counters: list[int]
) -> tuple[dict[str, pa.Table], HistoryTruth]:
    """Every table for accounts ``block * BLOCK_ACCOUNTS`` .. ``+ n`` and their ground truth.

    ``counters`` holds the running ticket, invoice and contact numbers.
    """
    rng = np.random.default_rng([seed, block, 20261203])
    today = _day(as_of)
    span = months * 30 + 90  # days of history: the first replayable date needs 60 days before it
    first_day = today - span
    glob = block * BLOCK_ACCOUNTS + np.arange(n)
    ids = numbered_ids("ACC-", glob + 1, width)

    # --- accounts --------------------------------------------------------
    arr = np.clip(np.exp(np.log(ARR_MEDIAN) + ARR_SIGMA * rng.standard_normal(n)), ARR_MIN, ARR_MAX)
    arr = np.round(arr, -1)
    plan = np.searchsorted(_PLAN_ARR_BOUNDS, arr * np.exp(rng.normal(0, 0.25, n)), side="right")
    seats = np.maximum(1, np.round(arr / _PRICE_PER_SEAT[plan] * np.exp(rng.normal(0, 0.3, n))))
    seats = seats.astype(np.int64)
    employees = np.maximum(seats, np.round(seats * np.exp(rng.normal(1.3, 0.6, n)))).astype(
        np.int64
    )
    start = today - rng.integers(30, span + 2 * 365, n)
    adoption = rng.beta(2.5, 2.0, n)
    u30 = (6.0 + 4.0 * seats**0.45) * (0.25 + 1.5 * adoption) * np.exp(rng.normal(0, 0.25, n))
    u30 *= np.array([0.6, 0.8, 1.0, 1.3])[plan]

    # --- churn: episodes and background ----------------------------------
    has_episode = rng.random(n) < 0.3 * (1.4 - adoption)
    ep_start = np.where(has_episode, rng.integers(first_day + 60, today + 60, n), -1)
    ep_start = np.where(ep_start < start + 45, -1, ep_start)  # not in the first weeks
    has_episode = ep_start >= 0
    cause = np.where(has_episode, np.searchsorted(np.cumsum(_CAUSE_P), rng.random(n)), -1)
    cause = np.minimum(cause, len(CAUSES) - 1)
    second = np.where(has_episode & (rng.random(n) < 0.3), rng.integers(0, 4, n), -1)
    churns = has_episode & (rng.random(n) < EPISODE_CHURN_P)
    lead = rng.integers(45, 151, n)
    churn_day = np.where(churns, ep_start + lead, -1)
    # Churn at the renewal anniversary when one falls 30-150 days into the episode.
    years = np.ceil((ep_start + 30 - start) / 365.25)
    anniversary = start + np.round(years * 365.25).astype(np.int64)
    snap = churns & (anniversary <= ep_start + 150) & (rng.random(n) < 0.6)
    churn_day = np.where(snap, anniversary, churn_day)
    background = ~has_episode & (rng.random(n) < 0.08 * (1 - adoption) ** 2)
    bg_day = rng.integers(first_day + 60, today + 90, n)
    churn_day = np.where(background & (bg_day > start + 60), bg_day, churn_day)
    end = np.where(churn_day >= 0, churn_day, today + 10_000)  # last day with activity + 1

    def in_episode(day: np.ndarray, acct: np.ndarray, which: int) -> np.ndarray:
        hit = (cause[acct] == which) | (second[acct] == which)
        stop = np.where(churn_day[acct] >= 0, churn_day[acct], ep_start[acct] + lead[acct])
        return hit & (ep_start[acct] >= 0) & (day >= ep_start[acct]) & (day < stop)

    tables: dict[str, pa.Table] = {}
    churned_on = np.where((churn_day >= 0) & (churn_day <= today), churn_day, 0)
    renewal = start + np.round(np.ceil((today - start) / 365.25) * 365.25).astype(np.int64)
    has_csm = (arr >= 25_000) & (rng.random(n) < 0.9)
    tables["accounts"] = contract_table(
        "accounts",
        {
            "account_id": ids,
            "name": pa.array(
                [
                    f"{NAME_FIRST[a]}{NAME_SECOND[b]} Co"
                    for a, b in zip(
                        rng.integers(0, len(NAME_FIRST), n),
                        rng.integers(0, len(NAME_SECOND), n),
                        strict=True,
                    )
                ],
                pa.string(),
            ),
            "arr": pa.array(arr, pa.float64()),
            "contract_start": date_array(start),
            "renewal_date": date_array(renewal, rng.random(n) < 0.2),
            "employees": pa.array(employees, pa.int64()),
            "plan": pick(PLANS, plan),
            "plan_limit": pa.array(PLAN_LIMITS[plan], pa.float64()),
            "seats": pa.array(seats, pa.int64()),
            "industry": pick(
                ("Software", "Retail", "Healthcare", "Finance"), rng.integers(0, 4, n)
            ),
            "strategic": pa.array(np.zeros(n, bool), pa.bool_()),
            "csm": pa.array(
                [
                    _CSMS[i] if c else None
                    for i, c in zip(rng.integers(0, len(_CSMS), n), has_csm, strict=True)
                ],
                pa.string(),
            ),
            "churned_on": date_array(churned_on, churned_on == 0),
        },
    )

    # --- usage events, per period of PERIOD days ------------------------
    # Few events, each carrying a quantity (records processed, say): usage
    # totals are then steady enough that a trend means something.
    periods = math.ceil(span / PERIOD)
    p_start = first_day + PERIOD * np.arange(periods)  # first day of each period
    mid = p_start[None, :] + PERIOD // 2
    factor = np.exp(rng.normal(0, 0.12, (n, periods)))
    # Declining usage: from the episode start, a geometric fall to 12% at churn
    # (an episode that recovers comes back after `lead` days).
    decl = (
        ((cause == 0) | (second == 0))[:, None]
        & (ep_start[:, None] >= 0)
        & (mid >= ep_start[:, None])
    )
    length = np.where(churn_day >= 0, churn_day - ep_start, lead).clip(1)[:, None]
    progress = ((mid - ep_start[:, None]) / length).clip(0, 1.5)
    recovered = ~churns[:, None] & (progress >= 1)
    decline = np.where(recovered, 1.0, 0.12 ** np.minimum(progress, 1))
    factor = np.where(decl, factor * decline, factor)
    # Other causes dent usage a little: unhappy customers use less.
    other = has_episode[:, None] & ~decl & (mid >= ep_start[:, None]) & (mid < end[:, None])
    factor = np.where(other, factor * 0.85, factor)
    active = (mid >= start[:, None]) & (mid < end[:, None])
    level = u30[:, None] * PERIOD / 30 * factor  # usage units in the period
    counts = np.where(active, rng.poisson(np.full((n, periods), 3.5)) + 1, 0)
    acct = np.repeat(np.repeat(np.arange(n), periods), counts.ravel())
    per = np.repeat(np.tile(np.arange(periods), n), counts.ravel())
    day = p_start[per] + rng.integers(0, PERIOD, acct.size)
    quantity = np.round(
        level[acct, per] / counts[acct, per] * rng.gamma(8.0, 1 / 8.0, acct.size), 2
    )
    # Each account leans on a main core feature; declining accounts drop it.
    weights = rng.gamma(3.0, 1.0, (n, len(CORE_EVENTS)))
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    feature = np.minimum((rng.random(acct.size)[:, None] > cum[acct]).sum(axis=1), 3)
    main = weights.argmax(axis=1)
    dropped = decl[acct, per] & (progress[acct, per] > 0.3) & (feature == main[acct])
    feature = np.where(dropped, (feature + 1) % len(CORE_EVENTS), feature)
    names = np.array(
        CORE_EVENTS + PREMIUM_EVENTS + INTEGRATION_EVENTS + ("seat.added", "seat.removed")
    )
    code = feature.copy()
    extra = rng.random(acct.size)
    code = np.where(extra < 0.03, 4 + rng.integers(0, 3, acct.size), code)  # premium
    code = np.where((extra >= 0.03) & (extra < 0.08), 7 + rng.integers(0, 3, acct.size), code)
    code = np.where((extra >= 0.08) & (extra < 0.09), 10, code)  # seat added
    removed = decl[acct, per] & (rng.random(acct.size) < 0.03)
    code = np.where(removed, 11, code)
    keep = (day < end[acct]) & (day >= start[acct]) & (day <= today)
    acct, day, code, quantity = acct[keep], day[keep], code[keep], quantity[keep]
    quantity = np.where(code >= 4, 1.0, quantity)  # premium, integration, seat events count once
    users = np.maximum(1, np.minimum(seats, 40))
    user = (rng.random(acct.size) * users[acct]).astype(np.int64)
    order = np.lexsort((day, acct))
    acct, day, code, user = acct[order], day[order], code[order], user[order]
    quantity = quantity[order]
    stamp = day * US_PER_DAY + rng.integers(8 * 3600, 19 * 3600, acct.size) * 1_000_000
    user_ids = pa.array([f"{i}-U{u:03d}" for i, u in zip(np.asarray(ids)[acct], user, strict=True)])
    tables["usage_events"] = contract_table(
        "usage_events",
        {
            "account_id": pa.array(np.asarray(ids)[acct], pa.string()),
            "timestamp": timestamp_array(stamp),
            "event": pa.array(names[code], pa.string()),
            "user_id": user_ids,
            "quantity": pa.array(quantity, pa.float64()),
        },
    )

    # --- tickets ---------------------------------------------------------
    base = (0.08 + 0.05 * np.log1p(seats))[:, None] * PERIOD / 30 * np.ones((1, periods))
    pain = (
        ((cause == 1) | (second == 1))[:, None]
        & (mid >= ep_start[:, None])
        & (ep_start[:, None] >= 0)
    )
    pain &= mid < np.where(churn_day >= 0, churn_day, ep_start + lead)[:, None]
    rate = np.where(active, np.where(pain, base * 6 + 1.2, base), 0.0)
    burst = rng.random((n, periods)) < 0.01  # noise: a random burst of tickets
    t_counts = rng.poisson(rate) + burst * rng.integers(2, 5, (n, periods))
    t_acct = np.repeat(np.repeat(np.arange(n), periods), t_counts.ravel())
    t_per = np.repeat(np.tile(np.arange(periods), n), t_counts.ravel())
    t_day = p_start[t_per] + rng.integers(0, PERIOD, t_acct.size)
    cats = np.array(
        ["how-to", "billing", "bug", "integration", "complaint", "downgrade", "cancellation"]
    )
    in_pain = pain[t_acct, t_per]
    category = np.where(
        in_pain,
        np.searchsorted([0.2, 0.3, 0.7, 0.8, 1.0], rng.random(t_acct.size)),
        np.searchsorted([0.45, 0.65, 0.88, 0.97, 1.0], rng.random(t_acct.size)),
    )
    # A downgrade or cancellation ticket before a quarter of the churns.
    warn = (churn_day >= 0) & (rng.random(n) < 0.25)
    w_acct = np.flatnonzero(warn)
    w_day = churn_day[w_acct] - rng.integers(5, 41, w_acct.size)
    t_acct = np.concatenate([t_acct, w_acct])
    t_day = np.concatenate([t_day, w_day])
    category = np.concatenate([category, 5 + rng.integers(0, 2, w_acct.size)])
    unhappy = np.concatenate([in_pain, np.ones(w_acct.size, bool)])
    keep = (t_day >= start[t_acct]) & (t_day < end[t_acct]) & (t_day <= today)
    t_acct, t_day, category, unhappy = t_acct[keep], t_day[keep], category[keep], unhappy[keep]
    order = np.lexsort((t_day, t_acct))
    t_acct, t_day, category, unhappy = t_acct[order], t_day[order], category[order], unhappy[order]
    opened = t_day * US_PER_DAY + rng.integers(8 * 3600, 19 * 3600, t_acct.size) * 1_000_000
    closed_after = rng.integers(1, 6 * 24, t_acct.size) * 3600 * 1_000_000
    closed = opened + closed_after
    n_t = t_acct.size
    tickets_no = counters[0] + 1 + np.arange(n_t)
    counters[0] += n_t
    satisfaction = np.clip(np.round(rng.normal(np.where(unhappy, 2.6, 4.2), 0.8)), 1, 5)
    tables["tickets"] = contract_table(
        "tickets",
        {
            "ticket_id": numbered_ids("T-", tickets_no, 8),
            "account_id": pa.array(np.asarray(ids)[t_acct], pa.string()),
            "opened_at": timestamp_array(opened),
            "closed_at": timestamp_array(closed, closed > today * US_PER_DAY),
            "priority": pick(("low", "normal", "high"), rng.integers(0, 3, n_t)),
            "category": pa.array(cats[category], pa.string()),
            "satisfaction": pa.array(satisfaction, pa.float64()),
        },
    )

    # --- NPS: a survey about every six months, plus one in a detractor episode ----
    n_surveys = span // 180 + 1
    s_acct = np.repeat(np.arange(n), n_surveys)
    s_day = today - 180 * np.tile(np.arange(n_surveys), n) - rng.integers(0, 180, s_acct.size)
    answered = rng.random(s_acct.size) < 0.55
    det = ((cause == 2) | (second == 2)) & (ep_start >= 0) & (rng.random(n) < 0.85)
    d_acct = np.flatnonzero(det)
    s_acct = np.concatenate([s_acct[answered], d_acct])
    s_day = np.concatenate([s_day[answered], ep_start[d_acct] + rng.integers(0, 30, d_acct.size)])
    mean = 5.5 + 3.5 * adoption[s_acct]
    score = np.clip(np.round(rng.normal(mean, 2.0)), 0, 10)
    is_det = np.concatenate([np.zeros(answered.sum(), bool), np.ones(d_acct.size, bool)])
    score = np.where(is_det, rng.integers(0, 6, s_acct.size), score)
    keep = (
        (s_day >= start[s_acct]) & (s_day < end[s_acct]) & (s_day <= today) & (s_day >= first_day)
    )
    s_acct, s_day, score = s_acct[keep], s_day[keep], score[keep]
    order = np.lexsort((s_day, s_acct))
    s_acct, s_day, score = s_acct[order], s_day[order], score[order]
    tables["nps_responses"] = contract_table(
        "nps_responses",
        {
            "account_id": pa.array(np.asarray(ids)[s_acct], pa.string()),
            "responded_at": timestamp_array(s_day * US_PER_DAY + 12 * 3600 * 1_000_000),
            "score": pa.array(score.astype(np.float64), pa.float64()),
            "contact_id": pa.nulls(s_acct.size, pa.string()),
            "comment": pa.nulls(s_acct.size, pa.string()),
        },
    )

    # --- payments: monthly invoices --------------------------------------
    n_inv = span // 30 + 1
    i_acct = np.repeat(np.arange(n), n_inv)
    offset = (start[i_acct] - first_day) % 30
    due = first_day + offset + 30 * np.tile(np.arange(n_inv), n)
    keep = (due >= start[i_acct]) & (due < end[i_acct]) & (due <= today)
    i_acct, due = i_acct[keep], due[keep]
    bad = in_episode(due, i_acct, 3) & (rng.random(i_acct.size) < 0.7)
    failed = bad | (rng.random(i_acct.size) < 0.01)
    n_i = i_acct.size
    inv_no = counters[1] + 1 + np.arange(n_i)
    counters[1] += n_i
    paid = due + rng.integers(0, 10, n_i)
    tables["payments"] = contract_table(
        "payments",
        {
            "account_id": pa.array(np.asarray(ids)[i_acct], pa.string()),
            "invoice_id": numbered_ids("INV-", inv_no, 9),
            "due_date": date_array(due),
            "amount": pa.array(np.round(arr[i_acct] / 12, 2), pa.float64()),
            "status": pa.array(np.where(failed, "failed", "paid"), pa.string()),
            "paid_at": timestamp_array(paid * US_PER_DAY, failed | (paid > today)),
        },
    )

    # --- contacts --------------------------------------------------------
    k = 1 + rng.poisson(1.5, n)
    c_acct = np.repeat(np.arange(n), k)
    n_c = c_acct.size
    c_no = counters[2] + 1 + np.arange(n_c)
    counters[2] += n_c
    title = rng.choice(len(_TITLES), n_c, p=[0.05, 0.07, 0.18, 0.3, 0.25, 0.15])
    tables["contacts"] = contract_table(
        "contacts",
        {
            "contact_id": numbered_ids("C-", c_no, 8),
            "account_id": pa.array(np.asarray(ids)[c_acct], pa.string()),
            "email": pa.array([f"contact{i}@example.com" for i in c_no], pa.string()),
            "title": pick(_TITLES, title),
            "created_at": timestamp_array(start[c_acct] * US_PER_DAY),
        },
    )
    truth = HistoryTruth(
        churn_day=np.where(churn_day > today, -1, churn_day),
        episode_start=ep_start,
        cause=cause,
        adoption=adoption,
    )
    return tables, truth


def generate_history(
    out_dir: Path,
    *,
    accounts: int = 2000,
    as_of: dt.date,
    months: int = 12,
    seed: int = 7,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoSummary:
    """Write a demo folder with ``months`` of history and planted churn (see the module doc).

    The files are those of the plain demo; ``usage_events`` is written as one
    part per block of accounts.
    """
    if accounts < 1 or months < 1 or seed < 0:
        raise ValueError("accounts and months must be at least 1, seed non-negative")
    from touchmodel.demo.generator import _clear_previous

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir)
    (out_dir / "usage_events").mkdir(exist_ok=True)
    width = max(6, len(str(accounts)))
    schemas = {name: contract_schema(name) for name in TABLE_NAMES}
    writers = {
        name: pq.ParquetWriter(out_dir / f"{name}.parquet", schemas[name])
        for name in TABLE_NAMES
        if name != "usage_events"
    }
    rows = dict.fromkeys(TABLE_NAMES, 0)
    counters = [0, 0, 0]
    blocks = math.ceil(accounts / BLOCK_ACCOUNTS)
    if progress:
        progress(PROGRESS_STEP, 0, accounts)
    try:
        for block in range(blocks):
            n = min(BLOCK_ACCOUNTS, accounts - block * BLOCK_ACCOUNTS)
            tables, _ = draw_history(seed, block, n, as_of, months, width, counters)
            for name, table in tables.items():
                rows[name] += table.num_rows
                if name == "usage_events":
                    pq.write_table(table, out_dir / name / f"part-{block:05d}.parquet")
                else:
                    writers[name].write_table(table)
            if progress:
                progress(PROGRESS_STEP, block * BLOCK_ACCOUNTS + n, accounts)
    finally:
        for writer in writers.values():
            writer.close()
    return DemoSummary(folder=out_dir, accounts=accounts, rows=rows)

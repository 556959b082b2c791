"""The ``usage_events`` table: feature use, premium and integration trials, seats, executive
intent and milestones, each shaped by the account's archetype."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.demo._accounts import CAPACITY, CHURNED, DECLINING, GROWING
from touchmodel.demo._common import (
    US_PER_DAY,
    BlockInputs,
    categorical,
    contract_table,
    pick,
    repeat_index,
    timestamp_array,
)

WINDOW_DAYS = 90

CORE_EVENTS = ("report.created", "dashboard.viewed", "workflow.run", "record.updated")
PREMIUM_EVENTS = ("premium.advanced_analytics", "premium.sso", "premium.audit_log")
INTEGRATION_EVENTS = ("integration.salesforce", "integration.slack", "integration.hubspot")
EXECUTIVE_EVENTS = (
    "pricing.enterprise_viewed",
    "security_questionnaire.requested",
    "rfp.requested",
    "sales.procurement_contact",
)
MILESTONE_EVENTS = ("milestone.first_workflow", "milestone.100_reports")
SEAT_EVENTS = ("seat.added", "seat.removed")
EVENT_NAMES = (
    CORE_EVENTS + PREMIUM_EVENTS + INTEGRATION_EVENTS + EXECUTIVE_EVENTS + MILESTONE_EVENTS
) + SEAT_EVENTS
_EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_CORE0, _PREMIUM0, _INTEGRATION0, _EXECUTIVE0 = (
    _EV[CORE_EVENTS[0]],
    _EV[PREMIUM_EVENTS[0]],
    _EV[INTEGRATION_EVENTS[0]],
    _EV[EXECUTIVE_EVENTS[0]],
)
# Relative popularity of the core features before per-account variation.
_CORE_PREFERENCE = np.array([1.0, 1.6, 0.7, 1.3])
_EXECUTIVE_WEIGHTS = np.array([0.5, 0.2, 0.1, 0.2])

MAX_USERS = 9_999
_USER_SUFFIX = pa.array([f"U{i:04d}" for i in range(1, MAX_USERS + 1)])


def draw_usage_events(block: BlockInputs) -> tuple[np.ndarray, pa.Table]:
    """Each event's account (block index) and the events, in account then time order."""
    rng, days, acc, ids = block.rng, block.days, block.acc, block.ids
    n = acc["arr"].size
    archetype, plan, mult = acc["archetype"], acc["plan"], acc["mult"]
    parts_acct: list[np.ndarray] = []
    parts_age: list[np.ndarray] = []
    parts_code: list[np.ndarray] = []

    def add(acct: np.ndarray, age: np.ndarray, code: np.ndarray | int) -> None:
        parts_acct.append(acct)
        parts_age.append(age)
        parts_code.append(np.broadcast_to(np.asarray(code, np.int64), acct.shape))

    def in_period(period: np.ndarray) -> np.ndarray:
        return days.ages(30 * period, 30 * period + 29)

    # Core features. Usage follows work routines, so period counts vary less than
    # Poisson (a quarter of the Poisson variance); with pure Poisson noise ~10% of
    # steady small accounts would cross the ±40-50% trend triggers by chance.
    expected = acc["u30"][:, None] * mult
    counts = np.round(0.75 * expected).astype(np.int64) + rng.poisson(0.25 * expected)
    acct = np.repeat(np.repeat(np.arange(n), 3), counts.ravel())
    period = np.repeat(np.tile(np.arange(3), n), counts.ravel())
    # Each account relies on its main feature and adopts each other one with p=0.75;
    # adopted features get a steady share, so abandonment comes from the archetype,
    # not from a feature used twice by chance.
    weights = rng.gamma(4.0, 1.0, (n, 4)) * _CORE_PREFERENCE
    weights[(rng.random((n, 4)) < 0.25) & (weights < weights.max(axis=1, keepdims=True))] = 0
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    feature = np.minimum((rng.random(acct.size)[:, None] > cum[acct]).sum(axis=1), 3)
    # Half the declining accounts drop the core feature they relied on most.
    abandons = (archetype == DECLINING) & (rng.random(n) < 0.5)
    keep = ~(abandons[acct] & (period == 0) & (feature == weights.argmax(axis=1)[acct]))
    acct, period, feature = acct[keep], period[keep], feature[keep]
    add(acct, in_period(period), _CORE0 + feature)

    # Premium exploration: locked features tried, more often on the smaller plans.
    explorer = rng.random(n) < np.array([0.10, 0.08, 0.06, 0.04])[plan]
    recent = np.where(explorer, 1 + rng.poisson(1.5, n), 0)
    older = np.where(explorer, rng.poisson(0.8, n), 0)
    a = repeat_index(recent)
    add(a, days.ages(np.zeros(a.size), np.full(a.size, 29)), _PREMIUM0 + rng.integers(0, 3, a.size))
    a = repeat_index(older)
    add(
        a,
        days.ages(np.full(a.size, 30), np.full(a.size, 89)),
        _PREMIUM0 + rng.integers(0, 3, a.size),
    )

    # Integrations: an established one (first used long ago) or a new one this month.
    kind = rng.integers(0, 3, n)
    established = rng.random(n) < 0.35
    rate = np.where(established[:, None], np.maximum(0.5, 0.06 * acc["u30"])[:, None] * mult, 0)
    counts = rng.poisson(rate)
    counts[:, 2] += established  # at least one early use, so it is not "first use"
    a = np.repeat(np.repeat(np.arange(n), 3), counts.ravel())
    p = np.repeat(np.tile(np.arange(3), n), counts.ravel())
    add(a, in_period(p), _INTEGRATION0 + kind[a])
    new_p = np.where(archetype == GROWING, 0.15, 0.05)
    fresh = ~established & (rng.random(n) < new_p)
    a = repeat_index(np.where(fresh, 1 + rng.poisson(3, n), 0))
    add(a, days.ages(np.zeros(a.size), np.full(a.size, 29)), _INTEGRATION0 + kind[a])

    # Seats: growing and at-capacity accounts add seats, declining ones remove them.
    added = np.full((6, 3), 0.06)  # per 30-day period, by archetype
    added[GROWING] = (1.5, 0.3, 0.2)
    added[CAPACITY] = (0.8, 0.2, 0.2)
    added[DECLINING] = (0.02, 0.05, 0.1)
    removed = np.full((6, 3), 0.03)
    removed[DECLINING] = (0.8, 0.2, 0.05)
    removed[CHURNED] = (0.3, 1.0, 0.3)
    for seat_event, rates in ((_EV["seat.added"], added), (_EV["seat.removed"], removed)):
        counts = rng.poisson(rates[archetype])
        a = np.repeat(np.repeat(np.arange(n), 3), counts.ravel())
        p = np.repeat(np.tile(np.arange(3), n), counts.ravel())
        add(a, in_period(p), seat_event)

    # Executive intent: rare, likelier for bigger and growing accounts.
    exec_p = 0.012 + 0.02 * (acc["arr"] >= 25_000) + 0.02 * np.isin(archetype, (GROWING, CAPACITY))
    a = repeat_index(np.where(rng.random(n) < exec_p, 1 + rng.poisson(0.4, n), 0))
    add(
        a,
        days.ages(np.zeros(a.size), np.full(a.size, WINDOW_DAYS - 1)),
        _EXECUTIVE0 + categorical(rng, _EXECUTIVE_WEIGHTS, a.size),
    )

    # Milestones: first workflow soon after the start; 100 reports now and then.
    tenure = acc["tenure"]
    first_wf = (tenure < WINDOW_DAYS) & (rng.random(n) < 0.6)
    a = np.flatnonzero(first_wf)
    add(a, np.maximum(0, tenure[a] - rng.integers(2, 22, a.size)), _EV["milestone.first_workflow"])
    a = np.flatnonzero(rng.random(n) < 0.012)
    add(a, rng.integers(0, WINDOW_DAYS, a.size), _EV["milestone.100_reports"])

    acct = np.concatenate(parts_acct).astype(np.int64)
    age = np.concatenate(parts_age).astype(np.int64)
    code = np.concatenate(parts_code).astype(np.int64)
    keep = (age >= acc["quiet"][acct]) & (age <= tenure[acct])
    acct, age, code = acct[keep], age[keep], code[keep]

    stamp = days.timestamps(age)
    window_start = (days.as_of - WINDOW_DAYS + 1) * US_PER_DAY
    order = np.argsort((acct << 43) + (stamp - window_start), kind="stable")
    acct, stamp, code = acct[order], stamp[order], code[order]

    # Bulk edits: a few record updates touch many records at once.
    quantity = np.ones(acct.size)
    bulk = (code == _EV["record.updated"]) & (rng.random(acct.size) < 0.03)
    quantity[bulk] = rng.integers(2, 6, int(bulk.sum()))
    # A few power users do most of the work; seat changes come from the admin (user 1).
    users = np.clip(np.round(acc["seats"] * rng.uniform(0.4, 0.9, n)), 1, MAX_USERS).astype(int)
    user = np.floor(users[acct] * rng.random(acct.size) ** 1.6).astype(np.int64)
    user[(code == _EV["seat.added"]) | (code == _EV["seat.removed"])] = 0
    account_col = ids.take(pa.array(acct))
    table = contract_table(
        "usage_events",
        {
            "account_id": account_col,
            "timestamp": timestamp_array(stamp),
            "event": pick(EVENT_NAMES, code),
            "user_id": pc.binary_join_element_wise(
                account_col, _USER_SUFFIX.take(pa.array(user)), "-"
            ),
            "quantity": pa.array(quantity, pa.float64()),
        },
    )
    return acct, table

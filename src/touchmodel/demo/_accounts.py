"""Accounts: their archetypes, the per-account attributes every table draws on, and the
``accounts`` table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.demo._common import (
    BlockInputs,
    Days,
    categorical,
    contract_table,
    date_array,
    pick,
    words,
)

ARCHETYPES = ("healthy", "declining", "inactive", "growing", "capacity", "churned")
HEALTHY, DECLINING, INACTIVE, GROWING, CAPACITY, CHURNED = range(6)
# Churn is only possible for accounts older than MIN_CHURN_TENURE days; the
# draws for younger accounts fall back to healthy, hence 3.5% for ~3% overall.
_ARCHETYPE_P = np.array([0.615, 0.12, 0.07, 0.12, 0.04, 0.035])
MIN_CHURN_TENURE = 150

# --- accounts ----------------------------------------------------------------
ARR_MEDIAN = 12_000.0
# sigma 1.29 puts ~44% below $10K, ~27% at $10-25K, ~24% at $25-100K, ~5% at $100K+.
ARR_SIGMA = 1.29
ARR_MIN, ARR_MAX = 1_000.0, 1_000_000.0
BAND_EDGES = np.array([10_000.0, 25_000.0, 50_000.0, 100_000.0])

PLANS = ("starter", "growth", "business", "enterprise")
# Upper ARR bound of each plan but the last (applied to a noisy ARR so plans overlap).
_PLAN_ARR_BOUNDS = np.array([6_000.0, 20_000.0, 75_000.0])
# Usage units per 30 days. Set at ~2.5-3x the typical healthy usage of the plan,
# so ~10% of accounts reach 80% utilization (more among growing accounts).
PLAN_LIMITS = np.array([60.0, 100.0, 150.0, 250.0])
_PRICE_PER_SEAT = np.array([400.0, 500.0, 650.0, 800.0])

_INDUSTRIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Software", 0.22, ("Software", "Labs", "Systems", "Cloud")),
    ("Financial Services", 0.12, ("Capital", "Financial", "Payments", "Advisors")),
    ("Healthcare", 0.10, ("Health", "Care", "Medical", "Clinics")),
    ("Manufacturing", 0.10, ("Manufacturing", "Industries", "Robotics", "Works")),
    ("Retail", 0.08, ("Retail", "Outfitters", "Market", "Stores")),
    ("Education", 0.06, ("Learning", "Academy", "Education")),
    ("Logistics", 0.07, ("Logistics", "Freight", "Shipping")),
    ("Media", 0.05, ("Media", "Studios", "Publishing")),
    ("Professional Services", 0.10, ("Partners", "Consulting", "Group")),
    ("Real Estate", 0.04, ("Properties", "Realty", "Homes")),
    ("Energy", 0.03, ("Energy", "Power", "Solar")),
    ("Nonprofit", 0.03, ("Foundation", "Alliance", "Trust")),
)
NAME_FIRST = words(
    "Blue North Bright Silver Red Green Iron Summit Harbor Pine Cedar Maple Granite Swift "
    "Clear True Bold Prime Golden Coastal Atlas Nova Apex Crescent River Stone Oak Eagle "
    "Falcon Polar Sunny Quantum Vertex Lumen Echo Urban Alpine Copper Velvet Orbit"
)
NAME_SECOND = words(
    "ridge field wave bridge path point forge peak lake line gate bay crest stream rock "
    "light wind grove spark tide trail haven port vale leaf loop mill shore sky frame "
    "pixel signal vector matrix beacon anchor compass canyon meadow"
)
_CSMS = (
    "Dana Whitfield",
    "Marcus Lee",
    "Priya Raman",
    "Sofia Alvarez",
    "Tom Becker",
    "Aisha Okafor",
    "Jonas Weber",
    "Emily Chen",
    "Rafael Costa",
    "Hannah Schmidt",
    "Kenji Watanabe",
    "Olivia Brown",
    "Samuel Greene",
    "Lena Novak",
    "Diego Romero",
    "Grace Kim",
    "Victor Dubois",
    "Nora Lindqvist",
    "Omar Haddad",
    "Chloe Martin",
    "Ethan Walsh",
    "Maya Patel",
    "Lucas Moreau",
    "Zoe Fischer",
)


def draw_accounts(rng: np.random.Generator, days: Days, n: int) -> dict[str, np.ndarray]:
    """Per-account attributes as numpy arrays (the shared basis of every table)."""
    arr = np.exp(np.log(ARR_MEDIAN) + ARR_SIGMA * rng.standard_normal(n))
    # Redraw out-of-range values instead of clipping, so no spike piles up at the bounds.
    for _ in range(64):
        bad = np.flatnonzero((arr < ARR_MIN) | (arr > ARR_MAX))
        if bad.size == 0:
            break
        arr[bad] = np.exp(np.log(ARR_MEDIAN) + ARR_SIGMA * rng.standard_normal(bad.size))
    arr = np.clip(arr, ARR_MIN, ARR_MAX)
    # Contract values look like prices: mostly to $10, some on a round $500.
    arr = np.where(rng.random(n) < 0.12, np.round(arr / 500) * 500, np.round(arr, -1))
    arr = np.maximum(arr, ARR_MIN)
    edge = rng.random(n) < 0.012
    arr[edge] = BAND_EDGES[rng.integers(0, BAND_EDGES.size, int(edge.sum()))]

    plan = np.searchsorted(_PLAN_ARR_BOUNDS, arr * np.exp(rng.normal(0, 0.25, n)), side="right")
    seats = np.maximum(1, np.round(arr / _PRICE_PER_SEAT[plan] * np.exp(rng.normal(0, 0.3, n))))
    seats = seats.astype(np.int64)
    employees = np.maximum(seats, np.round(seats * np.exp(rng.normal(1.3, 0.6, n)))).astype(
        np.int64
    )
    tenure = rng.integers(1, 3 * 365 + 1, n)  # days since contract start; 90/1095 ≈ 8% onboarding
    start = days.as_of - tenure

    archetype = categorical(rng, _ARCHETYPE_P, n)
    archetype[(archetype == CHURNED) & (tenure < MIN_CHURN_TENURE)] = HEALTHY
    churned = archetype == CHURNED
    churn_age = np.zeros(n, np.int64)
    span = np.minimum(120, tenure[churned] - 30)
    churn_age[churned] = 1 + (rng.random(span.size) * span).astype(np.int64)
    # Events stop before the first day without them (``quiet``): inactive accounts have
    # been silent for 31+ days; churned ones went quiet 1-6 weeks before churning.
    quiet = np.zeros(n, np.int64)
    inactive = archetype == INACTIVE
    quiet[inactive] = rng.integers(31, 111, int(inactive.sum()))
    quiet[churned] = churn_age[churned] + rng.integers(7, 41, int(churned.sum()))

    # Usage units per 30 days for a steady account: grows with seats. The floor keeps
    # small accounts from swinging by chance across the ±40-50% trigger thresholds.
    u30 = (10.0 + 5.0 * seats**0.45) * np.exp(rng.normal(0, 0.35, n))
    cap = archetype == CAPACITY
    u30[cap] = PLAN_LIMITS[plan[cap]] * rng.uniform(0.85, 1.15, int(cap.sum()))
    mult = np.exp(rng.normal(0, 0.08, (n, 3)))  # [last 30 days, 30-59, 60-89]
    for code, lo, hi in (
        (DECLINING, (0.30, 0.95, 0.95), (0.60, 1.05, 1.15)),
        (INACTIVE, (0.60, 0.80, 0.95), (1.00, 1.00, 1.05)),
        (GROWING, (1.60, 0.95, 0.60), (2.60, 1.05, 0.90)),
        (CAPACITY, (0.97, 0.85, 0.80), (1.03, 1.00, 1.00)),
        (CHURNED, (0.40, 0.65, 0.95), (0.60, 0.85, 1.05)),
    ):
        sel = archetype == code
        mult[sel] = rng.uniform(lo, hi, (int(sel.sum()), 3))
    return {
        "arr": arr,
        "plan": plan,
        "seats": seats,
        "employees": employees,
        "tenure": tenure,
        "start": start,
        "archetype": archetype,
        "churn_age": churn_age,
        "quiet": quiet,
        "u30": u30,
        "mult": mult,
    }


def accounts_table(block: BlockInputs) -> pa.Table:
    """The ``accounts`` table of a block; adds the name words to ``block.acc`` for contacts."""
    rng, days, acc, ids = block.rng, block.days, block.acc, block.ids
    n = len(ids)
    arr, archetype = acc["arr"], acc["archetype"]
    industry = categorical(rng, np.array([w for _, w, _ in _INDUSTRIES]), n)
    suffixes = [s for _, _, ss in _INDUSTRIES for s in ss]
    offsets = np.cumsum([0] + [len(ss) for _, _, ss in _INDUSTRIES])
    sizes = np.diff(offsets)
    suffix = offsets[industry] + (rng.random(n) * sizes[industry]).astype(np.int64)
    w1 = rng.integers(0, len(NAME_FIRST), n)
    w2 = rng.integers(0, len(NAME_SECOND), n)
    name = pc.binary_join_element_wise(
        pc.binary_join_element_wise(pick(NAME_FIRST, w1), pick(NAME_SECOND, w2), ""),
        pick(suffixes, suffix),
        " ",
    )
    acc["name_first"], acc["name_second"] = w1, w2

    strategic = rng.random(n) < np.where(arr >= 100_000, 0.06, 0.013)
    # Dedicated CSMs cover most $25K+ accounts, with deliberate gaps at $50K+
    # so that `value.dedicated_csm` has work to do.
    covered = (arr >= 25_000) | strategic
    missing_p = np.where(arr >= 50_000, 0.15, 0.06)
    has_csm = covered & (rng.random(n) >= missing_p)
    csm = pick(_CSMS, rng.integers(0, len(_CSMS), n))
    renewal = days.next_anniversary(acc["start"])
    no_renewal = rng.random(n) < 0.20
    churned = archetype == CHURNED
    return contract_table(
        "accounts",
        {
            "account_id": ids,
            "name": name,
            "arr": pa.array(arr, pa.float64()),
            "contract_start": date_array(acc["start"]),
            "renewal_date": date_array(renewal, no_renewal),
            "employees": pa.array(acc["employees"], pa.int64()),
            "plan": pick(PLANS, acc["plan"]),
            "plan_limit": pa.array(PLAN_LIMITS[acc["plan"]], pa.float64()),
            "seats": pa.array(acc["seats"], pa.int64()),
            "industry": pick([i for i, _, _ in _INDUSTRIES], industry),
            "strategic": pa.array(strategic, pa.bool_()),
            "csm": pc.if_else(pa.array(has_csm), csm, pa.scalar(None, pa.string())),
            "churned_on": date_array(days.as_of - acc["churn_age"], ~churned),
        },
    )

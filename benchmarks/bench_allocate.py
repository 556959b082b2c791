"""Time the at-risk staffing (``touchmodel.fit.allocate.allocate``) at 1M accounts.

The baseline, in the same process on the same data, is the least any
allocation must do: one numpy sort of the items by value per minute and a
cumulative sum against the capacity. The printed ratio is allocate / baseline.

    .venv/bin/python benchmarks/bench_allocate.py --accounts 1000000 --reps 3

The decisions are synthetic (no engine run): every account gets a health
score, an ARR and 0-3 fired triggers drawn from the ``standard`` preset's
risk and expansion triggers with their routes, as a run writes them.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pyarrow as pa

from touchmodel.decide.rules import SEP
from touchmodel.fit.allocate import allocate
from touchmodel.model.loader import load_model

FIRED = [
    ("risk.usage_decline", "csm_immediate"),
    ("risk.inactive", "reengagement"),
    ("risk.ticket_spike", "csm_outreach"),
    ("risk.payment_failed", "csm_billing"),
    ("risk.nps_detractor", "csm_immediate_followup"),
    ("expansion.seat_growth", "inapp_upsell"),
]


def synthetic_decisions(n: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    """``n`` accounts with health, ARR and ``; ``-joined triggers/routes (about 30% at risk)."""
    rng = np.random.default_rng(seed)
    health = np.round(rng.uniform(0, 100, n), 1)
    arr = np.round(rng.lognormal(9.5, 1.2, n), 2)
    k = rng.choice([0, 1, 2, 3], size=n, p=[0.6, 0.25, 0.1, 0.05])
    # Build the joined strings per distinct combination, not per account.
    combos = [(), *[(i,) for i in range(len(FIRED))]]
    combos += [(i, j) for i in range(len(FIRED)) for j in range(i + 1, len(FIRED))]
    combos += [(0, 2, 4), (1, 3, 5), (0, 1, 2)]
    by_size = {s: [c for c in combos if len(c) == s] for s in range(4)}
    pick = np.zeros(n, dtype="int64")
    for s in range(1, 4):
        idx = np.flatnonzero(k == s)
        choices = np.array([combos.index(c) for c in by_size[s]])
        pick[idx] = rng.choice(choices, size=idx.size)
    trig = np.array([SEP.join(FIRED[i][0] for i in c) for c in combos], dtype=object)
    route = np.array([SEP.join(FIRED[i][1] for i in c) for c in combos], dtype=object)
    table = pa.table(
        {
            "account_id": pa.array([f"A{i:07d}" for i in range(n)]),
            "triggers": pa.DictionaryArray.from_arrays(pa.array(pick), pa.array(trig)).cast(
                pa.string()
            ),
            "routes": pa.DictionaryArray.from_arrays(pa.array(pick), pa.array(route)).cast(
                pa.string()
            ),
            "health_score": pa.array(health),
        }
    )
    return table, arr


def baseline(values: np.ndarray, minutes: np.ndarray, capacity: float) -> np.ndarray:
    """Sort by value per minute, take the prefix that fits: the floor of any allocation."""
    order = np.argsort(-(values / minutes), kind="stable")
    return order[np.cumsum(minutes[order]) <= capacity]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accounts", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--capacity-hours", type=float, default=2_000.0)
    ap.add_argument("--json", help="Write the timings to this file.")
    args = ap.parse_args()
    model = load_model("standard")
    decisions, arr = synthetic_decisions(args.accounts, args.seed)
    capacity = args.capacity_hours * 60
    rng = np.random.default_rng(args.seed)

    best_alloc = best_base = float("inf")
    staffing = None
    for _ in range(args.reps):
        t0 = time.perf_counter()
        staffing = allocate(model, decisions, arr, capacity)
        best_alloc = min(best_alloc, time.perf_counter() - t0)
    assert staffing is not None
    items = staffing.items.num_rows
    # The baseline sorts as many items as allocate valued, with the same sizes.
    values = rng.uniform(0, 10_000, items)
    minutes = staffing.items["minutes"].to_numpy().copy()
    minutes[minutes == 0] = 1.0
    for _ in range(args.reps):
        t0 = time.perf_counter()
        baseline(values, minutes, capacity)
        best_base = min(best_base, time.perf_counter() - t0)
    out = {
        "accounts": args.accounts,
        "risk_items": items,
        "staffed": items - staffing.over_capacity,
        "allocate_s": round(best_alloc, 4),
        "numpy_sort_baseline_s": round(best_base, 4),
        "ratio": round(best_alloc / best_base, 2),
    }
    print(
        f"{args.accounts:,} accounts, {items:,} at-risk items: allocate {best_alloc:.3f}s, "
        f"numpy sort baseline {best_base:.3f}s, ratio {best_alloc / best_base:.2f}x "
        f"(best of {args.reps})"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)


if __name__ == "__main__":
    main()

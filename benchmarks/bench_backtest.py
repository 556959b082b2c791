"""Benchmark: a 12-date backtest against one run of the same data, in the same process.

    python benchmarks/bench_backtest.py --accounts 100000 --dates 12

Generates a demo base with history and planted churn once
(``benchmarks/.data/history-<accounts>-<seed>/``), then times, alternating:

* **one run**: ``Engine.run`` over the folder at the last as-of date (loading,
  checking and deciding every account), the baseline;
* **the backtest**: ``touchmodel backtest``'s work for ``--dates`` monthly
  dates: load once, replay every date, score (AUC with its bootstrap
  interval, grades, deciles, triggers) and fit the gradient-boosting reference.

It prints median wall times, the ratio and PASS/FAIL against the target:
a backtest of 12 monthly dates in at most 3x the time of one run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET = 3.0
AS_OF = dt.date(2026, 11, 24)


def data_folder(accounts: int, seed: int) -> Path:
    """The generated base (made once, reused by later invocations)."""
    from touchmodel.demo.history import generate_history

    folder = HERE / ".data" / f"history-{accounts}-{seed}"
    if not (folder / "accounts.parquet").exists():
        print(f"generating {accounts:,} accounts with 12 months of history ...", flush=True)
        generate_history(folder, accounts=accounts, as_of=AS_OF, months=14, seed=seed)
    return folder


def one_run(folder: Path, as_of: dt.date) -> float:
    from touchmodel.engine import Engine

    started = time.perf_counter()
    Engine.from_spec("standard").run(folder, as_of=as_of)
    return time.perf_counter() - started


def one_backtest(folder: Path, dates: list[dt.date]) -> tuple[float, float | None, int]:
    from touchmodel.engine import Engine
    from touchmodel.fit.backtest import backtest
    from touchmodel.fit.replay import load_for_replay, replay

    started = time.perf_counter()
    engine = Engine.from_spec("standard")
    _, loaded = load_for_replay(folder, None, AS_OF)
    rep = replay(engine, loaded, dates, 90)
    result = backtest(rep, [g.id for g in engine.model.health.grades])
    return time.perf_counter() - started, result.health_auc, result.rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--dates", type=int, default=12)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    from touchmodel.fit.replay import month_dates

    folder = data_folder(args.accounts, args.seed)
    events = sum(1 for _ in (folder / "usage_events").glob("*.parquet"))
    last = AS_OF - dt.timedelta(days=91)
    first = dt.date(last.year - 1, last.month, last.day) + dt.timedelta(days=31 * (12 - args.dates))
    dates = month_dates(first, last)[-args.dates :]
    print(
        f"{args.accounts:,} accounts ({events} event files); {len(dates)} dates {dates[0]}..{dates[-1]}"
    )
    one_run(folder, dates[-1])  # warm the file cache and the imports
    runs, backtests = [], []
    for _ in range(args.reps):
        runs.append(one_run(folder, dates[-1]))
        seconds, auc, rows = one_backtest(folder, dates)
        backtests.append(seconds)
        print(
            f"  run {runs[-1]:.2f} s, backtest {seconds:.2f} s ({rows:,} account-dates, AUC {auc:.3f})"
        )
    run_s, bt_s = statistics.median(runs), statistics.median(backtests)
    ratio = bt_s / run_s
    verdict = "PASS" if ratio <= TARGET else "FAIL"
    print(
        f"median: one run {run_s:.2f} s, backtest {bt_s:.2f} s, ratio {ratio:.2f} (target <= {TARGET}) {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

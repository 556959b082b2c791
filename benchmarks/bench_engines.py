"""Benchmark: the same run on DuckDB and on Spark (``touchmodel run --engine spark``).

    python benchmarks/bench_engines.py --accounts 100000 [--master 'local[*]'] [--reps 2]

Uses the demo data of bench_decisions (``benchmarks/.data/<accounts>-<seed>/``,
generated once). Times ``Engine.run`` (read, check, decide) on DuckDB, then
on Spark: the first Spark run includes starting Spark and warming its JVM,
the following ones reuse the session. Checks that both give the same
decisions for every account and column, and prints the machine.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_decisions import ensure_data

AS_OF = dt.date(2026, 11, 1)


def main() -> None:
    """Run the benchmark and print the times."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--reps", type=int, default=2, help="runs per engine (default 2)")
    parser.add_argument("--master", default="local[*]", help="Spark master (default local[*])")
    args = parser.parse_args()

    import duckdb
    import pyspark

    from touchmodel.engine import Engine
    from touchmodel.spark import SparkOptions

    folder = Path(__file__).resolve().parent / ".data" / f"{args.accounts}-{args.seed}"
    ensure_data(folder, args.accounts, args.seed, AS_OF)
    engine = Engine.from_spec("standard")
    times: dict[str, list[float]] = {"duckdb": [], "spark": []}
    results = {}
    for name, spark in (("duckdb", None), ("spark", SparkOptions(master=args.master))):
        for _ in range(args.reps):
            started = time.perf_counter()
            results[name] = engine.run(folder, as_of=AS_OF, spark=spark)
            times[name].append(time.perf_counter() - started)
    duck, sparked = results["duckdb"].decisions, results["spark"].decisions
    same = duck.num_rows == sparked.num_rows and all(
        duck[c].to_pylist() == sparked[c].to_pylist() for c in duck.column_names
    )
    print(f"data: {folder} ({args.accounts:,} accounts; as of {AS_OF})")
    print(
        f"machine: {os.cpu_count()} CPUs, python {platform.python_version()}, duckdb {duckdb.__version__}, "
        f"pyspark {pyspark.__version__}, master {args.master}; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'engine':8} {'first s':>8} {'then s':>24}")
    for name, runs in times.items():
        rest = ", ".join(f"{t:.1f}" for t in runs[1:]) or "-"
        print(f"{name:8} {runs[0]:8.1f} {rest:>24}")
    print(f"same decisions on {duck.num_rows:,} accounts, every column: {'yes' if same else 'NO'}")
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()

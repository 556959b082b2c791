"""Benchmark: touchmodel decisions against a hand-written DuckDB query and vectorized pandas.

    python benchmarks/bench_decisions.py --accounts 100000 --reps 3

Generates the demo data once (``benchmarks/.data/<accounts>-<seed>/``), then runs
each implementation in its own subprocess, rotating the order every repetition,
and prints median wall times, their ratios, peak memory and PASS/FAIL against
the targets of the benchmark issue:

* engine <= 1.5x the hand-written DuckDB query;
* vectorized pandas >= 2x the engine (file reading included in all three);
* engine peak memory <= 0.5x the pandas peak.

See ``benchmarks/README.md`` for how to read the output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import baselines  # noqa: E402  (stdlib only at import time; pandas/duckdb load lazily)
from baselines import SIGNAL_COLUMNS  # noqa: E402

IMPLS = ("engine", "sql", "pandas")
# Imported before the clock starts (see worker()).
LIBRARIES = {
    "engine": (
        "ibis", "duckdb", "pandas", "pyarrow.parquet", "sqlglot.dialects.duckdb",
        "ibis.backends.duckdb", "ibis.backends.duckdb.converter", "ibis.formats.pandas",
        "ibis.formats.pyarrow", "ibis.formats.numpy", "ibis.expr.types.groupby",
        "touchmodel.engine", "touchmodel.sources.loader", "touchmodel.sources.mapping",
        "touchmodel.model.presets", "importlib.readers", "importlib.resources.readers",
    ),
    "sql": ("duckdb", "pyarrow"),
    "pandas": (
        "numpy", "pandas", "pyarrow.parquet", "pyarrow.dataset", "pyarrow.pandas_compat",
        "pandas.core.arrays.arrow.extension_types",
    ),
}  # fmt: skip
DEFAULT_AS_OF = dt.date(2026, 11, 1)
TARGET_ENGINE_OVER_SQL = 1.5
TARGET_PANDAS_OVER_ENGINE = 2.0
TARGET_MEMORY_RATIO = 0.5


# --- memory of this process ---------------------------------------------------------


def _proc_status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_rss_mb() -> float:
    """Peak resident memory of this process since it started (exec), in MB.

    ``VmHWM`` from /proc is the kernel's high-water mark of the process's own
    address space. (``ru_maxrss`` is not used: after fork+exec Linux carries the
    parent's high-water mark over into the child's.)
    """
    kb = _proc_status_kb("VmHWM")
    if kb is None:
        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if sys.platform == "darwin":
            kb //= 1024
    return kb / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process, all threads (DuckDB's included)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def rss_mb() -> float:
    kb = _proc_status_kb("VmRSS")
    return (kb or 0) / 1024


# --- worker: one implementation, one run, in its own process ---------------------------


def worker(impl: str, data: Path, as_of: dt.date, save: Path | None) -> dict[str, Any]:
    """Run one implementation once; timings exclude imports, include file reading.

    Modules an implementation would otherwise import lazily on first use
    (ibis imports its DuckDB backend and pandas on the first query, pandas
    imports pyarrow.dataset on the first read) are imported here, before the
    clock starts; ``late_imports`` counts any that still load while timed.
    """
    import importlib

    phases: dict[str, float] = {}
    t0 = time.perf_counter()
    for module in LIBRARIES[impl]:
        importlib.import_module(module)
    import_seconds = time.perf_counter() - t0
    modules_before = set(sys.modules)
    rss_after_import = rss_mb()

    cpu_start = cpu_seconds()
    start = time.perf_counter()
    if impl == "engine":
        from touchmodel.engine import Engine  # already imported above

        marks: list[tuple[str, float]] = []

        def progress(msg: str) -> None:
            marks.append((msg, time.perf_counter()))

        engine = Engine.from_spec("standard")
        phases["load_model"] = time.perf_counter() - start
        result = engine.run(data, as_of=as_of, progress=progress)
        table = result.decisions
        end = time.perf_counter()
        stamps = {msg: t for msg, t in marks}
        load_at = stamps.get("loading data")
        decide_at = stamps.get("computing signals and decisions")
        if load_at is not None and decide_at is not None:
            phases["load_folder"] = decide_at - load_at
            phases["decide"] = end - decide_at
        rows = table.num_rows
        signals = result.accounts  # same rows, same order as the decisions
    elif impl == "sql":
        table = baselines.run_sql(data, as_of)
        end = time.perf_counter()
        rows = table.num_rows
    else:
        table = baselines.run_pandas(data, as_of)
        end = time.perf_counter()
        rows = len(table)
    seconds = end - start
    cpu = cpu_seconds() - cpu_start
    peak = peak_rss_mb()
    late = sorted(set(sys.modules) - modules_before)

    if save is not None:  # not timed, after the peak is read
        import pyarrow as pa
        import pyarrow.parquet as pq

        if not isinstance(table, pa.Table):
            table = pa.Table.from_pandas(table, preserve_index=False)
        if impl == "engine":
            for name in SIGNAL_COLUMNS:
                if name in signals.column_names:
                    table = table.append_column(name, signals[name])
        pq.write_table(table, save)
    return {
        "impl": impl,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "import_seconds": import_seconds,
        "peak_rss_mb": peak,
        "rss_after_import_mb": rss_after_import,
        "rows": rows,
        "phases": phases,
        "late_imports": late,
    }


# --- parent: data, runs, comparison, report ------------------------------------------


def ensure_data(folder: Path, accounts: int, seed: int, as_of: dt.date) -> dict[str, Any]:
    """Generate the demo data into ``folder`` once; reuse it when it matches."""
    import hashlib
    import importlib.util

    marker = folder / ".complete.json"
    spec = importlib.util.find_spec("touchmodel.demo.generator")
    if spec is None or spec.origin is None:
        raise SystemExit("touchmodel.demo.generator is not importable: install the package first")
    # A changed generator invalidates the cached data.
    # The drawing code is spread over the whole demo package, not one module.
    digest = hashlib.sha256()
    for part in sorted(Path(spec.origin).parent.glob("*.py")):
        digest.update(part.name.encode() + part.read_bytes())
    source_hash = digest.hexdigest()[:12]
    wanted = {
        "accounts": accounts,
        "seed": seed,
        "as_of": as_of.isoformat(),
        "generator": source_hash,
    }
    if marker.exists() and json.loads(marker.read_text()).get("params") == wanted:
        info = json.loads(marker.read_text())
        info["reused"] = True
        return info
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    # Its own process, so the parent stays small (children are forked from it).
    code = (
        "import datetime as dt, sys; from pathlib import Path; "
        "from touchmodel.demo.generator import generate; "
        "generate(Path(sys.argv[1]), accounts=int(sys.argv[2]), "
        "as_of=dt.date.fromisoformat(sys.argv[3]), seed=int(sys.argv[4]))"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(folder), str(accounts), as_of.isoformat(), str(seed)],
        check=True,
    )
    info = {"params": wanted, "generate_seconds": round(time.perf_counter() - started, 1)}
    marker.write_text(json.dumps(info))
    info["reused"] = False
    return info


def data_summary(folder: Path) -> dict[str, Any]:
    """Rows and bytes per table, from Parquet metadata (cheap)."""
    import pyarrow.parquet as pq

    out: dict[str, Any] = {}
    for path in sorted(folder.rglob("*.parquet")):
        rel = path.relative_to(folder)
        table = rel.parts[0].removesuffix(".parquet")
        entry = out.setdefault(table, {"rows": 0, "bytes": 0, "files": 0})
        entry["rows"] += pq.ParquetFile(path).metadata.num_rows
        entry["bytes"] += path.stat().st_size
        entry["files"] += 1
    return out


def warm_page_cache(folder: Path) -> None:
    """Read every file once so no implementation pays for cold disk reads."""
    for path in folder.rglob("*.parquet"):
        with path.open("rb") as fh:
            while fh.read(1 << 24):
                pass


def cpu_ticks() -> tuple[int, int] | None:
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:8]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_fraction(window: float = 1.0) -> float | None:
    """Share of all CPUs busy over ``window`` seconds, None if unknown."""
    before = cpu_ticks()
    time.sleep(window)
    after = cpu_ticks()
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1])


def wait_for_quiet(threshold: float | None, limit: float = 60.0) -> float | None:
    """Between runs, wait (up to ``limit`` s) until other work uses < ``threshold`` of the CPUs."""
    busy = busy_fraction()
    waited = 1.0
    while threshold is not None and busy is not None and busy >= threshold and waited < limit:
        busy = busy_fraction(2.0)
        waited += 2.0
    return busy


def run_worker(
    impl: str, data: Path, as_of: dt.date, save: Path | None, timeout: float
) -> dict[str, Any]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", impl, "--data", str(data)]
    cmd += ["--as-of", as_of.isoformat()]
    if save is not None:
        cmd += ["--save", str(save)]
    ticks0 = cpu_ticks()
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        watchdog = threading.Timer(timeout, proc.kill)  # our own child, by its pid
        watchdog.start()
        assert proc.stdout is not None
        out = proc.stdout.read()  # small: one JSON line
        # wait4: the child's own CPU time, to tell it apart from other processes'
        _pid, status, usage = os.wait4(proc.pid, 0)
        watchdog.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        ticks1 = cpu_ticks()
        if proc.returncode != 0:
            err.seek(0)
            text = err.read().decode(errors="replace")[-4000:]
            why = f"timed out after {timeout:g} s" if wall >= timeout else f"exit {proc.returncode}"
            raise RuntimeError(f"worker {impl} failed ({why}):\n{text}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    result["process_seconds"] = wall
    result["other_cpu_during"] = None
    if ticks0 is not None and ticks1 is not None and ticks1[1] > ticks0[1]:
        # Busy share of all CPUs during the run, minus what the worker itself used.
        ticks_per_cpu_second = (ticks1[1] - ticks0[1]) / (wall * (os.cpu_count() or 1))
        own = (usage.ru_utime + usage.ru_stime) * ticks_per_cpu_second
        other = max(0.0, (ticks1[0] - ticks0[0]) - own) / (ticks1[1] - ticks0[1])
        result["other_cpu_during"] = round(other, 3)
    return result


def compare(paths: dict[str, Path], reference: str = "engine") -> dict[str, Any]:
    """Per-column agreement of each implementation with ``reference``, per account."""
    import pandas as pd

    frames = {k: pd.read_parquet(p).set_index("account_id") for k, p in paths.items()}
    ref = frames[reference]
    out: dict[str, Any] = {}
    for name, other in frames.items():
        if name == reference:
            continue
        ids = ref.index.union(other.index)
        a, b = ref.reindex(ids), other.reindex(ids)
        both = ref.index.intersection(other.index)
        checks: dict[str, pd.Series] = {}
        for col in ("tier", "tier_level", "lifecycle_stage", "touch_level"):
            checks[col] = a[col].eq(b[col]).fillna(False)
        checks["triggers (as a set)"] = trig_set(a["triggers"]) == trig_set(b["triggers"])
        ha, hb = a["health_score"].astype(float), b["health_score"].astype(float)
        checks["health_score (to 0.1)"] = ((ha - hb).abs() <= 0.1 + 1e-9) | (ha.isna() & hb.isna())
        key = list(checks.values())
        all_key = key[0]
        for c in key[1:]:
            all_key = all_key & c
        checks["ALL of the above"] = all_key
        for col in ("health_grade", "health_top_factor", "routes", "level_reasons"):
            checks[col + " (exact)"] = a[col].fillna("<null>").eq(b[col].fillna("<null>"))
        signal_ok = pd.Series(True, index=ids)
        off: list[str] = []
        for col in SIGNAL_COLUMNS:
            if col not in a.columns or col not in b.columns:
                off.append(col + " (missing)")
                continue
            x, y = a[col], b[col]
            if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
                x, y = x.astype(float), y.astype(float)
                ok = ((x - y).abs() <= 1e-9 * x.abs().clip(lower=1)) | (x.isna() & y.isna())
            else:
                ok = x.astype(str).eq(y.astype(str))
            if not ok.all():
                off.append(f"{col} ({(~ok).sum():,} accounts)")
            signal_ok &= ok
        checks[f"all {len(SIGNAL_COLUMNS)} signals"] = signal_ok
        rates = {}
        examples = {}
        for col, ok in checks.items():
            ok = ok.astype(bool)
            rates[col] = float(ok.mean()) if len(ok) else 1.0
            bad = ok[~ok].index[:3]
            if len(bad):
                base = col.split(" ")[0]
                field = base if base in a.columns else None
                examples[col] = [
                    {
                        "account_id": str(i),
                        reference: None if field is None else _plain(a.at[i, field]),
                        name: None if field is None else _plain(b.at[i, field]),
                    }
                    for i in bad
                ]
        out[name] = {
            "reference": reference,
            "signals_differing": off,
            "accounts_compared": len(ids),
            "accounts_in_both": len(both),
            "agreement": rates,
            "examples": examples,
        }
    return out


def trig_set(s: Any) -> Any:
    """'a; b' -> frozenset({'a', 'b'}), per row."""
    return s.fillna("").map(lambda text: frozenset(t for t in text.split("; ") if t))


def engine_source() -> dict[str, Any]:
    """Which engine code ran: the git commit plus a hash of the package's source files."""
    import hashlib
    import importlib.util

    out: dict[str, Any] = {}
    spec = importlib.util.find_spec("touchmodel")
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
        digest = hashlib.sha256()
        for path in sorted(root.rglob("*.py")) + sorted(root.rglob("*.yaml")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
        out["source_sha256"] = digest.hexdigest()[:12]
    try:
        repo = HERE.parent
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=repo
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"], capture_output=True, text=True, cwd=repo
        )
        out["git_head"] = head.stdout.strip() or None
        out["src_modified"] = bool(dirty.stdout.strip())
    except OSError:
        pass
    return out


def _plain(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float):
        return None if v != v else v
    return str(v)


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    by: dict[str, list[dict[str, Any]]] = {}
    for r in runs:
        by.setdefault(r["impl"], []).append(r)
    out: dict[str, Any] = {}
    for impl, rs in by.items():
        phases: dict[str, list[float]] = {}
        for r in rs:
            for k, v in r["phases"].items():
                phases.setdefault(k, []).append(v)
        out[impl] = {
            "runs": len(rs),
            "seconds": [round(r["seconds"], 4) for r in rs],
            "median_cpu_seconds": _median([r["cpu_seconds"] for r in rs]),
            "median_seconds": _median([r["seconds"] for r in rs]),
            "min_seconds": min(r["seconds"] for r in rs),
            "max_seconds": max(r["seconds"] for r in rs),
            "median_peak_rss_mb": _median([r["peak_rss_mb"] for r in rs]),
            "max_peak_rss_mb": max(r["peak_rss_mb"] for r in rs),
            "median_rss_after_import_mb": _median([r["rss_after_import_mb"] for r in rs]),
            "median_import_seconds": _median([r["import_seconds"] for r in rs]),
            "median_process_seconds": _median([r["process_seconds"] for r in rs]),
            "median_phases": {k: _median(v) for k, v in phases.items()},
            "rows": rs[0]["rows"],
        }
    return out


def verdicts(summary: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "engine" in summary and "sql" in summary:
        r = summary["engine"]["median_seconds"] / summary["sql"]["median_seconds"]
        out["engine_over_sql"] = {
            "ratio": r,
            "target": f"<= {TARGET_ENGINE_OVER_SQL}",
            "pass": r <= TARGET_ENGINE_OVER_SQL,
        }
    if "engine" in summary and "pandas" in summary:
        r = summary["pandas"]["median_seconds"] / summary["engine"]["median_seconds"]
        out["pandas_over_engine"] = {
            "ratio": r,
            "target": f">= {TARGET_PANDAS_OVER_ENGINE}",
            "pass": r >= TARGET_PANDAS_OVER_ENGINE,
        }
        m = summary["engine"]["median_peak_rss_mb"] / summary["pandas"]["median_peak_rss_mb"]
        out["engine_peak_over_pandas_peak"] = {
            "ratio": m,
            "target": f"<= {TARGET_MEMORY_RATIO}",
            "pass": m <= TARGET_MEMORY_RATIO,
        }
    return out


def render(report: dict[str, Any]) -> str:
    s, v, d = report["summary"], report["verdicts"], report["data"]
    lines = []
    rows_in = ", ".join(f"{k} {t['rows']:,}" for k, t in d["tables"].items())
    size = sum(t["bytes"] for t in d["tables"].values()) / 1e6
    lines.append(f"data: {d['folder']} ({size:,.0f} MB Parquet; as of {report['as_of']})")
    lines.append(f"      rows: {rows_in}")
    lines.append(
        f"machine: {report['machine']['cpus']} CPUs, python {report['machine']['python']}, "
        f"duckdb {report['machine'].get('duckdb', '?')}, "
        f"pandas {report['machine'].get('pandas', '?')}, ibis {report['machine'].get('ibis', '?')}; "
        f"load average (1 min) {report['machine']['loadavg_1m_start']} at start, "
        f"{report['machine']['loadavg_1m_end']} at end"
    )
    src = report.get("engine_source", {})
    lines.append(
        f"engine: git {src.get('git_head')}"
        f"{' + uncommitted changes in src/' if src.get('src_modified') else ''}, "
        f"source hash {src.get('source_sha256')}"
    )
    busy = [r["other_cpu_during"] for r in report["runs"] if r.get("other_cpu_during") is not None]
    if busy:
        repeated = sum(1 for r in report["runs"] if r.get("repeated"))
        lines.append(
            f"other processes' CPU use during the runs: median {_median(busy) * 100:.0f}%, "
            f"max {max(busy) * 100:.0f}% of all CPUs"
            + (f" ({repeated} disturbed run(s) measured again)" if repeated else "")
        )
    lines.append(
        f"{report['reps']} repetitions, each implementation in its own process, order rotated "
        "per repetition; time = read files -> decisions in memory (imports excluded)"
    )
    lines.append("")
    head = (
        f"{'impl':<8} {'median s':>9} {'min s':>7} {'max s':>7}  {'all runs (s)':<20} "
        f"{'cpu s':>6} {'peak RSS MB':>11} {'after import':>12} {'import s':>8}"
    )
    lines.append(head)
    lines.append("-" * len(head))
    for impl in IMPLS:
        if impl not in s:
            continue
        x = s[impl]
        runs = ", ".join(f"{t:.2f}" for t in x["seconds"])
        lines.append(
            f"{impl:<8} {x['median_seconds']:>9.2f} {x['min_seconds']:>7.2f} "
            f"{x['max_seconds']:>7.2f}  {runs:<20} {x['median_cpu_seconds']:>6.2f} "
            f"{x['median_peak_rss_mb']:>11.0f} "
            f"{x['median_rss_after_import_mb']:>12.0f} {x['median_import_seconds']:>8.2f}"
        )
    for impl in IMPLS:
        late = sorted({m for r in report["runs"] if r["impl"] == impl for m in r["late_imports"]})
        if late:
            lines.append(f"note: {impl} imported {len(late)} module(s) while timed: {late[:5]}")
    if "engine" in s and s["engine"]["median_phases"]:
        ph = s["engine"]["median_phases"]
        parts = ", ".join(f"{k} {val:.2f} s" for k, val in ph.items())
        lines.append(f"engine phases (median): {parts}")
    lines.append("")
    names = {
        "engine_over_sql": "engine / hand-written DuckDB SQL (time)",
        "pandas_over_engine": "vectorized pandas / engine (time)",
        "engine_peak_over_pandas_peak": "engine peak RSS / pandas peak RSS",
    }
    for key, label in names.items():
        if key in v:
            x = v[key]
            verdict = "PASS" if x["pass"] else "FAIL"
            lines.append(f"{label:<42} {x['ratio']:>6.2f}   target {x['target']:<7} {verdict}")
    lines.append("")
    for name, cmp_ in report.get("agreement", {}).items():
        lines.append(
            f"agreement {name} vs {cmp_['reference']} ({cmp_['accounts_compared']:,} accounts, "
            f"{cmp_['accounts_in_both']:,} in both):"
        )
        for col, rate in cmp_["agreement"].items():
            lines.append(f"  {col:<28} {rate * 100:8.3f}%")
        if cmp_["signals_differing"]:
            lines.append("  signals that differ: " + ", ".join(cmp_["signals_differing"]))
        for col, ex in cmp_["examples"].items():
            lines.append(f"  e.g. {col}: {json.dumps(ex)[:300]}")
    lines.append("")
    lines.append(
        "s = wall seconds, read files -> decisions in memory; cpu s = median CPU seconds "
        "(user+system, all threads) of the same span; peak RSS = VmHWM of the worker "
        "process (interpreter, libraries and data); 'after import' = RSS before reading data."
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--accounts", type=int, default=100_000)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--as-of", type=dt.date.fromisoformat, default=DEFAULT_AS_OF)
    p.add_argument("--impls", default=",".join(IMPLS), help="comma list of engine,sql,pandas")
    p.add_argument("--data", type=Path, help="use this data folder instead of generating one")
    p.add_argument("--json", dest="json_out", help="write the full report as JSON ('-' = stdout)")
    p.add_argument("--no-compare", action="store_true", help="skip the agreement check")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds per worker run")
    p.add_argument(
        "--quiet",
        type=float,
        metavar="FRACTION",
        help="before each run, wait (up to 60 s) until other processes use less than this "
        "share of all CPUs (e.g. 0.2), and measure a run again (once) when they used more "
        "while it ran",
    )
    p.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    p.add_argument("--save", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if args.worker:
        res = worker(args.worker, args.data, args.as_of, args.save)
        print(json.dumps(res))
        return 0

    load_start = os.getloadavg()
    impls = [i.strip() for i in args.impls.split(",") if i.strip()]
    unknown = set(impls) - set(IMPLS)
    if unknown:
        p.error(f"unknown implementation(s): {', '.join(sorted(unknown))}")
    if args.data is not None:
        folder = args.data
        gen = {"reused": True, "given": True}
    else:
        folder = HERE / ".data" / f"{args.accounts}-{args.seed}"
        print(f"data: {folder} ...", file=sys.stderr, flush=True)
        gen = ensure_data(folder, args.accounts, args.seed, args.as_of)
    tables = data_summary(folder)
    warm_page_cache(folder)

    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-decisions-") as tmp:
        saved: dict[str, Path] = {}
        for rep in range(args.reps):
            order = impls[rep % len(impls) :] + impls[: rep % len(impls)]
            for impl in order:
                save = None
                if impl not in saved and not args.no_compare:
                    save = Path(tmp) / f"{impl}.parquet"
                busy = wait_for_quiet(args.quiet)
                res = run_worker(impl, folder, args.as_of, save, args.timeout)
                other = res["other_cpu_during"]
                if args.quiet is not None and other is not None and other >= args.quiet:
                    # Disturbed by other processes: wait for quiet and measure once more.
                    print(
                        f"rep {rep + 1} {impl:<7} {res['seconds']:7.2f} s  other processes used "
                        f"{other * 100:.0f}% of the CPUs meanwhile: repeating this run",
                        file=sys.stderr,
                        flush=True,
                    )
                    busy = wait_for_quiet(args.quiet)
                    res = run_worker(impl, folder, args.as_of, None, args.timeout)
                    res["repeated"] = True
                res["cpu_busy_before"] = None if busy is None else round(busy, 3)
                if save is not None:
                    saved[impl] = save
                res["rep"] = rep + 1
                runs.append(res)
                other = res["other_cpu_during"]
                shown = "?" if other is None else f"{other * 100:3.0f}%"
                print(
                    f"rep {rep + 1} {impl:<7} {res['seconds']:7.2f} s  "
                    f"other processes' CPU use meanwhile {shown}  "
                    f"peak {res['peak_rss_mb']:7.0f} MB  rows {res['rows']:,}",
                    file=sys.stderr,
                    flush=True,
                )
        agreement = {}
        if not args.no_compare and len(saved) > 1:
            agreement = compare(saved, "engine" if "engine" in saved else next(iter(saved)))

    versions: dict[str, str] = {}
    for mod in ("duckdb", "pandas", "ibis", "pyarrow"):
        try:
            versions[mod] = __import__(mod).__version__
        except Exception:  # pragma: no cover - reporting only
            versions[mod] = "?"
    summary = summarize(runs)
    report = {
        "as_of": args.as_of.isoformat(),
        "reps": args.reps,
        "data": {"folder": str(folder), "generation": gen, "tables": tables},
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_1m_start": round(load_start[0], 2),
            "loadavg_1m_end": round(os.getloadavg()[0], 2),
            **versions,
        },
        "engine_source": engine_source(),
        "runs": runs,
        "summary": summary,
        "verdicts": verdicts(summary),
        "agreement": agreement,
    }
    print(render(report))
    if args.json_out:
        text = json.dumps(report, indent=2, default=str)
        if args.json_out == "-":
            print(text)
        else:
            Path(args.json_out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

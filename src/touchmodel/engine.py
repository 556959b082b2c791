"""The core object: a touch model plus the machinery to decide for every account.

The CLI, the tests and (later) the API and dashboard all build an ``Engine``
the same way and call :meth:`Engine.run` (a data folder on disk) or
:meth:`Engine.decide` (tables already on an Ibis backend).
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from touchmodel.backend_settings import optimizers_off
from touchmodel.decide.decisions import (
    DECISION_COLUMNS,
    InactiveRule,
    decision_columns,
    plan_decisions,
    split_lists,
)
from touchmodel.fit.diagnostics import Diagnostics, diagnose, event_names
from touchmodel.model.loader import load_model, model_hash
from touchmodel.model.schema import TouchModel
from touchmodel.signals.build import build_signals, usage_part
from touchmodel.signals.staging import StagedTable, stage

if TYPE_CHECKING:
    from touchmodel.ingest.feed import IngestedInput
    from touchmodel.plan.team import Team
    from touchmodel.sources.loader import LoadedData
    from touchmodel.sources.mapping import Mapping as DataMapping
    from touchmodel.spark import SparkOptions

Progress = Callable[[str], None]

# Columns of the per-account detail file that are engine internals, not signals.
_INTERNAL_PREFIXES = ("fired__",)
# DuckDB's row group (rows): a table of at most one is scanned by one thread,
# so a query that only probes joins with it returns its rows in table order.
_DUCKDB_ROW_GROUP = 122_880


@dataclass
class Decided:
    """Decisions for every account, executed, with what could not be evaluated."""

    decisions: pa.Table  # the decision output's columns; list columns as '; '-joined text
    accounts: pa.Table  # account columns, signals, tier and health components
    inactive: list[InactiveRule]
    unavailable: dict[str, str]
    # Accounts left out because they were not customers on the as-of date.
    excluded: dict[str, int] = field(default_factory=dict)


@dataclass
class RunResult(Decided):
    """A run over a data folder: decisions plus input accounting and files written."""

    as_of: dt.date = dt.date.min
    model_name: str = ""
    model_hash: str = ""
    missing_tables: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    rejects: dict[str, dict[str, int]] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    # The loaded input tables (on the run's DuckDB connection), for the steps
    # after deciding that need more than the decisions, e.g. contacts' emails.
    tables: Mapping[str, ir.Table] = field(default_factory=dict)
    # How the model fits the data: what cannot fire, fires too often, ...
    diagnostics: Diagnostics | None = None
    # What the user should look at although the run succeeded (e.g. no accounts).
    warnings: list[str] = field(default_factory=list)


class Engine:
    """A validated touch model and the decision pipeline for it."""

    def __init__(self, model: TouchModel, source: str = "<model>") -> None:
        self.model = model
        self.source = source
        self.hash = model_hash(model)

    @classmethod
    def from_spec(cls, spec: str | Path) -> Engine:
        """Build from a preset name (``standard``) or a touch-model file path."""
        return cls(load_model(spec), str(spec))

    @staticmethod
    def connect() -> ibis.BaseBackend:
        """The default analytics backend: in-memory DuckDB."""
        return ibis.duckdb.connect()

    def decide(
        self,
        tables: Mapping[str, ir.Table],
        as_of: dt.date,
        absent_columns: Collection[str] = (),
        usage: StagedTable | None = None,
    ) -> Decided:
        """Decide for every account in ``tables['accounts']`` as of ``as_of``.

        ``absent_columns``: accounts columns the source lacked (see build_signals).
        ``usage``: the usage aggregates of ``tables['usage_events']`` being
        computed ahead (see :mod:`touchmodel.signals.staging`); the query is
        built and compiled while they run, and executed once they are done.
        """
        tables, excluded, customers = customers_on(tables, as_of)
        signals = build_signals(
            tables, self.model, as_of, absent_columns, None if usage is None else usage.table
        )
        plan = plan_decisions(self.model, signals, as_of)
        # One row per account in account order, so files compare across runs.
        # The backend sorts (in parallel, while the rows are still its own,
        # cheaper than an Arrow sort of the fetched ~60 columns); Arrow's
        # byte order is the contract, so a backend collation that differs is
        # corrected here (finding that out is one pass over the ids).
        # A DuckDB query over one row group of accounts needs no sort when
        # the accounts are stored in account order (the loader stores them
        # so) and every join keeps them on its probe side: the rows come out
        # in that order, which the same check confirms.
        keep = [c for c in plan.table.columns if not c.startswith(_INTERNAL_PREFIXES)]
        in_order = _backend_name(plan.table) == "duckdb" and customers <= _DUCKDB_ROW_GROUP
        ordered_plan = plan.table.select(keep)
        if not in_order:
            ordered_plan = ordered_plan.order_by("account_id")
        with _unfused_selects(ordered_plan):
            executed = _execute(
                ordered_plan,
                before=usage.wait if usage is not None else None,
                probe_accounts=in_order,
            )
        executed = _in_account_order(executed)
        detail_cols = [c for c in keep if c not in DECISION_COLUMNS or c == "account_id"]
        detail_cols += ["tier", "tier_level", "health_score"]
        return Decided(
            decisions=executed.select(list(decision_columns(self.model))),
            accounts=executed.select(list(dict.fromkeys(detail_cols))),
            inactive=plan.inactive,
            unavailable=plan.unavailable,
            excluded=excluded,
        )

    def run(
        self,
        data: Path | str,
        *,
        as_of: dt.date,
        mapping: Path | None = None,
        out: Path | None = None,
        max_reject_rate: float | None = None,
        progress: Progress | None = None,
        on_loaded: Callable[[Mapping[str, ir.Table]], None] | None = None,
        ingested: IngestedInput | None = None,
        team: Team | None = None,
        spark: SparkOptions | None = None,
    ) -> RunResult:
        """Load a data folder, decide, and (with ``out``) write the decision files.

        With ``spark`` the tables are loaded and checked as usual and the
        decision query runs on Spark (see :mod:`touchmodel.spark`).

        The rejected-rows report is written before the reject-rate check, so a
        run that fails on too many rejects still leaves the evidence behind.
        ``on_loaded`` sees the loaded tables before that check (a caller's own
        sanity check, e.g. a partial export, explains more than a reject rate).
        ``ingested``: events and group traits sent to ``/v1`` (see load_folder).
        ``team``: the CS team, to set the at-risk work against in the diagnostics.
        """
        from touchmodel.sources._warehouse import is_url
        from touchmodel.sources.loader import load_folder
        from touchmodel.sources.mapping import load_mapping

        step = progress or (lambda _msg: None)
        started = time.perf_counter()
        mapping_obj = load_mapping(mapping) if mapping is not None else None
        con = self.connect()
        ahead = _UsageAhead(con, self.model, as_of)
        with _older_objects_left_alone():
            try:
                step("loading data")
                loaded = load_folder(
                    con,
                    data if is_url(data) else Path(data),
                    mapping=mapping_obj,
                    as_of=as_of,
                    progress=step,
                    ingested=ingested,
                    # On Spark the usage aggregates are part of Spark's query.
                    on_table=None if spark else ahead.on_table,
                    ahead=[] if spark else ["usage_events"],
                )
                return self._decide_loaded(
                    loaded,
                    as_of,
                    mapping_obj,
                    out,
                    max_reject_rate,
                    step,
                    on_loaded,
                    ahead,
                    started,
                    team,
                    spark,
                )
            finally:
                ahead.close()  # only still running when something failed first

    def _decide_loaded(
        self,
        loaded: LoadedData,
        as_of: dt.date,
        mapping_obj: DataMapping | None,
        out: Path | None,
        max_reject_rate: float | None,
        step: Progress,
        on_loaded: Callable[[Mapping[str, ir.Table]], None] | None,
        ahead: _UsageAhead,
        started: float,
        team: Team | None = None,
        spark: SparkOptions | None = None,
    ) -> RunResult:
        """The rest of :meth:`run` once the folder is loaded."""
        files: dict[str, Path] = {}
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            report = loaded.rejects.write(out)
            if report is not None:
                files["rejected_rows"] = report
        limit = max_reject_rate
        if limit is None:
            limit = getattr(mapping_obj, "max_reject_rate", None)
        if on_loaded is not None:
            on_loaded(loaded.tables)
        loaded.rejects.check_rate(0.05 if limit is None else limit)
        absent = loaded.absent_columns.get("accounts", [])
        if spark is None:
            step("computing signals and decisions")
            decided = self.decide(loaded.tables, as_of, absent, usage=ahead.staged)
        else:
            decided = self._decide_on_spark(loaded.tables, as_of, absent, spark, step)
        result = RunResult(
            decisions=decided.decisions,
            accounts=decided.accounts,
            inactive=decided.inactive,
            unavailable=decided.unavailable,
            excluded=decided.excluded,
            as_of=as_of,
            model_name=self.model.name,
            model_hash=self.hash,
            missing_tables=list(loaded.missing),
            counts=dict(loaded.counts),
            rejects=loaded.rejects.summary(),
            files=files,
            tables=loaded.tables,
        )
        step("checking how the model fits the data")
        names = event_names(loaded.tables, self.model, as_of)
        result.diagnostics = diagnose(self.model, decided, names, team)
        accounts_rejects = loaded.rejects.tables.get("accounts")
        source = accounts_rejects.source if accounts_rejects is not None else "accounts"
        result.warnings = _empty_run_warnings(result, source)
        if out is not None:
            step("writing decision files")
            files.update(write_outputs(result, out))
        result.seconds = time.perf_counter() - started
        if out is not None:
            (out / "run.json").write_text(json.dumps(run_record(result), indent=2, default=str))
            files["run"] = out / "run.json"
        return result

    def _decide_on_spark(
        self,
        tables: Mapping[str, ir.Table],
        as_of: dt.date,
        absent: Collection[str],
        spark: SparkOptions,
        step: Progress,
    ) -> Decided:
        """:meth:`decide` on Spark, over the checked tables staged as Parquet."""
        from touchmodel.spark import spark_session, staging_folder, to_spark

        step(f"starting Spark ({spark.master or 'local[*]'})")
        session = spark_session(spark.master)
        with staging_folder(spark.staging) as folder:
            step(f"staging the checked tables for Spark in {folder}")
            on_spark = to_spark(tables, session, folder)
            step("computing signals and decisions on Spark")
            return self.decide(on_spark, as_of, absent)


class _UsageAhead:
    """The usage aggregates of one run, started before the tables are checked.

    Staged on the usage table as it will be if its checks find nothing (the
    loader's forecast), and started again on the checked table only when
    the checks changed it (see :mod:`touchmodel.signals.staging`).
    """

    def __init__(self, con: ibis.BaseBackend, model: TouchModel, as_of: dt.date) -> None:
        self._con, self._model, self._as_of = con, model, as_of
        self._source: ir.Table | None = None
        self._started = 0
        self.staged: StagedTable | None = None

    def on_table(self, name: str, table: ir.Table, checked: bool) -> None:
        """The loader's ``on_table``: stage on the forecast, restage if the checks changed it."""
        if name != "usage_events":
            return
        if checked and self._source is not None and self._source.equals(table):
            return
        self.close()
        self._source = table
        self._started += 1
        part = usage_part(table, self._model, self._as_of)
        self.staged = stage(self._con, part, f"__tm_usage_part_{self._started}")

    def close(self) -> None:
        """Stop the staged query if it still runs."""
        if self.staged is not None:
            self.staged.close()


@contextmanager
def _older_objects_left_alone() -> Iterator[None]:
    """Keep the garbage collector off the objects that existed before this block.

    A run builds many short-lived Ibis objects, which trigger collections;
    a full one would also walk every object the process already holds
    (the libraries: ~150k objects, ~0.06 s per walk) though none of them is
    the run's garbage. They are frozen for the run and given back after, so
    the next collection outside the run sees them again.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _execute(
    expr: ir.Table, before: Callable[[], None] | None, probe_accounts: bool = False
) -> pa.Table:
    """``expr.to_pyarrow()``, with ``before()`` called between compiling and running.

    On DuckDB the query is compiled first (a few tenths of a second of
    Python), so that staged work ``before`` waits for keeps running meanwhile.
    ``probe_accounts``: keep every join's sides as written (DuckDB would
    otherwise build its hash table on whichever side it estimates smaller),
    so the accounts, the left side of every join, stream through in order.
    """
    backend = expr.get_backend()
    if backend.name != "duckdb":
        if before is not None:
            before()
        return expr.to_pyarrow()
    from ibis.backends.duckdb.converter import DuckDBPyArrowData

    # What the backend's to_pyarrow does, split at the compile step.
    backend._run_pre_execute_hooks(expr)  # type: ignore[attr-defined]
    sql = backend.compile(expr)  # type: ignore[attr-defined]
    if before is not None:
        before()
    con = backend.con  # type: ignore[attr-defined]
    with optimizers_off(con, ["build_side_probe_side"] if probe_accounts else []):
        raw = con.sql(sql).to_arrow_table()
    return expr.__pyarrow_result__(raw, data_mapper=DuckDBPyArrowData)  # type: ignore[no-any-return]


def _in_account_order(table: pa.Table) -> pa.Table:
    """``table`` sorted by ``account_id`` in byte order (as it is, if it already is)."""
    ids = table["account_id"]
    ordered = pc.greater_equal(ids.slice(1), ids.slice(0, max(len(ids) - 1, 0)))
    # A missing id compares as null: not in order (sorting puts it last).
    if ids.null_count == 0 and pc.all(ordered, min_count=0).as_py():
        return table
    return _sort_by_account(table)


def _sort_by_account(table: pa.Table) -> pa.Table:
    return table.sort_by("account_id")


def _backend_name(expr: ir.Expr) -> str:
    """The name of the backend ``expr`` is bound to ('' when unbound)."""
    try:
        return str(expr.get_backend().name)
    except Exception:  # an unbound expression
        return ""


@contextmanager
def _unfused_selects(expr: ir.Table) -> Iterator[None]:
    """Compile ``expr`` without Ibis merging nested selects, on DuckDB.

    The decision query is a chain of ~20 selects (signals, tier, health,
    triggers, overrides). Ibis tries to merge each pair into one select and
    scores every attempt by walking the whole expression below it: about 40%
    of the compile time (~0.1 s at any size), and the merged SQL repeats the
    inlined expressions, which DuckDB then evaluates a little slower than
    the nested selects it flattens itself. Other backends keep Ibis' default.
    The option is process-wide, so it is restored right after.
    """
    if _backend_name(expr) != "duckdb":
        yield
        return
    options = ibis.options.sql
    before = options.fuse_selects
    options.fuse_selects = False
    try:
        yield
    finally:
        options.fuse_selects = before


def customers_on(
    tables: Mapping[str, ir.Table], as_of: dt.date
) -> tuple[dict[str, ir.Table], dict[str, int], int]:
    """Keep only accounts that were customers on ``as_of``; also how many were excluded and kept.

    An account that churned on or before the date, or whose contract starts
    after it, gets no decision: it would otherwise fire inactivity triggers
    and create work for someone who is not (or not yet) a customer. Replaying
    an earlier date (a backtest) still decides for it.
    """
    accounts = tables["accounts"]
    day = ibis.literal(as_of, type="date")
    churned = accounts.churned_on.notnull() & (accounts.churned_on.cast("date") <= day)
    not_started = accounts.contract_start.cast("date") > day
    counts = accounts.aggregate(
        churned=churned.sum(), not_started=(not_started & ~churned).sum(), rows=accounts.count()
    ).to_pyarrow()
    excluded = {k: int(counts[k][0].as_py() or 0) for k in ("churned", "not_started")}
    kept = dict(tables)
    if any(excluded.values()):
        kept["accounts"] = accounts.filter(~churned & ~not_started)
    return kept, excluded, int(counts["rows"][0].as_py()) - sum(excluded.values())


def write_outputs(result: Decided, out: Path) -> dict[str, Path]:
    """Write decisions.csv, decisions.parquet and the per-account signals file."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "decisions_csv": out / "decisions.csv",
        "decisions_parquet": out / "decisions.parquet",
        "signals_parquet": out / "signals.parquet",
    }
    pacsv.write_csv(result.decisions, paths["decisions_csv"])
    pq.write_table(split_lists(result.decisions), paths["decisions_parquet"])
    pq.write_table(result.accounts, paths["signals_parquet"])
    return paths


def _empty_run_warnings(result: RunResult, accounts_source: str) -> list[str]:
    """A run that decided for no account succeeded, but the user must hear why."""
    if result.decisions.num_rows:
        return []
    read = result.counts.get("accounts", 0)
    if read == 0:
        return [
            f"{accounts_source}: 0 accounts (the file has no rows after its header), so "
            "nothing was decided; is it the right export?"
        ]
    return [
        f"0 accounts decided: none of the {read:,} accounts read is a customer on "
        f"{result.as_of} (churned on or before it, or starting after it)"
    ]


def run_record(result: RunResult) -> dict[str, Any]:
    """What a run did, as JSON-able data (also written as run.json)."""
    return {
        "as_of": result.as_of.isoformat(),
        "model": result.model_name,
        "model_hash": result.model_hash,
        "accounts": result.decisions.num_rows,
        "excluded_accounts": result.excluded,
        "rows_read": result.counts,
        "rejects": result.rejects,
        "missing_tables": result.missing_tables,
        "warnings": result.warnings,
        "inactive_rules": [{"id": r.id, "reason": r.reason} for r in result.inactive],
        "diagnostics": None if result.diagnostics is None else result.diagnostics.as_dict(),
        "files": {k: str(v) for k, v in result.files.items()},
        "seconds": round(result.seconds, 3),
    }

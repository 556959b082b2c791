"""Replay a touch model over past dates and label each decision by what followed.

The data is loaded and checked once; each as-of date is then one decision
query over the same loaded tables (the engine ignores rows dated after the
as-of date, so a past date sees only its past). Each decided account gets a
label: it churned within the horizon after the date (``churned_on`` in
``(date, date + horizon]``), or, for a one-date snapshot export that carries
its own outcome column, the value of that column.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.engine import Engine
from touchmodel.errors import TouchmodelError
from touchmodel.sources.loader import LoadedData


class BacktestError(TouchmodelError):
    """A backtest that cannot be run as asked (dates, horizon, label)."""


@dataclass
class Replay:
    """Decisions and signals of every replayed date, one row per (date, account), labelled."""

    rows: pa.Table  # decisions + signals + ``label`` (bool) + ``arr``
    dates: list[dt.date]
    horizon_days: int
    label: str  # how the label was made, for the report
    trigger_ids: list[str]
    data_end: dt.date
    inactive: dict[str, str] = field(default_factory=dict)  # rule -> why it could not run
    label_column: str | None = None  # the outcome column, never a signal to learn from


def month_dates(start: dt.date, stop: dt.date, every: str = "month") -> list[dt.date]:
    """As-of dates from ``start`` to ``stop`` (inclusive): monthly (same day), weekly or ``Nd``."""
    if stop < start:
        raise BacktestError(f"--to {stop} is before --from {start}")
    out: list[dt.date] = []
    if every == "month":
        i = 0
        while True:
            month = start.month - 1 + i
            year = start.year + month // 12
            day = min(start.day, _month_length(year, month % 12 + 1))
            d = dt.date(year, month % 12 + 1, day)
            if d > stop:
                break
            out.append(d)
            i += 1
        return out
    step = {"week": 7, "day": 1}.get(every)
    if step is None:
        if not (every.endswith("d") and every[:-1].isdigit() and int(every[:-1]) > 0):
            raise BacktestError(
                f"--every: value {every!r} -- expected month, week, day or e.g. 14d"
            )
        step = int(every[:-1])
    d = start
    while d <= stop:
        out.append(d)
        d += dt.timedelta(days=step)
    return out


def _month_length(year: int, month: int) -> int:
    nxt = dt.date(year + month // 12, month % 12 + 1, 1)
    return (nxt - dt.timedelta(days=1)).day


def data_end(loaded: LoadedData) -> dt.date | None:
    """The newest date in the loaded activity tables (events, tickets, NPS, payments)."""
    cols = {
        "usage_events": "timestamp",
        "tickets": "opened_at",
        "nps_responses": "responded_at",
        "payments": "due_date",
    }
    newest: list[dt.date] = []
    for table, col in cols.items():
        if table in loaded.tables:
            value = loaded.tables[table][col].cast("date").max().to_pyarrow().as_py()
            if value is not None:
                newest.append(value)
    churned = loaded.tables["accounts"].churned_on.cast("date").max().to_pyarrow().as_py()
    if churned is not None:
        newest.append(churned)
    return max(newest) if newest else None


def replay(
    engine: Engine,
    loaded: LoadedData,
    dates: Sequence[dt.date],
    horizon_days: int,
    label_column: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Replay:
    """Decide at every date in ``dates`` and label each decided account.

    Without ``label_column`` the label is churn within ``horizon_days`` after
    the date, read from ``churned_on``; every date needs its whole horizon
    inside the data (an account's churn after the newest data is unknown).
    With ``label_column`` (a true/false accounts column, e.g. a snapshot's
    churn flag), the label is that column and only one date makes sense.
    """
    if not dates:
        raise BacktestError("no as-of dates to replay")
    accounts = loaded.tables["accounts"]
    end = data_end(loaded) or max(dates)
    if label_column is not None:
        if label_column not in accounts.columns:
            raise BacktestError(
                f"--label: no accounts column {label_column!r}; columns are {', '.join(accounts.columns)}"
            )
        label = f"accounts column '{label_column}' (true = churned)"
    else:
        late = [d for d in dates if d + dt.timedelta(days=horizon_days) > end]
        if late:
            raise BacktestError(
                f"as-of date {late[0]} + a {horizon_days}-day horizon passes the newest data "
                f"({end}): what happened after it is unknown. Use --to "
                f"{end - dt.timedelta(days=horizon_days)} or earlier, or a shorter --horizon"
            )
        if accounts.churned_on.notnull().sum().to_pyarrow().as_py() == 0:
            raise BacktestError(
                "no account has a churned_on date, so there is nothing to learn from: map the "
                "churn date (accounts.churned_on), or name a churn flag column with --label"
            )
        label = f"churned within {horizon_days} days after the as-of date"
    parts: list[pa.Table] = []
    inactive: dict[str, str] = {}
    keep = ["account_id", "churned_on", *([label_column] if label_column else [])]
    facts = accounts.select(*keep).to_pyarrow()
    for i, day in enumerate(dates):
        decided = engine.decide(loaded.tables, day, loaded.absent_columns.get("accounts", []))
        inactive.update({r.id: r.reason for r in decided.inactive})
        detail = decided.accounts
        drop = [
            c
            for c in decided.decisions.column_names
            if c in detail.column_names and c != "account_id"
        ]
        table = decided.decisions.join(detail.drop(drop), "account_id")
        missing = [
            c for c in facts.column_names if c == "account_id" or c not in table.column_names
        ]
        if len(missing) > 1:
            table = table.join(facts.select(missing), "account_id")
        if label_column is not None:
            y = pc.fill_null(table[label_column].cast(pa.bool_()), False)
        else:
            churned = table["churned_on"]
            limit = pa.scalar(day + dt.timedelta(days=horizon_days), pa.date32())
            y = pc.fill_null(
                pc.and_(
                    pc.greater(churned, pa.scalar(day, pa.date32())), pc.less_equal(churned, limit)
                ),
                False,
            )
        table = table.append_column("label", y).sort_by("account_id")
        parts.append(table)
        if progress:
            progress(i + 1, len(dates))
    rows = pa.concat_tables(parts, promote_options="permissive")
    return Replay(
        rows=rows,
        dates=list(dates),
        horizon_days=horizon_days,
        label=label,
        trigger_ids=[t.id for t in engine.model.triggers if t.enabled],
        data_end=end,
        inactive=inactive,
        label_column=label_column,
    )


def load_for_replay(
    data: Path | str, mapping: Path | None, as_of: dt.date
) -> tuple[ibis.BaseBackend, LoadedData]:
    """Load and check a data folder (or database URL) once; the mapping's ``as_of`` is ``as_of``."""
    from touchmodel.sources._warehouse import is_url
    from touchmodel.sources.loader import load_folder
    from touchmodel.sources.mapping import load_mapping

    mapping_obj = load_mapping(mapping) if mapping is not None else None
    con = Engine.connect()
    source = data if is_url(data) else Path(data)
    loaded = load_folder(con, source, mapping=mapping_obj, as_of=as_of)
    limit = getattr(mapping_obj, "max_reject_rate", None)
    loaded.rejects.check_rate(0.05 if limit is None else limit)
    return con, loaded


def fired_matrix(rows: pa.Table, trigger_ids: Sequence[str]) -> dict[str, np.ndarray]:
    """For each trigger id, a boolean array: did it fire on each row."""
    lists = pc.split_pattern(pc.fill_null(rows["triggers"], ""), "; ")
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy()
    out: dict[str, np.ndarray] = {}
    for tid in trigger_ids:
        hit = np.zeros(rows.num_rows, bool)
        if len(flat):
            hit[parents[pc.equal(flat, tid).to_numpy(zero_copy_only=False)]] = True
        out[tid] = hit
    return out

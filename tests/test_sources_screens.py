"""The loader's fast path for Parquet: screens instead of the counting pass.

A Parquet table whose screens are all empty skips the counting pass; any
table where a screen matches (or that has no screens) is counted in full.
Either way the loaded tables, row counts and rejected-rows report must be
exactly those of the full counting pass, which these tests force for
comparison.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from touchmodel.sources import LoadedData, Mapping, load_folder
from touchmodel.sources import loader as loader_module
from touchmodel.sources.mapping import ColumnMapping, TableMapping

AS_OF = dt.date(2026, 11, 1)
TS = dt.datetime(2026, 10, 1, 12)


def _tables() -> dict[str, dict[str, list[Any]]]:
    """A clean folder, as columns per table (Parquet, contract types)."""
    return {
        "accounts": {
            "account_id": ["A1", "A2", "A3"],
            "name": ["Acme", None, "Co"],
            "arr": [1000.0, 50000.0, 0.0],
            "contract_start": [dt.date(2025, 1, 1)] * 3,
            "employees": [10, None, 3],
            "plan": ["starter", "growth", ""],
            "strategic": [True, False, None],
        },
        "usage_events": {
            "account_id": ["A1", "A2", "A2", "A3"],
            "timestamp": [TS] * 4,
            "event": ["login", "report.created", "login", "login"],
            "user_id": ["u1", None, "", "u3"],
            "quantity": [1.0, None, 2.5, 1.0],
        },
        "tickets": {
            "ticket_id": ["T1", "T2"],
            "account_id": ["A1", "A2"],
            "opened_at": [TS, TS],
            "category": ["complaint", None],
        },
        "nps_responses": {
            "account_id": ["A1", "A3"],
            "responded_at": [TS, TS],
            "score": [9, 0],
        },
        "payments": {
            "account_id": ["A1", "A2"],
            "invoice_id": ["I1", "I2"],
            "due_date": [dt.date(2026, 10, 1)] * 2,
            "amount": [10.0, 20.0],
            "status": ["paid", "failed"],
        },
        "contacts": {
            "contact_id": ["C1", "C2"],
            "account_id": ["A1", "A1"],
            "title": ["CEO", None],
        },
    }


def write_folder(folder: Path, tables: dict[str, dict[str, list[Any]]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, columns in tables.items():
        pq.write_table(pa.table(columns), folder / f"{name}.parquet")
    return folder


class Spy:
    """Records, per table, whether the screens let the counting pass be skipped."""

    def __init__(self) -> None:
        self.skipped: list[bool] = []
        self._real = loader_module.screened_counts

    def __call__(self, plan: Any) -> dict[str, int] | None:
        row = self._real(plan)
        self.skipped.append(row is not None)
        return row


def load_fast(
    folder: Path, monkeypatch: pytest.MonkeyPatch, mapping: Mapping | None = None
) -> tuple[LoadedData, list[bool]]:
    spy = Spy()
    with monkeypatch.context() as m:
        m.setattr(loader_module, "screened_counts", spy)
        loaded = load_folder(ibis.duckdb.connect(), folder, mapping=mapping, as_of=AS_OF)
    return loaded, spy.skipped


def load_full(
    folder: Path, monkeypatch: pytest.MonkeyPatch, mapping: Mapping | None = None
) -> LoadedData:
    with monkeypatch.context() as m:
        m.setattr(loader_module, "screened_counts", lambda plan: None)
        return load_folder(ibis.duckdb.connect(), folder, mapping=mapping, as_of=AS_OF)


def snapshot(loaded: LoadedData) -> dict[str, Any]:
    """Everything a run reads from the loader, comparable with ``==`` (NaN as text)."""

    def plain(value: Any) -> Any:
        return "nan" if isinstance(value, float) and math.isnan(value) else value

    tables = {
        name: [
            {k: plain(v) for k, v in row.items()}
            for row in t.to_pyarrow().sort_by([("account_id", "ascending")]).to_pylist()
        ]
        for name, t in loaded.tables.items()
    }
    return {
        "tables": tables,
        "schemas": {name: t.schema() for name, t in loaded.tables.items()},
        "counts": loaded.counts,
        "summary": loaded.rejects.summary(),
        "report": loaded.rejects.to_pyarrow().to_pylist(),
        "absent": loaded.absent_columns,
    }


def test_clean_parquet_skips_every_counting_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = write_folder(tmp_path / "data", _tables())
    fast, skipped = load_fast(folder, monkeypatch)
    assert skipped == [True] * 6
    assert snapshot(fast) == snapshot(load_full(folder, monkeypatch))
    assert fast.rejects.to_pyarrow().num_rows == 0
    assert fast.counts["usage_events"] == 4


# table, column, row index, bad value, whether the full pass reports it.
BAD = [
    ("accounts", "account_id", 1, None, True),
    ("accounts", "account_id", 1, "  ", True),
    ("accounts", "account_id", 1, "A1", True),  # duplicate key
    ("accounts", "name", 0, " \t", True),  # blank optional text: nulled
    ("accounts", "arr", 0, -5.0, True),
    # DuckDB takes a Parquet float column's min/max (which leave NaN out) as
    # proof that isnan() is false unless the loader stops it (_settled).
    ("accounts", "arr", 0, math.nan, True),
    ("accounts", "arr", 0, None, True),
    ("accounts", "employees", 0, -1, True),
    # A float column typed integer: not whole, and no crash on the way there.
    ("accounts", "employees", 0, math.nan, True),
    ("accounts", "employees", 0, math.inf, True),
    ("accounts", "employees", 0, 1e300, True),
    ("accounts", "contract_start", 0, None, True),
    ("usage_events", "account_id", 0, "ZZ", True),  # unknown account
    ("usage_events", "account_id", 0, "", True),
    ("usage_events", "timestamp", 0, None, True),
    ("usage_events", "event", 0, " ", True),
    ("usage_events", "user_id", 0, "\n", True),
    ("usage_events", "quantity", 0, math.inf, True),
    ("usage_events", "quantity", 0, math.nan, True),
    ("tickets", "ticket_id", 1, "T1", True),  # duplicate key
    ("nps_responses", "score", 0, 11, True),
    ("nps_responses", "score", 0, -1, True),
    ("payments", "status", 0, "bounced", True),
    ("payments", "status", 0, " Paid", False),  # a screen matches; the full pass finds it fine
    ("contacts", "account_id", 0, "A9", True),
]


@pytest.mark.parametrize(("table", "column", "index", "value", "reported"), BAD)
def test_anything_a_screen_matches_is_counted_in_full(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    table: str,
    column: str,
    index: int,
    value: Any,
    reported: bool | None,
) -> None:
    tables = _tables()
    tables[table][column][index] = value
    folder = write_folder(tmp_path / "data", tables)
    fast, skipped = load_fast(folder, monkeypatch)
    position = list(tables).index(table)
    assert skipped[position] is False, f"the screens of {table} missed {column}={value!r}"
    assert snapshot(fast) == snapshot(load_full(folder, monkeypatch))
    entries = [e for e in fast.rejects.to_pyarrow().to_pylist() if e["file"] == f"{table}.parquet"]
    if reported is not None:
        assert bool(entries) is reported


def test_a_mapped_column_has_no_screens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tables = _tables()
    tables["accounts"]["revenue"] = tables["accounts"].pop("arr")
    folder = write_folder(tmp_path / "data", tables)
    mapping = Mapping(
        tables={"accounts": TableMapping(columns={"arr": ColumnMapping(source="revenue")})}
    )
    fast, skipped = load_fast(folder, monkeypatch, mapping)
    assert skipped[0] is False and all(skipped[1:])
    assert snapshot(fast) == snapshot(load_full(folder, monkeypatch, mapping))


def test_text_typed_parquet_columns_are_counted_in_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = _tables()
    tables["usage_events"]["timestamp"] = ["2026-10-01 12:00:00", "later", "2026-10-02", ""]
    folder = write_folder(tmp_path / "data", tables)
    fast, skipped = load_fast(folder, monkeypatch)
    assert skipped[1] is False
    assert snapshot(fast) == snapshot(load_full(folder, monkeypatch))
    assert fast.rejects.summary()["usage_events"]["rejected"] == 2


def test_csv_is_always_counted_in_full(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "accounts.csv").write_text("account_id,arr,contract_start\nA1,5,2025-01-01\n")
    _fast, skipped = load_fast(tmp_path, monkeypatch)
    assert skipped == []


def test_a_scaled_value_that_overflows_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tables = _tables()
    tables["accounts"]["mrr"] = [100.0, 1e308, 0.0]
    tables["accounts"].pop("arr")
    folder = write_folder(tmp_path / "data", tables)
    mapping = Mapping(
        tables={"accounts": TableMapping(columns={"arr": ColumnMapping(source="mrr", scale=12)})}
    )
    fast, _ = load_fast(folder, monkeypatch, mapping)
    assert snapshot(fast) == snapshot(load_full(folder, monkeypatch, mapping))
    report = [r for r in fast.rejects.to_pyarrow().to_pylist() if r["file"] == "accounts.parquet"]
    assert [(r["row"], r["reason"]) for r in report] == [
        (2, "not a finite number once scaled by 12")
    ]
    assert fast.tables["accounts"].to_pyarrow()["account_id"].to_pylist() == ["A1", "A3"]


def test_float_traits_with_a_problem_load_into_a_database_file(tmp_path: Path) -> None:
    # The checked traits are materialized (a float check fired): under a name
    # of their own, not the name of the traits' source view.
    from touchmodel.ingest.feed import IngestedInput

    folder = write_folder(tmp_path / "data", _tables())
    message = "__tm_message"
    usage = pa.table({
        "account_id": ["A1"], "timestamp": ["2026-10-25 10:00:00"], "event": ["login"],
        "user_id": ["u1"], "quantity": ["1"], message: pa.array([1], pa.int64()),
    })  # fmt: skip
    groups = pa.table({
        "account_id": ["A1", "A2"], "arr": pa.array([-5.0, 5.0]), message: pa.array([3, 4], pa.int64()),
    })  # fmt: skip
    con = ibis.duckdb.connect(str(tmp_path / "state.duckdb"))
    loaded = load_folder(
        con, folder, mapping=None, as_of=AS_OF, ingested=IngestedInput(usage=usage, groups=groups)
    )
    arr = {r["account_id"]: r["arr"] for r in loaded.tables["accounts"].to_pyarrow().to_pylist()}
    # A1's -5.0 was reported as set to null, and is null (issue 12.8), not the file's value.
    assert arr == {"A1": None, "A2": 5.0, "A3": 0.0}
    assert loaded.rejects.summary()["ingested_groups"]["values_nulled"] == 1

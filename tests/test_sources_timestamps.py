"""Timestamps read as the instant they name (issue 12.8): a text timestamp with a UTC
offset, and a Parquet timestamp with a time zone, are read in UTC, whatever the time zone
of the machine (or DuckDB session) running the load."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from touchmodel.sources import LoadedData, load_folder

AS_OF = dt.date(2026, 11, 3)


def load(folder: Path, session_zone: str) -> LoadedData:
    con = ibis.duckdb.connect()
    # A user's laptop: DuckDB takes the machine's zone; the load must not depend on it.
    con.raw_sql(f"SET TimeZone = '{session_zone}'")
    (folder / "accounts.csv").write_text(
        "account_id,name,arr,contract_start\nA1,Acme,10,2025-01-01\n", encoding="utf-8"
    )
    return load_folder(con, folder, mapping=None, as_of=AS_OF)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_text_timestamps_with_an_offset_are_read_in_utc(tmp_path: Path, zone: str) -> None:
    (tmp_path / "usage_events.csv").write_text(
        "account_id,timestamp,event\n"
        "A1,2026-11-01T23:30:00-05:00,late_evening_in_new_york\n"
        "A1,2026-11-01T10:00:00+0530,morning_in_india\n"
        "A1,2026-11-01T10:00:00.5+01,one_hour_ahead\n"
        "A1,2026-11-01T10:00:00Z,utc\n"
        "A1,2026-11-01 10:00:00,no_offset_is_utc\n"
        "A1,2026-11-01,a_date\n"
        "A1,2026-11-01T25:00:00+01:00,no_such_hour\n",
        encoding="utf-8",
    )
    loaded = load(tmp_path, zone)
    got = {
        r["event"]: r["timestamp"] for r in loaded.tables["usage_events"].to_pyarrow().to_pylist()
    }
    assert got == {
        # 23:30 in New York is 04:30 the next day in UTC: the event is on Nov 2.
        "late_evening_in_new_york": dt.datetime(2026, 11, 2, 4, 30),
        "morning_in_india": dt.datetime(2026, 11, 1, 4, 30),
        "one_hour_ahead": dt.datetime(2026, 11, 1, 9, 0, 0, 500_000),
        "utc": dt.datetime(2026, 11, 1, 10),
        "no_offset_is_utc": dt.datetime(2026, 11, 1, 10),
        "a_date": dt.datetime(2026, 11, 1),
    }
    (bad,) = loaded.rejects.to_pyarrow().to_pylist()
    assert (bad["row"], bad["field"], bad["action"]) == (8, "timestamp", "row rejected")


def test_parquet_timestamps_with_a_zone_are_read_in_utc(tmp_path: Path) -> None:
    instant = dt.datetime(2026, 11, 2, 3, 30, tzinfo=dt.UTC)
    aware = pa.array([instant], pa.timestamp("us", tz="UTC"))
    pq.write_table(
        pa.table({"account_id": ["A1"], "timestamp": aware, "event": ["e"]}),
        tmp_path / "usage_events.parquet",
    )
    pq.write_table(
        pa.table({"account_id": ["A1"], "responded_at": aware, "score": [9]}),
        tmp_path / "nps_responses.parquet",
    )
    # In New York that instant is still Nov 1 (22:30): read as such, the event and the
    # response would fall on the wrong day of a window.
    loaded = load(tmp_path, "America/New_York")
    (event,) = loaded.tables["usage_events"].to_pyarrow().to_pylist()
    assert event["timestamp"] == dt.datetime(2026, 11, 2, 3, 30)
    (response,) = loaded.tables["nps_responses"].to_pyarrow().to_pylist()
    assert response["responded_at"] == dt.datetime(2026, 11, 2, 3, 30)

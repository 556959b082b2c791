"""Property tests for the importer: random tables with injected bad values.

Whatever the mix of good and bad rows, in CSV or Parquet:
rows read = rows kept + rows rejected, every injected bad row is in the report
with its row number and field, and no good row is dropped.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import ibis
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from touchmodel.sources import load_folder

AS_OF = dt.date(2026, 11, 1)

# kind -> (field reported, action); None = a good row.
ACCOUNT_KINDS = {
    "ok": None,
    "missing_id": ("account_id", "row rejected"),
    "negative_arr": ("arr", "row rejected"),
    "bad_date": ("contract_start", "row rejected"),
    "blank_arr": ("arr", "row rejected"),
    "duplicate_id": ("account_id", "row rejected"),
    "bad_employees": ("employees", "value set to null"),
}
EVENT_KINDS = {
    "ok": None,
    "unknown_account": ("account_id", "row rejected"),
    "bad_timestamp": ("timestamp", "row rejected"),
    "missing_event": ("event", "row rejected"),
}

# Good values in the spellings users export them in.
good_arr = st.sampled_from(["0", "12", " 1200.50 ", "1e3", "99999999"])
good_date = st.sampled_from(["2025-01-01", "2024-02-29", " 2023-12-31", "2025-06-30T00:00:00"])
good_bool = st.sampled_from(["", "yes", "No", "TRUE", "0", "y"])
good_ts = st.sampled_from(["2026-10-01", "2026-10-01 12:30:00", "2026-09-30T23:59:59"])


@st.composite
def datasets(draw: st.DrawFn) -> dict:
    n = draw(st.integers(1, 10))
    kinds = draw(st.lists(st.sampled_from(list(ACCOUNT_KINDS)), min_size=n, max_size=n))
    accounts, kept_ids, rejected_ids = [], [], []
    for i, kind in enumerate(kinds):
        acc = {
            "account_id": f"A{i}",
            "name": f"Account {i}",
            "arr": draw(good_arr),
            "contract_start": draw(good_date),
            "employees": draw(st.sampled_from(["", "10", "250"])),
            "strategic": draw(good_bool),
        }
        if kind == "duplicate_id" and not kept_ids:
            kind = kinds[i] = "ok"  # nothing earlier to duplicate
        if kind == "missing_id":
            acc["account_id"] = draw(st.sampled_from(["", "   "]))
        elif kind == "negative_arr":
            acc["arr"] = draw(st.sampled_from(["-1", "-0.01", "-5000"]))
        elif kind == "bad_date":
            acc["contract_start"] = draw(st.sampled_from(["2025-02-30", "soon", "31/12/2024"]))
        elif kind == "blank_arr":
            acc["arr"] = draw(st.sampled_from([" ", "\t", "n/a"]))
        elif kind == "duplicate_id":
            acc["account_id"] = draw(st.sampled_from(kept_ids))
        elif kind == "bad_employees":
            acc["employees"] = draw(st.sampled_from(["many", "3.5", "-2", " "]))
        if ACCOUNT_KINDS[kind] is None or kind == "bad_employees":
            kept_ids.append(acc["account_id"])
        elif acc["account_id"].strip():
            rejected_ids.append(acc["account_id"])
        accounts.append(acc)

    m = draw(st.integers(0, 12))
    ekinds = draw(st.lists(st.sampled_from(list(EVENT_KINDS)), min_size=m, max_size=m))
    events = []
    for j, kind in enumerate(ekinds):
        if not kept_ids and kind != "unknown_account":
            kind = ekinds[j] = "unknown_account"
        ev = {
            "account_id": draw(st.sampled_from(kept_ids)) if kept_ids else "",
            "timestamp": draw(good_ts),
            "event": draw(st.sampled_from(["login", "report.created"])),
        }
        if kind == "unknown_account":
            unknown = [f"Z{j}", *[r for r in rejected_ids if r not in kept_ids]]
            ev["account_id"] = draw(st.sampled_from(unknown))
        elif kind == "bad_timestamp":
            ev["timestamp"] = draw(st.sampled_from(["yesterday", "2026-13-01", " "]))
        elif kind == "missing_event":
            ev["event"] = draw(st.sampled_from(["", "  "]))
        events.append(ev)
    return {
        "accounts": accounts,
        "account_kinds": kinds,
        "events": events,
        "event_kinds": ekinds,
        "kept_ids": kept_ids,
        "format": draw(st.sampled_from(["csv", "parquet"])),
    }


def write(
    folder: Path, name: str, rows: list[dict[str, str]], columns: list[str], fmt: str
) -> None:
    table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in columns})
    if fmt == "csv":
        pacsv.write_csv(table, folder / f"{name}.csv")
    else:
        pq.write_table(table, folder / f"{name}.parquet")


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(datasets())
def test_every_row_is_kept_or_reported(data: dict) -> None:
    fmt = data["format"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write(folder, "accounts", data["accounts"], list(data["accounts"][0]), fmt)
        if data["events"]:
            write(folder, "usage_events", data["events"], ["account_id", "timestamp", "event"], fmt)
        loaded = load_folder(ibis.duckdb.connect(), folder, mapping=None, as_of=AS_OF)
        report = loaded.rejects.to_pyarrow().to_pylist()
        kept = {t: loaded.tables[t].to_pyarrow().to_pylist() for t in loaded.tables}

    first_row = 2 if fmt == "csv" else 1  # CSV counts the header as row 1
    summary = loaded.rejects.summary()
    for table, rows, kinds, catalog in (
        ("accounts", data["accounts"], data["account_kinds"], ACCOUNT_KINDS),
        ("usage_events", data["events"], data["event_kinds"], EVENT_KINDS),
    ):
        if not rows:
            assert table in loaded.missing
            continue
        file = f"{table}.{fmt}"
        entries = [e for e in report if e["file"] == file]
        bad_rows = {
            i + first_row
            for i, k in enumerate(kinds)
            if catalog[k] and catalog[k][1] == "row rejected"
        }
        nulled_rows = {
            i + first_row
            for i, k in enumerate(kinds)
            if catalog[k] and catalog[k][1] != "row rejected"
        }
        # rows read = kept + rejected, and nothing good is dropped.
        assert summary[table]["rows_read"] == len(rows)
        assert summary[table]["rejected"] == len(bad_rows)
        assert summary[table]["values_nulled"] == len(nulled_rows)
        assert len(kept[table]) == len(rows) - len(bad_rows)
        # Every injected problem is reported on its row, for its field.
        for i, kind in enumerate(kinds):
            expected = catalog[kind]
            got = {(e["field"], e["action"]) for e in entries if e["row"] == i + first_row}
            if expected is None:
                assert got == set(), (table, i, kind, got)
            else:
                assert expected in got, (table, i, kind, got)
        assert {e["row"] for e in entries if e["action"] == "row rejected"} == bad_rows

    assert [a["account_id"] for a in kept["accounts"]] == data["kept_ids"]
    if data["events"]:
        assert {e["account_id"] for e in kept["usage_events"]} <= set(data["kept_ids"])

"""Loading a data folder: discovery, typing, validation and the rejected-rows entries."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from touchmodel.errors import DataError, MappingFileError
from touchmodel.sources import LoadedData, Mapping, load_folder
from touchmodel.sources.contract import IBIS_TYPES, TABLES

AS_OF = dt.date(2026, 11, 1)
ACCOUNTS_HEADER = "account_id,name,arr,contract_start"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def load(folder: Path, mapping: Mapping | None = None) -> LoadedData:
    return load_folder(ibis.duckdb.connect(), folder, mapping=mapping, as_of=AS_OF)


def report(loaded: LoadedData) -> list[dict[str, Any]]:
    return loaded.rejects.to_pyarrow().to_pylist()


def rows(loaded: LoadedData, table: str) -> list[dict[str, Any]]:
    return loaded.tables[table].to_pyarrow().to_pylist()


def only(entries: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    hits = [e for e in entries if all(e[k] == v for k, v in match.items())]
    assert len(hits) == 1, f"expected one report entry matching {match}, got {entries}"
    return hits[0]


def accounts_csv(folder: Path, *lines: str, header: str = ACCOUNTS_HEADER) -> Path:
    return write(folder, "accounts.csv", "\n".join([header, *lines]) + "\n")


# --- a clean folder -------------------------------------------------------------


def test_canonical_csv_loads_with_contract_types(tmp_path: Path) -> None:
    accounts_csv(
        tmp_path,
        "A1,Acme,1200.5,2025-01-15,2026-01-15,40,growth,1000,12,software,yes,Dana,,EU",
        header=ACCOUNTS_HEADER + ",renewal_date,employees,plan,plan_limit,seats,industry,"
        "strategic,csm,churned_on,region",
    )
    loaded = load(tmp_path)
    table = loaded.tables["accounts"]
    for col in TABLES["accounts"].columns:
        assert table.schema()[col.name] == ibis.dtype(IBIS_TYPES[col.type]), col.name
    [acc] = rows(loaded, "accounts")
    assert acc["arr"] == 1200.5
    assert acc["contract_start"] == dt.date(2025, 1, 15)
    assert acc["employees"] == 40 and acc["seats"] == 12 and acc["strategic"] is True
    assert acc["churned_on"] is None
    # Unknown extra columns are kept for rules.
    assert acc["region"] == "EU"
    assert loaded.counts == {"accounts": 1}
    assert loaded.missing == ["usage_events", "tickets", "nps_responses", "payments", "contacts"]
    assert loaded.rejects.summary() == {
        "accounts": {"rows_read": 1, "rejected": 0, "values_nulled": 0}
    }
    assert report(loaded) == []


def test_contract_columns_absent_from_the_file_are_typed_nulls(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,10,2025-01-01")
    loaded = load(tmp_path)
    table = loaded.tables["accounts"]
    assert table.schema()["renewal_date"] == ibis.dtype("date")
    assert table.schema()["seats"] == ibis.dtype("int64")
    [acc] = rows(loaded, "accounts")
    assert acc["renewal_date"] is None and acc["seats"] is None
    # Contract default.
    assert acc["strategic"] is False


def test_all_tables_load_and_children_keep_only_known_accounts(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,10,2025-01-01", "A2,Beta,20,2025-02-01")
    write(tmp_path, "usage_events.csv", "account_id,timestamp,event,user_id,quantity\n"
          "A1,2026-10-30 10:00:00,report.created,u1,\nA2,2026-10-30T11:00:00,login,,3\n")  # fmt: skip
    write(
        tmp_path, "tickets.csv", "ticket_id,account_id,opened_at,category\nT1,A1,2026-10-01,bug\n"
    )
    write(tmp_path, "nps_responses.csv", "account_id,responded_at,score\nA2,2026-09-01,9\n")
    write(
        tmp_path,
        "payments.csv",
        "account_id,invoice_id,due_date,amount,status\nA1,I1,2026-10-01,100,paid\n",
    )
    write(tmp_path, "contacts.csv", "contact_id,account_id,title\nC1,A1,VP Sales\n")
    loaded = load(tmp_path)
    assert loaded.missing == []
    assert set(loaded.tables) == set(TABLES)
    events = rows(loaded, "usage_events")
    # Default quantity 1; empty user_id is null.
    assert [(e["account_id"], e["quantity"], e["user_id"]) for e in events] == [
        ("A1", 1.0, "u1"),
        ("A2", 3.0, None),
    ]
    assert events[1]["timestamp"] == dt.datetime(2026, 10, 30, 11)
    assert rows(loaded, "nps_responses")[0]["score"] == 9
    assert rows(loaded, "payments")[0]["due_date"] == dt.date(2026, 10, 1)
    assert loaded.counts == {t: n for t, n in zip(TABLES, [2, 2, 1, 1, 1, 1], strict=True)}


# --- bad input, one case each ------------------------------------------------------


def test_missing_account_id_rejects_the_row(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,10,2025-01-01", ",NoId,20,2025-01-01")
    loaded = load(tmp_path)
    assert [a["account_id"] for a in rows(loaded, "accounts")] == ["A1"]
    entry = only(report(loaded))
    assert entry["file"] == "accounts.csv"
    assert entry["row"] == 3
    assert entry["field"] == "account_id"
    assert entry["action"] == "row rejected"
    assert "missing" in entry["reason"]
    assert json.loads(entry["record"]) == {
        "account_id": "",
        "name": "NoId",
        "arr": "20",
        "contract_start": "2025-01-01",
    }


def test_negative_arr_rejects_the_row(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,-5,2025-01-01", "A2,Beta,0,2025-01-01")
    loaded = load(tmp_path)
    assert [a["account_id"] for a in rows(loaded, "accounts")] == ["A2"]
    entry = only(report(loaded))
    assert (entry["row"], entry["field"], entry["value"]) == (2, "arr", "-5")
    assert "below the minimum 0" in entry["reason"]
    assert entry["action"] == "row rejected"


def test_unparseable_required_date_rejects_the_row(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-02-30", "A2,Beta,5,01/02/2025", "A3,Gamma,5,2025-02-28")
    loaded = load(tmp_path)
    assert [a["account_id"] for a in rows(loaded, "accounts")] == ["A3"]
    entries = report(loaded)
    assert [(e["row"], e["field"], e["value"]) for e in entries] == [
        (2, "contract_start", "2025-02-30"),
        (3, "contract_start", "01/02/2025"),
    ]
    assert all("not a real calendar date" in e["reason"] for e in entries)


def test_unparseable_optional_date_is_nulled_and_reported(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-01-01,soon", header=ACCOUNTS_HEADER + ",renewal_date")
    loaded = load(tmp_path)
    [acc] = rows(loaded, "accounts")
    assert acc["renewal_date"] is None
    entry = only(report(loaded))
    assert (entry["field"], entry["value"], entry["action"]) == (
        "renewal_date",
        "soon",
        "value set to null",
    )
    assert loaded.rejects.summary()["accounts"] == {
        "rows_read": 1,
        "rejected": 0,
        "values_nulled": 1,
    }


def test_unknown_account_rejects_child_rows(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-01-01", ",Bad,5,2025-01-01")
    write(tmp_path, "usage_events.csv", "account_id,timestamp,event\n"
          "A1,2026-10-01,login\nX9,2026-10-01,login\n,2026-10-01,login\n")  # fmt: skip
    loaded = load(tmp_path)
    assert [e["account_id"] for e in rows(loaded, "usage_events")] == ["A1"]
    events = [e for e in report(loaded) if e["file"] == "usage_events.csv"]
    assert [(e["row"], e["field"], e["reason"]) for e in events] == [
        (3, "account_id", "unknown account 'X9'"),
        (4, "account_id", "account_id is missing"),
    ]
    assert loaded.rejects.summary()["usage_events"]["rejected"] == 2


def test_duplicate_account_id_keeps_the_first_occurrence(tmp_path: Path) -> None:
    accounts_csv(
        tmp_path,
        "A1,Bad first,-1,2025-01-01",  # rejected itself: not the one kept
        "A1,Kept,10,2025-01-01",
        "A2,Other,10,2025-01-01",
        "A1,Later,30,2025-01-01",
    )
    loaded = load(tmp_path)
    assert [(a["account_id"], a["name"]) for a in rows(loaded, "accounts")] == [
        ("A1", "Kept"),
        ("A2", "Other"),
    ]
    dup = only(report(loaded), row=5)
    assert (dup["field"], dup["value"], dup["action"]) == ("account_id", "A1", "row rejected")
    assert "duplicate" in dup["reason"] and "row 3" in dup["reason"]


def test_duplicate_ticket_and_contact_ids(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-01-01")
    write(
        tmp_path,
        "tickets.csv",
        "ticket_id,account_id,opened_at\nT1,A1,2026-10-01\nT1,A1,2026-10-02\n",
    )
    write(tmp_path, "contacts.csv", "contact_id,account_id\nC1,A1\nC2,A1\nC1,A1\n")
    loaded = load(tmp_path)
    assert [t["opened_at"] for t in rows(loaded, "tickets")] == [dt.datetime(2026, 10, 1)]
    assert sorted(c["contact_id"] for c in rows(loaded, "contacts")) == ["C1", "C2"]
    entries = report(loaded)
    only(entries, file="tickets.csv", row=3, field="ticket_id")
    only(entries, file="contacts.csv", row=4, field="contact_id")


@pytest.mark.parametrize(
    ("score", "ok"), [("0", True), ("10", True), ("11", False), ("-1", False), ("7.5", False)]
)
def test_nps_score_must_be_0_to_10(tmp_path: Path, score: str, ok: bool) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-01-01")
    write(tmp_path, "nps_responses.csv", f"account_id,responded_at,score\nA1,2026-10-01,{score}\n")
    loaded = load(tmp_path)
    assert len(rows(loaded, "nps_responses")) == int(ok)
    entries = report(loaded)
    if ok:
        assert entries == []
    else:
        entry = only(entries, field="score")
        assert (entry["row"], entry["value"], entry["action"]) == (2, score, "row rejected")


def test_payment_status_must_be_a_known_choice(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-01-01")
    write(tmp_path, "payments.csv", "account_id,invoice_id,due_date,amount,status\n"
          "A1,I1,2026-10-01,10,paid\nA1,I2,2026-10-01,10,pending\nA1,I3,2026-10-01,10, FAILED\n")  # fmt: skip
    loaded = load(tmp_path)
    # Case and surrounding spaces are forgiven; unknown statuses are not.
    assert [(p["invoice_id"], p["status"]) for p in rows(loaded, "payments")] == [
        ("I1", "paid"),
        ("I3", "failed"),
    ]
    entry = only(report(loaded))
    assert (entry["row"], entry["field"], entry["value"]) == (3, "status", "pending")
    assert "not one of: paid, failed, refunded" in entry["reason"]


def test_whitespace_numbers(tmp_path: Path) -> None:
    accounts_csv(
        tmp_path,
        "A1,Acme, 12 ,2025-01-01,  ",  # padded number is fine; blank optional is a problem
        "A2,Beta, ,2025-01-01,5",  # blank required number rejects the row
        header=ACCOUNTS_HEADER + ",employees",
    )
    loaded = load(tmp_path)
    [acc] = rows(loaded, "accounts")
    assert (acc["account_id"], acc["arr"], acc["employees"]) == ("A1", 12.0, None)
    entries = report(loaded)
    nulled = only(entries, row=2)
    assert (nulled["field"], nulled["value"], nulled["action"]) == (
        "employees",
        "  ",
        "value set to null",
    )
    assert "blank" in nulled["reason"]
    rejected = only(entries, row=3)
    assert (rejected["field"], rejected["value"], rejected["action"]) == (
        "arr",
        " ",
        "row rejected",
    )


def test_bad_optional_values_are_nulled_and_the_row_kept(tmp_path: Path) -> None:
    accounts_csv(
        tmp_path,
        "A1,Acme,5,2025-01-01,many,3.5,maybe,-3",
        "A2,Beta,5,2025-01-01,3.0,2,Y,7",
        header=ACCOUNTS_HEADER + ",employees,seats,strategic,plan_limit",
    )
    loaded = load(tmp_path)
    a1, a2 = rows(loaded, "accounts")
    assert (a1["employees"], a1["seats"], a1["plan_limit"]) == (None, None, None)
    # An unreadable bool is nulled, then the contract default applies.
    assert a1["strategic"] is False
    assert (a2["employees"], a2["seats"], a2["strategic"], a2["plan_limit"]) == (3, 2, True, 7.0)
    entries = report(loaded)
    assert {(e["field"], e["value"]) for e in entries} == {
        ("employees", "many"),
        ("seats", "3.5"),
        ("strategic", "maybe"),
        ("plan_limit", "-3"),
    }
    assert {e["action"] for e in entries} == {"value set to null"}
    assert "whole number" in only(entries, field="seats")["reason"]
    assert loaded.rejects.summary()["accounts"] == {
        "rows_read": 2,
        "rejected": 0,
        "values_nulled": 4,
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("FALSE", False), ("Yes", True), ("no", False), ("1", True), ("0", False),
     ("y", True), ("N", False), ("", False)],
)  # fmt: skip
def test_bool_spellings(tmp_path: Path, text: str, value: bool) -> None:
    accounts_csv(tmp_path, f"A1,Acme,5,2025-01-01,{text}", header=ACCOUNTS_HEADER + ",strategic")
    loaded = load(tmp_path)
    assert rows(loaded, "accounts")[0]["strategic"] is value
    assert report(loaded) == []


def test_rejected_rows_do_not_also_report_nulled_values(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,-1,2025-01-01,lots", header=ACCOUNTS_HEADER + ",employees")
    loaded = load(tmp_path)
    entry = only(report(loaded))
    assert entry["field"] == "arr"
    assert loaded.rejects.summary()["accounts"] == {
        "rows_read": 1,
        "rejected": 1,
        "values_nulled": 0,
    }


def test_csv_row_numbers_count_like_a_spreadsheet(tmp_path: Path) -> None:
    write(
        tmp_path,
        "accounts.csv",
        ACCOUNTS_HEADER + "\n"
        "A1,Acme,1,2025-01-01\n"  # row 2
        "\n"  # row 3: blank, not a record
        'A2,"two\nlines",2,2025-01-01\n'  # row 4 (one record over two lines)
        "A3,too,many,fields,here\n"  # row 5: cannot be read
        "A4,short\n"  # row 6: cannot be read
        "A5,Five,-1,2025-01-01\n",  # row 7
    )
    loaded = load(tmp_path)
    assert [a["account_id"] for a in rows(loaded, "accounts")] == ["A1", "A2"]
    entries = report(loaded)
    assert [(e["row"], e["field"]) for e in entries] == [(5, ""), (6, ""), (7, "arr")]
    assert json.loads(entries[0]["record"]) == {"line": "A3,too,many,fields,here"}
    assert "5 field(s)" in entries[0]["reason"]
    assert loaded.rejects.summary()["accounts"] == {
        "rows_read": 5,
        "rejected": 3,
        "values_nulled": 0,
    }


def test_bom_and_padded_header_names(tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_bytes(
        b"\xef\xbb\xbfaccount_id , name,arr,contract_start\r\nA1,Acme,5,2025-01-01\r\n"
    )
    assert rows(load(tmp_path), "accounts")[0]["account_id"] == "A1"


# --- Parquet and part folders ------------------------------------------------------


def test_parquet_keeps_native_types_and_numbers_rows_from_1(tmp_path: Path) -> None:
    pq.write_table(
        pa.table(
            {
                "account_id": ["A1", "A2", "A3"],
                "arr": [100.0, -1.0, 50.0],
                "contract_start": [dt.date(2025, 1, 1)] * 3,
                "seats": pa.array([3, 4, 5], pa.int32()),
                "tier_hint": ["x", "y", "z"],
            }
        ),
        tmp_path / "accounts.parquet",
    )
    loaded = load(tmp_path)
    assert [a["account_id"] for a in rows(loaded, "accounts")] == ["A1", "A3"]
    assert loaded.tables["accounts"].schema()["seats"] == ibis.dtype("int64")
    assert rows(loaded, "accounts")[0]["tier_hint"] == "x"
    entry = only(report(loaded))
    assert (entry["file"], entry["row"], entry["field"]) == ("accounts.parquet", 2, "arr")
    assert json.loads(entry["record"])["arr"] == -1.0


def test_parquet_part_folder(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-01-01")
    parts = tmp_path / "usage_events"
    parts.mkdir()
    ts = dt.datetime(2026, 10, 1, 12)
    for i, ids in enumerate([["A1", "A1"], ["A1", "B2", "A1"]]):
        pq.write_table(
            pa.table(
                {"account_id": ids, "timestamp": [ts] * len(ids), "event": ["login"] * len(ids)}
            ),
            parts / f"part-{i}.parquet",
        )
    (parts / "_SUCCESS").write_text("")
    loaded = load(tmp_path)
    assert loaded.counts["usage_events"] == 5
    assert len(rows(loaded, "usage_events")) == 4
    entry = only(report(loaded))
    assert (entry["file"], entry["row"], entry["reason"]) == (
        "usage_events/part-1.parquet",
        2,
        "unknown account 'B2'",
    )


def test_csv_part_folder(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-01-01")
    write(tmp_path, "tickets/2026-09.csv", "ticket_id,account_id,opened_at\nT1,A1,2026-09-03\n")
    write(
        tmp_path,
        "tickets/2026-10.csv",
        "ticket_id,account_id,opened_at\nT2,A1,2026-10-03\nT1,A1,2026-10-04\n",
    )
    loaded = load(tmp_path)
    assert sorted((t["ticket_id"], t["opened_at"].day) for t in rows(loaded, "tickets")) == [
        ("T1", 3),
        ("T2", 3),
    ]
    entry = only(report(loaded))
    assert (entry["file"], entry["row"]) == ("tickets/2026-10.csv", 3)
    assert "of tickets/2026-09.csv" in entry["reason"]


def test_parquet_timestamps_with_strings_are_parsed(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-01-01")
    pq.write_table(
        pa.table({"account_id": ["A1", "A1"], "timestamp": ["2026-10-01 08:00:00", "later"],
                  "event": ["login", "login"], "quantity": pa.array([2, 3], pa.int16())}),
        tmp_path / "usage_events.parquet",
    )  # fmt: skip
    loaded = load(tmp_path)
    [event] = rows(loaded, "usage_events")
    assert event["timestamp"] == dt.datetime(2026, 10, 1, 8) and event["quantity"] == 2.0
    assert only(report(loaded))["field"] == "timestamp"


# --- discovery errors ----------------------------------------------------------------


def test_missing_accounts_is_a_data_error(tmp_path: Path) -> None:
    write(tmp_path, "usage_events.csv", "account_id,timestamp,event\n")
    with pytest.raises(DataError) as err:
        load(tmp_path)
    text = str(err.value)
    assert str(tmp_path) in text
    assert "accounts.csv" in text and "accounts.parquet" in text and "accounts/" in text


def test_missing_folder_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load(tmp_path / "nope")


def test_a_table_given_twice_is_a_data_error(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-01-01")
    pq.write_table(pa.table({"account_id": ["A1"]}), tmp_path / "accounts.parquet")
    with pytest.raises(DataError, match=r"more than once \(accounts.csv, accounts.parquet\)"):
        load(tmp_path)


def test_missing_required_column_names_the_column_and_what_is_there(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,2025-01-01", header="account_id,name,contract_start")
    with pytest.raises(DataError) as err:
        load(tmp_path)
    text = str(err.value)
    assert "arr" in text and "accounts.csv" in text and "account_id, name, contract_start" in text


def test_mapping_file_glob_and_no_match(tmp_path: Path) -> None:
    write(tmp_path, "exports/crm-2026-10.csv", ACCOUNTS_HEADER + "\nA1,Acme,5,2025-01-01\n")
    mapping = Mapping.model_validate({"tables": {"accounts": {"file": "exports/crm-*.csv"}}})
    loaded = load(tmp_path, mapping)
    assert rows(loaded, "accounts")[0]["account_id"] == "A1"
    bad = Mapping.model_validate({"tables": {"accounts": {"file": "exports/erp-*.csv"}}})
    with pytest.raises(
        MappingFileError, match=r"tables\.accounts\.file: found 'exports/erp-\*\.csv'"
    ):
        load(tmp_path, bad)


def test_empty_table_file_loads_empty(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,5,2025-01-01")
    write(tmp_path, "tickets.csv", "ticket_id,account_id,opened_at\n")
    loaded = load(tmp_path)
    assert rows(loaded, "tickets") == []
    assert loaded.counts["tickets"] == 0
    assert "tickets" not in loaded.missing


def test_semicolon_delimiter_and_latin1(tmp_path: Path) -> None:
    (tmp_path / "accounts.csv").write_bytes(
        "account_id;name;arr;contract_start\nA1;Société;5,0;2025-01-01\n".encode("latin-1")
    )
    mapping = Mapping.model_validate(
        {"tables": {"accounts": {"delimiter": ";", "encoding": "latin-1"}}}
    )
    loaded = load(tmp_path, mapping)
    # A decimal comma is not a number: rejected and reported, not guessed.
    assert rows(loaded, "accounts") == []
    assert only(report(loaded))["value"] == "5,0"
    with pytest.raises(DataError, match="encoding"):
        load(tmp_path)


def test_progress_messages(tmp_path: Path) -> None:
    accounts_csv(tmp_path, "A1,Acme,-5,2025-01-01")
    seen: list[str] = []
    load_folder(ibis.duckdb.connect(), tmp_path, mapping=None, as_of=AS_OF, progress=seen.append)
    assert seen[0] == "reading accounts from accounts.csv"
    assert any("1 rejected" in m for m in seen)

"""The rejected-rows report: the CSV file, the summary and the reject-rate check."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import ibis
import pytest

from touchmodel.errors import DataError
from touchmodel.sources import LoadedData, load_folder
from touchmodel.sources.rejects import REPORT_COLUMNS

AS_OF = dt.date(2026, 11, 1)


def load(folder: Path) -> LoadedData:
    return load_folder(ibis.duckdb.connect(), folder, mapping=None, as_of=AS_OF)


def folder_with(tmp_path: Path, bad_accounts: int, good_accounts: int = 10) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    lines = ["account_id,name,arr,contract_start,employees"]
    lines += [f"G{i},Good {i},100,2025-01-01,5" for i in range(good_accounts)]
    lines += [f'B{i},"Bad, {i}",-1,2025-01-01,5' for i in range(bad_accounts)]
    lines += ["N1,Nulled,100,2025-01-01,several"]
    (data / "accounts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return data


def test_write_produces_the_documented_csv(tmp_path: Path) -> None:
    loaded = load(folder_with(tmp_path, bad_accounts=2))
    path = loaded.rejects.write(tmp_path / "out")
    assert path == tmp_path / "out" / "rejected_rows.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        lines = list(csv.DictReader(fh))
    assert tuple(lines[0]) == REPORT_COLUMNS
    assert [(r["row"], r["field"], r["action"]) for r in lines] == [
        ("12", "arr", "row rejected"),
        ("13", "arr", "row rejected"),
        ("14", "employees", "value set to null"),
    ]
    # The whole original record survives the CSV round trip, commas and all.
    assert json.loads(lines[0]["record"]) == {
        "account_id": "B0",
        "name": "Bad, 0",
        "arr": "-1",
        "contract_start": "2025-01-01",
        "employees": "5",
    }
    assert lines[0]["file"] == "accounts.csv"


def test_nothing_to_report_writes_no_file_and_removes_a_stale_one(tmp_path: Path) -> None:
    loaded = load(folder_with(tmp_path, bad_accounts=0, good_accounts=3))
    out = tmp_path / "out"
    out.mkdir()
    (out / "rejected_rows.csv").write_text("old run\n")
    # The one nulled value is a problem worth a report...
    assert loaded.rejects.write(out) is not None
    data = tmp_path / "clean"
    data.mkdir()
    (data / "accounts.csv").write_text("account_id,arr,contract_start\nA1,1,2025-01-01\n")
    clean = load(data)
    # ... a clean load has none, and no file is left behind.
    assert clean.rejects.write(out) is None
    assert not (out / "rejected_rows.csv").exists()


def test_summary_counts(tmp_path: Path) -> None:
    loaded = load(folder_with(tmp_path, bad_accounts=3))
    assert loaded.rejects.summary() == {
        "accounts": {"rows_read": 14, "rejected": 3, "values_nulled": 1}
    }
    assert loaded.counts == {"accounts": 14}


def test_check_rate_at_and_over_the_limit(tmp_path: Path) -> None:
    # 1 rejected out of 20 rows read = exactly 5%: allowed.
    loaded = load(folder_with(tmp_path, bad_accounts=1, good_accounts=18))
    loaded.rejects.check_rate(0.05)
    with pytest.raises(DataError):
        loaded.rejects.check_rate(0.04)


def test_check_rate_message_names_table_file_counts_limit_and_report(tmp_path: Path) -> None:
    loaded = load(folder_with(tmp_path, bad_accounts=3, good_accounts=7))
    with pytest.raises(DataError) as before_write:
        loaded.rejects.check_rate(0.05)
    assert "not written" in str(before_write.value)
    path = loaded.rejects.write(tmp_path / "out")
    with pytest.raises(DataError) as err:
        loaded.rejects.check_rate(0.05)
    text = str(err.value)
    for part in ("accounts", "accounts.csv", "3 of 11 rows", "27.3%", "limit 5.0%", str(path)):
        assert part in text, (part, text)


def test_nulled_values_do_not_count_against_the_rate(tmp_path: Path) -> None:
    loaded = load(folder_with(tmp_path, bad_accounts=0, good_accounts=1))
    assert loaded.rejects.summary()["accounts"]["values_nulled"] == 1
    loaded.rejects.check_rate(0.0)

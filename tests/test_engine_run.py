"""Engine.run over a data folder on disk, through the real loader."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from touchmodel.demo.generator import generate
from touchmodel.engine import Engine


def test_a_column_the_source_lacks_makes_its_rules_inactive(tmp_path: Path) -> None:
    accounts = pa.table({
        "account_id": ["A", "B"],
        "arr": [80_000.0, 5_000.0],
        "contract_start": [dt.date(2024, 1, 1), dt.date(2024, 1, 1)],
    })  # fmt: skip
    pq.write_table(accounts, tmp_path / "accounts.parquet")
    events = pa.table({
        "account_id": ["A"],
        "timestamp": [dt.datetime(2026, 10, 30, 12)],
        "event": ["report.created"],
    })  # fmt: skip
    pq.write_table(events, tmp_path / "usage_events.parquet")
    result = Engine.from_spec("standard").run(tmp_path, as_of=dt.date(2026, 11, 1))
    inactive = {r.id: r.reason for r in result.inactive}
    # No csm column at all: "nobody owns it" is unknown, so the rule must not fire.
    assert inactive["value.dedicated_csm"] == "needs has_csm: column 'accounts.csm' is missing"
    assert inactive["expansion.plan_capacity"] == (
        "needs plan_utilization: column 'accounts.plan_limit' is missing"
    )
    assert "value.dedicated_csm" not in "".join(result.decisions["triggers"].to_pylist())
    # A column with a contract default (strategic: false) is not "missing".
    assert not any("strategic" in r for r in inactive.values())


def test_an_empty_csm_column_is_data_and_the_rule_fires(tmp_path: Path) -> None:
    accounts = pa.table({
        "account_id": ["A"],
        "arr": [80_000.0],
        "contract_start": [dt.date(2024, 1, 1)],
        "csm": pa.array([None], type=pa.string()),
    })  # fmt: skip
    pq.write_table(accounts, tmp_path / "accounts.parquet")
    result = Engine.from_spec("standard").run(tmp_path, as_of=dt.date(2026, 11, 1))
    assert "value.dedicated_csm" in result.decisions["triggers"][0].as_py()


def test_rows_of_a_rejected_account_say_so_instead_of_unknown(tmp_path: Path) -> None:
    import csv

    (tmp_path / "accounts.csv").write_text(
        "account_id,arr,contract_start\nA,1000,2024-01-01\nB,-5,2024-01-01\n"
    )
    (tmp_path / "usage_events.csv").write_text(
        "account_id,timestamp,event\nA,2026-10-30T10:00:00,report.created\n"
        "B,2026-10-30T10:00:00,report.created\nZ,2026-10-30T10:00:00,report.created\n"
    )
    out = tmp_path / "out"
    Engine.from_spec("standard").run(
        tmp_path, as_of=dt.date(2026, 11, 1), out=out, max_reject_rate=1.0
    )
    with (out / "rejected_rows.csv").open() as f:
        reasons = {(r["file"], r["row"]): r["reason"] for r in csv.DictReader(f)}
    assert reasons[("accounts.csv", "3")] == "arr is below the minimum 0"
    assert reasons[("usage_events.csv", "3")].startswith(
        "account 'B' was rejected in the accounts table"
    )
    assert reasons[("usage_events.csv", "4")] == "unknown account 'Z'"


def test_health_rules_are_inactive_when_no_measure_has_its_input(tmp_path: Path) -> None:
    accounts = pa.table({
        "account_id": ["A"],
        "arr": [8_000.0],
        "contract_start": [dt.date(2024, 1, 1)],
    })  # fmt: skip
    pq.write_table(accounts, tmp_path / "accounts.parquet")
    result = Engine.from_spec("standard").run(tmp_path, as_of=dt.date(2026, 11, 1))
    inactive = {r.id: r.reason for r in result.inactive}
    assert inactive["risk.health_low"].startswith(
        "needs health_score: no health measure has its input"
    )
    assert {f"health.{m}" for m in ("usage_trend", "sentiment", "billing")} <= set(inactive)


def _decide_ids(tmp_path: Path, collation: str | None) -> list[str]:
    from touchmodel.sources.loader import load_folder

    ids = ["b2", "B1", "a3", "A4", "_5"]
    pq.write_table(
        pa.table({
            "account_id": ids,
            "arr": [1000.0] * len(ids),
            "contract_start": [dt.date(2024, 1, 1)] * len(ids),
        }),
        tmp_path / "accounts.parquet",
    )  # fmt: skip
    con = Engine.connect()
    if collation is not None:
        con.raw_sql(f"SET default_collation = '{collation}'")
    loaded = load_folder(con, tmp_path, mapping=None, as_of=dt.date(2026, 11, 1))
    decided = Engine.from_spec("standard").decide(loaded.tables, dt.date(2026, 11, 1))
    assert decided.accounts["account_id"].to_pylist() == decided.decisions["account_id"].to_pylist()
    return decided.decisions["account_id"].to_pylist()


def test_decisions_are_in_byte_order_of_account_id(tmp_path: Path) -> None:
    assert _decide_ids(tmp_path, None) == ["A4", "B1", "_5", "a3", "b2"]


def test_a_backend_collation_does_not_change_the_order(tmp_path: Path) -> None:
    # The backend sorts; with a case-insensitive collation its order differs
    # from the byte order of the contract, and the engine re-sorts.
    assert _decide_ids(tmp_path, "nocase") == ["A4", "B1", "_5", "a3", "b2"]


def test_duckdb_keeps_account_order_without_sorting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Accounts shuffled in their file: the loader stores them in account
    # order, and the decision query (one row group, joins probed by the
    # accounts) returns them so; no sort of the fetched rows is needed.
    from touchmodel import engine as engine_module

    folder = tmp_path / "data"
    generate(folder, accounts=300, as_of=dt.date(2026, 11, 1), seed=3)
    accounts = pq.read_table(folder / "accounts.parquet")
    order = list(range(accounts.num_rows))
    random.Random(5).shuffle(order)
    pq.write_table(accounts.take(order), folder / "accounts.parquet")
    sorts: list[int] = []
    real = engine_module._sort_by_account
    monkeypatch.setattr(
        engine_module, "_sort_by_account", lambda t: sorts.append(t.num_rows) or real(t)
    )
    result = Engine.from_spec("standard").run(folder, as_of=dt.date(2026, 11, 1))
    ids = result.decisions["account_id"].to_pylist()
    assert ids == sorted(ids) and len(ids) > 200
    assert sorts == []


def test_a_run_gives_the_frozen_objects_back_to_the_collector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gc

    from touchmodel import engine as engine_module

    folder = tmp_path / "data"
    generate(folder, accounts=30, as_of=dt.date(2026, 11, 1), seed=3)
    during: list[int] = []

    def spy(self: Engine, *args: object, **kwargs: object) -> object:
        during.append(gc.get_freeze_count())
        raise RuntimeError("stop")

    monkeypatch.setattr(engine_module.Engine, "_decide_loaded", spy)
    before = gc.get_freeze_count()
    with pytest.raises(RuntimeError, match="stop"):
        Engine.from_spec("standard").run(folder, as_of=dt.date(2026, 11, 1))
    assert during and during[0] > before
    assert gc.get_freeze_count() == before


def _three_accounts(tmp_path: Path) -> Path:
    pq.write_table(
        pa.table({
            "account_id": ["A", "B", "C"],
            "arr": [1000.0] * 3,
            "contract_start": [dt.date(2024, 1, 1)] * 3,
        }),
        tmp_path / "accounts.parquet",
    )  # fmt: skip
    return tmp_path


def test_a_missing_id_passed_to_decide_sorts_last(tmp_path: Path) -> None:
    # decide() takes any tables; an id the loader would reject must not
    # hide the disorder of the rows around it.
    from touchmodel.sources.loader import load_folder

    con = Engine.connect()
    loaded = load_folder(con, _three_accounts(tmp_path), mapping=None, as_of=dt.date(2026, 11, 1))
    accounts = loaded.tables["accounts"].to_pyarrow()
    ids = pa.array(["C", None, "A"], pa.string())
    accounts = accounts.set_column(accounts.schema.get_field_index("account_id"), "account_id", ids)
    tables = {**loaded.tables, "accounts": con.create_table("user_accounts", accounts)}
    decided = Engine.from_spec("standard").decide(tables, dt.date(2026, 11, 1))
    assert decided.decisions["account_id"].to_pylist() == ["A", "C", None]


def test_decide_leaves_the_users_disabled_optimizers_as_they_were(tmp_path: Path) -> None:
    from touchmodel.sources.loader import load_folder

    con = Engine.connect()
    con.raw_sql("SET disabled_optimizers = 'join_order'")
    other = con.con.cursor()  # the setting is global: every connection sees it
    loaded = load_folder(con, _three_accounts(tmp_path), mapping=None, as_of=dt.date(2026, 11, 1))
    Engine.from_spec("standard").decide(loaded.tables, dt.date(2026, 11, 1))
    for c in (con.con, other):
        setting = c.execute("SELECT current_setting('disabled_optimizers')").fetchall()
        assert setting == [("join_order",)]


def test_a_nan_arr_in_parquet_is_rejected_and_its_events_say_why(tmp_path: Path) -> None:
    # Parquet's min/max leave NaN out; DuckDB would take them as proof that
    # the value is finite and fold the check away (then NaN >= any band: 'high').
    ids = ["A", "B", "C"]
    pq.write_table(
        pa.table({
            "account_id": ids,
            "arr": [1000.0, float("nan"), 200000.0],
            "contract_start": [dt.date(2024, 1, 1)] * 3,
        }),
        tmp_path / "accounts.parquet",
    )  # fmt: skip
    pq.write_table(
        pa.table({
            "account_id": ids,
            "timestamp": [dt.datetime(2026, 10, 20, 12)] * 3,
            "event": ["login"] * 3,
        }),
        tmp_path / "usage_events.parquet",
    )  # fmt: skip
    result = Engine.from_spec("standard").run(
        tmp_path, as_of=dt.date(2026, 11, 1), out=tmp_path / "out", max_reject_rate=1.0
    )
    assert result.decisions["account_id"].to_pylist() == ["A", "C"]
    report = pacsv.read_csv(tmp_path / "out" / "rejected_rows.csv").to_pylist()
    reasons = {(r["file"], r["field"]): r["reason"] for r in report}
    assert reasons[("accounts.parquet", "arr")] == "not a finite number"
    assert "was rejected in the accounts table" in reasons[("usage_events.parquet", "account_id")]

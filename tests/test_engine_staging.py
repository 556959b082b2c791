"""The usage aggregates computed ahead on a second DuckDB connection (signals.staging).

A run must give the same decisions whether the usage part is staged or
inlined, restage when the checks change the usage table, stay inline where
a second connection cannot read the input, and never leave a query running.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import touchmodel.engine as engine_module
from touchmodel.demo.generator import generate
from touchmodel.engine import Engine
from touchmodel.errors import DataError
from touchmodel.signals.staging import StagedTable, stage

AS_OF = dt.date(2026, 11, 1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("staging") / "data"
    generate(folder, accounts=300, as_of=AS_OF, seed=3)
    return folder


class Spy:
    """Records every stage() call of the engine and what it returned."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, disabled: bool = False) -> None:
        self.calls: list[tuple[str, StagedTable | None]] = []

        def spying(con: Any, expr: Any, name: str) -> StagedTable | None:
            staged = None if disabled else stage(con, expr, name)
            self.calls.append((name, staged))
            return staged

        monkeypatch.setattr(engine_module, "stage", spying)

    def staged(self) -> list[StagedTable]:
        return [s for _name, s in self.calls if s is not None]


def _copy(demo: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    shutil.copytree(demo, folder)
    return folder


def _run(folder: Path, monkeypatch: pytest.MonkeyPatch, disabled: bool = False) -> Any:
    with monkeypatch.context() as m:
        spy = Spy(m, disabled)
        result = Engine.from_spec("standard").run(folder, as_of=AS_OF)
    return result, spy


def test_staged_and_inline_runs_decide_the_same(
    demo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staged, spy = _run(demo, monkeypatch)
    inline, off = _run(demo, monkeypatch, disabled=True)
    # Clean Parquet: one forecast, staged before accounts were even checked, and kept.
    assert [name for name, _ in spy.calls] == ["__tm_usage_part_1"]
    assert len(spy.staged()) == 1
    assert off.staged() == []
    assert staged.decisions.equals(inline.decisions)
    assert staged.accounts.equals(inline.accounts)
    assert staged.decisions.num_rows > 250
    assert any(t for t in staged.decisions["triggers"].to_pylist())


def test_checks_that_change_the_usage_table_restage_it(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copy(demo, tmp_path)
    part = folder / "usage_events" / "part-00000.parquet"
    schema = pq.read_schema(part)
    good = pq.read_table(part).slice(0, 1).to_pylist()[0]
    bad = [
        {**good, "account_id": "NOT-A-CUSTOMER"},  # unknown account: rejected
        {**good, "timestamp": None},  # no timestamp: rejected
    ]
    pq.write_table(pa.Table.from_pylist(bad, schema=schema), folder / "usage_events" / "z.parquet")

    staged, spy = _run(folder, monkeypatch)
    inline, _ = _run(folder, monkeypatch, disabled=True)
    names = [name for name, _ in spy.calls]
    assert names == ["__tm_usage_part_1", "__tm_usage_part_2"]
    first, _second = spy.staged()
    assert not first._thread.is_alive()  # the forecast's query was stopped or done
    # The decisions read the restaged part, built from the checked events.
    con = staged.tables["accounts"].get_backend()
    part = con.table("__tm_usage_part_2").to_pyarrow()
    assert part.num_rows > 250
    assert "NOT-A-CUSTOMER" not in part["account_id"].to_pylist()
    assert staged.rejects["usage_events"]["rejected"] == 2
    assert staged.decisions.equals(inline.decisions)
    assert staged.accounts.equals(inline.accounts)
    # The bad rows changed nothing: the same decisions as the clean data.
    clean, _ = _run(demo, monkeypatch)
    assert staged.decisions.equals(clean.decisions)


def test_csv_usage_stays_inline(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.csv as pacsv

    folder = _copy(demo, tmp_path)
    usage = pq.read_table(folder / "usage_events")
    shutil.rmtree(folder / "usage_events")
    pacsv.write_csv(usage, folder / "usage_events.csv")

    result, spy = _run(folder, monkeypatch)
    # No forecast for CSV; the checked table is read from an Arrow table that
    # only the run's own connection sees, so stage() declines.
    assert [(name, s) for name, s in spy.calls] == [("__tm_usage_part_1", None)]
    parquet, _ = _run(demo, monkeypatch)
    assert result.decisions.num_rows == parquet.decisions.num_rows
    assert result.decisions["triggers"].equals(parquet.decisions["triggers"])


def test_a_run_that_fails_after_staging_stops_the_background_query(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _copy(demo, tmp_path)
    tickets = pq.read_table(folder / "tickets.parquet")
    ids = pa.array(["NOBODY"] * tickets.num_rows)
    pq.write_table(
        tickets.set_column(tickets.schema.get_field_index("account_id"), "account_id", ids),
        folder / "tickets.parquet",
    )

    with monkeypatch.context() as m:
        spy = Spy(m)
        with pytest.raises(DataError, match="too many rejected rows"):
            Engine.from_spec("standard").run(folder, as_of=AS_OF)
    assert len(spy.staged()) == 1
    assert not spy.staged()[0]._thread.is_alive()


def test_close_interrupts_a_long_query_and_wait_raises_its_error() -> None:
    con = ibis.duckdb.connect()
    con.raw_sql("CREATE VIEW big AS SELECT range AS x FROM range(20000000000)")
    slow = con.table("big").aggregate(total=ibis._.x.sum())
    staged = stage(con, slow, "slow_part")
    assert staged is not None
    time.sleep(0.2)
    started = time.perf_counter()
    staged.close()
    assert time.perf_counter() - started < 5
    assert not staged._thread.is_alive()

    con.raw_sql("CREATE VIEW bad AS SELECT 'x' AS v")
    failing = con.table("bad").select(n=ibis._.v.cast("int64"))
    broken = stage(con, failing, "broken_part")
    assert broken is not None
    with pytest.raises(Exception, match="Conversion Error"):
        broken.wait()


def test_stage_declines_what_only_the_connection_itself_can_see() -> None:
    con = ibis.duckdb.connect()
    con.raw_sql("CREATE TEMP VIEW mine AS SELECT 1 AS x")
    assert stage(con, con.table("mine"), "part") is None
    # ... and leaves no table behind.
    tables = con.con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    assert ("part",) not in tables


def test_loader_objects_are_visible_to_a_second_connection_only_in_memory(
    demo: Path, tmp_path: Path
) -> None:
    from touchmodel.sources.loader import load_folder

    memory = ibis.duckdb.connect()
    load_folder(memory, demo, mapping=None, as_of=AS_OF)
    names = {
        r[0]
        for r in memory.con.cursor().execute("SELECT table_name FROM duckdb_tables()").fetchall()
    }
    assert any(n.startswith("__tm_accounts_") for n in names)

    on_disk = ibis.duckdb.connect(str(tmp_path / "analytics.duckdb"))
    load_folder(on_disk, demo, mapping=None, as_of=AS_OF)
    # Nothing written into the user's database file: temp objects only.
    assert on_disk.con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE NOT temporary"
    ).fetchall() == [(0,)]
    assert on_disk.con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE NOT temporary AND NOT internal"
    ).fetchall() == [(0,)]

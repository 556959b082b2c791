"""The same pipeline gives the same decisions on DuckDB and on PySpark.

Every trigger's positive case from test_triggers becomes one account, so the
comparison covers every rule, override and route in one run per backend.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ibis
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import AS_OF, make_table, steady_usage
from tests.test_triggers import CASES
from touchmodel.engine import Engine

pyspark = pytest.importorskip("pyspark", reason="pyspark is part of the dev extras")

# py4j leaves its gateway sockets to the garbage collector; that is its
# design, not a leak of ours, so only this module tolerates it.
pytestmark = [
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]


def _workspace() -> dict[str, list[dict[str, Any]]]:
    """One account per trigger case, each with its own rows."""
    tables: dict[str, list[dict[str, Any]]] = {"accounts": []}
    for i, (trigger, (positive, _)) in enumerate(sorted(CASES.items())):
        acc_id = f"T{i:02d}-{trigger}"
        account = {**positive.get("account", {}), "account_id": acc_id}
        if i % 2:  # half the accounts use the default renewal date (next anniversary)
            account.setdefault("renewal_date", None)
            account["contract_start"] = account.get("contract_start", AS_OF) - dt.timedelta(
                days=400 + i
            )
        tables["accounts"].append(account)
        case_tables = {k: v for k, v in positive.items() if k != "account"}
        case_tables.setdefault("usage_events", steady_usage())
        for name, rows in case_tables.items():
            for j, r in enumerate(rows):
                keyed = {**r, "account_id": acc_id}
                for key in ("ticket_id", "invoice_id", "contact_id"):
                    if key in keyed:
                        keyed[key] = f"{acc_id}-{key}-{j}"
                tables.setdefault(name, []).append(keyed)
    return tables


@pytest.fixture(scope="module")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from pyspark.sql import SparkSession

    warehouse = tmp_path_factory.mktemp("spark-warehouse")
    session = (
        SparkSession.builder.master("local[2]")
        .appName("touchmodel-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.warehouse.dir", str(warehouse))
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _normalize(table: pa.Table) -> list[dict[str, Any]]:
    rows = table.sort_by("account_id").to_pylist()
    for r in rows:
        r["as_of"] = str(r["as_of"])
        r["health_score"] = None if r["health_score"] is None else round(r["health_score"], 1)
    return rows


def test_pyspark_matches_duckdb(spark: Any, tmp_path: Path) -> None:
    engine = Engine.from_spec("standard")
    raw = {name: make_table(name, rows) for name, rows in _workspace().items()}
    duck = engine.decide(raw, AS_OF)

    con = ibis.pyspark.connect(spark)
    local = ibis.duckdb.connect()
    on_spark = {}
    for name, expr in raw.items():
        spark.createDataFrame(local.to_pyarrow(expr)).createOrReplaceTempView(f"tm_{name}")
        on_spark[name] = con.table(f"tm_{name}")
    sparked = engine.decide(on_spark, AS_OF)

    assert duck.decisions.num_rows == len(CASES)
    assert _normalize(sparked.decisions) == _normalize(duck.decisions)
    # Sanity: each account fired the trigger it was built for, on both backends.
    for r in _normalize(sparked.decisions):
        assert r["account_id"].split("-", 1)[1] in r["triggers"].split("; ")


def test_run_with_engine_spark_writes_the_files_of_a_duckdb_run(spark: Any, tmp_path: Path) -> None:
    """`touchmodel run --engine spark` on demo data: the same decision files and report, byte for byte."""
    from typer.testing import CliRunner

    from touchmodel.cli.app import app
    from touchmodel.demo.generator import generate

    generate(tmp_path / "data", accounts=150, as_of=AS_OF, seed=5)
    mapping = tmp_path / "mapping.yaml"
    # One NPS score out of range per file: a non-empty rejected-rows report on both engines.
    mapping.write_text(
        "tables:\n  nps_responses:\n    columns:\n"
        '      score: {expr: "11 if row_number() == 3 else score"}\n'
    )
    runner = CliRunner()
    outs = {}
    for engine in ("duckdb", "spark"):
        outs[engine] = tmp_path / f"out-{engine}"
        result = runner.invoke(app, [
            "run", "--data", str(tmp_path / "data"), "--mapping", str(mapping), "--as-of", AS_OF.isoformat(),
            "--out", str(outs[engine]), "--no-state", "--engine", engine,
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
    duck, sparked = outs["duckdb"], outs["spark"]
    for name in ("decisions.csv", "rejected_rows.csv"):
        assert (sparked / name).read_bytes() == (duck / name).read_bytes(), name
    assert "score" in (duck / "rejected_rows.csv").read_text()
    decisions = pq.read_table(duck / "decisions.parquet")
    assert decisions.num_rows > 100
    assert pq.read_table(sparked / "decisions.parquet").equals(decisions)

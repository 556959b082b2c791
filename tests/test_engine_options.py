"""Choosing the engine: --engine / --spark-master / --spark-staging and a workspace's engine:.

The Spark run itself is tested in test_backends.py (it needs the JVM).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from touchmodel.cli.app import app
from touchmodel.engine import Engine
from touchmodel.errors import TouchmodelError
from touchmodel.ops.daily import run_day
from touchmodel.spark import SparkOptions, engine_options
from touchmodel.workspace import WORKSPACE_FILE, init_workspace, load_workspace


def test_flags_override_the_workspace_and_duckdb_is_the_default() -> None:
    assert engine_options(None) is None
    assert engine_options("duckdb") is None
    assert engine_options("spark") == SparkOptions()
    ws = ("spark", "spark://head:7077", "/mnt/shared")
    assert engine_options(None, defaults=ws) == SparkOptions(
        "spark://head:7077", Path("/mnt/shared")
    )
    assert engine_options(None, "local[2]", Path("/tmp/x"), defaults=ws) == SparkOptions(
        "local[2]", Path("/tmp/x")
    )
    assert engine_options("duckdb", defaults=ws) is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--engine", "flink"], "--engine: found 'flink'; expected one of: duckdb, spark"),
        (["--spark-master", "local[2]"], "--spark-master: only with --engine spark"),
        (
            ["--engine", "duckdb", "--spark-staging", "/tmp"],
            "--spark-staging: only with --engine spark",
        ),
    ],
)
def test_bad_engine_flags_are_one_line_errors(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "accounts.csv").write_text("account_id,arr,contract_start\nA,1,2024-01-01\n")
    result = CliRunner().invoke(
        app, ["run", "--data", str(tmp_path), "--no-state", "--out", str(tmp_path / "o"), *args]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_workspace_engine_reaches_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = init_workspace(tmp_path / "ws")
    config = yaml.safe_load((ws.root / WORKSPACE_FILE).read_text())
    config.update(engine="spark", spark_master="spark://head:7077")
    (ws.root / WORKSPACE_FILE).write_text(yaml.safe_dump(config))
    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    def fake_run(self: Engine, data: Path, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise Stop

    monkeypatch.setattr(Engine, "run", fake_run)
    with pytest.raises(Stop):
        run_day(load_workspace(ws.root), as_of=dt.date(2026, 11, 1))
    assert seen["spark"] == SparkOptions("spark://head:7077", None)
    with pytest.raises(Stop):
        run_day(
            load_workspace(ws.root), as_of=dt.date(2026, 11, 1), engine_flags=("duckdb", None, None)
        )
    assert seen["spark"] is None


def test_an_unknown_engine_in_the_workspace_is_refused(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    config = yaml.safe_load((ws.root / WORKSPACE_FILE).read_text())
    config["engine"] = "flink"
    (ws.root / WORKSPACE_FILE).write_text(yaml.safe_dump(config))
    with pytest.raises(TouchmodelError, match="engine"):
        load_workspace(ws.root)

"""The command line as a user runs it: demo, run, model show, model check."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from touchmodel.cli.app import app
from touchmodel.decide.decisions import DECISION_COLUMNS
from touchmodel.demo.generator import generate
from touchmodel.model.loader import PRESETS, load_model, model_from_dict

runner = CliRunner()
AS_OF = "2026-11-01"


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "data"
    generate(folder, accounts=400, as_of=dt.date(2026, 11, 1), seed=3)
    return folder


@pytest.mark.parametrize("preset", PRESETS)
def test_model_show_prints_a_complete_valid_file(preset: str) -> None:
    result = runner.invoke(app, ["model", "show", preset])
    assert result.exit_code == 0
    assert model_from_dict(yaml.safe_load(result.stdout), "stdout") == load_model(preset)


def test_model_check_ok_and_bad(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(runner.invoke(app, ["model", "show"]).stdout)
    ok = runner.invoke(app, ["model", "check", str(good)])
    assert ok.exit_code == 0 and "OK" in ok.stdout
    data = yaml.safe_load(good.read_text())
    data["health"]["measures"][0]["weight"] = 5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data))
    result = runner.invoke(app, ["model", "check", str(bad)])
    assert result.exit_code == 2
    assert "error:" in result.stderr and "weights sum to 80" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_run_writes_the_decision_files(demo_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["run", "--data", str(demo_data), "--as-of", AS_OF, "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    assert "Accounts and ARR per tier" in result.stdout
    assert "Triggers fired, by family and route" in result.stdout
    with (out / "decisions.csv").open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == DECISION_COLUMNS
        rows = list(reader)
    record = json.loads((out / "run.json").read_text())
    excluded = sum(record["excluded_accounts"].values())
    assert excluded > 0 and len(rows) + excluded == 400  # the demo has churned accounts
    assert {r["as_of"] for r in rows} == {AS_OF}
    table = pq.read_table(out / "decisions.parquet")
    assert tuple(table.column_names) == DECISION_COLUMNS
    triggers_type = table.schema.field("triggers").type
    assert pa.types.is_list(triggers_type) and pa.types.is_string(triggers_type.value_type)
    fired = [t for r in rows for t in r["triggers"].split("; ") if t]
    flat = [t for ts in table["triggers"].to_pylist() for t in ts]
    assert sorted(fired) == sorted(flat) and fired
    assert record["accounts"] == len(rows) and record["model"] == "standard"


def test_run_on_another_preset_and_a_model_file(demo_data: Path, tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["run", "-d", str(demo_data), "--as-of", AS_OF, "-o", str(tmp_path), "-m", "hybrid"]
    )
    assert result.exit_code == 0, result.stderr
    tiers = set(pq.read_table(tmp_path / "decisions.parquet")["tier"].to_pylist())
    assert tiers <= {"self-service", "light", "medium", "high"} and len(tiers) == 4


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "--data", "/nonexistent/folder", "--as-of", AS_OF], "/nonexistent/folder"),
        (["run", "--data", ".", "--as-of", "01/11/2026"], "--as-of: value '01/11/2026'"),
        (["run", "--data", ".", "--model", "nope.yaml"], "nope.yaml"),
        (["model", "show", "fancy"], "preset: value 'fancy'"),
    ],
)
def test_user_errors_are_one_message_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_generates_runs_and_summarizes(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["demo", "--accounts", "300", "--dir", str(tmp_path), "--as-of", AS_OF]
    )
    assert result.exit_code == 0, result.stderr
    assert "Generated demo data" in result.stdout and "Accounts and ARR per tier" in result.stdout
    assert (tmp_path / "out" / "decisions.csv").exists()
    assert (tmp_path / "data" / "accounts.parquet").exists()


def test_run_output_is_identical_when_repeated(demo_data: Path, tmp_path: Path) -> None:
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = runner.invoke(app, ["run", "-d", str(demo_data), "--as-of", AS_OF, "-o", str(out)])
        assert result.exit_code == 0, result.stderr
        outs.append((out / "decisions.csv").read_bytes())
    assert outs[0] == outs[1]
    ids = [line.split(b",")[0] for line in outs[0].splitlines()[1:]]
    assert ids == sorted(ids)


def test_model_signals_lists_every_catalogued_name() -> None:
    from touchmodel.signals.catalog import BUILTIN

    result = runner.invoke(app, ["model", "signals"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for info in BUILTIN:
        assert info.name in result.stdout
    assert "fired('risk.*')" in result.stdout and "days_between" in result.stdout

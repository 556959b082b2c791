"""End to end: demo data on disk -> engine -> planning commands, as a new user runs them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from touchmodel.cli import planning
from touchmodel.demo.generator import generate
from touchmodel.engine import Engine

AS_OF = dt.date(2026, 11, 1)

app = typer.Typer()
planning.register(app)


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "data"
    generate(folder, accounts=400, as_of=AS_OF, seed=7)
    return folder


def invoke(*args: str) -> str:
    res = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    return res.output


def customers(folder: Path) -> int:
    """Accounts that are customers on AS_OF, as the engine counts them."""
    return Engine.from_spec("standard").run(folder, as_of=AS_OF).decisions.num_rows


def test_plan_on_demo_data_with_the_example_team(demo_data: Path) -> None:
    out = json.loads(
        invoke(
            "plan",
            "--data",
            str(demo_data),
            "--team",
            "example",
            "--growth",
            "40%",
            "--as-of",
            AS_OF.isoformat(),
            "--json",
        )
    )
    today, in_12, in_24 = out["plans"]
    n = customers(demo_data)  # churned accounts are not planned for
    assert today["accounts"] == n and in_12["accounts"] == pytest.approx(n * 1.4, abs=4)
    assert sum(t["accounts"] for t in today["tiers"]) == n
    assert today["team_fte"] == 13 and today["feasibility"]["required"] > 0
    assert in_24["csms_target"] > in_12["csms_target"] > today["csms_target"]


def test_select_and_advise_on_demo_data(demo_data: Path) -> None:
    text = invoke("select", "--data", str(demo_data), "--as-of", AS_OF.isoformat(),
                  "--complexity", "medium", "--margin", "78%", "--positioning", "standard")  # fmt: skip
    assert f"From the data: acv: median ARR of {customers(demo_data)} accounts" in text
    assert "Recommended:" in text and "ACV zones" in text
    adv = json.loads(
        invoke(
            "advise",
            "--data",
            str(demo_data),
            "--team",
            "example",
            "--as-of",
            AS_OF.isoformat(),
            "--json",
        )
    )
    assert adv["stage"]["name"] == "early scale" and adv["phase"]["name"] == "mature"

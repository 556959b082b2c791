"""`plan`, `select` and `advise` inside a workspace: its data, team file and model, as `run`."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from touchmodel.cli.app import app
from touchmodel.model.loader import preset_yaml
from touchmodel.workspace import init_workspace

runner = CliRunner()
AS_OF = "2026-11-01"


@pytest.fixture()
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A workspace with its own model name, a two-CSM team and six accounts; cwd is inside it."""
    ws = init_workspace(tmp_path / "acme").root
    (ws / "model.yaml").write_text(
        preset_yaml("standard").replace("name: standard", "name: acme-model", 1)
    )
    (ws / "team.yaml").write_text(
        "name: Acme CS\ncsms:\n  - {name: Ann, tiers: [high, medium]}\n"
        "  - {name: Bob, tiers: [low]}\n"
    )
    with (ws / "data" / "accounts.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "name", "arr", "contract_start"])
        for i, arr in enumerate([150_000, 150_000, 50_000, 15_000, 3_000, 3_000]):
            w.writerow([f"A{i}", f"Co {i}", arr, "2025-01-01"])
    (ws / "runs").mkdir(exist_ok=True)
    monkeypatch.chdir(ws / "runs")  # a sub-folder: the workspace is found upwards, as for run
    monkeypatch.delenv("TOUCHMODEL_WORKSPACE", raising=False)
    return ws


def invoke(*args: str) -> dict:  # type: ignore[type-arg]
    res = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_plan_reads_the_workspace_data_team_and_model(workspace: Path) -> None:
    out = invoke("plan", "--as-of", AS_OF, "--json")
    assert out["model"] == "acme-model"
    assert out["team"] == "Acme CS"
    today = out["plans"][0]
    # Six accounts from the workspace's data folder, in the model's tiers.
    assert sum(t["accounts"] for t in today["tiers"]) == 6


def test_advise_reads_the_workspace_data_and_team(workspace: Path) -> None:
    out = invoke("advise", "--as-of", AS_OF, "--json")
    # The team file's two CSMs make the team size; without it the advice assumes none.
    assert out["phase"]["basis"].startswith("2 CS people")
    assert out["stage"]["basis"].startswith("6 customers")


def test_select_reads_acv_from_the_workspace_data(workspace: Path) -> None:
    out = invoke("select", "--as-of", AS_OF, "--no-ask", "--json", "--complexity", "medium",
                 "--segment", "smb", "--margin", "80%", "--positioning", "standard")  # fmt: skip
    # The ACV comes from the six accounts of the workspace's data folder (median $32,500).
    assert any("median ARR of 6 accounts = $32,500" in note for note in out["from_data"]), out[
        "from_data"
    ]


def test_flags_still_win_over_the_workspace(workspace: Path, tmp_path: Path) -> None:
    out = invoke("plan", "--as-of", AS_OF, "--json", "--model", "standard", "--team", "example")
    assert out["model"] == "standard" and out["team"] == "Demo customer success team"


def test_outside_a_workspace_plan_without_data_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TOUCHMODEL_WORKSPACE", raising=False)
    res = runner.invoke(app, ["plan"])
    assert res.exit_code == 2
    assert "--data" in res.output and "workspace" in res.output

"""The planning commands through typer's test runner, on an app of our own."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import typer
from typer.testing import CliRunner

from tests.conftest import decide
from touchmodel.cli import planning
from touchmodel.engine import Decided
from touchmodel.model.loader import load_model
from touchmodel.model.schema import TouchModel

app = typer.Typer()
planning.register(app)
runner = CliRunner()

EXAMPLES = Path(planning.__file__).parents[1] / "examples"


@pytest.fixture()
def decided() -> Decided:
    """A small base decided by the real engine (in memory): 6 high, 3 medium, 2 low, 4 digital."""
    rows: list[dict[str, Any]] = []
    for i, arr in enumerate([150_000] * 6 + [50_000] * 3 + [15_000] * 2 + [3_000] * 4):
        rows.append({"account_id": f"A{i:02d}", "arr": float(arr), "employees": 50 + 300 * (i % 5)})
    return decide(rows)


@pytest.fixture(autouse=True)
def fake_engine_run(monkeypatch: pytest.MonkeyPatch, decided: Decided) -> list[tuple[Any, ...]]:
    calls: list[tuple[Any, ...]] = []

    def load(
        spec: str, data: Path, mapping: Path | None, as_of: dt.date
    ) -> tuple[TouchModel, Decided]:
        calls.append((spec, data, mapping, as_of))
        return load_model(spec), decided

    monkeypatch.setattr(planning, "load_run", load)
    return calls


def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
    return runner.invoke(app, list(args), input=input, env={"COLUMNS": "200"})


def test_plan_prints_tiers_triggers_feasibility_and_projection(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text("csms: [{tiers: [high]}, {tiers: [medium, low]}]")
    res = run(
        "plan", "--data", "x", "--team", str(team), "--growth", "40%", "--as-of", "2026-11-01"
    )
    assert res.exit_code == 0, res.output
    out = res.output
    assert "Headcount today: 15 accounts, $1.1M ARR" in out
    # high: 6 accounts at 1:25 / 1:20 / 1:15; 1 CSM on the team.
    assert (
        "│ high    │ high   │        6 │ $900,000 │ 1:15–25      │         0.2 │    0.3 │  0.4 │"
        in out
    )
    assert "CS cost $48,340 = 4.4% of revenue: under-investment: below 5%" in out
    assert "meets the 10× rule" in out and "Gross margin after CS: 75.6%" in out
    assert "Hiring triggers" in out and "│ 12 months │       21 │" in out and "24 months" in out
    assert "Feasible: the model needs 0.4 CSMs at target ratios; the team has 2." in out


def test_plan_flags_infeasible_model_with_smallest_fixes(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text("csms: []")
    res = run("plan", "--data", "x", "--team", str(team))
    assert res.exit_code == 0, res.output
    assert "INFEASIBLE" in res.output and "hire 1 more CSM(s)" in res.output


def test_plan_json_is_machine_readable(tmp_path: Path, fake_engine_run: list[Any]) -> None:
    res = run("plan", "--data", "x", "--growth", "0.4", "--margin", "75%", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [p["label"] for p in data["plans"]] == ["today", "12 months", "24 months"]
    assert data["plans"][0]["accounts"] == 15 and data["plans"][1]["accounts"] == 21
    assert data["growth"] == pytest.approx(0.4) and data["plans"][0]["gross_margin"] == 0.75
    assert data["plans"][0]["feasibility"] is None
    assert fake_engine_run[0][1] == Path("x")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--growth", "-150%"], "error: --growth: value '-150%' -- expected -100% or more"),
        (["--margin", "1.2"], "error: --margin: value 1.2 -- expected a share from 0 to 1"),
        (["--as-of", "tomorrow"], "error: --as-of: value 'tomorrow'"),
    ],
)
def test_plan_bad_flags_are_one_line_errors(args: list[str], message: str) -> None:
    res = run("plan", "--data", "x", *args)
    assert res.exit_code == 2
    assert res.output.startswith(message) and res.output.count("\n") == 1
    assert "Traceback" not in res.output


def test_plan_team_naming_unknown_tier_is_one_line(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text("csms: [{tiers: [platinum]}]")
    res = run("plan", "--data", "x", "--team", str(team))
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert (
        "csms[0].tiers[0]: value 'platinum' -- expected a tier id of model 'standard'" in res.output
    )


def test_plan_with_shipped_example_team() -> None:
    res = run("plan", "--data", "x", "--team", str(EXAMPLES / "team.yaml"), "--json")
    assert res.exit_code == 0, res.output
    today = json.loads(res.output)["plans"][0]
    assert today["team_fte"] == 13 and today["gross_margin"] == 0.78


def _at_risk_run() -> Decided:
    """Three accounts with risk triggers (health scores as given), one without."""
    decisions = pa.table(
        {
            "account_id": ["A", "B", "C", "D"],
            "triggers": [
                "risk.usage_decline",
                "risk.ticket_spike; expansion.seat_growth",
                "risk.inactive",
                "",
            ],
            "routes": ["csm_immediate", "csm_outreach; inapp_upsell", "reengagement", ""],
            "health_score": [20.0, 30.0, 10.0, 90.0],
        }
    )
    accounts = pa.table(
        {
            "account_id": ["D", "C", "B", "A"],  # not the decisions' order
            "arr": [10_000.0, 50_000.0, 200_000.0, 100_000.0],
            "tier": ["digital", "medium", "high", "high"],
            "tier_level": ["tech", "medium", "high", "high"],
        }
    )
    return Decided(decisions=decisions, accounts=accounts, inactive=[], unavailable={})


def test_plan_says_what_one_more_csm_would_keep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(planning, "load_run", lambda spec, *_: (load_model(spec), _at_risk_run()))
    team = tmp_path / "team.yaml"
    # One CSM with 60 minutes of outreach a week; one more CSM brings 60 more.
    team.write_text(
        "csms: [{tiers: [high]}]\n"
        "planning: {allocation: {hours_per_week: 4, outreach_share: 0.25}}\n"
    )
    res = run("plan", "--data", "x", "--team", str(team))
    assert res.exit_code == 0, res.output
    # B (0.7 x 200000 x 0.25 = 35000, 45 min) fits; A (0.8 x 100000 x 0.35 = 28000,
    # 60 min) does not until one more CSM's 60 minutes come.
    assert "Expected ARR kept by the work staffed: $37,250" in res.output  # B + C (automated)
    assert "1 items over capacity would keep $28,000 more" in res.output
    assert "One more CSM (1.0 h of outreach a week) would keep $28,000 more" in res.output
    assert "(100 - health score) / 100" in res.output  # no curve: the proxy is named
    res = run("plan", "--data", "x", "--team", str(team), "--json")
    staffing = json.loads(res.output)["at_risk_staffing"]
    assert staffing["one_more_csm"]["expected_arr_kept_per_week"] == 28000.0
    assert [i["account_id"] for i in staffing["top_items"]] == ["B", "A", "C"]
    assert [i["staffed"] for i in staffing["top_items"]] == [True, False, True]


def test_with_a_fitted_curve_the_plan_uses_its_probability_and_gives_a_yearly_figure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_ = _at_risk_run()
    # The curve's probabilities (what decisions carry when the model has one).
    curve = pa.array([0.1, 0.2, 0.3, 0.0])
    run_.decisions = run_.decisions.append_column("churn_probability", curve)
    monkeypatch.setattr(planning, "load_run", lambda spec, *_: (load_model(spec), run_))
    team = tmp_path / "team.yaml"
    team.write_text(
        "csms: [{tiers: [high]}]\n"
        "planning: {allocation: {hours_per_week: 4, outreach_share: 0.25}}\n"
    )
    res = run("plan", "--data", "x", "--team", str(team))
    assert res.exit_code == 0, res.output
    # A: 0.1 x 100000 x 0.35 = 3500 (60 min); B: 0.2 x 200000 x 0.25 = 10000 (45 min).
    assert "One more CSM (1.0 h of outreach a week) would keep $3,500 more" in res.output
    assert "$182,000 a year if every week's queue is like this one" in res.output
    assert "churn probability (fitted curve)" in res.output
    assert "not a forecast" not in res.output


def test_plan_without_a_team_has_no_capacity_to_compare() -> None:
    res = run("plan", "--data", "x")
    assert res.exit_code == 0, res.output
    assert "One more CSM" not in res.output


def test_economics_reproduces_the_enterprise_row() -> None:
    res = run("economics", "--acv", "120000", "--margin", "0.80", "--cs-share", "0.10",
              "--csm-cost", "150000", "--accounts-per-csm", "12")  # fmt: skip
    assert res.exit_code == 0, res.output
    for cell in ("$120,000", "80%", "$96,000", "$12,000", "$150,000 / 12", "$12,500",
                 "high touch supported"):  # fmt: skip
        assert cell in res.output


def test_economics_without_acv_prints_the_whole_worked_table() -> None:
    res = run("economics", "--json")
    rows = json.loads(res.output)
    assert [(r["case"], r["gross_profit"], r["cs_budget"], r["cost_per_account"], r["verdict"])
            for r in rows] == [
        ("enterprise", 96_000, 12_000, 12_500, "high touch supported"),
        ("mid-market", 17_500, 2_500, 2_400, "low touch works"),
        ("SMB", pytest.approx(1_950), pytest.approx(300), None, "no CSM ratio works: tech touch only"),
    ]  # fmt: skip
    text = run("economics").output
    assert "$1,950" in text and "$300" in text and "—" in text and "tech touch only" in text


def test_economics_smb_row_from_flags() -> None:
    res = run("economics", "--acv", "3000", "--margin", "0.65", "--cs-share", "0.10")
    assert "no CSM ratio works: tech touch only" in res.output and "$1,950" in res.output


def test_economics_errors() -> None:
    res = run("economics", "--acv", "1000", "--margin", "1.5")
    assert res.exit_code == 2 and res.output.startswith("error: --margin: value 1.5")
    assert run("economics", "--acv", "1000").output.startswith("error: --margin: missing")


def test_select_from_flags_shows_scores_total_and_model() -> None:
    res = run("select", "--acv", "120000", "--complexity", "high", "--segment", "enterprise",
              "--margin", "80%", "--positioning", "premium", "--ratio", "1:10")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Recommended: high touch" in res.output and "total" in res.output and "30" in res.output


def test_select_from_answers_file_with_data_shows_zones() -> None:
    res = run("select", "--answers", str(EXAMPLES / "select-answers.yaml"), "--data", "x")
    assert res.exit_code == 0, res.output
    assert "ACV zones" in res.output and "≥ 80%" in res.output
    assert "Recommended: hybrid" in res.output  # 4 tech / 5 low / 6 high accounts


def test_select_json_and_flag_overrides_file() -> None:
    res = run("select", "--answers", str(EXAMPLES / "select-answers.yaml"), "--complexity", "low",
              "--score", "margin=2", "--json")  # fmt: skip
    sel = json.loads(res.output)["selection"]
    scores = {f["factor"]: f["score"] for f in sel["factors"]}
    assert scores["complexity"] == 1 and scores["margin"] == 2 and sel["total"] == 15
    assert sel["recommendation"] == "low touch"


def test_select_prompts_for_missing_answers_and_re_asks_bad_ones() -> None:
    res = run("select", "--ask", "--acv", "5000", "--segment", "smb", "--ratio", "1:500",
              input="huge\nhigh\n0.4\nvalue\n")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "Product complexity" in res.output and "expected one of high" in res.output
    # 1 + 5 + 1 + 1 + 1 + 1 = 10: the tech band, lifted to low touch by complexity.
    assert "Recommended: low touch" in res.output and "never pure tech touch" in res.output


def test_select_without_answers_and_no_terminal_is_one_line_error() -> None:
    res = run("select", "--no-ask", "--acv", "5000")
    assert res.exit_code == 2
    assert res.output.startswith("error: missing answer(s): complexity, segment, margin")


def test_select_bad_score_flag() -> None:
    res = run("select", "--score", "mood=3")
    assert res.exit_code == 2 and "--score: value 'mood=3'" in res.output


def test_advise_prints_phase_stage_mistakes_and_steps(tmp_path: Path) -> None:
    res = run("advise", "--data", "x", "--team", str(EXAMPLES / "team.yaml"))
    assert res.exit_code == 0, res.output
    assert "Organisation phase: mature" in res.output and "Customer stage: startup" in res.output
    assert "over-serving low-value accounts" in res.output and "Next steps" in res.output


def test_advise_json_without_team_uses_team_size() -> None:
    res = run("advise", "--data", "x", "--team-size", "2", "--json")
    data = json.loads(res.output)
    assert data["phase"]["name"] == "launch"
    assert {m["id"]: m["detected"] for m in data["mistakes"]}["ignoring_scale"] is None


def test_example_keyword_names_the_shipped_files() -> None:
    sel = json.loads(run("select", "--answers", "example", "--json").output)["selection"]
    # 3 + 3 + 3 + 5 + 3 + 3 = 20: exactly on the edge, so high touch (ties go human).
    assert (sel["total"], sel["recommendation"]) == (20, "high touch")
    today = json.loads(run("plan", "--data", "x", "--team", "example", "--json").output)["plans"][0]
    assert today["team_fte"] == 13

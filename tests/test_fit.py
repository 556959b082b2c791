"""Backtest and calibrate on a small demo base with planted churn, and their metrics."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from touchmodel.cli.app import app
from touchmodel.demo.history import generate_history
from touchmodel.engine import Engine
from touchmodel.fit.backtest import backtest
from touchmodel.fit.calibrate import calibrate
from touchmodel.fit.metrics import bootstrap_auc_interval, by_decile, flag_stats, risk_auc
from touchmodel.fit.replay import BacktestError, load_for_replay, month_dates, replay
from touchmodel.model.checks import check_model
from touchmodel.model.loader import model_from_dict

AS_OF = dt.date(2026, 11, 24)
DATES = [dt.date(2026, 3, 24), dt.date(2026, 5, 24), dt.date(2026, 7, 24)]


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("history") / "data"
    generate_history(folder, accounts=1500, as_of=AS_OF, months=9, seed=3)
    return folder


@pytest.fixture(scope="module")
def replayed(history: Path):  # type: ignore[no-untyped-def]
    engine = Engine.from_spec("standard")
    _, loaded = load_for_replay(history, None, AS_OF)
    return engine, loaded, replay(engine, loaded, DATES, 90)


def test_month_dates_keep_the_day_and_clamp_to_month_ends() -> None:
    assert month_dates(dt.date(2026, 1, 31), dt.date(2026, 4, 30)) == [
        dt.date(2026, 1, 31), dt.date(2026, 2, 28), dt.date(2026, 3, 31), dt.date(2026, 4, 30),
    ]  # fmt: skip
    assert month_dates(dt.date(2026, 1, 1), dt.date(2026, 1, 20), "7d") == [
        dt.date(2026, 1, 1), dt.date(2026, 1, 8), dt.date(2026, 1, 15),
    ]  # fmt: skip
    with pytest.raises(BacktestError, match="--every"):
        month_dates(dt.date(2026, 1, 1), dt.date(2026, 2, 1), "fortnight")


def test_bootstrap_interval_brackets_the_auc() -> None:
    rng = np.random.default_rng(1)
    y = rng.random(4000) < 0.1
    risk = rng.normal(0, 1, 4000) + y * 0.8
    auc = risk_auc(risk, y)
    assert auc == pytest.approx(roc_auc_score(y, risk))
    lo, hi = bootstrap_auc_interval(risk, y)  # type: ignore[misc]
    assert lo < auc < hi and hi - lo < 0.1


def test_flag_stats_and_deciles() -> None:
    y = np.array([True, False, False, True, False, False, False, False, False, False])
    fired = np.array([True, True, False, False, False, False, False, False, False, False])
    s = flag_stats("x", fired, y)
    assert (s.fired, s.precision, s.recall, s.lift) == (2, 0.5, 0.5, 2.5)
    deciles = by_decile(np.arange(10, dtype=float), y)
    assert [b.churned for b in deciles][:2] == [0, 0] and deciles[-1].churned == 1


def test_replay_labels_churn_within_the_horizon(replayed) -> None:  # type: ignore[no-untyped-def]
    _, _, rep = replayed
    rows = rep.rows.to_pandas()
    rows["as_of"] = rows["as_of"].astype("datetime64[ns]")
    rows["churned_on"] = rows["churned_on"].astype("datetime64[ns]")
    assert set(rows["as_of"].dt.date) == set(DATES)
    churned = rows["churned_on"].notna()
    gap = (rows["churned_on"] - rows["as_of"]).dt.days
    expected = churned & (gap > 0) & (gap <= 90)
    assert (rows["label"] == expected).all()
    assert rows["label"].sum() > 20
    # Customers only: nobody churned on or before the date.
    assert not (churned & (gap <= 0)).any()


def test_default_health_score_predicts_the_planted_churn(replayed) -> None:  # type: ignore[no-untyped-def]
    engine, _, rep = replayed
    result = backtest(rep, [g.id for g in engine.model.health.grades])
    assert result.health_auc is not None and result.health_auc > 0.65
    rates = {b.name: b.rate for b in result.grades}
    assert rates["yellow"] > rates["green"]
    assert result.reference is not None and result.reference.model_auc is not None
    assert json.loads(json.dumps(result.to_dict()))["rows"] == rep.rows.num_rows


def test_dates_past_the_data_are_refused(replayed) -> None:  # type: ignore[no-untyped-def]
    engine, loaded, _ = replayed
    with pytest.raises(BacktestError, match="passes the newest data"):
        replay(engine, loaded, [AS_OF - dt.timedelta(days=30)], 90)


def test_calibrate_proposes_a_valid_readable_model(replayed) -> None:  # type: ignore[no-untyped-def]
    engine, loaded, rep = replayed
    prop = calibrate(rep, engine.model, max_measures=4, at_risk_share=0.1)
    model = model_from_dict(prop.model, "proposal")
    assert check_model(model) == []
    weights = [m["weight"] for m in prop.measures]
    assert 1 <= len(weights) <= 4 and sum(weights) == 100 and min(weights) > 0
    curve = model.health.churn_probability
    assert curve is not None and curve.horizon_days == 90
    probs = [p for _, p in curve.points]
    assert probs == sorted(probs, reverse=True)  # healthier, less likely to churn
    # The proposal decides, and carries a probability per account.
    decided = Engine(model).decide(loaded.tables, DATES[-1])
    assert "churn_probability" in decided.decisions.column_names


def test_backtest_command_prints_auc_and_writes_html(history: Path, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    res = CliRunner().invoke(
        app,
        ["backtest", "--data", str(history), "--from", "2026-05-24", "--to", "2026-07-24",
         "--every", "month", "--json", "--html", str(html)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [d["as_of"] for d in out["per_date"]] == ["2026-05-24", "2026-06-24", "2026-07-24"]
    assert 0.5 < out["health_auc"] < 1
    assert "<svg" in html.read_text() and "ROC curve" in html.read_text()


def test_whatif_reports_the_backtest_auc_of_both_models(history: Path) -> None:
    from touchmodel.fit.whatif import BACKTEST_LABEL, run_whatif

    # Sentiment alone: a measure most accounts have no value for.
    result = run_whatif(
        "standard",
        ["health.measures[usage_trend].weight=5", "health.measures[sentiment].weight=40"],
        data=history,
        as_of=AS_OF,
    )
    before, after = result.before[BACKTEST_LABEL], result.after[BACKTEST_LABEL]
    assert before is not None and after is not None
    assert 0.5 < before < 1 and after != before

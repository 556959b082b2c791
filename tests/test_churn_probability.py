"""The fitted churn curve: probability from the health score, ARR at risk, model checks."""

from __future__ import annotations

import pytest

from tests.conftest import decide, steady_usage
from touchmodel.decide.decisions import DECISION_COLUMNS, RISK_COLUMNS
from touchmodel.engine import Engine
from touchmodel.model.checks import check_model
from touchmodel.model.loader import load_model


def _engine(points: list[list[float]]) -> Engine:
    base = load_model("standard").model_dump(mode="json")
    base["health"]["churn_probability"] = {"horizon_days": 90, "points": points}
    model = type(load_model("standard")).model_validate(base)
    assert check_model(model) == []
    return Engine(model)


def test_probability_interpolates_between_points_and_is_flat_beyond() -> None:
    engine = _engine([[20.0, 0.5], [60.0, 0.1], [90.0, 0.02]])
    # Health 100 (steady usage, nothing wrong): beyond the last point.
    out = decide(
        [{"account_id": "A1", "arr": 40000.0}],
        engine,
        usage_events=steady_usage("A1"),
    )
    row = out.decisions.to_pylist()[0]
    assert tuple(out.decisions.column_names) == DECISION_COLUMNS + RISK_COLUMNS
    score = row["health_score"]
    expected = 0.02 if score >= 90 else 0.1 + (score - 60) * (0.02 - 0.1) / 30
    assert row["churn_probability"] == pytest.approx(expected, abs=1e-4)
    assert row["arr_at_risk"] == pytest.approx(row["churn_probability"] * 40000.0, abs=0.01)


def test_probability_on_a_segment() -> None:
    import ibis

    from touchmodel.decide.health import churn_probability
    from touchmodel.model.schema import ChurnCurve

    curve = ChurnCurve(horizon_days=90, points=[(20.0, 0.5), (60.0, 0.1)])
    t = ibis.memtable({"s": [0.0, 20.0, 40.0, 60.0, 99.0, None]})
    got = t.select(p=churn_probability(curve, t.s)).to_pyarrow()["p"].to_pylist()
    assert got == [0.5, 0.5, pytest.approx(0.3), pytest.approx(0.1), 0.1, None]


def test_no_curve_keeps_the_fixed_columns() -> None:
    out = decide([{"account_id": "A1"}], usage_events=steady_usage("A1"))
    assert tuple(out.decisions.column_names) == DECISION_COLUMNS


def test_a_falling_score_axis_is_an_error() -> None:
    base = load_model("standard").model_dump(mode="json")
    base["health"]["churn_probability"] = {
        "horizon_days": 90,
        "points": [[50, 0.1], [10, 0.5], [60, 1.5]],
    }
    model = type(load_model("standard")).model_validate(base)
    problems = check_model(model)
    assert any("strictly rising" in p for p in problems)
    assert any("points[2]" in p and "expected 0 to 1" in p for p in problems)

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


def test_a_workspace_run_stores_and_shows_the_churn_probability(tmp_path, state_url) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    import yaml
    from sqlalchemy import select

    from touchmodel.demo.generator import generate
    from touchmodel.ops.daily import run_day
    from touchmodel.state.db import Store
    from touchmodel.state.tables import Snapshot
    from touchmodel.views.accounts import account_detail
    from touchmodel.views.portfolio import portfolio
    from touchmodel.workspace import init_workspace, load_workspace

    as_of = dt.date(2026, 11, 1)
    ws = init_workspace(tmp_path / "ws", state=state_url)
    model_file = ws.root / "model.yaml"
    model = yaml.safe_load(model_file.read_text())
    model["health"]["churn_probability"] = {"horizon_days": 90, "points": [[30, 0.4], [80, 0.05]]}
    model_file.write_text(yaml.safe_dump(model, sort_keys=False))
    ws = load_workspace(ws.root)
    assert ws.data_path is not None
    generate(ws.data_path, accounts=120, as_of=as_of, seed=2)
    run_day(ws, as_of=as_of, dispatch_messages=False)
    store = Store(ws.state_url)
    try:
        with store.transaction() as s:
            snaps = s.scalars(select(Snapshot).where(Snapshot.as_of == as_of)).all()
            scored = [x for x in snaps if x.health_score is not None]
            assert scored and all(x.churn_probability is not None for x in scored)
            for x in scored:
                assert x.arr_at_risk == pytest.approx(x.churn_probability * x.arr, abs=0.01)
            total = sum(x.arr_at_risk or 0.0 for x in snaps)
            assert portfolio(s, None).expected_arr_at_risk == pytest.approx(total)
            detail = account_detail(s, ws, scored[0].account_id)
            assert detail is not None and detail.health is not None
            assert detail.health.churn_probability == pytest.approx(scored[0].churn_probability)
            assert detail.health.churn_horizon_days == 90
    finally:
        store.close()

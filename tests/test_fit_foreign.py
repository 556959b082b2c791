"""Calibrate on the two foreign snapshot exports: account columns make a real health score.

Both files are one row per customer with a churn flag, mapped to its own
label column. Calibrate fits on a seeded 70% of the accounts; on the other
30% its health score must come within 0.05 AUC of gradient boosting trained
on the same rows with the same columns.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from touchmodel.engine import Engine
from touchmodel.fit.backtest import health_risk, reference_auc
from touchmodel.fit.calibrate import calibrate
from touchmodel.fit.metrics import risk_auc
from touchmodel.fit.replay import load_for_replay, replay
from touchmodel.model.checks import check_model
from touchmodel.model.loader import model_from_dict

DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
EXAMPLES = Path(__file__).resolve().parents[1] / "src" / "touchmodel" / "examples"
AS_OF = dt.date(2026, 11, 1)

pytestmark = pytest.mark.skipif(
    not (DATASETS / "telco-customer-churn.csv").exists(),
    reason=f"foreign datasets not found at {DATASETS} (they live next to the repository)",
)


@pytest.mark.parametrize("mapping", ["telco-mapping.yaml", "saas-smb-mapping.yaml"])
def test_calibrated_health_is_close_to_gradient_boosting(mapping: str) -> None:
    engine = Engine.from_spec("standard")
    _, loaded = load_for_replay(DATASETS, EXAMPLES / mapping, AS_OF)
    before = replay(engine, loaded, [AS_OF], 90, label_column="churn_label")
    # No event table: the default health score has nothing to read.
    assert before.rows["health_score"].null_count == before.rows.num_rows

    prop = calibrate(before, engine.model)
    model = model_from_dict(prop.model, "proposal")
    assert check_model(model) == []
    assert 1 <= len(prop.measures) <= 6 and sum(m["weight"] for m in prop.measures) == 100
    after = replay(Engine(model), loaded, [AS_OF], 90, label_column="churn_label")
    assert after.rows["account_id"].equals(before.rows["account_id"])
    check = ~prop.train
    y = after.rows["label"].to_numpy(zero_copy_only=False).astype(bool)
    calibrated = risk_auc(health_risk(after.rows)[check], y[check])
    boosted = reference_auc(before.rows, prop.train, check, exclude=("churn_label",))
    assert calibrated is not None and boosted is not None
    assert calibrated >= boosted - 0.05, (calibrated, boosted, prop.measures)
    assert np.isnan(health_risk(after.rows)).mean() < 0.01

"""How well would the touch model have predicted the churn that already happened?

:func:`backtest` scores a :class:`~touchmodel.fit.replay.Replay`: the health
score's ROC AUC (with a bootstrap interval), churn per health grade and per
decile, each trigger's fire rate, precision, recall and lift, the at-risk
share, and a reference model (gradient boosting on the same signals, trained
on earlier dates and tested on later ones) to show what the rules leave on
the table.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.fit.metrics import (
    Bucket,
    FlagStats,
    bootstrap_auc_interval,
    by_decile,
    by_grade,
    flag_stats,
    risk_auc,
    roc_points,
)
from touchmodel.fit.replay import Replay, fired_matrix

# Columns of a replay that are not signals a model may learn from.
_NOT_FEATURES = {
    "account_id", "as_of", "label", "churned_on", "level_reasons", "triggers", "routes",
    "health_top_factor", "churn_probability", "arr_at_risk", "name", "csm",
}  # fmt: skip
_MAX_CATEGORIES = 50
# A reference model learns nothing more from more rows than this (churners are
# all kept, the rest sampled), and a million account-dates would cost minutes.
_MAX_TRAIN_ROWS = 40_000


@dataclass
class DateResult:
    as_of: dt.date
    accounts: int
    churned: int
    health_auc: float | None
    at_risk_share: float


@dataclass
class Reference:
    """The gradient-boosting reference and the health score on the same held-out rows."""

    method: str  # "later dates" or "5-fold cross-validation"
    train_dates: list[dt.date]
    test_dates: list[dt.date]
    test_rows: int
    model_auc: float | None
    health_auc: float | None
    features: int
    roc: list[tuple[float, float]] = field(default_factory=list)


@dataclass
class BacktestResult:
    dates: list[dt.date]
    horizon_days: int
    label: str
    rows: int
    churned: int
    health_auc: float | None
    health_auc_interval: tuple[float, float] | None
    at_risk_share: float
    per_date: list[DateResult]
    grades: list[Bucket]
    deciles: list[Bucket]
    triggers: list[FlagStats]
    any_risk: FlagStats
    reference: Reference | None
    roc: list[tuple[float, float]]
    inactive: dict[str, str]

    @property
    def base_rate(self) -> float:
        return self.churned / self.rows if self.rows else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json`` (dates as ISO text)."""
        out = asdict(self)
        out["base_rate"] = self.base_rate
        for b in out["grades"] + out["deciles"]:
            b["rate"] = b["churned"] / b["rows"] if b["rows"] else None
        return _jsonable(out)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, dt.date):
        return x.isoformat()
    if isinstance(x, float) and math.isnan(x):
        return None
    return x


def health_risk(rows: pa.Table) -> np.ndarray:
    """Risk from the health score: 100 - score (NaN where there is no score)."""
    score = rows["health_score"].to_numpy(zero_copy_only=False).astype(np.float64)
    return 100.0 - score


def backtest(rep: Replay, model_grades: list[str], reference: bool = True) -> BacktestResult:
    """Score the replayed decisions against their labels (see the module doc)."""
    rows = rep.rows
    y = rows["label"].to_numpy(zero_copy_only=False).astype(bool)
    risk = health_risk(rows)
    fired = fired_matrix(rows, rep.trigger_ids)
    any_risk = np.zeros(rows.num_rows, bool)
    for tid, hit in fired.items():
        if tid.startswith("risk."):
            any_risk |= hit
    stage = rows["lifecycle_stage"].to_numpy(zero_copy_only=False)
    at_risk = stage == "at_risk"
    as_of = rows["as_of"].to_numpy(zero_copy_only=False)
    per_date = []
    for d in rep.dates:
        sel = as_of == np.datetime64(d)
        per_date.append(
            DateResult(
                as_of=d,
                accounts=int(sel.sum()),
                churned=int(y[sel].sum()),
                health_auc=risk_auc(risk[sel], y[sel]),
                at_risk_share=float(at_risk[sel].mean()) if sel.any() else 0.0,
            )
        )
    grades = rows["health_grade"].to_numpy(zero_copy_only=False)
    return BacktestResult(
        dates=rep.dates,
        horizon_days=rep.horizon_days,
        label=rep.label,
        rows=rows.num_rows,
        churned=int(y.sum()),
        health_auc=risk_auc(risk, y),
        health_auc_interval=bootstrap_auc_interval(risk, y),
        at_risk_share=float(at_risk.mean()) if rows.num_rows else 0.0,
        per_date=per_date,
        grades=by_grade(grades, y, model_grades),
        deciles=by_decile(risk, y),
        triggers=[flag_stats(tid, hit, y) for tid, hit in fired.items()],
        any_risk=flag_stats("any risk.* trigger", any_risk, y),
        reference=reference_model(rep) if reference else None,
        roc=roc_points(risk, y),
        inactive=rep.inactive,
    )


def feature_matrix(
    rows: pa.Table, exclude: tuple[str, ...] = ()
) -> tuple[np.ndarray, list[str], list[bool]]:
    """Numeric, true/false and few-valued text columns of ``rows`` as a float matrix.

    Text columns become category codes (flagged for the model as categorical);
    dates, ids and the decision's own text are left out.
    """
    cols: list[np.ndarray] = []
    names: list[str] = []
    categorical: list[bool] = []
    for name in rows.column_names:
        if name in _NOT_FEATURES or name in exclude or name.startswith("fired__"):
            continue
        col = rows[name]
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            values = np.asarray(
                pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), np.float64
            )
            if np.isnan(values).all() or np.nanmin(values) == np.nanmax(values):
                continue  # nothing to learn from (a signal whose table is missing, a constant)
            cols.append(values)
            categorical.append(False)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            encoded = pc.dictionary_encode(col.combine_chunks())
            if len(encoded.dictionary) > _MAX_CATEGORIES or len(encoded.dictionary) < 2:
                continue
            codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.float64)
            codes[np.asarray(pc.is_null(encoded.indices).to_numpy(zero_copy_only=False))] = np.nan
            cols.append(codes)
            categorical.append(True)
        else:
            continue
        names.append(name)
    matrix = np.column_stack(cols) if cols else np.empty((rows.num_rows, 0))
    return matrix, names, categorical


def _split_dates(dates: list[dt.date], horizon: int) -> tuple[list[dt.date], list[dt.date]]:
    """Later dates to test on, earlier ones whose horizon ends before the first test date to train on."""
    n_test = max(1, len(dates) // 3)
    test = dates[-n_test:]
    train = [d for d in dates[:-n_test] if d + dt.timedelta(days=horizon) <= test[0]]
    if not train:  # too few dates to keep horizons apart: use every earlier date
        train = dates[:-n_test]
    return train, test


def _booster(categorical: list[bool], seed: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    # Small trees, a modest learning rate and early stopping on an inner
    # validation slice: a churn table has few positives, and an overfitted
    # reference would flatter the health score.
    return HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        max_bins=64,
        max_leaf_nodes=15,
        min_samples_leaf=40,
        l2_regularization=1.0,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=20,
        categorical_features=np.array(categorical, bool) if any(categorical) else None,
        random_state=seed,
    )


def _sampled(train: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """At most _MAX_TRAIN_ROWS training rows: every churner, a random share of the rest."""
    idx = np.flatnonzero(train)
    if idx.size <= _MAX_TRAIN_ROWS:
        return idx
    pos, neg = idx[y[idx]], idx[~y[idx]]
    keep = max(_MAX_TRAIN_ROWS - pos.size, _MAX_TRAIN_ROWS // 2)
    rng = np.random.default_rng(seed)
    return np.sort(np.concatenate([pos, rng.choice(neg, min(keep, neg.size), replace=False)]))


def reference_auc(
    rows: pa.Table,
    train: np.ndarray,
    test: np.ndarray,
    exclude: tuple[str, ...] = (),
    seed: int = 0,
) -> float | None:
    """AUC on the ``test`` rows of gradient boosting fitted on the ``train`` rows."""
    y = rows["label"].to_numpy(zero_copy_only=False).astype(bool)
    if y[train].all() or not y[train].any():
        return None
    x, _, categorical = feature_matrix(rows, exclude)
    fit_rows = _sampled(train, y, seed)
    fitted = _booster(categorical, seed).fit(x[fit_rows], y[fit_rows])
    return risk_auc(fitted.predict_proba(x[test])[:, 1], y[test])


def reference_model(rep: Replay, seed: int = 0) -> Reference | None:
    """Gradient boosting on the replay's signals: trained on earlier dates, tested on later ones.

    With a single date (a snapshot), 5-fold cross-validation stands in for
    the split by time. None when there is nothing to learn (one class only).
    """
    from sklearn.model_selection import StratifiedKFold

    rows = rep.rows
    y = rows["label"].to_numpy(zero_copy_only=False).astype(bool)
    if y.all() or not y.any():
        return None
    x, names, categorical = feature_matrix(rows, (rep.label_column,) if rep.label_column else ())
    risk = health_risk(rows)

    if len(rep.dates) == 1:
        pred = np.full(y.size, np.nan)
        folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        for train_idx, test_idx in folds.split(x, y):
            mask = np.zeros(y.size, bool)
            mask[train_idx] = True
            fit_rows = _sampled(mask, y, seed)
            fitted = _booster(categorical, seed).fit(x[fit_rows], y[fit_rows])
            pred[test_idx] = fitted.predict_proba(x[test_idx])[:, 1]
        return Reference(
            method="5-fold cross-validation",
            train_dates=list(rep.dates),
            test_dates=list(rep.dates),
            test_rows=int(y.size),
            model_auc=risk_auc(pred, y),
            health_auc=risk_auc(risk, y),
            features=len(names),
            roc=roc_points(pred, y),
        )
    train_dates, test_dates = _split_dates(rep.dates, rep.horizon_days)
    as_of = rows["as_of"].to_numpy(zero_copy_only=False)
    train = np.isin(as_of, np.array(train_dates, dtype="datetime64[D]"))
    test = np.isin(as_of, np.array(test_dates, dtype="datetime64[D]"))
    if y[train].all() or not y[train].any():
        return None
    fit_rows = _sampled(train, y, seed)
    fitted = _booster(categorical, seed).fit(x[fit_rows], y[fit_rows])
    pred = fitted.predict_proba(x[test])[:, 1]
    return Reference(
        method="later dates",
        train_dates=train_dates,
        test_dates=test_dates,
        test_rows=int(test.sum()),
        model_auc=risk_auc(pred, y[test]),
        health_auc=risk_auc(risk[test], y[test]),
        features=len(names),
        roc=roc_points(pred, y[test]),
    )

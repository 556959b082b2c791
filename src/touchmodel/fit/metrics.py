"""How well a score and a set of flags predict churn: AUC, calibration, lift.

All vectorized over rows (numpy); nothing loops per account.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve


def risk_auc(risk: np.ndarray, label: np.ndarray) -> float | None:
    """ROC AUC of ``risk`` (higher = likelier to churn); None when only one class is present."""
    ok = ~np.isnan(risk)
    y = label[ok]
    if y.size == 0 or y.all() or not y.any():
        return None
    return float(roc_auc_score(y, risk[ok]))


def bootstrap_auc_interval(
    risk: np.ndarray, label: np.ndarray, reps: int = 200, seed: int = 0, level: float = 0.95
) -> tuple[float, float] | None:
    """A percentile bootstrap interval of the AUC (Poisson-weighted resamples).

    Each resample weights every row by a Poisson(1) draw, which is the
    ordinary bootstrap in the large-sample limit and lets the AUC of every
    resample come from one sort: rows are grouped by distinct score once,
    then each resample is a weighted count per group and a cumulative sum.
    """
    ok = ~np.isnan(risk)
    r, y = risk[ok], label[ok].astype(bool)
    if y.size == 0 or y.all() or not y.any():
        return None
    _, group = np.unique(r, return_inverse=True)
    groups = int(group.max()) + 1
    rng = np.random.default_rng(seed)
    aucs = np.empty(reps)
    for i in range(reps):
        w = rng.poisson(1.0, y.size).astype(np.float64)
        pos = np.bincount(group, weights=w * y, minlength=groups)
        neg = np.bincount(group, weights=w * ~y, minlength=groups)
        below = np.cumsum(neg) - neg  # negatives with a strictly lower risk
        total = pos.sum() * neg.sum()
        aucs[i] = (pos * (below + 0.5 * neg)).sum() / total if total else np.nan
    lo, hi = np.nanpercentile(aucs, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


@dataclass
class Bucket:
    """A group of rows and how many of them churned."""

    name: str
    rows: int
    churned: int

    @property
    def rate(self) -> float | None:
        return self.churned / self.rows if self.rows else None


def by_grade(grades: np.ndarray, label: np.ndarray, order: list[str]) -> list[Bucket]:
    """Churn per health grade, in ``order`` (no grade last)."""
    out = []
    for g in [*order, None]:
        sel = grades == g if g is not None else np.array([x is None for x in grades], bool)
        if g is None and not sel.any():
            continue
        out.append(Bucket(g or "no score", int(sel.sum()), int(label[sel].sum())))
    return out


def by_decile(risk: np.ndarray, label: np.ndarray) -> list[Bucket]:
    """Churn per tenth of the rows, riskiest first (ties kept together by rank)."""
    ok = ~np.isnan(risk)
    r, y = risk[ok], label[ok]
    if r.size == 0:
        return []
    order = np.argsort(-r, kind="stable")
    parts = np.array_split(order, min(10, r.size))
    return [Bucket(f"{i + 1}", int(p.size), int(y[p].sum())) for i, p in enumerate(parts)]


@dataclass
class FlagStats:
    """A yes/no flag (a trigger) against the label."""

    name: str
    fired: int
    fire_rate: float
    precision: float | None  # churn rate among the fired
    recall: float | None  # share of churners it fired on
    lift: float | None  # precision / base rate


def flag_stats(name: str, fired: np.ndarray, label: np.ndarray) -> FlagStats:
    """Fire rate, precision, recall and lift of one flag."""
    n = label.size
    hits = int(fired.sum())
    churners = int(label.sum())
    tp = int((fired & label).sum())
    base = churners / n if n else 0.0
    precision = tp / hits if hits else None
    return FlagStats(
        name=name,
        fired=hits,
        fire_rate=hits / n if n else 0.0,
        precision=precision,
        recall=tp / churners if churners else None,
        lift=precision / base if precision is not None and base > 0 else None,
    )


def roc_points(risk: np.ndarray, label: np.ndarray, most: int = 60) -> list[tuple[float, float]]:
    """At most ``most`` (false positive rate, true positive rate) points of the ROC curve."""
    ok = ~np.isnan(risk)
    if label[ok].all() or not label[ok].any():
        return []
    fpr, tpr, _ = roc_curve(label[ok], risk[ok])
    idx = np.unique(np.linspace(0, fpr.size - 1, min(most, fpr.size)).round().astype(int))
    return [(float(fpr[i]), float(tpr[i])) for i in idx]

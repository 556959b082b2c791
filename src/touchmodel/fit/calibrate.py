"""Fit the touch model to a customer's churn history.

From a :class:`~touchmodel.fit.replay.Replay` (earlier dates to fit on,
later ones to check), :func:`calibrate` proposes a new model:

- **Health measures chosen** among every numeric signal and account column
  (and yes/no indicators of few-valued text columns), each scored between a
  fitted ``bad`` and ``good`` bound, with non-negative weights that sum to
  100: a logistic fit with an L1 penalty (scipy's bounded L-BFGS-B) keeps a
  short list, the strongest ``max_measures``.
- **Grade cut-offs** so the red grade holds half the share of accounts the
  team can work as at risk (``at_risk_share``) and yellow the next 20%.
- **Risk-trigger thresholds**: a trigger of the form ``... and signal OP
  number`` gets the loosest threshold whose precision on the fitting dates
  reaches ``min_lift`` times the base churn rate; a risk trigger no threshold
  makes that precise is disabled, and the proposal says why. The precision
  asked for rises until the accounts flagged at risk (any risk trigger, the
  red grade included) fit ``at_risk_share``.
- **A churn curve**: isotonic regression of churn on the new health score
  (``health.churn_probability``), so every decision carries a probability
  and ARR at risk.

Nothing is written here; the CLI writes the proposal next to the user's file.
"""

from __future__ import annotations

import ast
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import ibis
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy.optimize import minimize

from touchmodel.expr import compile_expr, parse
from touchmodel.fit.backtest import _split_dates
from touchmodel.fit.metrics import risk_auc
from touchmodel.fit.replay import Replay, fired_matrix
from touchmodel.model.schema import TouchModel
from touchmodel.signals.build import table_scope
from touchmodel.signals.catalog import ACCOUNT_TYPES, BUILTIN

# Replay columns that are decisions or bookkeeping, not inputs a measure may read.
_NOT_CANDIDATES = {
    "account_id", "as_of", "label", "churned_on", "health_score", "churn_probability",
    "arr_at_risk", "tier_level_rank", "name", "csm", "level_reasons", "triggers", "routes",
    "health_top_factor", "health_grade", "tier", "tier_level", "lifecycle_stage", "touch_level",
}  # fmt: skip
# Quantile pairs tried as a measure's (bad, good) bounds: the whole range, its
# middle, and one half only (a signal that matters only when low, or only when high).
_BOUNDS = (
    (0.05, 0.95), (0.10, 0.90), (0.25, 0.75), (0.02, 0.50), (0.50, 0.98), (0.02, 0.25), (0.75, 0.98),
)  # fmt: skip
_MAX_CATEGORIES = 12
# The information criterion's price of one more measure: AIC's 2 per parameter,
# for its weight and two bounds. (BIC's log(n) per parameter stopped at two or
# three measures on bases with thousands of rows and left accuracy behind.)
_PENALTY = 6.0


@dataclass
class Candidate:
    """A possible health measure: a signal (or an indicator expression) and its fitted bounds."""

    name: str  # signal or column name; for an indicator, the new signal's name
    values: np.ndarray  # raw values per replay row (NaN = missing)
    bad: float
    good: float
    auc: float  # univariate AUC of the clamped score on the fitting rows
    expr: str | None = None  # for an indicator signal: its expression
    column: str | None = None  # the column the indicator reads

    @property
    def source(self) -> str:
        """The column or signal the measure reads from the data."""
        return self.column or self.name

    def score(self) -> np.ndarray:
        """0..1 per row (1 = good), NaN where the value is missing."""
        frac = (self.values - self.bad) / (self.good - self.bad)
        return np.clip(frac, 0.0, 1.0)


@dataclass
class TriggerChange:
    trigger: str
    before: str
    after: str | None  # None: disabled
    reason: str


@dataclass
class Proposal:
    """The proposed model and how it was fitted."""

    model: dict[str, Any]  # the proposed model file as data
    measures: list[dict[str, Any]]
    grades: list[dict[str, Any]]
    triggers: list[TriggerChange]
    train_dates: list[dt.date]
    test_dates: list[dt.date]
    train_rows: int
    base_rate: float
    train: np.ndarray  # which replay rows the fit saw (the rest check it)
    notes: list[str] = field(default_factory=list)


def snapshot_split(rows: int, share: float = 0.7) -> np.ndarray:
    """The rows of a one-date replay that calibrate fits on (seeded, so repeatable)."""
    return np.random.default_rng(0).random(rows) < share


def _candidates(
    rows: pa.Table, train: np.ndarray, y: np.ndarray, exclude: set[str]
) -> list[Candidate]:
    out: list[Candidate] = []
    for name in rows.column_names:
        if name in _NOT_CANDIDATES or name in exclude or name.startswith(("fired__", "health__")):
            continue
        col = rows[name]
        t = col.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            values = np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), float)
            out += _fit_bounds(name, values, train, y)
        elif pa.types.is_string(t):
            encoded = pc.dictionary_encode(col.combine_chunks())
            levels = encoded.dictionary.to_pylist()
            if not 2 <= len(levels) <= _MAX_CATEGORIES:
                continue
            idx = encoded.indices.to_numpy(zero_copy_only=False)
            nulls = np.asarray(pc.is_null(encoded.indices).to_numpy(zero_copy_only=False))
            for k, level in enumerate(levels):
                values = np.where(nulls, np.nan, (idx == k).astype(float))
                slug = "".join(c if c.isalnum() else "_" for c in str(level).lower()).strip("_")
                sig = f"is_{name.lower()}_{slug}"[:60]
                for found in _fit_bounds(sig, values, train, y):
                    found.expr = f"1 if {name} == {level!r} else 0"
                    found.column = name
                    out.append(found)
    return out


def _fit_bounds(name: str, values: np.ndarray, train: np.ndarray, y: np.ndarray) -> list[Candidate]:
    """Bound variants (bad, good) of ``values``, oriented so the churn side is bad.

    Every variant is kept: which one serves best depends on the measures it
    is combined with, so the selection (:func:`_choose`) picks among them.
    """
    x = values[train]
    ok = ~np.isnan(x)
    if ok.mean() < 0.2 or np.nanstd(x) == 0:
        return []
    yt = y[train]
    direction = risk_auc(x, yt)
    if direction is None or abs(direction - 0.5) < 0.02:
        return []
    out: list[Candidate] = []
    seen: set[tuple[float, float]] = set()
    for lo, hi in _BOUNDS:
        q_lo, q_hi = (float(v) for v in np.nanquantile(x, [lo, hi]))
        if q_lo == q_hi:
            continue
        bad, good = (
            (_round(q_hi), _round(q_lo)) if direction > 0.5 else (_round(q_lo), _round(q_hi))
        )
        if bad == good or (bad, good) in seen:
            continue
        seen.add((bad, good))
        cand = Candidate(name, values, bad, good, 0.0)
        auc = risk_auc(1.0 - cand.score()[train], yt)
        cand.auc = auc if auc is not None else 0.5
        out.append(cand)
    return out


def _nll(scores: np.ndarray, y: np.ndarray, params: np.ndarray) -> float:
    """Mean negative log-likelihood of churn under logit p = a + b * (1 - health / 100).

    ``params`` = (a, b, raw weights); health is the engine's formula (the
    weighted mean of the available scores), so a missing measure is fitted
    exactly as it will be scored.
    """
    a, slope, w = params[0], params[1], params[2:]
    avail = ~np.isnan(scores)
    ww = np.where(avail, w[None, :], 0.0)
    total = ww.sum(axis=1)
    health = np.where(
        total > 0, (np.nan_to_num(scores) * ww).sum(axis=1) / np.maximum(total, 1e-12), 0.5
    )
    z = a + slope * (1.0 - health)
    # log(1 + e^z) - y z, written to stay finite for large |z|
    return float(np.mean(np.logaddexp(0.0, z) - y * z))


def _fit_weights(
    scores: np.ndarray, y: np.ndarray, start: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Non-negative weights (and the fit's mean NLL) of the health formula as a churn model."""
    k = scores.shape[1]
    prior = np.log(max(y.mean(), 1e-4) / max(1 - y.mean(), 1e-4))
    x0 = np.concatenate([[prior - 1.0, 2.0], np.ones(k)]) if start is None else start
    bounds = [(None, None), (0.0, None)] + [(1e-4, None)] * k
    fit = minimize(lambda p: _nll(scores, y, p), x0, method="L-BFGS-B", bounds=bounds)
    return np.asarray(fit.x), float(fit.fun)


def health_scores(cands: list[Candidate], weights: np.ndarray) -> np.ndarray:
    """The engine's health formula: weighted mean of the available scores, 0..100."""
    scores = np.column_stack([c.score() for c in cands])
    avail = ~np.isnan(scores)
    w = np.where(avail, weights[None, :], 0.0)
    total = w.sum(axis=1)
    num = (np.nan_to_num(scores) * w).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * num / total, np.nan)


def _percent_weights(raw: np.ndarray) -> list[int]:
    """Integer weights summing to 100 in proportion to ``raw`` (largest remainders)."""
    share = raw / raw.sum() * 100.0
    floor = np.floor(share).astype(int)
    rest = 100 - floor.sum()
    order = np.argsort(-(share - floor))
    floor[order[:rest]] += 1
    return [int(v) for v in floor]


def calibrate(
    rep: Replay,
    model: TouchModel,
    *,
    max_measures: int = 6,
    at_risk_share: float = 0.10,
    min_lift: float = 2.0,
) -> Proposal:
    """Propose a model fitted on the replay's earlier dates (see the module doc)."""
    rows = rep.rows
    y = rows["label"].to_numpy(zero_copy_only=False).astype(float)
    as_of = rows["as_of"].to_numpy(zero_copy_only=False)
    if len(rep.dates) > 1:
        train_dates, test_dates = _split_dates(rep.dates, rep.horizon_days)
        train = np.isin(as_of, np.array(train_dates, dtype="datetime64[D]"))
    else:  # a snapshot: fit on a seeded 70% of the accounts, check on the rest
        train_dates = test_dates = list(rep.dates)
        train = snapshot_split(rows.num_rows)
    notes: list[str] = []
    if y[train].sum() < 10:
        notes.append(
            f"only {int(y[train].sum())} churned accounts to fit on: treat the result with care"
        )

    cands = _candidates(
        rows, train, y.astype(bool), {rep.label_column} if rep.label_column else set()
    )
    # The current measures, with their current bounds, compete too.
    for m in model.health.measures:
        if m.signal in rows.column_names:
            values = np.asarray(
                pc.cast(rows[m.signal], pa.float64()).to_numpy(zero_copy_only=False), float
            )
            current = Candidate(m.signal, values, m.bad, m.good, 0.0)
            auc = risk_auc(1.0 - current.score()[train], y[train].astype(bool))
            current.auc = auc if auc is not None else 0.5
            cands.append(current)
    cands.sort(key=lambda c: -c.auc)
    cands = cands[:60]  # the selection needs no more than the 60 strongest variants
    if not cands:
        raise ValueError("no signal separates churned from retained accounts on the fitting dates")
    chosen, raw = _choose(cands, train, y, max_measures)
    weights = _percent_weights(raw)
    pairs = [(c, w) for c, w in zip(chosen, weights, strict=True) if w > 0]
    chosen, weights = [c for c, _ in pairs], [w for _, w in pairs]
    score = health_scores(chosen, np.array(weights, float))

    # Grades: red holds half the share the team can work as at risk (the risk
    # triggers get the other half), yellow the next 20%. Cut-offs stay inside
    # (0, 100) and apart, even when many scores tie.
    s_train = score[train & ~np.isnan(score)]
    red = float(np.clip(np.round(np.quantile(s_train, at_risk_share / 2), 1), 0.1, 99.8))
    yellow = float(np.round(np.quantile(s_train, min(0.95, at_risk_share + 0.2)), 1))
    yellow = float(np.clip(yellow, red + 0.1, 99.9))
    grades = [
        {"id": model.health.grades[0].id, "min": yellow},
        {"id": model.health.grades[1].id if len(model.health.grades) > 2 else "yellow", "min": red},
        {"id": model.health.grades[-1].id, "min": 0},
    ]

    measures = [
        {
            "id": c.name,
            "label": _label(c),
            "signal": c.name,
            "weight": w,
            "bad": _round(c.bad),
            "good": _round(c.good),
        }
        for c, w in zip(chosen, weights, strict=True)
    ]
    data = model.model_dump(mode="json", exclude_none=True)
    data["health"]["measures"] = measures
    data["health"]["grades"] = grades
    # Accounts columns a new measure or indicator reads must be declared, typed.
    known = set(ACCOUNT_TYPES) | {i.name for i in BUILTIN} | set(model.extra_columns)
    known |= {s["name"] for s in data.get("signals", [])}
    extra = dict(data.get("extra_columns", {}))
    for c in chosen:
        column = c.source
        if column not in known and column in rows.column_names:
            extra[column] = _column_type(rows.schema.field(column).type)
    if extra:
        data["extra_columns"] = extra
    existing = {s["name"] for s in data.get("signals", [])}
    data["signals"] = data.get("signals", []) + [
        {"name": c.name, "expr": c.expr, "description": f"Indicator: {c.expr}"}
        for c in chosen
        if c.expr is not None and c.name not in existing
    ]
    base = float(y[train].mean())
    changes = _tune_triggers(
        rep, model, rows, train, y.astype(bool), score, red, base * min_lift, at_risk_share, notes
    )
    by_id = {c.trigger: c for c in changes}
    for trig in data["triggers"]:
        change = by_id.get(trig["id"])
        if change is None:
            continue
        if change.after is None:
            trig["enabled"] = False
        else:
            trig["when"] = change.after
    curve = _churn_curve(score[train], y[train], rep.horizon_days, train_dates)
    data["health"]["churn_probability"] = curve
    return Proposal(
        model=data,
        measures=measures,
        grades=grades,
        triggers=changes,
        train_dates=train_dates,
        test_dates=test_dates,
        train_rows=int(train.sum()),
        base_rate=base,
        train=train,
        notes=notes,
    )


def _price(cand: Candidate, rows: int) -> float:
    """What adding ``cand`` must gain in 2 x log-likelihood.

    A signal pays AIC's 2 per parameter (weight, two bounds). An indicator of
    one value of a text column pays BIC's log(rows) per parameter: every value
    of every text column is a candidate, so by chance alone some fit.
    """
    return 3 * np.log(rows) if cand.expr is not None else _PENALTY


def _choose(
    cands: list[Candidate], train: np.ndarray, y: np.ndarray, most: int
) -> tuple[list[Candidate], np.ndarray]:
    """Forward selection by AIC: add the measure (and bounds) that most improves the fit.

    Each step tries every candidate not yet chosen (one variant per signal),
    fits the new weight with the others held, keeps the best, then refits all
    weights. It stops when the best addition no longer pays for its weight
    and two bounds (:data:`_PENALTY`), or at ``most`` measures. Returns the chosen
    measures and their raw weights.
    """
    idx = np.flatnonzero(train)
    rng = np.random.default_rng(0)
    if idx.size > 60_000:  # a handful of weights needs no more rows than this
        idx = np.sort(rng.choice(idx, 60_000, replace=False))
    yt = y[idx]
    n = idx.size
    chosen: list[Candidate] = []
    params = np.array([])
    best_bic = 2 * n * _fit_weights(np.full((n, 1), 0.5), yt)[1]  # intercept-only baseline
    cols: list[np.ndarray] = []
    while len(chosen) < most:
        taken = {c.name for c in chosen}
        best: tuple[float, Candidate, np.ndarray] | None = None
        for cand in cands:
            if cand.name in taken:
                continue
            col = cand.score()[idx]
            scores = np.column_stack([*cols, col])
            if not chosen:
                trial, nll = _fit_weights(scores, yt)
            else:
                fixed = params[2:]

                def loss(
                    p: np.ndarray, scores: np.ndarray = scores, fixed: np.ndarray = fixed
                ) -> float:
                    return _nll(scores, yt, np.concatenate([p[:2], fixed, p[2:]]))

                fit = minimize(
                    loss, np.array([params[0], params[1], fixed.mean()]), method="L-BFGS-B",
                    bounds=[(None, None), (0.0, None), (1e-4, None)],
                )  # fmt: skip
                trial = np.concatenate([fit.x[:2], fixed, fit.x[2:]])
                nll = float(fit.fun)
            crit = 2 * n * nll + _price(cand, n)
            if best is None or crit < best[0]:
                best = (crit, cand, trial)
        if best is None:
            break
        crit, cand, trial = best
        if crit + sum(_price(c, n) for c in chosen) >= best_bic:
            break
        chosen.append(cand)
        cols.append(cand.score()[idx])
        params, nll = _fit_weights(np.column_stack(cols), yt, trial)
        best_bic = 2 * n * nll + sum(_price(c, n) for c in chosen)
    if not chosen:
        chosen = cands[:1]
        params, _ = _fit_weights(np.column_stack([chosen[0].score()[idx]]), yt)
    return chosen, params[2:]


def _column_type(t: pa.DataType) -> str:
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_floating(t):
        return "number"
    return "string"


def _round(x: float) -> float:
    if abs(x) >= 100:
        return float(round(x))
    return float(f"{x:.3g}")


def _label(c: Candidate) -> str:
    if c.expr is not None:
        return c.expr.replace("1 if ", "").replace(" else 0", "")
    return c.name.replace("_", " ")


def _churn_curve(
    score: np.ndarray, y: np.ndarray, horizon: int, dates: list[dt.date]
) -> dict[str, Any]:
    """Isotonic churn probability by health score, as at most ~20 points."""
    from sklearn.isotonic import IsotonicRegression

    ok = ~np.isnan(score)
    iso = IsotonicRegression(increasing=False, out_of_bounds="clip", y_min=0.0, y_max=1.0)
    iso.fit(score[ok], y[ok])
    xs = np.asarray(iso.X_thresholds_)
    ps = np.asarray(iso.y_thresholds_)
    if xs.size > 20:
        idx = np.unique(np.linspace(0, xs.size - 1, 20).round().astype(int))
        xs, ps = xs[idx], ps[idx]
    points, last = [], None
    for x, p in zip(xs, ps, strict=True):
        x = float(round(x, 2))
        if last is not None and x <= last:
            continue
        points.append([x, float(round(p, 4))])
        last = x
    span = f"{dates[0]} to {dates[-1]}" if dates else ""
    return {"horizon_days": horizon, "points": points, "fitted_on": f"backtest {span}"}


def _last_threshold(expr: str) -> tuple[ast.Compare, str] | None:
    """The last ``name OP number`` comparison of an ``and`` chain (or a lone comparison)."""
    tree = parse(expr)
    parts = tree.values if isinstance(tree, ast.BoolOp) and isinstance(tree.op, ast.And) else [tree]
    for node in reversed(parts):
        if (
            isinstance(node, ast.Compare)
            and len(node.ops) == 1
            and isinstance(node.ops[0], ast.Lt | ast.LtE | ast.Gt | ast.GtE)
            and isinstance(node.left, ast.Name)
            and isinstance(node.comparators[0], ast.Constant | ast.UnaryOp)
        ):
            return node, node.left.id
    return None


@dataclass
class _Search:
    """What tuning one risk trigger needs, computed once."""

    trigger: str
    when: str
    hit: np.ndarray  # where it fires now
    precision: float  # on the fitting rows, now
    node: ast.Compare | None = None  # the threshold to tune, if any
    signal: str = ""
    values: np.ndarray | None = None
    guard: np.ndarray | None = None  # the rest of the condition
    candidates: np.ndarray | None = None


def _searches(
    rep: Replay, model: TouchModel, rows: pa.Table, train: np.ndarray, y: np.ndarray
) -> list[_Search]:
    fired = fired_matrix(rows, rep.trigger_ids)
    table = ibis.memtable(rows.drop([c for c in rows.column_names if c.startswith("fired__")]))
    out = []
    for trig in model.triggers:
        if not trig.id.startswith("risk.") or not trig.enabled or trig.id in rep.inactive:
            continue
        if trig.id == "risk.health_low":
            continue  # follows the new red grade
        hit = fired.get(trig.id, np.zeros(rows.num_rows, bool))
        precision = float(y[train & hit].mean()) if (train & hit).any() else 0.0
        search = _Search(trig.id, trig.when, hit, precision)
        found = _last_threshold(trig.when)
        if found is not None and found[1] in rows.column_names:
            node, signal = found
            values = np.asarray(
                pc.cast(rows[signal], pa.float64()).to_numpy(zero_copy_only=False), float
            )
            guard_text = ast.unparse(_replace(parse(trig.when), node))
            scope = table_scope(table, rep.dates[-1])
            guard = np.asarray(
                table.select(g=compile_expr(guard_text, scope).fill_null(False))
                .to_pyarrow()["g"]
                .to_numpy(zero_copy_only=False),
                bool,
            )
            if (train & guard).any():
                qs = np.nanquantile(values[train & guard], np.linspace(0.02, 0.98, 49))
                search.node, search.signal, search.values, search.guard = (
                    node,
                    signal,
                    values,
                    guard,
                )
                search.candidates = np.unique(qs[~np.isnan(qs)])
        out.append(search)
    return out


def _tune(
    searches: list[_Search], train: np.ndarray, y: np.ndarray, target: float
) -> tuple[list[TriggerChange], dict[str, np.ndarray]]:
    """Each risk trigger at the loosest threshold reaching ``target`` precision, or disabled.

    Also where each trigger fires once changed (for the at-risk share).
    """
    changes: list[TriggerChange] = []
    fires: dict[str, np.ndarray] = {}
    for s in searches:
        if s.node is None or s.values is None or s.guard is None or s.candidates is None:
            if s.precision < target:
                changes.append(
                    TriggerChange(
                        s.trigger, s.when, None,
                        f"precision {s.precision:.1%} on the fitting dates, under the target "
                        f"{target:.1%}, and no threshold to tune",
                    )
                )  # fmt: skip
            else:
                fires[s.trigger] = s.hit
            continue
        op = type(s.node.ops[0])
        best: tuple[float, float, np.ndarray] | None = None  # (fire rate, threshold, where)
        for c in s.candidates:
            cond = _compare(op, s.values, c) & s.guard
            sel = train & cond
            if sel.sum() < max(5, 0.002 * train.sum()):
                continue
            if y[sel].mean() >= target:
                rate = sel.mean()
                if best is None or rate > best[0]:
                    best = (rate, float(c), cond)
        if best is None and s.precision >= target:
            fires[s.trigger] = s.hit  # precise already, and no looser threshold keeps it so
            continue
        if best is None:
            changes.append(
                TriggerChange(
                    s.trigger, s.when, None,
                    f"no threshold on {s.signal} reaches precision {target:.1%} (now {s.precision:.1%})",
                )
            )  # fmt: skip
            continue
        new = ast.unparse(_replace(parse(s.when), s.node, _round(best[1])))
        fires[s.trigger] = best[2]
        if new != s.when:
            changes.append(
                TriggerChange(
                    s.trigger, s.when, new,
                    f"loosest threshold with precision >= {target:.1%} (was {s.precision:.1%})",
                )
            )  # fmt: skip
    # Two triggers tuned to the same condition would open two work items for one signal.
    seen: dict[str, str] = {}
    for ch in changes:
        if ch.after is None:
            continue
        if ch.after in seen:
            ch.reason = f"same condition as {seen[ch.after]} after tuning: one work item is enough"
            ch.after = None
            fires.pop(ch.trigger, None)
        else:
            seen[ch.after] = ch.trigger
    return changes, fires


def _tune_triggers(
    rep: Replay,
    model: TouchModel,
    rows: pa.Table,
    train: np.ndarray,
    y: np.ndarray,
    score: np.ndarray,
    red: float,
    target_precision: float,
    at_risk_share: float,
    notes: list[str],
) -> list[TriggerChange]:
    """Risk triggers tuned to ``target_precision``, then the least precise dropped until the
    accounts flagged at risk (any risk trigger, the red grade's included) fit ``at_risk_share``.
    """
    searches = _searches(rep, model, rows, train, y)
    changes, fires = _tune(searches, train, y, target_precision)
    live = [(s, fires[s.trigger]) for s in searches if s.trigger in fires]
    low = score < red

    def share(kept: list[tuple[_Search, np.ndarray]]) -> float:
        flagged = low.copy()
        for _, f in kept:
            flagged |= f
        return float(flagged[train].mean())

    def precision(f: np.ndarray) -> float:
        return float(y[train & f].mean()) if (train & f).any() else 0.0

    by_id = {c.trigger: c for c in changes}
    while live and share(live) > at_risk_share * 1.02:
        worst = min(live, key=lambda sf: precision(sf[1]))
        live.remove(worst)
        reason = (
            f"precision {precision(worst[1]):.1%}, the lowest of the risk triggers left: dropped so "
            f"the accounts flagged at risk fit --at-risk {at_risk_share:.0%}"
        )
        old = by_id.get(worst[0].trigger)
        if old is not None:
            old.after, old.reason = None, reason
        else:
            change = TriggerChange(worst[0].trigger, worst[0].when, None, reason)
            changes.append(change)
            by_id[change.trigger] = change
    final = share(live)
    if final > at_risk_share * 1.02:
        notes.append(
            f"the red grade alone flags {final:.1%} of accounts on the fitting dates, above --at-risk"
        )
    if any(t.id == "risk.health_low" and t.enabled for t in model.triggers):
        health_low = next(t for t in model.triggers if t.id == "risk.health_low")
        changes.append(
            TriggerChange(
                "risk.health_low",
                health_low.when,
                f"health_score < {red:g}",
                "the new red grade's cut-off",
            )
        )
    return changes


def _compare(op: type, values: np.ndarray, c: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        if op is ast.Lt:
            return values < c
        if op is ast.LtE:
            return values <= c
        if op is ast.Gt:
            return values > c
        return values >= c


def _replace(tree: ast.expr, target: ast.Compare, value: float | None = None) -> ast.expr:
    """``tree`` with ``target`` replaced by ``True`` (value None) or its number set to ``value``."""
    target_dump = ast.dump(target)

    class Swap(ast.NodeTransformer):
        def visit_Compare(self, node: ast.Compare) -> ast.AST:
            if ast.dump(node) != target_dump:
                return node
            if value is None:
                return ast.Constant(True)
            num = int(value) if float(value).is_integer() else value
            return ast.Compare(node.left, node.ops, [ast.Constant(num)])

    return ast.fix_missing_locations(Swap().visit(tree))

"""Health score: weighted measures, each a signal scored linearly from bad to good.

A measure whose input is missing for an account (null signal, or a table the
signal needs is absent) drops out for that account and its weight is shared
among the remaining measures in proportion to their weights. The top factor
is the measure that costs the account the most points.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from touchmodel.model.schema import Measure, TouchModel


def measure_score(measure: Measure, value: ir.NumericValue) -> ir.NumericValue:
    """0..100 for ``value`` on a line from ``bad`` (0) to ``good`` (100), clamped."""
    x = value.cast("float64")
    frac = (x - measure.bad) / (measure.good - measure.bad)
    # greatest/least skip NULLs on DuckDB, so a missing input must stay NULL
    # explicitly or it would score 100 instead of dropping out.
    clamped = ibis.greatest(ibis.least(frac, 1.0), 0.0) * 100.0
    return ibis.ifelse(x.isnull(), ibis.null().cast("float64"), clamped)


def health_columns(
    model: TouchModel, table: ir.Table, unavailable: set[str]
) -> dict[str, ir.Value]:
    """Columns ``health_score``, ``health_grade``, ``health_top_factor`` and one ``health__<id>`` per measure."""
    measures = [m for m in model.health.measures if m.signal not in unavailable]
    out: dict[str, ir.Value] = {}
    if not measures:
        null = ibis.null().cast("float64")
        out["health_score"] = null
        out["health_grade"] = ibis.null().cast("string")
        out["health_top_factor"] = ibis.null().cast("string")
        return out
    scores = {m.id: measure_score(m, table[m.signal]) for m in measures}
    weights = {m.id: ibis.ifelse(scores[m.id].isnull(), 0.0, m.weight) for m in measures}
    total_weight = sum(weights.values(), ibis.literal(0.0))
    weighted = sum(
        (scores[m.id].fill_null(0.0) * weights[m.id] for m in measures), ibis.literal(0.0)
    )
    score = ibis.ifelse(total_weight > 0, weighted / total_weight, ibis.null().cast("float64"))
    out["health_score"] = score.round(1)
    # Lost points per measure, on the same 0..100 scale as the score.
    lost = {
        m.id: ((100.0 - scores[m.id]) * weights[m.id] / total_weight).fill_null(0.0)
        for m in measures
    }
    worst = ibis.greatest(*lost.values()) if len(lost) > 1 else next(iter(lost.values()))
    labels = {m.id: m.label or m.id for m in measures}
    out["health_top_factor"] = ibis.cases(
        *[((lost[mid] == worst) & (worst > 0.05), ibis.literal(labels[mid])) for mid in lost],
        else_=ibis.null().cast("string"),
    )
    grades = sorted(model.health.grades, key=lambda g: g.min, reverse=True)
    rounded = out["health_score"]
    out["health_grade"] = ibis.cases(
        *[(rounded >= g.min, ibis.literal(g.id)) for g in grades],
        else_=ibis.null().cast("string"),
    )
    for m in measures:
        out[f"health__{m.id}"] = scores[m.id].round(1)
    return out

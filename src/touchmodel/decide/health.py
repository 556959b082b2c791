"""Health score: weighted measures, each a signal scored linearly from bad to good.

A measure whose input is missing for an account (null signal, or a table the
signal needs is absent) drops out for that account and its weight is shared
among the remaining measures in proportion to their weights. The top factor
is the measure that costs the account the most points.
"""

from __future__ import annotations

from itertools import pairwise

import ibis
import ibis.expr.types as ir

from touchmodel.model.schema import ChurnCurve, Measure, TouchModel


def measure_score(measure: Measure, value: ir.NumericValue) -> ir.NumericValue:
    """0..100 for ``value`` on a line from ``bad`` (0) to ``good`` (100), clamped."""
    x = value.cast("float64")
    frac = (x - measure.bad) / (measure.good - measure.bad)
    # greatest/least skip NULLs on DuckDB, so a missing input must stay NULL
    # explicitly or it would score 100 instead of dropping out.
    clamped = ibis.greatest(ibis.least(frac, 1.0), 0.0) * 100.0
    return ibis.ifelse(x.isnull(), ibis.null().cast("float64"), clamped)


def churn_probability(curve: ChurnCurve, score: ir.NumericValue) -> ir.NumericValue:
    """The curve's probability at ``score``: linear between points, flat beyond the ends."""
    pts = curve.points
    x = score.cast("float64")
    cases = [(x <= pts[0][0], ibis.literal(pts[0][1]))]
    for (x0, p0), (x1, p1) in pairwise(pts):
        cases.append((x <= x1, ibis.literal(p0) + (x - x0) * ((p1 - p0) / (x1 - x0))))
    value = ibis.cases(*cases, else_=ibis.literal(pts[-1][1]))
    return ibis.ifelse(x.isnull(), ibis.null().cast("float64"), value.round(4))


def add_health(model: TouchModel, table: ir.Table, unavailable: set[str]) -> ir.Table:
    """Add ``health_score``, ``health_grade``, ``health_top_factor`` and ``health__<id>`` per measure.

    Built in stages (scores, weights, totals, lost points, worst) so each
    value is a column the next stage reads by name: written as one nested
    expression, every lost-points term would repeat every score and the SQL
    would grow with the square of the measure count.
    Helper columns start with ``_`` and are dropped by the caller.
    """
    measures = [m for m in model.health.measures if m.signal not in unavailable]
    if not measures:
        risk = (
            {
                "churn_probability": ibis.null().cast("float64"),
                "arr_at_risk": ibis.null().cast("float64"),
            }
            if model.health.churn_probability is not None
            else {}
        )
        return table.mutate(
            health_score=ibis.null().cast("float64"),
            health_grade=ibis.null().cast("string"),
            health_top_factor=ibis.null().cast("string"),
            **risk,
        )
    # A score is NULL exactly when its signal is, so weights need not wait for scores.
    t = table.mutate(
        **{f"_hs_{m.id}": measure_score(m, table[m.signal]) for m in measures},
        **{f"_hw_{m.id}": ibis.ifelse(table[m.signal].isnull(), 0.0, m.weight) for m in measures},
    )
    t = t.mutate(
        _h_total=sum((t[f"_hw_{m.id}"] for m in measures), ibis.literal(0.0)),
        _h_weighted=sum(
            (t[f"_hs_{m.id}"].fill_null(0.0) * t[f"_hw_{m.id}"] for m in measures),
            ibis.literal(0.0),
        ),
    )
    # Lost points per measure, on the same 0..100 scale as the score.
    t = t.mutate(
        health_score=ibis.ifelse(
            t._h_total > 0, t._h_weighted / t._h_total, ibis.null().cast("float64")
        ).round(1),
        **{
            f"_hl_{m.id}": ((100.0 - t[f"_hs_{m.id}"]) * t[f"_hw_{m.id}"] / t._h_total).fill_null(
                0.0
            )
            for m in measures
        },
    )
    lost = [t[f"_hl_{m.id}"] for m in measures]
    t = t.mutate(_h_worst=ibis.greatest(*lost) if len(lost) > 1 else lost[0])
    grades = sorted(model.health.grades, key=lambda g: g.min, reverse=True)
    curve = model.health.churn_probability
    if curve is not None:
        # Expected ARR lost within the curve's horizon if nothing is done.
        p = churn_probability(curve, t.health_score)
        t = t.mutate(churn_probability=p)
        t = t.mutate(arr_at_risk=(t.churn_probability * t.arr.cast("float64")).round(2))
    return t.mutate(
        health_top_factor=ibis.cases(
            *[
                (
                    (t[f"_hl_{m.id}"] == t._h_worst) & (t._h_worst > 0.05),
                    ibis.literal(m.label or m.id),
                )
                for m in measures
            ],
            else_=ibis.null().cast("string"),
        ),
        health_grade=ibis.cases(
            *[(t.health_score >= g.min, ibis.literal(g.id)) for g in grades],
            else_=ibis.null().cast("string"),
        ),
        **{f"health__{m.id}": t[f"_hs_{m.id}"].round(1) for m in measures},
    )

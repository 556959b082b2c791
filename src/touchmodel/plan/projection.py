"""Projections: the capacity plan at 12 and 24 months under an annual growth rate.

Growth keeps today's mix: every tier's accounts and ARR grow by
``(1 + growth) ** (months / 12)``. That is the simplest honest assumption; a
base that grows mostly at the bottom or the top needs a scenario of its own.
"""

from __future__ import annotations

from touchmodel.errors import TouchmodelError
from touchmodel.model.schema import TouchModel
from touchmodel.plan.capacity import CapacityPlan, plan_capacity
from touchmodel.plan.defaults import PlanningDefaults
from touchmodel.plan.economics import parse_rate
from touchmodel.plan.portfolio import Portfolio
from touchmodel.plan.team import Team


def parse_growth(text: str | float, max_growth: float = 10.0) -> float:
    """Annual growth as a fraction: ``'40%'``, ``'0.4'`` or ``0.4`` -> 0.4.

    Below -100% is impossible (fewer than zero accounts); above ``max_growth``
    (1000% by default) is almost surely a percentage typed without ``%``.
    """
    value = parse_rate("--growth", text, "a yearly rate like 40% or 0.4")
    if value < -1:
        raise TouchmodelError(
            f"--growth: value {text!r} -- expected -100% or more (a base cannot shrink below zero)"
        )
    if value > max_growth:
        raise TouchmodelError(
            f"--growth: value {text!r} -- expected at most {max_growth:.0%} a year; "
            f"for {value:g}% write {value:g}%"
        )
    return value


def growth_factor(growth: float, months: int) -> float:
    """Volume multiple after ``months`` at a yearly ``growth`` rate, compounded."""
    return float((1.0 + growth) ** (months / 12))


def project(
    model: TouchModel,
    portfolio: Portfolio,
    team: Team | None,
    growth: float,
    defaults: PlanningDefaults | None = None,
) -> list[CapacityPlan]:
    """Today's plan followed by the plan at each horizon (12 and 24 months by default)."""
    d = defaults or PlanningDefaults()
    plans = [plan_capacity(model, portfolio, team, d)]
    for months in d.horizons_months:
        plans.append(
            plan_capacity(
                model,
                portfolio,
                team,
                d,
                scale=growth_factor(growth, months),
                label=f"{months} months",
            )
        )
    return plans

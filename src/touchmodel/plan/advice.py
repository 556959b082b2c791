"""Where the CS organisation stands and what to do next (docs/touch-model.md), and mistakes on the data.

Phases come from team size (launch 1-3, scale 4-10, mature beyond), stages
from customer count (startup < 100, early scale < 500, growth < 2,000, scale).
Mistakes detected on the data: over-serving low-value accounts,
under-investing strategic ones, a model that breaks at 2-3x volume, and tier
ratios outside the guideline. Copying a competitor's ratio and
changing the model too often cannot be seen in one snapshot and are only named.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from touchmodel.model.schema import LEVELS, TouchModel
from touchmodel.plan.capacity import plan_capacity, ratios
from touchmodel.plan.defaults import Phases, PlanningDefaults
from touchmodel.plan.portfolio import Portfolio
from touchmodel.plan.team import Team

# Accounts listed as examples for a detected mistake.
_EXAMPLES = 5


@dataclass(frozen=True)
class Stage:
    """An organisation phase or a customer-count stage, with what to do in it."""

    name: str
    basis: str
    advice: list[str]


@dataclass(frozen=True)
class Mistake:
    id: str
    name: str
    detected: bool | None  # None: could not be checked (the detail says why)
    detail: str
    # Accounts and ARR concerned; None for mistakes of the model, not of accounts.
    accounts: int | None = None
    arr: float | None = None
    examples: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Advice:
    phase: Stage
    stage: Stage
    next_steps: list[str]
    mistakes: list[Mistake]
    not_detectable: list[str]

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)


def org_phase(team_size: float, p: Phases) -> Stage:
    """The touch model's phase for a CS team of ``team_size`` people."""
    size = math.ceil(team_size - 1e-9)
    basis = f"{size} CS people (launch 1-{p.launch_max_team}, scale up to {p.scale_max_team})"
    if not size:
        basis += "; no --team file or --team-size given, so none assumed"
    if size <= p.launch_max_team:
        return Stage(
            "launch" if size else "launch (no CS team yet)",
            basis,
            [
                "Do not run all touch models at once: high touch only, for the highest-LTV and "
                "highest-potential customers.",
                "Record every interaction and outcome, so success patterns become playbooks "
                "instead of living in one person's head.",
            ],
        )
    if size <= p.scale_max_team:
        return Stage(
            "scale",
            basis,
            [
                "Keep high touch; add low touch (one-to-many: seminars, webinars) and tech touch "
                "(one-to-all: tutorials, FAQ, video, guides), in steps: self-service content first, "
                "then webinars.",
                "Package the onboarding that worked for big accounts.",
            ],
        )
    return Stage(
        "mature",
        basis,
        [
            "Run all touch models, possibly a team per model.",
            "Unify customer data and health scores, and set each account's touch model "
            "automatically from the data.",
        ],
    )


def customer_stage(customers: int, p: Phases) -> Stage:
    """The touch model's growth stage for ``customers`` accounts (each edge starts the next stage)."""
    basis = (
        f"{customers:,} customers (early scale from {p.early_scale_customers:,}, growth from "
        f"{p.growth_customers:,}, scale from {p.scale_customers:,})"
    )
    if customers < p.early_scale_customers:
        return Stage("startup", basis, ["Everyone gets high touch: learn what success looks like."])
    if customers < p.growth_customers:
        return Stage(
            "early scale",
            basis,
            [
                "First CS hires, segmentation, repeatable playbooks.",
                f"Ask whether the model triples to {customers * 3:,} customers.",
            ],
        )
    if customers < p.scale_customers:
        return Stage(
            "growth", basis, ["Specialise; make the hybrid model solid; automate routine touches."]
        )
    return Stage(
        "scale", basis, ["Advanced segmentation, product-led motions, predictive analytics."]
    )


def _rank(levels: np.ndarray) -> np.ndarray:
    order = {lv: i for i, lv in enumerate(LEVELS)}
    return pd.Series(levels).map(order).fillna(0).to_numpy(dtype=int)


def _examples(p: Portfolio, mask: np.ndarray) -> list[str]:
    # Largest ARR first: the accounts worth looking at first.
    idx = np.flatnonzero(mask)
    top = idx[np.argsort(-p.arr[idx], kind="stable")][:_EXAMPLES]
    return [f"{p.account_id[i]} (${p.arr[i]:,.0f}, tier {p.tier[i]})" for i in top]


def detect_mistakes(
    model: TouchModel,
    portfolio: Portfolio,
    team: Team | None = None,
    defaults: PlanningDefaults | None = None,
) -> list[Mistake]:
    """The mistakes that one snapshot of the data can show."""
    d = defaults or PlanningDefaults()
    m = d.mistakes
    plan = plan_capacity(model, portfolio, team, d)
    per_account = {t.tier: (t.cost_per_account or 0.0) for t in plan.tiers}
    cost = pd.Series(portfolio.tier).map(per_account).fillna(0.0).to_numpy(dtype="float64")
    out = []

    over = ~portfolio.strategic & (cost > m.over_serving_cost_share * portfolio.arr)
    out.append(
        Mistake(
            "over_serving",
            "over-serving low-value accounts",
            bool(over.any()),
            f"{int(over.sum()):,} non-strategic accounts cost more than "
            f"{m.over_serving_cost_share:.0%} of their ARR in CS (tier cost per account / ARR)",
            int(over.sum()),
            float(portfolio.arr[over].sum()),
            _examples(portfolio, over),
        )
    )

    floor = LEVELS.index(m.under_investing_min_level)
    important = portfolio.strategic | (portfolio.arr >= m.under_investing_arr)
    under = important & (_rank(portfolio.tier_level) < floor)
    out.append(
        Mistake(
            "under_investing",
            "under-investing in strategic accounts",
            bool(under.any()),
            f"{int(under.sum()):,} strategic or ${m.under_investing_arr:,.0f}+ accounts sit in a "
            f"tier below {m.under_investing_min_level} touch",
            int(under.sum()),
            float(portfolio.arr[under].sum()),
            _examples(portfolio, under),
        )
    )

    out.append(_scale_mistake(model, portfolio, team, d, plan.csms_target))

    off = []
    for tier in model.tiers:
        r = ratios(tier)
        guide = m.ratio_guideline.get(tier.level)
        if r is None or guide is None:
            continue
        lo, hi = guide
        if r[1] < lo or (hi is not None and r[1] > hi):
            want = f"{lo:g}+" if hi is None else f"{lo:g}-{hi:g}"
            off.append(f"{tier.id} (target 1:{r[1]:g}, {tier.level} guideline 1:{want})")
    out.append(
        Mistake(
            "ratio_off_guideline",
            "CSM ratio outside the guideline (a ratio copied without context?)",
            bool(off),
            "; ".join(off) if off else "every CSM tier's target ratio is inside the guideline",
        )
    )
    return out


def _scale_mistake(
    model: TouchModel, portfolio: Portfolio, team: Team | None, d: PlanningDefaults, need: float
) -> Mistake:
    m = d.mistakes
    name = "ignoring scale (the model breaks at 2-3x volume)"
    at_plan = plan_capacity(model, portfolio, team, d, scale=m.scale_plan_multiple)
    human_everywhere = all(ratios(t) is not None for t in model.tiers)
    structure = (
        "; every tier needs CSMs, so headcount grows one for one with volume"
        if human_everywhere
        else ""
    )
    if team is None:
        return Mistake(
            "ignoring_scale",
            name,
            None,
            f"not checked without a team file; at {m.scale_plan_multiple:g}x volume the model "
            f"needs {at_plan.csms_target:,.1f} CSMs{structure}",
        )
    headroom = math.inf if need <= 0 else team.headcount / need
    hires = max(0, math.ceil(at_plan.csms_target - team.headcount - 1e-9))
    shown = "any volume" if math.isinf(headroom) else f"{headroom:.1f}x today's volume"
    return Mistake(
        "ignoring_scale",
        name,
        headroom < m.scale_min_multiple,
        f"the team ({team.headcount:g} CSMs) covers the model up to {shown}; it should hold "
        f"at {m.scale_min_multiple:g}-{m.scale_plan_multiple:g}x. At {m.scale_plan_multiple:g}x "
        f"the model needs {at_plan.csms_target:,.1f} CSMs: hire {hires} ahead of need{structure}",
    )


NOT_DETECTABLE = [
    "copying a competitor's ratio without context (only its symptom, a ratio outside the "
    "guideline, shows in the data)",
    "changing the model too often: commit to a model for 12-18 months",
]


def advise(
    model: TouchModel,
    portfolio: Portfolio,
    team: Team | None = None,
    defaults: PlanningDefaults | None = None,
    team_size: float | None = None,
) -> Advice:
    """Phase, stage, next steps and detected mistakes for one organisation."""
    d = defaults or PlanningDefaults()
    size = team_size if team_size is not None else (team.headcount if team is not None else 0.0)
    phase = org_phase(size, d.phases)
    stage = customer_stage(len(portfolio), d.phases)
    mistakes = detect_mistakes(model, portfolio, team, d)
    steps = list(phase.advice) + list(stage.advice)
    human = [t for t in model.tiers if ratios(t) is not None]
    if phase.name.startswith("launch") and len(human) > 1:
        steps.insert(
            0,
            f"Your model runs {len(human)} CSM tiers ({', '.join(t.id for t in human)}) with a "
            "launch-size team: start with the top tier only.",
        )
    for mk in mistakes:
        if mk.detected:
            steps.append(f"Fix: {mk.name} - {mk.detail}.")
    return Advice(phase, stage, steps, mistakes, NOT_DETECTABLE)

"""Capacity: CSMs needed per tier, the team's gap, hiring triggers, cost and feasibility.

CSMs needed per tier come from the tier's accounts-per-CSM range: the high end
of the ratio gives the fewest CSMs, the midpoint the target, the low end the
most. Open-ended ratios (500+) use their min; automation-owned tiers need none.
Headcounts are FTE (a pooled CSM can split over tiers), so totals are summed
before rounding up.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from touchmodel.model.schema import Tier, TouchModel
from touchmodel.plan.defaults import PlanningDefaults
from touchmodel.plan.economics import (
    RangeVerdict,
    ShareVerdict,
    arr_per_csm_ok,
    margin_after_cs,
    range_verdict,
    share_verdict,
)
from touchmodel.plan.portfolio import Portfolio, band_tier
from touchmodel.plan.team import Team

# Float noise from FTE splits (3 CSMs over 2 tiers) must not flip a feasibility verdict.
_EPS = 1e-9


def ratios(tier: Tier) -> tuple[float, float, float] | None:
    """Accounts per CSM at (high end, target, low end); None when no CSM covers the tier."""
    r = tier.accounts_per_csm
    if tier.owner == "automation" or r is None or r.min <= 0:
        return None
    if r.max is None:
        return (r.min, r.min, r.min)
    return (r.max, (r.min + r.max) / 2, r.min)


def _per_account_fte(tier: Tier) -> float:
    r = ratios(tier)
    return 0.0 if r is None else 1.0 / r[1]


@dataclass(frozen=True)
class TierPlan:
    """One tier's capacity and economics."""

    tier: str
    level: str
    owner: str
    accounts: int
    arr: float
    ratio: tuple[float, float, float] | None  # accounts per CSM: high end, target, low end
    csms_fewest: float
    csms_target: float
    csms_most: float
    team_fte: float | None
    gap: float | None  # team - target; negative means short
    csm_cost: float  # per CSM: the team's average on this tier, else the default
    cs_cost: float  # yearly cost of running the tier at the target headcount
    cost_basis: str  # "csm" or "model range" (automation tiers: midpoint of cost_per_account)
    cost_per_account: float | None
    cost_range: tuple[float, float | None]
    cost_verdict: RangeVerdict | None
    cost_share: float | None
    cost_share_verdict: ShareVerdict | None
    arr_per_csm: float | None
    arr_per_csm_ok: bool | None  # the 10x rule
    margin_after_cs: float | None


@dataclass(frozen=True)
class HiringCheck:
    """One hiring trigger: a CSM of ``level`` per ``accounts_per_csm`` in the band."""

    label: str
    level: str
    band: tuple[float, float | None]
    accounts: int
    accounts_per_csm: int
    csms_indicated: int  # floor(accounts / accounts_per_csm)
    on_team: float  # team FTE on tiers of this level
    hires: int
    fires: bool


@dataclass(frozen=True)
class BandFix:
    """Raise the edge between ``lower_tier`` and ``tier`` so accounts move down a tier."""

    tier: str
    lower_tier: str
    old_edge: float
    new_edge: float
    accounts_moved: int  # today's accounts (at a horizon, each stands for growth x accounts)
    csms_saved: float


@dataclass(frozen=True)
class Feasibility:
    """Whether the team can staff the model at its target ratios, and the smallest fixes."""

    feasible: bool
    required: float  # target FTE
    team: float
    shortfall: float
    hire: int  # N more CSMs make it feasible
    band_fixes: list[BandFix] = field(default_factory=list)

    @property
    def best_band_fix(self) -> BandFix | None:
        """The band-edge raise that moves the fewest accounts."""
        return min(self.band_fixes, key=lambda f: f.accounts_moved, default=None)


@dataclass(frozen=True)
class CapacityPlan:
    """The whole plan at one point in time (today, or a projection horizon)."""

    label: str
    scale: float
    accounts: int
    arr: float
    tiers: list[TierPlan]
    csms_fewest: float
    csms_target: float
    csms_most: float
    team_fte: float | None
    team_cost: float | None
    cs_cost: float
    cost_share: float | None
    cost_share_verdict: ShareVerdict | None
    arr_per_csm: float | None
    arr_per_csm_ok: bool | None
    margin_after_cs: float | None
    gross_margin: float
    hiring: list[HiringCheck]
    feasibility: Feasibility | None  # None without a team file

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists)."""
        out = asdict(self)
        if self.feasibility is not None:
            best = self.feasibility.best_band_fix
            out["feasibility"]["best_band_fix"] = None if best is None else asdict(best)
        return out


def _tier_plan(tier: Tier, n: int, arr: float, team: Team | None, d: PlanningDefaults) -> TierPlan:
    econ = d.economics
    r = ratios(tier)
    fewest, target, most = (0.0, 0.0, 0.0) if r is None else (n / r[0], n / r[1], n / r[2])
    fte = None if team is None else team.fte(tier.id)
    csm_cost = econ.csm_cost
    if team is not None and team.fte(tier.id) > 0:
        csm_cost = team.cost_by_tier[tier.id] / team.fte(tier.id)
    crange = tier.cost_per_account
    if r is None:
        # No CSM: the model file's own cost range is the only estimate we have.
        mid = crange.min if crange.max is None else (crange.min + crange.max) / 2
        cs_cost, basis = n * mid, "model range"
    else:
        cs_cost, basis = target * csm_cost, "csm"
    per_account = cs_cost / n if n else None
    share = cs_cost / arr if arr > 0 else None
    return TierPlan(
        tier=tier.id,
        level=tier.level,
        owner=tier.owner,
        accounts=n,
        arr=arr,
        ratio=r,
        csms_fewest=fewest,
        csms_target=target,
        csms_most=most,
        team_fte=fte,
        gap=None if fte is None else fte - target,
        csm_cost=csm_cost,
        cs_cost=cs_cost,
        cost_basis=basis,
        cost_per_account=per_account,
        cost_range=(crange.min, crange.max),
        cost_verdict=None if per_account is None else range_verdict(per_account, crange),
        cost_share=share,
        cost_share_verdict=None if share is None else share_verdict(share, econ.cs_share),
        arr_per_csm=arr / target if target > 0 else None,
        arr_per_csm_ok=arr_per_csm_ok(arr, target, csm_cost, econ),
        margin_after_cs=margin_after_cs(arr, econ.gross_margin, cs_cost),
    )


def hiring_checks(
    model: TouchModel, arr: np.ndarray, team: Team | None, d: PlanningDefaults, scale: float = 1.0
) -> list[HiringCheck]:
    """The hiring triggers over the accounts' ARR (scaled by ``scale`` for projections)."""
    level_of = {t.id: t.level for t in model.tiers}
    out = []
    for trig in d.hiring_triggers:
        inside = arr >= trig.min
        if trig.max is not None:
            inside &= arr < trig.max
        n = round(int(inside.sum()) * scale)
        indicated = n // trig.accounts_per_csm
        on_team = 0.0
        if team is not None:
            on_team = sum(f for tid, f in team.fte_by_tier.items() if level_of[tid] == trig.level)
        hires = max(0, math.ceil(indicated - on_team - _EPS))
        out.append(
            HiringCheck(
                label=trig.label,
                level=trig.level,
                band=(trig.min, trig.max),
                accounts=n,
                accounts_per_csm=trig.accounts_per_csm,
                csms_indicated=indicated,
                on_team=on_team,
                hires=hires,
                fires=hires > 0,
            )
        )
    return out


def band_fixes(
    model: TouchModel,
    portfolio: Portfolio,
    shortfall: float,
    scale: float = 1.0,
    edge_step: float = 1_000.0,
) -> list[BandFix]:
    """Every single band-edge raise that removes ``shortfall`` CSMs, found on sorted ARR.

    Raising the edge between tiers L < T moves T's lowest-ARR accounts (not the
    strategic ones lifted into T) down to L, saving ``1/ratio_T - 1/ratio_L`` FTE
    each. The k accounts needed come straight from the sorted ARR: no loop over
    accounts.
    """
    ordered = sorted(model.tiers, key=lambda t: t.band.min)
    by_band = band_tier(model, portfolio.arr)
    fixes = []
    for lower, tier in itertools.pairwise(ordered):
        saving = (_per_account_fte(tier) - _per_account_fte(lower)) * scale
        if saving <= 0:
            continue
        movable = np.sort(portfolio.arr[(portfolio.tier == tier.id) & (by_band == tier.id)])
        k = math.ceil(shortfall / saving - _EPS)
        if k < 1 or k > movable.size:
            continue
        last = float(movable[k - 1])
        new_edge = (math.floor(last / edge_step) + 1) * edge_step
        if tier.band.max is not None and new_edge >= tier.band.max:
            new_edge = math.floor(last) + 1.0
            if new_edge >= tier.band.max:
                continue  # only emptying the tier would do; that is removing it, not a raise
        moved = int(np.searchsorted(movable, new_edge, side="left"))
        fixes.append(
            BandFix(
                tier=tier.id,
                lower_tier=lower.id,
                old_edge=tier.band.min,
                new_edge=new_edge,
                accounts_moved=moved,
                csms_saved=moved * saving,
            )
        )
    return fixes


def plan_capacity(
    model: TouchModel,
    portfolio: Portfolio,
    team: Team | None = None,
    defaults: PlanningDefaults | None = None,
    *,
    scale: float = 1.0,
    label: str = "today",
) -> CapacityPlan:
    """Per-tier headcount, gap, cost and economics, hiring triggers and feasibility.

    ``scale`` multiplies every tier's accounts and ARR (same mix), which is how
    projections are made; ``scale=1`` is today.
    """
    d = defaults or PlanningDefaults()
    econ = d.economics
    tiers = []
    for tier in sorted(model.tiers, key=lambda t: t.band.min):
        mask = portfolio.tier == tier.id
        n = round(int(mask.sum()) * scale)
        arr = float(portfolio.arr[mask].sum()) * scale
        tiers.append(_tier_plan(tier, n, arr, team, d))
    total_arr = sum(t.arr for t in tiers)
    cs_cost = sum(t.cs_cost for t in tiers)
    target = sum(t.csms_target for t in tiers)
    csm_cost_total = sum(t.csms_target * t.csm_cost for t in tiers)
    avg_cost = csm_cost_total / target if target > 0 else econ.csm_cost
    share = cs_cost / total_arr if total_arr > 0 else None
    feas = None
    if team is not None:
        shortfall = target - team.headcount
        ok = shortfall <= _EPS
        feas = Feasibility(
            feasible=ok,
            required=target,
            team=team.headcount,
            shortfall=max(0.0, shortfall),
            hire=0 if ok else math.ceil(shortfall - _EPS),
            band_fixes=[]
            if ok
            else band_fixes(model, portfolio, shortfall, scale, d.band_edge_step),
        )
    return CapacityPlan(
        label=label,
        scale=scale,
        accounts=sum(t.accounts for t in tiers),
        arr=total_arr,
        tiers=tiers,
        csms_fewest=sum(t.csms_fewest for t in tiers),
        csms_target=target,
        csms_most=sum(t.csms_most for t in tiers),
        team_fte=None if team is None else team.headcount,
        team_cost=None if team is None else team.cost,
        cs_cost=cs_cost,
        cost_share=share,
        cost_share_verdict=None if share is None else share_verdict(share, econ.cs_share),
        arr_per_csm=total_arr / target if target > 0 else None,
        arr_per_csm_ok=arr_per_csm_ok(total_arr, target, avg_cost, econ),
        margin_after_cs=margin_after_cs(total_arr, econ.gross_margin, cs_cost),
        gross_margin=econ.gross_margin,
        hiring=hiring_checks(model, portfolio.arr, team, d, scale),
        feasibility=feas,
    )

"""Capacity planning: CSMs needed, gaps, hiring triggers, infeasibility and its fixes."""

from __future__ import annotations

import itertools
import math

import ibis
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from touchmodel.decide.tiers import assign_tiers
from touchmodel.errors import TouchmodelError
from touchmodel.model.loader import load_model, model_from_dict, preset_dict
from touchmodel.model.schema import TouchModel
from touchmodel.plan import (
    PlanningDefaults,
    Portfolio,
    Team,
    TeamFile,
    as_portfolio,
    build_team,
    growth_factor,
    parse_growth,
    plan_capacity,
    project,
)

STANDARD = load_model("standard")


def make_portfolio(
    arrs: list[float], model: TouchModel = STANDARD, strategic: list[bool] | None = None
) -> Portfolio:
    """Accounts with these ARRs, placed in tiers by the real tier logic."""
    frame = pd.DataFrame(
        {
            "account_id": [f"A{i}" for i in range(len(arrs))],
            "arr": [float(a) for a in arrs],
            "strategic": strategic if strategic is not None else [False] * len(arrs),
        }
    )
    return as_portfolio(assign_tiers(model, ibis.memtable(frame)).to_pyarrow())


def make_team(model: TouchModel = STANDARD, **fte: int) -> Team:
    csms = [{"tiers": [tier], "count": n} for tier, n in fte.items() if n]
    return build_team(TeamFile.model_validate({"csms": csms}), model)


def tier(plan, tier_id):  # type: ignore[no-untyped-def]
    return next(t for t in plan.tiers if t.tier == tier_id)


def test_csms_needed_at_both_ends_and_target_of_the_ratio() -> None:
    # 100 high-touch accounts at 15-25 per CSM: 4 at 1:25, 5 at the 1:20 target, 6.7 at 1:15.
    plan = plan_capacity(STANDARD, make_portfolio([150_000] * 100))
    high = tier(plan, "high")
    assert (high.csms_fewest, high.csms_target) == (4.0, 5.0)
    assert high.csms_most == pytest.approx(100 / 15)
    assert high.ratio == (25, 20, 15)


def test_automation_tier_needs_no_csm_and_costs_its_model_range() -> None:
    plan = plan_capacity(STANDARD, make_portfolio([5_000] * 1000))
    digital = tier(plan, "digital")
    assert digital.csms_target == digital.csms_most == 0
    # Cost is the midpoint of the tier's $20-50 range: no CSM to price.
    assert digital.cost_per_account == 35
    assert digital.cost_basis == "model range"
    assert digital.arr_per_csm is None and digital.arr_per_csm_ok is None


def test_open_ended_ratio_uses_min_only() -> None:
    data = preset_dict("standard")
    data["tiers"][0]["owner"] = "pooled_csm"  # digital, 500+ per CSM, now staffed
    model = model_from_dict(data, "test")
    plan = plan_capacity(model, make_portfolio([1_000] * 1000, model))
    digital = tier(plan, "digital")
    assert (digital.csms_fewest, digital.csms_target, digital.csms_most) == (2.0, 2.0, 2.0)


def test_gap_cost_share_ten_x_rule_and_margin_after_cs() -> None:
    team = make_team(high=4)
    plan = plan_capacity(STANDARD, make_portfolio([200_000] * 100), team)
    high = tier(plan, "high")
    assert high.team_fte == 4 and high.gap == -1.0
    # 5 CSMs x $120K = $600K on $20M ARR: 3%, $4M ARR per CSM (>= 10 x $120K).
    assert high.cs_cost == 600_000
    assert high.cost_per_account == 6_000 and high.cost_verdict == "above"  # range $2K-5K
    assert high.cost_share == pytest.approx(0.03) and high.cost_share_verdict == "under"
    assert high.arr_per_csm == 4_000_000 and high.arr_per_csm_ok is True
    assert high.margin_after_cs == pytest.approx(0.80 - 0.03)


def test_team_cost_is_used_for_the_tiers_it_covers() -> None:
    team = build_team(
        TeamFile.model_validate({"csms": [{"tiers": ["high"], "count": 5, "cost": 150_000}]}),
        STANDARD,
    )
    high = tier(plan_capacity(STANDARD, make_portfolio([120_000] * 100), team), "high")
    assert high.csm_cost == 150_000 and high.cs_cost == 750_000


@pytest.mark.parametrize(
    ("arr", "per", "level"),
    [(15_000, 50, "low"), (50_000, 30, "medium"), (150_000, 15, "high")],
)
def test_hiring_triggers_fire_at_the_threshold_not_one_below(
    arr: float, per: int, level: str
) -> None:
    below = plan_capacity(STANDARD, make_portfolio([arr] * (per - 1)), make_team())
    at = plan_capacity(STANDARD, make_portfolio([arr] * per), make_team())
    hb = next(h for h in below.hiring if h.level == level)
    ha = next(h for h in at.hiring if h.level == level)
    assert (hb.accounts, hb.csms_indicated, hb.fires, hb.hires) == (per - 1, 0, False, 0)
    assert (ha.accounts, ha.csms_indicated, ha.fires, ha.hires) == (per, 1, True, 1)


def test_hiring_trigger_band_edges_are_half_open() -> None:
    # $25,000 belongs to the medium band, $24,999 to the low band.
    plan = plan_capacity(STANDARD, make_portfolio([25_000] * 30 + [24_999] * 49))
    by_level = {h.level: h for h in plan.hiring}
    assert by_level["medium"].accounts == 30 and by_level["medium"].fires
    assert by_level["low"].accounts == 49 and not by_level["low"].fires


def test_hiring_trigger_counts_csms_already_on_the_team() -> None:
    plan = plan_capacity(STANDARD, make_portfolio([150_000] * 30), make_team(high=2))
    high = next(h for h in plan.hiring if h.level == "high")
    assert high.csms_indicated == 2 and high.on_team == 2 and not high.fires
    plan = plan_capacity(STANDARD, make_portfolio([150_000] * 45), make_team(high=2))
    assert next(h for h in plan.hiring if h.level == "high").hires == 1


def test_hiring_triggers_are_overridable() -> None:
    d = PlanningDefaults.model_validate(
        {
            "hiring_triggers": [
                {"level": "high", "label": "x", "min": 100_000, "accounts_per_csm": 10}
            ]
        }
    )
    plan = plan_capacity(STANDARD, make_portfolio([150_000] * 10), make_team(), d)
    assert [(h.level, h.fires) for h in plan.hiring] == [("high", True)]


def test_one_to_twenty_when_you_can_afford_one_to_a_hundred_is_infeasible() -> None:
    # 1,000 high-touch accounts need 50 CSMs at 1:20; a team of 10 (1:100) cannot do it.
    plan = plan_capacity(STANDARD, make_portfolio([150_000] * 1000), make_team(high=10))
    feas = plan.feasibility
    assert feas is not None and not feas.feasible
    assert (feas.required, feas.team, feas.hire) == (50.0, 10.0, 40)


def test_feasible_when_team_covers_the_target() -> None:
    plan = plan_capacity(STANDARD, make_portfolio([150_000] * 100), make_team(high=5))
    assert plan.feasibility is not None and plan.feasibility.feasible
    assert plan.feasibility.hire == 0 and plan.feasibility.band_fixes == []


def test_no_team_means_no_feasibility_verdict() -> None:
    assert plan_capacity(STANDARD, make_portfolio([150_000] * 10)).feasibility is None


def _moved_model(model: TouchModel, tier_id: str, new_edge: float) -> TouchModel:
    data = model.model_dump(mode="json")
    ordered = sorted(data["tiers"], key=lambda t: t["band"]["min"])
    for lower, upper in itertools.pairwise(ordered):
        if upper["id"] == tier_id:
            upper["band"]["min"] = lower["band"]["max"] = new_edge
    return model_from_dict(data, "moved")


def test_band_fix_moves_the_fewest_accounts_and_makes_the_plan_feasible() -> None:
    arrs = [100_000 + 1_000 * i for i in range(100)]  # 100 high accounts: 5 CSMs
    team = make_team(high=4)
    plan = plan_capacity(STANDARD, make_portfolio(arrs), team)
    feas = plan.feasibility
    assert feas is not None and not feas.feasible and feas.hire == 1
    best = feas.best_band_fix
    assert best is not None and best.tier == "high" and best.lower_tier == "medium"
    # Each moved account saves 1/20 - 1/40 = 0.025 CSM: 40 accounts save the 1 CSM short.
    assert best.accounts_moved == 40 and best.new_edge == 140_000
    moved = _moved_model(STANDARD, "high", best.new_edge)
    replanned = plan_capacity(moved, make_portfolio(arrs, moved), team)
    assert replanned.feasibility is not None and replanned.feasibility.feasible


def test_band_fix_leaves_strategic_lifts_in_place() -> None:
    # 40 strategic $5K accounts are lifted into high; raising a band edge cannot move them.
    arrs = [5_000] * 40 + [150_000] * 10
    plan = plan_capacity(
        STANDARD, make_portfolio(arrs, strategic=[True] * 40 + [False] * 10), make_team(high=1)
    )
    assert plan.feasibility is not None and not plan.feasibility.feasible
    assert all(f.accounts_moved <= 10 for f in plan.feasibility.band_fixes)
    assert plan.feasibility.best_band_fix is None  # 10 movable accounts cannot save 1.5 CSMs


@settings(max_examples=40, deadline=None)
@given(
    arrs=st.lists(st.integers(0, 400_000), min_size=1, max_size=120),
    team_size=st.integers(0, 6),
)
def test_every_band_fix_offered_makes_the_plan_feasible(arrs: list[int], team_size: int) -> None:
    team = make_team(high=team_size)
    plan = plan_capacity(STANDARD, make_portfolio(arrs), team)
    assert plan.feasibility is not None
    assert plan.feasibility.feasible == (plan.csms_target <= team_size + 1e-9)
    if not plan.feasibility.feasible:
        assert plan.feasibility.hire == math.ceil(plan.csms_target - team_size - 1e-9)
    for fix in plan.feasibility.band_fixes:
        moved = _moved_model(STANDARD, fix.tier, fix.new_edge)
        again = plan_capacity(moved, make_portfolio(arrs, moved), team)
        assert again.feasibility is not None and again.feasibility.feasible, fix


def test_projection_compounds_growth_over_horizons() -> None:
    plans = project(STANDARD, make_portfolio([150_000] * 100), make_team(high=5), 0.4)
    assert [p.label for p in plans] == ["today", "12 months", "24 months"]
    assert [p.accounts for p in plans] == [100, 140, 196]
    assert plans[2].arr == pytest.approx(100 * 150_000 * 1.96)
    assert [p.feasibility.feasible for p in plans if p.feasibility] == [True, False, False]
    assert plans[1].feasibility is not None and plans[1].feasibility.hire == 2


def test_projection_band_fix_accounts_for_growth() -> None:
    arrs = [100_000 + 1_000 * i for i in range(100)]
    plans = project(STANDARD, make_portfolio(arrs), make_team(high=5), 1.0)
    # At 2x, 200 high accounts need 10 CSMs: 5 short; each moved account stands for 2.
    feas = plans[1].feasibility
    assert feas is not None and feas.hire == 5
    fix = feas.best_band_fix
    assert fix is not None and (fix.accounts_moved, fix.new_edge) == (100, 200_000)
    assert fix.csms_saved == pytest.approx(5.0)


@pytest.mark.parametrize(
    ("text", "value"), [("40%", 0.4), ("0.4", 0.4), (0.4, 0.4), ("-100%", -1.0), ("0", 0.0)]
)
def test_parse_growth(text: str | float, value: float) -> None:
    assert parse_growth(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["-101%", "-1.5", "abc", "4000%", "nan"])
def test_parse_growth_rejects_bad_rates_with_one_line(text: str) -> None:
    with pytest.raises(TouchmodelError) as exc:
        parse_growth(text)
    assert "--growth" in str(exc.value) and "\n" not in str(exc.value)


def test_growth_factor() -> None:
    assert growth_factor(0.4, 12) == pytest.approx(1.4)
    assert growth_factor(0.4, 24) == pytest.approx(1.96)
    assert growth_factor(-1.0, 12) == 0.0


def test_portfolio_from_pandas_and_missing_columns() -> None:
    p = as_portfolio(
        pd.DataFrame(
            {"account_id": ["a"], "arr": [None], "tier": ["digital"], "tier_level": ["tech"]}
        )
    )
    assert p.arr.tolist() == [0.0] and p.strategic.tolist() == [False] and p.employees is None
    with pytest.raises(TouchmodelError, match="tier_level"):
        as_portfolio(pd.DataFrame({"account_id": ["a"], "arr": [1.0], "tier": ["x"]}))


def test_vectorised_band_search_handles_many_accounts_quickly() -> None:
    rng = np.random.default_rng(3)
    arrs = np.round(np.exp(rng.normal(10.5, 1.0, 50_000)), -2).tolist()
    plan = plan_capacity(STANDARD, make_portfolio(arrs), make_team(high=1, medium=1, low=1))
    assert plan.feasibility is not None and not plan.feasibility.feasible
    assert plan.accounts == 50_000

"""Organisation phases, customer stages and the SPEC §7 mistakes detected on the data."""

from __future__ import annotations

import pytest

from tests.test_plan_capacity import STANDARD, make_portfolio, make_team
from touchmodel.model.loader import load_model, model_from_dict, preset_dict
from touchmodel.plan import PlanningDefaults, advise, customer_stage, detect_mistakes, org_phase
from touchmodel.plan.defaults import Mistakes, Phases


@pytest.mark.parametrize(
    ("size", "phase"),
    [(0, "launch (no CS team yet)"), (1, "launch"), (3, "launch"), (3.5, "scale"), (4, "scale"),
     (10, "scale"), (11, "mature")],
)  # fmt: skip
def test_org_phase_by_team_size(size: float, phase: str) -> None:
    assert org_phase(size, Phases()).name == phase


def test_launch_advice_is_high_touch_only() -> None:
    assert "high touch only" in org_phase(2, Phases()).advice[0]
    assert org_phase(5, Phases(scale_max_team=4)).name == "mature"


@pytest.mark.parametrize(
    ("customers", "stage"),
    [(0, "startup"), (99, "startup"), (100, "early scale"), (499, "early scale"), (500, "growth"),
     (1_999, "growth"), (2_000, "scale")],
)  # fmt: skip
def test_customer_stage_edges_start_the_next_stage(customers: int, stage: str) -> None:
    assert customer_stage(customers, Phases()).name == stage


def test_early_scale_asks_whether_the_model_triples() -> None:
    assert "triples to 900 customers" in customer_stage(300, Phases()).advice[1]


def by_id(mistakes):  # type: ignore[no-untyped-def]
    return {m.id: m for m in mistakes}


def one_to_one_model():  # type: ignore[no-untyped-def]
    """Standard preset, but every low tier account gets 1:20 (the 'copied a ratio' case)."""
    data = preset_dict("standard")
    data["tiers"][1]["accounts_per_csm"] = {"min": 15, "max": 25}
    return model_from_dict(data, "test")


def test_over_serving_low_value_accounts_is_detected() -> None:
    model = one_to_one_model()
    # $10K accounts at 1:20 cost $6,000 each: 60% of ARR, like the SPEC's $5K/$3K case.
    found = by_id(detect_mistakes(model, make_portfolio([10_000] * 20 + [60_000] * 40, model)))
    assert found["over_serving"].detected and found["over_serving"].accounts == 20
    assert found["over_serving"].examples[0].startswith("A0 ($10,000, tier low)")
    assert found["ratio_off_guideline"].detected
    assert "low (target 1:20, low guideline 1:50-100)" in found["ratio_off_guideline"].detail


def test_strategic_accounts_are_not_over_served() -> None:
    p = make_portfolio([5_000] * 10, strategic=[True] * 10)  # lifted into high: $6K on $5K
    found = by_id(detect_mistakes(STANDARD, p))
    assert not found["over_serving"].detected


def test_standard_preset_on_a_normal_base_shows_no_service_mistakes() -> None:
    p = make_portfolio([2_000] * 50 + [15_000] * 30 + [60_000] * 15 + [250_000] * 5)
    found = by_id(detect_mistakes(STANDARD, p, make_team(high=1, medium=1, low=1)))
    assert not found["over_serving"].detected
    assert not found["under_investing"].detected
    assert not found["ratio_off_guideline"].detected


def test_under_investing_strategic_accounts_is_detected() -> None:
    data = preset_dict("standard")
    data["tiering"]["strategic_tier"] = None  # no strategic lift
    data["tiers"][2]["band"]["max"] = 300_000  # medium runs to $300K
    data["tiers"][3]["band"]["min"] = 300_000
    model = model_from_dict(data, "test")
    p = make_portfolio([200_000, 20_000, 400_000], model, strategic=[False, True, False])
    under = by_id(detect_mistakes(model, p))["under_investing"]
    # The $200K account in medium and the strategic $20K account in low; not the $400K one.
    assert under.detected and under.accounts == 2 and under.arr == 220_000
    lenient = PlanningDefaults(mistakes=Mistakes(under_investing_min_level="medium"))
    assert by_id(detect_mistakes(model, p, defaults=lenient))["under_investing"].accounts == 1


def test_model_that_breaks_at_two_to_three_times_volume() -> None:
    p = make_portfolio([150_000] * 100)  # 5 CSMs at 1:20
    tight = by_id(detect_mistakes(STANDARD, p, make_team(high=6)))["ignoring_scale"]
    assert tight.detected and "1.2x today's volume" in tight.detail
    assert "needs 15.0 CSMs: hire 9 ahead of need" in tight.detail
    roomy = by_id(detect_mistakes(STANDARD, p, make_team(high=10)))["ignoring_scale"]
    assert roomy.detected is False
    unknown = by_id(detect_mistakes(STANDARD, p))["ignoring_scale"]
    assert unknown.detected is None and "without a team file" in unknown.detail


def test_advise_puts_phase_stage_and_fixes_together() -> None:
    p = make_portfolio([2_000] * 300 + [15_000] * 100 + [60_000] * 80 + [250_000] * 20)
    adv = advise(STANDARD, p, make_team(high=2))
    assert (adv.phase.name, adv.stage.name) == ("launch", "growth")
    assert adv.next_steps[0].startswith("Your model runs 3 CSM tiers (low, medium, high)")
    assert any(s.startswith("Fix: ignoring scale") for s in adv.next_steps)
    assert advise(STANDARD, p, None, team_size=12).phase.name == "mature"
    assert len(adv.not_detectable) == 2


def test_hybrid_preset_without_ratio_on_automation_tier_works() -> None:
    model = load_model("hybrid")
    p = make_portfolio([2_000, 30_000, 70_000, 150_000], model)
    found = by_id(detect_mistakes(model, p))
    assert set(found) == {
        "over_serving",
        "under_investing",
        "ignoring_scale",
        "ratio_off_guideline",
    }

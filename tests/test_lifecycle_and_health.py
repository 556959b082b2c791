"""Lifecycle overrides of SPEC.md §3 and the health score's reweighting."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from tests.conftest import AS_OF, days_ago, decide, row, steady_usage


def _one(account: dict, **tables: list) -> dict:
    tables.setdefault("usage_events", steady_usage())
    return row(decide([account], **tables))


def test_growth_account_keeps_its_tier_level() -> None:
    r = _one({"arr": 15_000.0})
    assert (r["lifecycle_stage"], r["tier_level"], r["touch_level"]) == ("growth", "low", "low")
    assert r["level_reasons"] == "tier 'low' by arr in [10,000, 25,000)"


@pytest.mark.parametrize("days_in,stage", [(0, "onboarding"), (89, "onboarding"), (90, "growth")])
def test_onboarding_is_high_touch_for_90_days(days_in: int, stage: str) -> None:
    start = AS_OF - dt.timedelta(days=days_in)
    r = _one({"arr": 3000.0, "contract_start": start, "renewal_date": dt.date(2027, 10, 1)})
    assert r["lifecycle_stage"] == stage
    assert r["touch_level"] == ("high" if stage == "onboarding" else "tech")
    if stage == "onboarding":
        assert "onboarding: first 90 days" in r["level_reasons"]


@pytest.mark.parametrize("days_left,in_window", [(91, False), (90, True), (60, True), (59, False)])
def test_renewal_window_raises_one_level_for_every_tier(days_left: int, in_window: bool) -> None:
    renewal = AS_OF + dt.timedelta(days=days_left)
    r = _one({"arr": 3000.0, "renewal_date": renewal})
    assert (r["lifecycle_stage"] == "renewal") is in_window
    assert r["touch_level"] == ("low" if in_window else "tech")
    assert ("lifecycle.renewal_window" in r["triggers"]) is in_window


def test_default_renewal_is_next_anniversary_of_contract_start() -> None:
    r = _one({"contract_start": dt.date(2024, 12, 31), "renewal_date": None})
    assert r["renewal_date_effective"] == dt.date(2026, 12, 31)
    assert r["days_to_renewal"] == 60


def test_at_risk_escalates_one_level_and_names_the_triggers() -> None:
    inactive = [e for e in steady_usage() if e["timestamp"] <= days_ago(31)]
    r = _one({"arr": 30_000.0}, usage_events=inactive)
    assert r["lifecycle_stage"] == "at_risk"
    assert (r["tier_level"], r["touch_level"]) == ("medium", "high")
    assert "risk.inactive" in r["level_reasons"]


def test_at_risk_takes_priority_over_onboarding_and_overrides_never_lower() -> None:
    start = AS_OF - dt.timedelta(days=10)
    r = _one(
        {"arr": 500_000.0, "contract_start": start},
        tickets=[
            {
                "ticket_id": "T1",
                "account_id": "A1",
                "opened_at": days_ago(1),
                "category": "complaint",
            }
        ],
    )
    assert r["lifecycle_stage"] == "at_risk"
    assert r["touch_level"] == "high"  # already at the top: nothing to raise
    assert "at risk" not in r["level_reasons"]  # only raises are recorded


def test_health_reweights_missing_inputs_proportionally() -> None:
    # Only usage data: sentiment, support and billing inputs are missing.
    usage = steady_usage()  # flat usage: trend 0% -> score (0+50)/60 = 83.3; recency 100
    r = _one({"plan_limit": 1000.0}, usage_events=usage)
    adoption = (300 / 1000 - 0.05) / (0.6 - 0.05) * 100  # 45.45
    trend = 50 / 60 * 100
    expected = (25 * trend + 20 * 100 + 15 * adoption) / (25 + 20 + 15)
    assert r["health_score"] == pytest.approx(round(expected, 1), abs=0.051)
    assert r["health_top_factor"] == "Plan utilization"


def test_health_uses_all_inputs_when_present() -> None:
    r = _one(
        {"plan_limit": 500.0},
        nps_responses=[{"account_id": "A1", "responded_at": days_ago(5), "score": 10}],
        tickets=[],
        payments=[],
    )
    # trend 83.3, recency 100, adoption 100 (0.6 -> capped), support 100, nps 100, billing 100
    expected = (25 * (50 / 60 * 100) + 20 * 100 + 15 * 100 + 10 * 100 + 20 * 100 + 10 * 100) / 100
    assert r["health_score"] == pytest.approx(round(expected, 1), abs=0.051)
    assert r["health_grade"] == "green"
    assert r["health_top_factor"] == "Usage trend (30d vs previous 30d)"


def test_no_inputs_at_all_gives_no_score() -> None:
    r = row(decide([{"plan_limit": None}]))
    assert pd.isna(r["health_score"]) and pd.isna(r["health_grade"])


def test_only_customers_on_the_as_of_date_get_a_decision() -> None:
    decided = decide(
        [
            {"account_id": "gone", "churned_on": AS_OF},
            {"account_id": "leaving", "churned_on": AS_OF + dt.timedelta(days=1)},
            {"account_id": "future", "contract_start": AS_OF + dt.timedelta(days=1)},
            {"account_id": "first-day", "contract_start": AS_OF},
        ],
        usage_events=[],
    )
    assert sorted(decided.decisions["account_id"].to_pylist()) == ["first-day", "leaving"]
    assert decided.excluded == {"churned": 1, "not_started": 1}


def test_first_renewal_is_a_year_after_a_contract_starting_today() -> None:
    r = _one({"contract_start": AS_OF, "renewal_date": None})
    assert r["renewal_date_effective"] == dt.date(2027, 11, 1)


def test_an_override_never_lowers_the_tier_level() -> None:
    from touchmodel.engine import Engine
    from touchmodel.model.loader import model_from_dict, preset_dict

    data = preset_dict("standard")
    data["lifecycle"]["overrides"][1]["raise_to"] = "low"  # onboarding "raises" to low
    engine = Engine(model_from_dict(data, "inline"))
    start = AS_OF - dt.timedelta(days=5)
    r = row(
        decide(
            [{"arr": 300_000.0, "contract_start": start}], model=engine, usage_events=steady_usage()
        )
    )
    assert (r["lifecycle_stage"], r["tier_level"], r["touch_level"]) == (
        "onboarding",
        "high",
        "high",
    )


def test_strategic_lift_never_lowers_a_higher_band() -> None:
    from touchmodel.engine import Engine
    from touchmodel.model.loader import model_from_dict, preset_dict

    data = preset_dict("standard")
    data["tiering"]["strategic_tier"] = "medium"
    engine = Engine(model_from_dict(data, "inline"))
    decided = decide(
        [{"account_id": "big", "arr": 400_000.0, "strategic": True},
         {"account_id": "small", "arr": 4_000.0, "strategic": True}],
        model=engine, usage_events=[],
    )  # fmt: skip
    assert row(decided, "big")["tier"] == "high"
    assert row(decided, "small")["tier"] == "medium"


def test_override_needing_a_missing_table_is_inactive_not_skipped_silently() -> None:
    from touchmodel.engine import Engine
    from touchmodel.model.loader import model_from_dict, preset_dict

    data = preset_dict("standard")
    data["lifecycle"]["overrides"][0]["when"] = "fired('risk.*') or nps_latest_score <= 6"
    engine = Engine(model_from_dict(data, "inline"))
    decided = decide([{}], model=engine, usage_events=steady_usage())
    inactive = {r.id: r.reason for r in decided.inactive}
    assert "nps_responses" in inactive["override.at_risk"]

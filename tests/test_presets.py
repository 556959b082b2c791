"""The shipped presets reproduce SPEC.md §2 exactly, band edges included."""

from __future__ import annotations

import pytest
import yaml

from tests.conftest import decide, row
from touchmodel.model.loader import PRESETS, load_model, model_from_dict, preset_yaml

INF = None

# (id, level, band min, band max, owner, ratio min, ratio max, cost min, cost max, calls)
STANDARD = [
    ("digital", "tech", 0, 10_000, "automation", 500, INF, 20, 50, "none"),
    ("low", "low", 10_000, 25_000, "pooled_csm", 50, 100, 100, 200, "ad_hoc"),
    ("medium", "medium", 25_000, 100_000, "dedicated_csm", 30, 50, 500, 1000, "quarterly"),
    ("high", "high", 100_000, INF, "dedicated_csm", 15, 25, 2000, 5000, "monthly"),
]
HYBRID = [
    ("self-service", "tech", 0, 10_000, "automation", None, None, 20, 50, "none"),
    ("light", "low", 10_000, 50_000, "pooled_csm", 50, 80, 100, 200, "quarterly"),
    ("medium", "medium", 50_000, 100_000, "dedicated_csm", 30, 50, 500, 1000, "quarterly"),
    ("high", "high", 100_000, INF, "dedicated_csm", 15, 25, 2000, 5000, "monthly"),
]
DESIGN = [
    ("tech", "tech", 0, 5_000, "automation", None, None, 20, 50, "none"),
    ("low", "low", 5_000, 25_000, "pooled_csm", 200, 500, 100, 200, "ad_hoc"),
    ("medium", "medium", 25_000, 100_000, "pooled_csm", 50, 100, 500, 1000, "monthly"),
    ("high", "high", 100_000, INF, "dedicated_csm", 15, 30, 2000, 5000, "monthly"),
]


@pytest.mark.parametrize(
    "preset,table", [("standard", STANDARD), ("hybrid", HYBRID), ("touch-model-design", DESIGN)]
)
def test_preset_tiers_match_spec(preset: str, table: list[tuple]) -> None:
    model = load_model(preset)
    got = []
    for t in model.tiers:
        ratio = t.accounts_per_csm
        got.append((
            t.id, t.level, t.band.min, t.band.max, t.owner,
            ratio.min if ratio else None, ratio.max if ratio else None,
            t.cost_per_account.min, t.cost_per_account.max, t.scheduled_calls,
        ))  # fmt: skip
    assert got == table


def test_touch_model_design_share_of_base() -> None:
    model = load_model("touch-model-design")
    assert model.tier("high").share_of_base.min == 15 and model.tier("high").share_of_base.max == 20
    assert (
        model.tier("medium").share_of_base.min == 30
        and model.tier("medium").share_of_base.max == 40
    )


@pytest.mark.parametrize("preset", PRESETS)
def test_preset_yaml_round_trips(preset: str) -> None:
    again = model_from_dict(yaml.safe_load(preset_yaml(preset)), "roundtrip")
    assert again == load_model(preset)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_has_the_default_triggers(preset: str) -> None:
    ids = {t.id for t in load_model(preset).triggers}
    assert ids == {
        "value.dedicated_csm", "risk.usage_decline", "risk.usage_drop_mom", "risk.inactive",
        "risk.feature_abandonment", "risk.ticket_spike", "risk.nps_detractor",
        "risk.negative_feedback", "risk.payment_failed", "risk.downgrade_or_cancel",
        "risk.health_low", "expansion.plan_capacity", "expansion.seat_growth",
        "expansion.premium_interest", "expansion.integration", "expansion.usage_velocity",
        "complexity.enterprise_feature_on_starter", "executive.contact", "executive.intent",
        "lifecycle.renewal_window", "lifecycle.milestone",
    }  # fmt: skip


EDGES = {
    "standard": [(0, "digital"), (9_999.99, "digital"), (10_000, "low"), (24_999, "low"),
                 (25_000, "medium"), (50_000, "medium"), (99_999.99, "medium"),
                 (100_000, "high"), (1_000_000, "high")],
    "hybrid": [(9_999, "self-service"), (10_000, "light"), (25_000, "light"), (49_999, "light"),
               (50_000, "medium"), (100_000, "high")],
    "touch-model-design": [(4_999, "tech"), (5_000, "low"), (10_000, "low"), (25_000, "medium"),
                           (50_000, "medium"), (100_000, "high")],
}  # fmt: skip


@pytest.mark.parametrize("preset", PRESETS)
def test_band_edges_are_half_open(preset: str) -> None:
    cases = EDGES[preset]
    accounts = [{"account_id": f"X{i}", "arr": float(arr)} for i, (arr, _) in enumerate(cases)]
    decided = decide(accounts, model=preset)
    for i, (arr, tier) in enumerate(cases):
        assert row(decided, f"X{i}")["tier"] == tier, (preset, arr)


def test_strategic_flag_lifts_into_high_touch_but_never_lowers() -> None:
    decided = decide([
        {"account_id": "S", "arr": 4000.0, "strategic": True},
        {"account_id": "H", "arr": 400_000.0, "strategic": True},
    ])  # fmt: skip
    s = row(decided, "S")
    assert (s["tier"], s["tier_level"]) == ("high", "high")
    assert "strategic account lifted to tier 'high'" in s["level_reasons"]
    assert row(decided, "H")["tier"] == "high"

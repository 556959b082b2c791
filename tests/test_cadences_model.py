"""The ``cadences`` section of the touch-model file: defaults, overrides, errors, properties."""

from __future__ import annotations

import calendar
import copy
import datetime as dt
from collections import Counter
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_cadences import START, account, accounts_table, by_key, d, plan
from touchmodel.errors import ModelFileError
from touchmodel.model import cadences, schema
from touchmodel.model.cadences import Cadences
from touchmodel.model.loader import PRESETS, load_model, model_from_dict, preset_dict, preset_yaml
from touchmodel.ops.cadences import plan_touchpoints

STANDARD = load_model("standard")


def model_with(**cad: Any) -> Any:
    """The standard preset with keys of its ``cadences`` section replaced."""
    data = preset_dict("standard")
    data["cadences"] = copy.deepcopy(data["cadences"]) | cad
    return model_from_dict(data, "my.yaml")


def problems_of(**cad: Any) -> str:
    with pytest.raises(ModelFileError) as exc:
        model_with(**cad)
    return str(exc.value)


@pytest.mark.parametrize("preset", PRESETS)
def test_presets_reproduce_the_code_defaults(preset: str) -> None:
    assert load_model(preset).cadences == Cadences()


def test_a_model_without_cadences_gets_the_defaults() -> None:
    data = preset_dict("standard")
    del data["cadences"]
    assert model_from_dict(data, "my.yaml").cadences == STANDARD.cadences


def test_model_show_text_carries_the_cadences_and_their_conventions() -> None:
    text = preset_yaml("standard")
    assert "cadences:" in text
    assert "day 1 is the contract start date" in text
    assert "weekly_cap: 3" in text


def test_literals_match_the_schema() -> None:
    # cadences.py restates them to avoid an import cycle; they must not drift.
    assert get_args(cadences.Channel) == get_args(schema.Channel)
    assert get_args(cadences.Level) == get_args(schema.Level)
    assert cadences.LEVELS == schema.LEVELS
    assert get_args(cadences.ScheduledCalls) == get_args(schema.ScheduledCalls)


def test_spec_figures_in_the_defaults() -> None:
    c = STANDARD.cadences
    assert [s.day for s in c.onboarding.steps] == [1, 3, 7, 14]
    assert [s.day for s in c.activation.steps] == [7, 14, 30]
    assert c.activation.tier_levels == ["tech"]
    assert [s.days_before for s in c.renewal.steps] == [60, 30, 14]
    assert (c.weekly_cap, c.horizon_days) == (3, 14)
    assert c.ebr.tier_levels == ["high"] and c.ebr.every.months == 3
    assert c.scheduled_calls.calls["monthly"].every.months == 1
    assert c.scheduled_calls.calls["quarterly"].every.months == 3


# --- overrides change the plan -----------------------------------------------------------


def test_onboarding_days_overridden_in_yaml() -> None:
    model = model_with(
        onboarding={
            "steps": [
                {"day": 1, "title": "Welcome", "template": "onboarding_day1"},
                {"day": 2, "title": "Next", "template": "onboarding_day3"},
            ]
        }
    )
    rows = plan([account(tier="digital")], model=model)
    assert [(r["key"], r["due"]) for r in rows if r["sequence"] == "onboarding"] == [
        ("onboarding.day1", d("2027-01-04")),
        ("onboarding.day2", d("2027-01-05")),
    ]


def test_weekly_cap_overridden_in_yaml() -> None:
    rows = plan([account(tier="digital")], model=model_with(weekly_cap=1))
    first_week = [r for r in rows if r["automated"] and r["due"] <= d("2027-01-10")]
    assert [r["status"] for r in first_week].count("planned") == 1


def test_horizon_overridden_in_yaml() -> None:
    rows = plan([account(tier="digital")], model=model_with(horizon_days=1))
    assert [r["key"] for r in rows] == ["onboarding.day1"]


def test_calendar_item_overridden_in_yaml() -> None:
    high = copy.deepcopy(preset_dict("standard")["cadences"]["calendars"])
    high["high"][0]["at"] = {"day": 3}
    rows = plan([account(tier="high")], model=model_with(calendars=high))
    assert by_key(rows)["calendar.high.kickoff"]["due"] == d("2027-01-06")


# --- errors name the dotted path --------------------------------------------------------


def test_unknown_level_in_calendars() -> None:
    cals = preset_dict("standard")["cadences"]["calendars"] | {"urgent": []}
    assert "cadences.calendars.urgent: unknown key" in problems_of(calendars=cals)


def test_unknown_level_in_a_sequence() -> None:
    msg = problems_of(activation={"tier_levels": ["teck"], "steps": []})
    assert "cadences.activation.tier_levels[0]: value 'teck'" in msg


def test_duplicate_calendar_keys() -> None:
    cals = copy.deepcopy(preset_dict("standard")["cadences"]["calendars"])
    cals["high"][1]["key"] = "kickoff"
    msg = problems_of(calendars=cals)
    assert "cadences.calendars.high[1].key: value 'kickoff' -- expected a key unique" in msg


def test_duplicate_onboarding_days() -> None:
    step = {"day": 3, "title": "x", "template": "onboarding_day3"}
    msg = problems_of(onboarding={"steps": [step, step]})
    assert "cadences.onboarding.steps[1].day: value 3 -- expected each day once" in msg


def test_bad_template_name() -> None:
    cals = copy.deepcopy(preset_dict("standard")["cadences"]["calendars"])
    cals["low"][1]["template"] = "welcom"
    assert "cadences.calendars.low[1].template: value 'welcom'" in problems_of(calendars=cals)


def test_automated_email_needs_a_template() -> None:
    cals = copy.deepcopy(preset_dict("standard")["cadences"]["calendars"])
    del cals["low"][1]["template"]
    msg = problems_of(calendars=cals)
    assert (
        "cadences.calendars.low[1].template: missing -- an automated email needs a template" in msg
    )


def test_delivered_by_must_name_a_sequence_email() -> None:
    cals = copy.deepcopy(preset_dict("standard")["cadences"]["calendars"])
    cals["medium"][0]["delivered_by"] = "onboarding.day2"
    assert "cadences.calendars.medium[0].delivered_by: value 'onboarding.day2'" in problems_of(
        calendars=cals
    )


def test_one_off_or_recurring_not_both() -> None:
    cals = copy.deepcopy(preset_dict("standard")["cadences"]["calendars"])
    cals["high"][0]["every"] = {"weeks": 1}
    assert "cadences.calendars.high[0]: -- expected either 'at'" in problems_of(calendars=cals)


def test_owner_must_match_automated() -> None:
    cals = copy.deepcopy(preset_dict("standard")["cadences"]["calendars"])
    cals["high"][0]["owner"] = "automation"
    assert "cadences.calendars.high[0].owner: value 'automation'" in problems_of(calendars=cals)


def test_when_needs_exactly_one_unit() -> None:
    cals = copy.deepcopy(preset_dict("standard")["cadences"]["calendars"])
    cals["high"][0]["at"] = {"week": 1, "day": 2}
    assert "cadences.calendars.high[0].at:" in problems_of(calendars=cals)


# --- properties --------------------------------------------------------------------------

TIERS = ["digital", "low", "medium", "high"]
LEVEL_NAMES = ["tech", "low", "medium", "high"]
STAGES = ["onboarding", "growth", "renewal", "at_risk"]


def add_months(day: dt.date, months: int) -> dt.date:
    y, m = divmod(day.month - 1 + months, 12)
    year, month = day.year + y, m + 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def reference(start: dt.date, months: int, days: int, step_months: int, step_days: int) -> list:
    """Every occurrence of a recurring item, counted naively from k = 1."""
    return [
        add_months(start, months + k * step_months) + dt.timedelta(days=days + k * step_days)
        for k in range(1, 200)
    ]


account_st = st.fixed_dictionaries(
    {
        "tier": st.sampled_from(TIERS),
        "level": st.sampled_from(LEVEL_NAMES),
        "stage": st.sampled_from(STAGES),
        "start": st.dates(dt.date(2024, 1, 1), dt.date(2028, 12, 31)),
        "renewal": st.none() | st.dates(dt.date(2024, 1, 1), dt.date(2031, 12, 31)),
    }
)


@settings(max_examples=40, deadline=None)
@given(
    accounts=st.lists(account_st, min_size=1, max_size=4),
    as_of=st.dates(dt.date(2024, 1, 1), dt.date(2030, 12, 31)),
    horizon=st.integers(0, 120),
)
def test_plan_properties(accounts: list[dict[str, Any]], as_of: dt.date, horizon: int) -> None:
    model = STANDARD.model_copy(
        update={"cadences": STANDARD.cadences.model_copy(update={"horizon_days": horizon})}
    )
    rows_in = [
        account(f"A{i}", a["tier"], a["level"], a["start"], a["renewal"], a["stage"])
        for i, a in enumerate(accounts)
    ]
    rows = plan_touchpoints(model, accounts_table(rows_in), as_of).to_pylist()
    end = as_of + dt.timedelta(days=horizon)
    keys = [(r["account_id"], r["key"]) for r in rows]
    assert len(keys) == len(set(keys))
    assert all(as_of <= r["due"] <= end for r in rows)
    weeks = Counter(
        (r["account_id"], r["due"].isocalendar()[:2])
        for r in rows
        if r["automated"] and r["status"] == "planned"
    )
    assert all(n <= 3 for n in weeks.values())
    # Recurring items: exactly the naive enumeration's occurrences inside the window.
    for i, a in enumerate(rows_in):
        mine = {r["due"] for r in rows if r["account_id"] == f"A{i}"}
        got = {
            r["due"]
            for r in rows
            if r["account_id"] == f"A{i}" and r["key"].startswith("calendar.high.checkin@")
        }
        if a["touch_level"] == "high":
            want = {x for x in reference(a["contract_start"], 3, 0, 0, 14) if as_of <= x <= end}
            assert got == want
        calls = {r["due"] for r in rows if r["account_id"] == f"A{i}" and "calls." in r["key"]}
        if a["tier"] == "high":
            want = {x for x in reference(a["contract_start"], 0, 0, 1, 0) if as_of <= x <= end}
            assert calls == want
        assert mine >= got


def test_planner_same_for_each_account_alone_and_together() -> None:
    # One pass for all accounts must equal planning each alone: no cross-account leaks.
    accounts = [account("A", "digital"), account("B", "high", start=d("2026-12-31"))]
    together = plan(accounts, as_of=START)
    alone = [r for a in accounts for r in plan([a], as_of=START)]
    assert sorted(together, key=lambda r: (r["account_id"], r["key"])) == sorted(
        alone, key=lambda r: (r["account_id"], r["key"])
    )

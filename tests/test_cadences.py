"""The touchpoint planner against SPEC §5, worked from a contract start of Monday 2027-01-04.

Conventions under test (model/cadences.py): day 1 = contract start; week N =
day 7N - 6; month N = N calendar months after contract start.
"""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from typing import Any

import pyarrow as pa
import pytest

from touchmodel.errors import DataError
from touchmodel.model.loader import load_model
from touchmodel.model.schema import TouchModel
from touchmodel.ops.cadences import OUTPUT_SCHEMA, plan_touchpoints

START = dt.date(2027, 1, 4)  # a Monday: days 1, 3 and 7 share one ISO week
STANDARD = load_model("standard")
LEVEL_OF_TIER = {"digital": "tech", "low": "low", "medium": "medium", "high": "high"}


def d(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def account(
    account_id: str = "A1",
    tier: str = "high",
    level: str | None = None,
    start: dt.date = START,
    renewal: dt.date | None = None,
    stage: str = "growth",
) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "tier": tier,
        "touch_level": level or LEVEL_OF_TIER[tier],
        "contract_start": start,
        "renewal_date": renewal,
        "lifecycle_stage": stage,
    }


def accounts_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(
        rows,
        schema=pa.schema(
            [
                ("account_id", pa.string()),
                ("tier", pa.string()),
                ("touch_level", pa.string()),
                ("contract_start", pa.date32()),
                ("renewal_date", pa.date32()),
                ("lifecycle_stage", pa.string()),
            ]
        ),
    )


def with_cadences(model: TouchModel = STANDARD, **update: Any) -> TouchModel:
    return model.model_copy(update={"cadences": model.cadences.model_copy(update=update)})


YEAR = with_cadences(horizon_days=400)  # sees a whole year of the calendar at once


def plan(
    rows: list[dict[str, Any]],
    as_of: dt.date = START,
    model: TouchModel = YEAR,
    existing: pa.Table | None = None,
) -> list[dict[str, Any]]:
    return plan_touchpoints(model, accounts_table(rows), as_of, existing).to_pylist()


def by_key(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in rows}


def dues(rows: list[dict[str, Any]], prefix: str) -> list[dt.date]:
    return [r["due"] for r in rows if r["key"].startswith(prefix)]


# --- SPEC §5 "Cadence calendars", one test per line ---------------------------------------

HIGH = plan([account(tier="high")])
MEDIUM = plan([account(tier="medium")])
LOW = plan([account(tier="low")])


def test_high_week1_kickoff_call() -> None:
    row = by_key(HIGH)["calendar.high.kickoff"]
    assert (row["due"], row["channel"], row["automated"], row["owner_role"]) == (
        d("2027-01-04"),
        "video",
        False,
        "csm",
    )


def test_high_week2_implementation_checkin() -> None:
    assert by_key(HIGH)["calendar.high.implementation_checkin"]["due"] == d("2027-01-11")


def test_high_week4_first_success_milestone_review() -> None:
    assert by_key(HIGH)["calendar.high.success_milestone_review"]["due"] == d("2027-01-25")


def test_high_month2_first_month_retrospective() -> None:
    assert by_key(HIGH)["calendar.high.first_month_retrospective"]["due"] == d("2027-03-04")


def test_high_month3_qbr() -> None:
    assert by_key(HIGH)["calendar.high.qbr"]["due"] == d("2027-04-04")


def test_high_then_biweekly_checkins() -> None:
    got = dues(HIGH, "calendar.high.checkin@")
    assert got[:3] == [d("2027-04-18"), d("2027-05-02"), d("2027-05-16")]
    assert all((b - a).days == 14 for a, b in pairwise(got))
    assert "calendar.high.checkin@2027-04-18" in by_key(HIGH)


def test_medium_week1_onboarding_email_is_the_onboarding_day1_email() -> None:
    day1 = [r for r in MEDIUM if r["due"] == START and r["automated"]]
    assert [r["key"] for r in day1] == ["onboarding.day1"]  # sent once, not twice


def test_medium_week2_checkin_call() -> None:
    row = by_key(MEDIUM)["calendar.medium.checkin_call"]
    assert (row["due"], row["channel"], row["automated"]) == (d("2027-01-11"), "phone", False)


def test_medium_month1_milestone_checkin() -> None:
    assert by_key(MEDIUM)["calendar.medium.milestone_checkin"]["due"] == d("2027-02-04")


def test_medium_month3_first_qbr() -> None:
    assert by_key(MEDIUM)["calendar.medium.qbr"]["due"] == d("2027-04-04")


def test_medium_then_monthly_touchpoints_mixing_call_and_email() -> None:
    monthly = [r for r in MEDIUM if r["key"].startswith("calendar.medium.monthly_")]
    months = [(r["due"].month, r["channel"]) for r in monthly if r["due"].year == 2027]
    assert months == [
        (5, "email"),
        (6, "phone"),
        (7, "email"),
        (8, "phone"),
        (9, "email"),
        (10, "phone"),
        (11, "email"),
        (12, "phone"),
    ]
    assert all(r["due"].day == 4 for r in monthly)


def test_low_day1_welcome_series_is_the_onboarding_sequence() -> None:
    keys = by_key(LOW)
    assert "calendar.low.welcome_series" not in keys
    assert keys["onboarding.day1"]["due"] == START


def test_low_week2_automated_checkin_email_with_resources() -> None:
    row = by_key(LOW)["calendar.low.resources_checkin"]
    assert (row["due"], row["automated"], row["owner_role"], row["template"]) == (
        d("2027-01-11"),
        True,
        "automation",
        "touchpoint",
    )


def test_low_month1_in_app_milestone_celebration() -> None:
    row = by_key(LOW)["calendar.low.milestone_celebration"]
    assert (row["due"], row["channel"], row["automated"]) == (d("2027-02-04"), "in_app", True)


def test_low_month3_health_review_with_csm() -> None:
    row = by_key(LOW)["calendar.low.health_review"]
    assert (row["due"], row["owner_role"], row["automated"]) == (d("2027-04-04"), "csm", False)


def test_low_then_quarterly_automated_checkins() -> None:
    assert dues(LOW, "calendar.low.quarterly_checkin@") == [
        d("2027-07-04"),
        d("2027-10-04"),
        d("2028-01-04"),
    ]


def test_tech_level_has_no_calendar() -> None:
    rows = plan([account(tier="digital")])
    assert not [r for r in rows if r["sequence"].startswith("calendar")]


def test_calendar_follows_the_effective_level_not_the_tier() -> None:
    # In onboarding, the override makes a low-tier account high touch (SPEC §3).
    rows = plan([account(tier="low", level="high", stage="onboarding")])
    assert "calendar.high.kickoff" in by_key(rows)
    assert not [r for r in rows if r["sequence"] == "calendar.low"]


def test_month_n_clips_to_the_end_of_short_months() -> None:
    rows = plan([account(tier="high", start=d("2027-01-31"))], as_of=d("2027-01-31"))
    assert by_key(rows)["calendar.high.first_month_retrospective"]["due"] == d("2027-03-31")
    assert dues(rows, "calls.monthly@")[:2] == [d("2027-02-28"), d("2027-03-31")]


# --- automated sequences --------------------------------------------------------------


@pytest.mark.parametrize("tier", ["digital", "low", "medium", "high"])
def test_onboarding_emails_days_1_3_7_14_for_every_tier(tier: str) -> None:
    rows = by_key(plan([account(tier=tier)]))
    got = {k: (rows[k]["due"], rows[k]["template"]) for k in rows if k.startswith("onboarding.")}
    assert got == {
        "onboarding.day1": (d("2027-01-04"), "onboarding_day1"),
        "onboarding.day3": (d("2027-01-06"), "onboarding_day3"),
        "onboarding.day7": (d("2027-01-10"), "onboarding_day7"),
        "onboarding.day14": (d("2027-01-17"), "onboarding_day14"),
    }


def test_activation_days_7_14_30_for_tech() -> None:
    rows = by_key(plan([account(tier="digital")]))
    got = {k: (rows[k]["due"], rows[k]["template"]) for k in rows if k.startswith("activation.")}
    assert got == {
        "activation.day7": (d("2027-01-10"), "activation_day7"),
        "activation.day14": (d("2027-01-17"), "activation_day14"),
        "activation.day30": (d("2027-02-02"), "activation_day30"),
    }


def test_activation_follows_the_tier_level_during_onboarding() -> None:
    # A tech-tier account is high touch in onboarding, and still gets the campaign.
    rows = plan([account(tier="digital", level="high", stage="onboarding")])
    assert "activation.day7" in by_key(rows)


@pytest.mark.parametrize("tier", ["low", "medium", "high"])
def test_no_activation_above_tech(tier: str) -> None:
    assert not dues(plan([account(tier=tier)]), "activation.")


def test_renewal_outreach_60_30_14_days_before_renewal_date() -> None:
    rows = plan([account(renewal=d("2027-12-31"))], as_of=d("2027-10-01"))
    got = {r["key"]: r["template"] for r in rows if r["sequence"] == "renewal"}
    assert got == {
        "renewal.60@2027-11-01": "renewal_60",
        "renewal.30@2027-12-01": "renewal_30",
        "renewal.14@2027-12-17": "renewal_14",
    }


def test_renewal_defaults_to_the_next_anniversary() -> None:
    rows = plan([account(tier="digital")], as_of=d("2027-10-01"))
    assert dues(rows, "renewal.") == [d("2027-11-05"), d("2027-12-05"), d("2027-12-21")]


# --- scheduled calls and EBR ---------------------------------------------------------------


def test_scheduled_calls_monthly_for_high_tier() -> None:
    got = dues(HIGH, "calls.monthly@")
    assert got[:4] == [d("2027-02-04"), d("2027-03-04"), d("2027-04-04"), d("2027-05-04")]
    assert not dues(HIGH, "calls.quarterly@")


def test_scheduled_calls_quarterly_for_medium_tier() -> None:
    assert dues(MEDIUM, "calls.quarterly@")[:3] == [
        d("2027-04-04"),
        d("2027-07-04"),
        d("2027-10-04"),
    ]
    assert not dues(MEDIUM, "calls.monthly@")


@pytest.mark.parametrize("tier", ["low", "digital"])  # ad_hoc and none
def test_no_scheduled_calls_for_ad_hoc_or_none(tier: str) -> None:
    assert not dues(plan([account(tier=tier)]), "calls.")


@pytest.mark.parametrize("stage", ["onboarding", "at_risk"])
def test_onboarding_and_at_risk_accounts_get_monthly_calls(stage: str) -> None:
    rows = plan([account(tier="low", stage=stage)])
    assert dues(rows, "calls.monthly@")[0] == d("2027-02-04")


def test_ebr_quarterly_for_high_tier_only() -> None:
    assert dues(HIGH, "ebr@")[:3] == [d("2027-04-04"), d("2027-07-04"), d("2027-10-04")]
    assert by_key(HIGH)["ebr@2027-04-04"]["channel"] == "in_person"
    assert not dues(MEDIUM, "ebr@")


def test_one_csm_meeting_a_day() -> None:
    rows = by_key(HIGH)
    assert rows["ebr@2027-04-04"]["status"] == "planned"
    for key in ("calendar.high.qbr", "calls.monthly@2027-04-04"):
        assert rows[key]["status"] == "skipped"
        assert rows[key]["reason"] == "same day as ebr@2027-04-04: one CSM meeting covers both"


# --- window ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_of", "included"),
    [
        ("2027-01-02", False),  # day 14 is as-of + 15: beyond the horizon
        ("2027-01-03", True),  # as-of + 14: the last day of the window
        ("2027-01-17", True),  # as-of itself
        ("2027-01-18", False),  # already past: never backfilled
    ],
)
def test_horizon_window_edges(as_of: str, included: bool) -> None:
    rows = plan([account(tier="digital")], as_of=d(as_of), model=STANDARD)
    assert ("onboarding.day14" in by_key(rows)) is included


def test_default_horizon_is_14_days() -> None:
    # The week-4 review is due 2027-01-25: 14 days after 01-11, 15 after 01-10.
    review = "calendar.high.success_milestone_review"
    assert review in by_key(plan([account()], as_of=d("2027-01-11"), model=STANDARD))
    assert review not in by_key(plan([account()], as_of=d("2027-01-10"), model=STANDARD))


# --- weekly cap --------------------------------------------------------------------------

CAP_REASON = (
    "weekly cap: 3 automated touchpoints per account per ISO week, week of 2027-01-04 already full"
)


def test_weekly_cap_keeps_the_first_three_automated() -> None:
    # Tech: onboarding days 1, 3, 7 and activation day 7 all in the ISO week of 2027-01-04.
    rows = plan([account(tier="digital")], model=STANDARD)
    week = [r for r in rows if r["automated"] and r["due"] <= d("2027-01-10")]
    assert [(r["key"], r["status"]) for r in week] == [
        ("onboarding.day1", "planned"),
        ("onboarding.day3", "planned"),
        ("activation.day7", "skipped"),
        ("onboarding.day7", "planned"),
    ]
    assert by_key(rows)["activation.day7"]["reason"] == CAP_REASON
    assert all(r["reason"] is None for r in week if r["status"] == "planned")


def test_weekly_cap_is_per_account() -> None:
    rows = plan([account("A1", tier="digital"), account("A2", tier="digital")], model=STANDARD)
    skipped = [(r["account_id"], r["key"]) for r in rows if r["status"] == "skipped"]
    assert skipped == [("A1", "activation.day7"), ("A2", "activation.day7")]


def test_weekly_cap_ignores_human_touchpoints() -> None:
    rows = plan([account(tier="high")], model=STANDARD)
    assert all(r["status"] == "planned" for r in rows)


def existing_rows(rows: list[dict[str, Any]], with_key: bool = True) -> pa.Table:
    fields = [
        ("account_id", pa.string()),
        ("due", pa.date32()),
        ("automated", pa.bool_()),
        ("status", pa.string()),
    ]
    if with_key:
        fields.append(("key", pa.string()))
    return pa.Table.from_pylist(rows, schema=pa.schema(fields))


def test_weekly_cap_counts_existing_automated_touchpoints() -> None:
    # As of Wednesday: two automated emails already went out on Monday and Tuesday.
    sent = existing_rows(
        [
            {"account_id": "A1", "due": d("2027-01-04"), "automated": True, "status": "sent"},
            {"account_id": "A1", "due": d("2027-01-05"), "automated": True, "status": "sent"},
            {"account_id": "A1", "due": d("2027-01-05"), "automated": False, "status": "sent"},
            {"account_id": "A1", "due": d("2027-01-05"), "automated": True, "status": "cancelled"},
            {"account_id": "A2", "due": d("2027-01-05"), "automated": True, "status": "sent"},
        ],
        with_key=False,
    )
    rows = plan([account(tier="digital")], as_of=d("2027-01-06"), model=STANDARD, existing=sent)
    week = {r["key"]: r["status"] for r in rows if r["due"] <= d("2027-01-10")}
    assert week == {
        "onboarding.day3": "planned",
        "onboarding.day7": "skipped",
        "activation.day7": "skipped",
    }


def test_replanned_keys_are_not_counted_twice() -> None:
    # The previous plan's rows come back as `existing`: same keys, same touchpoints.
    first = plan_touchpoints(STANDARD, accounts_table([account(tier="digital")]), START)
    again = plan([account(tier="digital")], model=STANDARD, existing=first)
    assert again == first.to_pylist()


def test_existing_without_key_counts_every_automated_row() -> None:
    first = plan_touchpoints(STANDARD, accounts_table([account(tier="digital")]), START)
    no_keys = first.select(["account_id", "due", "automated", "status"])
    again = plan([account(tier="digital")], model=STANDARD, existing=no_keys)
    # Three planned rows already fill the first week: everything automated in it is skipped.
    assert {r["status"] for r in again if r["due"] <= d("2027-01-10")} == {"skipped"}


# --- purity, overrides and inputs ---------------------------------------------------------


def test_planning_twice_is_identical_and_keys_are_stable() -> None:
    accounts = [account("B", tier="medium"), account("A", tier="high"), account("C", "digital")]
    one = plan(accounts, as_of=d("2027-03-01"))
    two = plan(list(reversed(accounts)), as_of=d("2027-03-01"))
    assert one == two
    keys = [(r["account_id"], r["key"]) for r in one]
    assert len(keys) == len(set(keys))
    assert [(r["account_id"], r["due"], r["key"]) for r in one] == sorted(
        (r["account_id"], r["due"], r["key"]) for r in one
    )


def test_output_schema_even_when_empty() -> None:
    out = plan_touchpoints(STANDARD, accounts_table([]), START)
    assert out.schema == OUTPUT_SCHEMA
    assert out.num_rows == 0


def test_unknown_tier_or_level_is_refused() -> None:
    with pytest.raises(DataError, match=r"accounts.tier has unknown value\(s\) \['platinum'\]"):
        plan([account(tier="high") | {"tier": "platinum"}])
    with pytest.raises(DataError, match=r"accounts\.touch_level"):
        plan([account(tier="high", level="ultra")])


def test_missing_input_column_is_refused() -> None:
    table = accounts_table([account()]).drop_columns(["lifecycle_stage"])
    with pytest.raises(DataError, match="lacks column"):
        plan_touchpoints(STANDARD, table, START)

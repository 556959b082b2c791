"""Staffing the at-risk queue: item values, the knapsack, the queue order, one more CSM."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

from touchmodel.errors import TouchmodelError
from touchmodel.fit.allocate import (
    CURVE,
    PROXY,
    allocate,
    item_values,
    one_more_csm,
    queue_order,
    risk_probability,
    route_terms,
    staff,
)
from touchmodel.model.loader import load_model
from touchmodel.plan.defaults import Allocation
from touchmodel.plan.team import outreach_minutes, team_file_from_dict


def _model_with_routes(routes: dict[str, dict[str, object]]) -> object:
    base = load_model("standard").model_dump(mode="json", exclude_none=True)
    base["routes"].update(routes)
    return type(load_model("standard")).model_validate(base)


def _brute_force(value: np.ndarray, minutes: np.ndarray, capacity: float) -> float:
    best = 0.0
    for pick in itertools.product([False, True], repeat=len(value)):
        mask = np.array(pick)
        if minutes[mask].sum() <= capacity:
            best = max(best, float(value[mask].sum()))
    return best


def test_the_knapsack_picks_the_two_cheaper_items_over_the_single_biggest() -> None:
    # 90 minutes: A alone (1000) loses to B + C (900 + 800), which fit together.
    value = np.array([1000.0, 900.0, 800.0, 50.0])
    minutes = np.array([60.0, 45.0, 45.0, 45.0])
    csm = np.ones(4, dtype=bool)
    staffed = staff(value, minutes, csm, 90.0)
    assert staffed.tolist() == [False, True, True, False]
    assert value[staffed].sum() == _brute_force(value, minutes, 90.0)


def test_after_the_first_item_that_does_not_fit_smaller_ones_still_fill_the_week() -> None:
    # By value per minute: A (10/min, 60 min), B (9/min, 60 min), C (5/min, 20 min).
    # 100 minutes: A fits, B does not (120 > 100), C still does.
    value = np.array([600.0, 540.0, 100.0])
    minutes = np.array([60.0, 60.0, 20.0])
    staffed = staff(value, minutes, np.ones(3, dtype=bool), 100.0)
    assert staffed.tolist() == [True, False, True]


def test_work_that_takes_no_csm_time_is_always_staffed() -> None:
    value = np.array([10.0, 500.0])
    minutes = np.array([0.0, 45.0])
    csm = np.array([False, True])
    assert staff(value, minutes, csm, 0.0).tolist() == [True, False]
    assert staff(value, minutes, csm, None).tolist() == [True, True]


def test_greedy_is_within_one_item_and_half_of_the_optimum() -> None:
    # The knapsack bound of greedy by value per minute: it misses at most the
    # value of one item (the one that did not fit), and taking the best single
    # item when that is worth more keeps at least half. Brute force on seeded queues.
    rng = np.random.default_rng(3)
    for _ in range(60):
        n = 10
        value = rng.uniform(0, 1000, n)
        minutes = rng.choice([20.0, 45.0, 60.0], n)
        cap = float(rng.choice([60.0, 120.0, 240.0, 480.0]))
        picked = staff(value, minutes, np.ones(n, dtype=bool), cap)
        best = _brute_force(value, minutes, cap)
        assert minutes[picked].sum() <= cap
        assert value[picked].sum() >= max(best - value.max(), best / 2) - 1e-9


def test_one_big_item_beats_a_greedy_crumb() -> None:
    # 60 minutes: by value per minute the 10-minute item goes first and the
    # 60-minute one no longer fits; the big one alone keeps far more.
    value = np.array([100.0, 3000.0])
    minutes = np.array([10.0, 60.0])
    assert staff(value, minutes, np.ones(2, dtype=bool), 60.0).tolist() == [False, True]


def test_two_items_of_one_account_never_keep_more_than_its_arr_at_risk() -> None:
    account = np.array([0, 0, 1])
    at_risk = np.array([1000.0, 1000.0, 400.0])
    save = np.array([0.2, 0.5, 0.5])
    v = item_values(account, at_risk, save)
    # The 0.5 item first keeps 500; the 0.2 item keeps 0.2 of the 500 left.
    assert v.tolist() == pytest.approx([100.0, 500.0, 200.0])
    assert v[:2].sum() <= 1000.0


def test_queue_order_is_highest_value_first_ties_and_nan_keep_their_place() -> None:
    value = np.array([np.nan, 10.0, 30.0, 10.0, np.nan, 30.0])
    assert queue_order(value).tolist() == [2, 5, 1, 3, 0, 4]


def test_without_a_curve_the_health_proxy_is_used_and_named() -> None:
    health = np.array([80.0, 20.0, np.nan])
    p, basis = risk_probability(health, None, Allocation())
    assert basis == PROXY
    assert p.tolist() == pytest.approx([0.2, 0.8, 0.5])
    p, basis = risk_probability(health, np.array([0.05, 0.4, np.nan]), Allocation())
    assert basis == CURVE
    assert p.tolist() == pytest.approx([0.05, 0.4, 0.5])


def test_route_defaults_when_minutes_and_save_rate_are_absent() -> None:
    model = _model_with_routes(
        {
            "plain_call": {"team": "csm", "action": "Call"},
            "plain_mail": {"team": "automation", "action": "Mail"},
            "billing_team": {"team": "billing", "action": "Chase", "minutes": 30},
        }
    )
    terms = route_terms(model, Allocation())  # type: ignore[arg-type]
    assert (terms["plain_call"].minutes, terms["plain_call"].save_rate) == (45.0, 0.30)
    assert terms["plain_call"].csm_time
    assert (terms["plain_mail"].minutes, terms["plain_mail"].save_rate) == (0.0, 0.05)
    assert not terms["plain_mail"].csm_time
    assert not terms["billing_team"].csm_time  # not the CSMs' time
    # The shipped preset sets its own figures.
    shipped = route_terms(load_model("standard"), Allocation())
    assert (shipped["csm_immediate"].minutes, shipped["csm_immediate"].save_rate) == (60.0, 0.35)


def _decisions() -> tuple[pa.Table, np.ndarray]:
    # csm_immediate: 60 min, save 0.35; csm_outreach 45 min, 0.25; reengagement automated.
    table = pa.table(
        {
            "account_id": ["A", "B", "C", "D"],
            "triggers": [
                "risk.usage_decline",
                "risk.ticket_spike; expansion.seat_growth",
                "risk.inactive",
                "",
            ],
            "routes": ["csm_immediate", "csm_outreach; inapp_upsell", "reengagement", ""],
            "health_score": [20.0, 30.0, 10.0, 90.0],
        }
    )
    return table, np.array([100_000.0, 200_000.0, 50_000.0, 10_000.0])


def test_allocate_values_staffs_and_orders_the_risk_items_of_a_run() -> None:
    model = load_model("standard")
    decisions, arr = _decisions()
    out = allocate(model, decisions, arr, capacity_minutes=50.0)
    rows = out.items.to_pylist()
    # B: 0.7 x 200000 x 0.25 = 35000; A: 0.8 x 100000 x 0.35 = 28000; C: 0.9 x 50000 x 0.05.
    assert [(r["account_id"], r["trigger"]) for r in rows] == [
        ("B", "risk.ticket_spike"),
        ("A", "risk.usage_decline"),
        ("C", "risk.inactive"),
    ]
    assert [r["expected_arr_kept"] for r in rows] == pytest.approx([35000.0, 28000.0, 2250.0])
    # 50 minutes: B (45 min, 778/min) fits; A (60 min) does not; C takes no CSM time.
    assert [r["staffed"] for r in rows] == [True, False, True]
    assert out.basis == PROXY
    assert out.kept == pytest.approx(37250.0)
    assert out.left_over == pytest.approx(28000.0)
    assert out.minutes_needed == 105.0 and out.minutes_staffed == 45.0
    assert out.over_capacity == 1


def test_one_more_csm_is_what_the_next_block_of_capacity_keeps() -> None:
    model = load_model("standard")
    decisions, arr = _decisions()
    alloc = Allocation(hours_per_week=4, outreach_share=0.25)  # one CSM = 60 minutes
    out = allocate(model, decisions, arr, capacity_minutes=50.0, alloc=alloc)
    more = one_more_csm(out, alloc)
    assert more.minutes_per_week == 60.0
    # 110 minutes: B (45) and A (60) both fit now; A's 28000 is the gain.
    assert more.per_week == pytest.approx(28000.0)
    with pytest.raises(ValueError):
        one_more_csm(allocate(model, decisions, arr, capacity_minutes=None))


def test_team_file_capacity_uses_hours_and_outreach_share_per_entry() -> None:
    file = team_file_from_dict(
        {
            "csms": [
                {"name": "A", "count": 2, "tiers": ["high"]},
                {"name": "B", "tiers": ["low"], "hours_per_week": 20, "outreach_share": 0.5},
            ],
            "planning": {"allocation": {"outreach_share": 0.1}},
        },
        "team.yaml",
    )
    # 2 x 40 h x 0.1 + 20 h x 0.5 = 18 hours.
    assert outreach_minutes(file) == pytest.approx(18 * 60)


def test_a_bad_outreach_share_names_the_file_and_field() -> None:
    with pytest.raises(TouchmodelError, match=r"team.yaml: csms\[0\].outreach_share"):
        team_file_from_dict(
            {"csms": [{"name": "A", "tiers": ["high"], "outreach_share": 1.5}]}, "team.yaml"
        )

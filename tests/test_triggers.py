"""Every default trigger of SPEC.md §10 fires on its case and stays quiet just outside it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import days_ago, decide, row, steady_usage

Case = dict[str, Any]


def usage(
    per_day_last: int, per_day_prev: int, event: str = "report.created"
) -> list[dict[str, Any]]:
    rows = []
    for d in range(60):
        n = per_day_last if d < 30 else per_day_prev
        rows += [
            {"account_id": "A1", "timestamp": days_ago(d), "event": event, "user_id": "u1"}
        ] * n
    return rows


def events(name: str, n: int, age: int = 3) -> list[dict[str, Any]]:
    return [{"account_id": "A1", "timestamp": days_ago(age), "event": name, "user_id": "u1"}] * n


def tickets(category: str, ages: list[int]) -> list[dict[str, Any]]:
    return [
        {"ticket_id": f"T{i}", "account_id": "A1", "opened_at": days_ago(a), "category": category}
        for i, a in enumerate(ages)
    ]


def failed_payment(age: int) -> dict[str, Any]:
    return {"account_id": "A1", "invoice_id": f"I{age}", "due_date": days_ago(age).date(),
            "amount": 100.0, "status": "failed"}  # fmt: skip


# trigger id -> (positive case, negative case). A case is {"account": {...}, table: rows}.
CASES: dict[str, tuple[Case, Case]] = {
    "value.dedicated_csm": (
        {"account": {"arr": 50_000.0, "csm": None}},
        {"account": {"arr": 49_999.0, "csm": None}},
    ),
    "risk.usage_decline": (
        {"usage_events": usage(6, 10)},  # -40%
        {"usage_events": usage(7, 10)},  # -30%
    ),
    "risk.usage_drop_mom": (
        {"usage_events": usage(5, 10)},  # -50%
        {"usage_events": usage(6, 10)},  # -40%
    ),
    "risk.inactive": (
        {"usage_events": [r for r in steady_usage() if r["timestamp"] <= days_ago(30)]},
        {"usage_events": [r for r in steady_usage() if r["timestamp"] <= days_ago(29)]},
    ),
    "risk.feature_abandonment": (
        {"usage_events": usage(10, 10) + events("workflow.run", 5, age=40)},
        {
            "usage_events": usage(10, 10)
            + events("workflow.run", 5, age=40)
            + events("workflow.run", 1, age=29)
        },
    ),
    "risk.ticket_spike": (
        {"tickets": tickets("how-to", [0, 5, 13])},
        {"tickets": tickets("how-to", [0, 5, 14])},
    ),
    "risk.nps_detractor": (
        {"nps_responses": [{"account_id": "A1", "responded_at": days_ago(89), "score": 6}]},
        {"nps_responses": [{"account_id": "A1", "responded_at": days_ago(90), "score": 6}]},
    ),
    "risk.negative_feedback": (
        {"tickets": tickets("complaint", [29])},
        {"tickets": tickets("complaint", [30])},
    ),
    "risk.payment_failed": (
        {"payments": [failed_payment(age=29)]},
        {"payments": [failed_payment(age=30), {**failed_payment(age=5), "status": "paid"}]},
    ),
    "risk.downgrade_or_cancel": (
        {"tickets": tickets("cancellation", [29])},
        {"tickets": tickets("cancellation", [30]) + tickets("billing", [1])},
    ),
    "risk.health_low": (
        # Inactive for 40 days with a detractor score: health well under 40.
        {
            "usage_events": [r for r in steady_usage() if r["timestamp"] <= days_ago(40)],
            "nps_responses": [{"account_id": "A1", "responded_at": days_ago(10), "score": 1}],
        },
        {"usage_events": steady_usage()},
    ),
    "expansion.plan_capacity": (
        {"account": {"plan_limit": 375.0}, "usage_events": usage(10, 10)},  # 300/375 = 80%
        {"account": {"plan_limit": 376.0}, "usage_events": usage(10, 10)},
    ),
    "expansion.seat_growth": (
        {"usage_events": usage(10, 10) + events("seat.added", 2) + events("seat.removed", 1)},
        {"usage_events": usage(10, 10) + events("seat.added", 1) + events("seat.removed", 1)},
    ),
    "expansion.premium_interest": (
        {"usage_events": usage(10, 10) + events("premium.sso", 3, age=29)},
        {
            "usage_events": usage(10, 10)
            + events("premium.sso", 2)
            + events("premium.sso", 1, age=30)
        },
    ),
    "expansion.integration": (
        {"usage_events": usage(10, 10) + events("integration.slack", 1, age=29)},
        {
            "usage_events": usage(10, 10)
            + events("integration.slack", 1, age=2)
            + events("integration.slack", 1, age=45)
        },
    ),
    "expansion.usage_velocity": (
        {"usage_events": usage(15, 10)},
        {"usage_events": usage(14, 10)},
    ),
    "complexity.enterprise_feature_on_starter": (
        {"account": {"plan": "starter"}, "usage_events": usage(10, 10) + events("premium.sso", 1)},
        {"account": {"plan": "growth"}, "usage_events": usage(10, 10) + events("premium.sso", 1)},
    ),
    "executive.contact": (
        {"contacts": [{"contact_id": "C1", "account_id": "A1", "title": "VP Operations"}]},
        {"contacts": [{"contact_id": "C1", "account_id": "A1", "title": "Operations Manager"}]},
    ),
    "executive.intent": (
        {"usage_events": usage(10, 10) + events("security_questionnaire.requested", 1)},
        {"usage_events": usage(10, 10) + events("security_questionnaire.requested", 1, age=30)},
    ),
    "lifecycle.renewal_window": (
        {"account": {"renewal_date": days_ago(-60).date()}},
        {"account": {"renewal_date": days_ago(-59).date()}},
    ),
    "lifecycle.milestone": (
        {"usage_events": usage(10, 10) + events("milestone.first_workflow", 1)},
        {"usage_events": usage(10, 10)},
    ),
}


def _run(case: Case) -> dict[str, Any]:
    tables = {k: v for k, v in case.items() if k != "account"}
    tables.setdefault("usage_events", steady_usage())
    return row(decide([case.get("account", {})], **tables))


@pytest.mark.parametrize("trigger", sorted(CASES))
def test_trigger_fires_on_its_case(trigger: str) -> None:
    positive, _ = CASES[trigger]
    assert trigger in _run(positive)["triggers"]


@pytest.mark.parametrize("trigger", sorted(CASES))
def test_trigger_stays_quiet_outside_its_case(trigger: str) -> None:
    _, negative = CASES[trigger]
    assert trigger not in _run(negative)["triggers"]


def test_baseline_account_fires_nothing() -> None:
    assert _run({})["triggers"] == []


def test_every_default_trigger_has_cases() -> None:
    from touchmodel.model.loader import load_model

    assert {t.id for t in load_model("standard").triggers} == set(CASES)


@pytest.mark.parametrize(
    "arr,route",
    [(24_999.0, "inapp_upsell"), (25_000.0, "inside_sales"), (99_999.0, "inside_sales"),
     (100_000.0, "account_executive")],
)  # fmt: skip
def test_expansion_routes_by_value(arr: float, route: str) -> None:
    r = _run({"account": {"arr": arr}, "usage_events": usage(15, 10)})
    assert r["routes"][r["triggers"].index("expansion.usage_velocity")] == route


def test_missing_table_makes_its_rules_inactive_not_false() -> None:
    decided = decide([{}], usage_events=steady_usage())
    inactive = {r.id: r.reason for r in decided.inactive}
    assert "risk.ticket_spike" in inactive and "tickets" in inactive["risk.ticket_spike"]
    assert "risk.nps_detractor" in inactive and "risk.payment_failed" in inactive
    assert "risk.usage_decline" not in inactive
    assert inactive["health.sentiment"] == "needs nps_score_180d: table 'nps_responses' is missing"
    assert "health.usage_trend" not in inactive


@pytest.mark.parametrize(
    "title,executive",
    [("VP Operations", True), ("SVP Sales", True), ("EVP, Operations", True), ("CEO", True),
     ("Chief Revenue Officer", True), ("Vice President, Finance", True),
     ("Operations Manager", False), ("Director of Support", False), ("MVP Program Lead", False)],
)  # fmt: skip
def test_executive_titles(title: str, executive: bool) -> None:
    contact = {"contact_id": "C1", "account_id": "A1", "title": title}
    assert ("executive.contact" in _run({"contacts": [contact]})["triggers"]) is executive


def test_latest_nps_answer_wins_within_a_day() -> None:
    at = days_ago(3)
    answers = [
        {"account_id": "A1", "responded_at": at.replace(hour=9), "score": 3},
        {"account_id": "A1", "responded_at": at.replace(hour=17), "score": 9},
    ]
    r = _run({"nps_responses": answers})
    assert r["nps_latest_score"] == 9 and "risk.nps_detractor" not in r["triggers"]


def test_every_catalogued_signal_is_computed_with_its_type() -> None:
    from touchmodel.signals.catalog import BUILTIN

    decided = decide([{}], usage_events=steady_usage(), tickets=[], nps_responses=[], payments=[],
                     contacts=[])  # fmt: skip
    assert decided.unavailable == {}
    schema = decided.accounts.schema
    for info in BUILTIN:
        got = schema.field(info.name).type
        assert str(got) in {"float64": ("double",), "int64": ("int64",), "boolean": ("bool",),
                            "date": ("date32[day]",)}[info.type], (info.name, got)  # fmt: skip


def test_core_abandonment_with_glob_core_names_matches_exact_names() -> None:
    from touchmodel.engine import Engine
    from touchmodel.model.loader import model_from_dict, preset_dict

    data = preset_dict("standard")
    data["events"]["core"] = ["report.*", "dashboard.viewed", "workflow.*", "record.updated"]
    globbed = Engine(model_from_dict(data, "inline"))
    for positive, negative in [CASES["risk.feature_abandonment"]]:
        for case, expected in ((positive, True), (negative, False)):
            tables = {k: v for k, v in case.items() if k != "account"}
            r = row(decide([{}], model=globbed, **tables))
            assert ("risk.feature_abandonment" in r["triggers"]) is expected


def test_expansion_value_uses_the_price_list_step() -> None:
    from touchmodel.engine import Engine
    from touchmodel.model.loader import model_from_dict, preset_dict

    data = preset_dict("standard")
    data["plans"] = [{"id": "starter", "annual_price": 5000}, {"id": "growth", "annual_price": 15000},
                     {"id": "enterprise", "annual_price": 60000}]  # fmt: skip
    engine = Engine(model_from_dict(data, "inline"))
    decided = decide(
        [{"account_id": "S", "plan": "starter", "arr": 20_000.0},
         {"account_id": "G", "plan": "growth", "arr": 20_000.0},
         {"account_id": "E", "plan": "enterprise", "arr": 20_000.0}],
        model=engine, usage_events=[],
    )  # fmt: skip
    # starter -> growth is a 3x price (+200%), growth -> enterprise 4x (+300%); top plan: ARR.
    assert row(decided, "S")["expansion_value"] == 40_000.0
    assert row(decided, "G")["expansion_value"] == 60_000.0
    assert row(decided, "E")["expansion_value"] == 20_000.0

"""Data-fit diagnostics on small dict-built data: each check, its numbers and its limits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.conftest import AS_OF, days_ago, make_table, row, steady_usage
from touchmodel.engine import Decided, Engine
from touchmodel.errors import ModelFileError
from touchmodel.fit.diagnostics import (
    EVENT_SIGNAL_GROUPS,
    Diagnostics,
    Finding,
    diagnose,
    event_names,
)
from touchmodel.model.loader import load_model, model_from_dict, model_hash
from touchmodel.model.schema import DiagnosticSettings, TouchModel
from touchmodel.plan.team import Team
from touchmodel.signals.catalog import BUILTIN


def with_settings(**settings: Any) -> TouchModel:
    base = load_model("standard")
    return base.model_copy(update={"diagnostics": DiagnosticSettings(**settings)})


def run(
    model: TouchModel,
    accounts: list[dict[str, Any]],
    team: Team | None = None,
    **tables: list[dict[str, Any]],
) -> tuple[Decided, Diagnostics]:
    built = {"accounts": make_table("accounts", accounts)}
    built.update({name: make_table(name, rows) for name, rows in tables.items()})
    decided = Engine(model).decide(built, AS_OF)
    return decided, diagnose(model, decided, event_names(built, model, AS_OF), team)


def dropping_usage(account_id: str, before: int, after: int) -> list[dict[str, Any]]:
    """``before`` events a day in days 30..59, ``after`` a day in days 0..29."""
    out = []
    for d in range(60):
        for i in range(before if d >= 30 else after):
            out.append(
                {"account_id": account_id, "timestamp": days_ago(d), "event": "report.created",
                 "user_id": f"u{i % 2}"}
            )  # fmt: skip
    return out


def found(diag: Diagnostics, kind: str, cause: str | None = None) -> dict[str, Finding]:
    return {
        " & ".join(f.subjects): f
        for f in diag.findings
        if f.kind == kind and (cause is None or f.cause == cause)
    }


def test_a_threshold_above_every_observed_value_cannot_fire() -> None:
    accounts = [{"account_id": f"A{i}"} for i in range(4)]
    usage = [e for a in accounts for e in steady_usage(a["account_id"])]
    # One ticket in the last 14 days at most: risk.ticket_spike needs 3.
    tickets = [
        {"ticket_id": f"T{i}", "account_id": f"A{i}", "opened_at": days_ago(2)} for i in range(2)
    ]
    _, diag = run(load_model("standard"), accounts, usage_events=usage, tickets=tickets)
    by_id = found(diag, "cannot_fire", "threshold")
    assert "risk.ticket_spike" in by_id
    assert (
        "`tickets_14d >= 3` is never true: tickets_14d ranges 0 to 1"
        in by_id["risk.ticket_spike"].message
    )
    # A complaint ticket is possible (the column exists) but none was filed: the
    # threshold analysis names it too, as a count that is 0 everywhere.
    assert "complaint_tickets_30d is 0 on every account" in by_id["risk.negative_feedback"].message
    # health_score < 40 with every account healthy.
    assert "risk.health_low" in by_id

    # Three tickets on one account: the spike is possible, so it is not named.
    tickets += [
        {"ticket_id": f"X{i}", "account_id": "A0", "opened_at": days_ago(1)} for i in range(2)
    ]
    decided, diag = run(load_model("standard"), accounts, usage_events=usage, tickets=tickets)
    assert "risk.ticket_spike" not in found(diag, "cannot_fire")
    assert "risk.ticket_spike" in row(decided, "A0")["triggers"]


def test_a_missing_table_reuses_the_engines_inactive_rules() -> None:
    accounts = [{"account_id": "A1"}]
    decided, diag = run(load_model("standard"), accounts, usage_events=steady_usage())
    by_id = found(diag, "cannot_fire", "missing_input")
    inactive = {r.id for r in decided.inactive if not r.id.startswith("health.")}
    assert set(by_id) == inactive
    assert "table 'tickets' is missing" in by_id["risk.ticket_spike"].message
    measures = found(diag, "measure", "missing_input")
    assert (
        "health.sentiment" in measures and "nps_responses" in measures["health.sentiment"].message
    )


def test_two_triggers_firing_on_the_same_accounts_are_named_as_a_pair() -> None:
    model = with_settings(overlap_min_accounts=3)
    # Usage down 60% on three accounts: both usage-decline triggers fire on each.
    accounts = [{"account_id": f"D{i}"} for i in range(3)]
    usage = [e for a in accounts for e in dropping_usage(a["account_id"], 10, 4)]
    decided, diag = run(model, accounts, usage_events=usage)
    assert {"risk.usage_decline", "risk.usage_drop_mom"} <= set(row(decided, "D0")["triggers"])
    pair = found(diag, "overlap")["risk.usage_decline & risk.usage_drop_mom"]
    assert pair.numbers == {"both": 3, "either": 3, "jaccard": 1.0}
    assert "get two work items for one problem" in pair.message

    # Three more accounts down only 45%: usage_decline alone. 3 of 6: Jaccard 0.5.
    more = [{"account_id": f"H{i}"} for i in range(3)]
    usage += [e for a in more for e in dropping_usage(a["account_id"], 20, 11)]
    decided, diag = run(model, accounts + more, usage_events=usage)
    assert row(decided, "H0")["triggers"] == ["risk.usage_decline"]
    assert "risk.usage_decline & risk.usage_drop_mom" not in found(diag, "overlap")
    # ... and at Jaccard 0.5 as the limit they are named again, with those numbers.
    _, diag = run(
        with_settings(overlap_min_accounts=3, overlap_jaccard=0.5), accounts + more,
        usage_events=usage,
    )  # fmt: skip
    pair = found(diag, "overlap")["risk.usage_decline & risk.usage_drop_mom"]
    assert pair.numbers == {"both": 3, "either": 6, "jaccard": 0.5}


def test_the_overlap_needs_enough_accounts() -> None:
    accounts = [{"account_id": f"D{i}"} for i in range(3)]
    usage = [e for a in accounts for e in dropping_usage(a["account_id"], 10, 4)]
    _, diag = run(load_model("standard"), accounts, usage_events=usage)  # default: 10 accounts
    assert found(diag, "overlap") == {}


def test_a_trigger_firing_on_too_many_accounts() -> None:
    accounts = [{"account_id": f"D{i}"} for i in range(2)] + [
        {"account_id": f"S{i}"} for i in range(8)
    ]
    usage = [e for i in range(2) for e in dropping_usage(f"D{i}", 10, 4)]
    usage += [e for i in range(8) for e in steady_usage(f"S{i}")]
    # 2 of 10 = 20%: not above the default limit of 20%.
    _, diag = run(load_model("standard"), accounts, usage_events=usage)
    assert "risk.usage_decline" not in found(diag, "fires_often")
    _, diag = run(with_settings(max_fire_share=0.15), accounts, usage_events=usage)
    often = found(diag, "fires_often")["risk.usage_decline"]
    assert often.numbers == {"fired": 2, "share": 0.2}
    assert "fires on 20.0% of accounts (2 of 10), above 15%" in often.message


def test_health_measures_without_coverage_or_spread() -> None:
    accounts = [{"account_id": f"A{i}"} for i in range(4)]
    usage = [e for a in accounts for e in steady_usage(a["account_id"])]
    nps = [{"account_id": "A0", "responded_at": days_ago(10), "score": 9}]
    _, diag = run(load_model("standard"), accounts, usage_events=usage, nps_responses=nps)
    measures = found(diag, "measure")
    # Used yesterday by everyone: recency scores 100 for all four.
    assert measures["health.recency"].cause == "no_variance"
    assert measures["health.recency"].numbers == {"score": 100.0, "share": 1.0}
    # One NPS answer in four accounts: 25% coverage, under the 50% default.
    assert measures["health.sentiment"].cause == "no_coverage"
    assert measures["health.sentiment"].numbers == {"coverage": 0.25}
    # No tickets table: the support measure is not scored at all (missing input).
    assert measures["health.support"].cause == "missing_input"


def test_the_at_risk_share_and_the_work_against_the_team() -> None:
    accounts = [{"account_id": f"D{i}"} for i in range(3)] + [{"account_id": "S0"}]
    usage = [e for i in range(3) for e in dropping_usage(f"D{i}", 10, 4)]
    usage += steady_usage("S0")
    team = Team(name="t", fte_by_tier={"growth": 0.5}, cost_by_tier={"growth": 60000.0})
    model = with_settings(risk_items_per_csm_week=1)
    decided, diag = run(model, accounts, team=team, usage_events=usage)
    risk = diag.risk
    assert (risk.accounts, risk.at_risk) == (4, 3) and risk.share == 0.75
    # Each dropping account: usage_decline, usage_drop_mom and health_low, all routed
    # to the CSM team, each re-opened at most every 14 days (cooldown): 9 x 7/14 = 4.5.
    fired = [t for a in ("D0", "D1", "D2") for t in row(decided, a)["triggers"]]
    assert sorted(set(fired)) == ["risk.health_low", "risk.usage_decline", "risk.usage_drop_mom"]
    assert risk.items_for_csms == risk.items_for_people == len(fired) == 9
    assert risk.csm_items_per_week == 4.5
    assert (risk.team_fte, risk.capacity_per_week) == (0.5, 0.5)
    assert (
        "75.0% of accounts are at risk (3 of 4), above 15%"
        in found(diag, "at_risk")["at_risk"].message
    )
    cap = found(diag, "capacity")["team"]
    assert cap.numbers == {"per_week": 4.5, "capacity": 0.5}
    assert "up to 4 work items a week (9 now" in cap.message
    # Without a team: only the share, no capacity finding.
    _, alone = run(model, accounts, usage_events=usage)
    assert alone.risk.capacity_per_week is None and found(alone, "capacity") == {}


def test_a_group_of_only_exclusions_matches_nothing() -> None:
    raw = load_model("standard").model_dump(mode="json")
    raw["events"]["premium"] = ["!premium.export"]
    model = model_from_dict(raw, "m.yaml")
    accounts = [{"account_id": "A1"}]
    export = {"account_id": "A1", "timestamp": days_ago(1), "event": "premium.export"}
    usage = [*steady_usage(), export]
    _, diag = run(model, accounts, usage_events=usage)
    why = found(diag, "cannot_fire", "no_events")["expansion.premium_interest"].message
    assert "'premium' (!premium.export: only exclusions, so it matches nothing)" in why


def test_every_usage_signal_names_its_event_groups() -> None:
    usage_signals = {s.name for s in BUILTIN if s.table == "usage_events"}
    assert set(EVENT_SIGNAL_GROUPS) == usage_signals


def test_event_names_ignore_rows_after_the_as_of_date() -> None:
    later = {"account_id": "A1", "timestamp": days_ago(-1), "event": "premium.export"}
    usage = [*steady_usage(days=2), later]
    tables = {"usage_events": make_table("usage_events", usage)}
    model = load_model("standard")
    today = event_names(tables, model, AS_OF)
    assert today is not None and today.count == 2
    assert today.matched["core"] == today.matched["usage"] == 2
    assert today.matched["premium"] == 0
    tomorrow = event_names(tables, model, AS_OF + dt.timedelta(days=1))
    assert tomorrow is not None and tomorrow.count == 3 and tomorrow.matched["premium"] == 1
    assert event_names({}, model, AS_OF) is None


def test_the_diagnostics_section_is_validated_and_left_out_of_the_hash() -> None:
    raw = load_model("standard").model_dump(mode="json")
    raw["diagnostics"] = {"max_fire_share": 0.3, "overlap_jaccard": 0.7}
    tuned = model_from_dict(raw, "m.yaml")
    assert tuned.diagnostics.max_fire_share == 0.3
    assert model_hash(tuned) == model_hash(load_model("standard"))
    raw["diagnostics"] = {"max_fire_share": 1.5, "jacard": 0.5}
    with pytest.raises(ModelFileError) as err:
        model_from_dict(raw, "m.yaml")
    text = str(err.value)
    assert "m.yaml" in text and "diagnostics.max_fire_share" in text
    assert "diagnostics.jacard" in text


def test_custom_signals_carry_their_event_group_to_the_triggers_that_read_them() -> None:
    raw = load_model("standard").model_dump(mode="json")
    raw["events"]["custom"] = {"exports": ["report.exported"]}
    raw["signals"] = [
        {"name": "exports_30d", "events": "exports", "aggregate": "count"},
        {"name": "export_rate", "expr": "exports_30d / 30"},
    ]
    raw["triggers"].append(
        {"id": "expansion.exporter", "when": "export_rate > 1", "route": "inside_sales"}
    )
    model = model_from_dict(raw, "m.yaml")
    _, diag = run(model, [{"account_id": "A1"}], usage_events=steady_usage())
    why = found(diag, "cannot_fire", "no_events")["expansion.exporter"].message
    assert "it reads export_rate, counted from event group 'exports' (report.exported)" in why
    # With one such event in the data, the group matches and the trigger is not named.
    export = {"account_id": "A1", "timestamp": days_ago(1), "event": "report.exported"}
    _, diag = run(model, [{"account_id": "A1"}], usage_events=[*steady_usage(), export])
    assert "expansion.exporter" not in found(diag, "cannot_fire", "no_events")

"""Signals from any table and any column: windows, filters, aggregates, missing inputs."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import days_ago, decide, row, steady_usage
from touchmodel.engine import Engine
from touchmodel.errors import ModelFileError
from touchmodel.model.loader import load_model, model_from_dict


def _engine(signals: list[dict[str, Any]], **changes: Any) -> Engine:
    data = load_model("standard").model_dump(mode="json", exclude_none=True)
    data["signals"] = signals
    data.update(changes)
    return Engine(model_from_dict(data, "test model"))


CSAT = {
    "name": "csat_90d", "table": "tickets", "aggregate": "mean", "column": "satisfaction",
    "window_days": 90, "where": "category != 'how-to'",
}  # fmt: skip
COMPLAINTS = {
    "name": "complaints_60d",
    "table": "tickets",
    "window_days": 60,
    "where": "category == 'complaint'",
}


def _ticket(n: int, days: int, category: str, satisfaction: float | None) -> dict[str, Any]:
    return {
        "ticket_id": f"T{n}", "account_id": "A1", "opened_at": days_ago(days),
        "category": category, "satisfaction": satisfaction,
    }  # fmt: skip


def test_mean_count_and_latest_over_a_window_with_a_filter() -> None:
    latest = {
        "name": "last_nps",
        "table": "nps_responses",
        "aggregate": "latest",
        "column": "score",
        "window_days": None,
    }
    engine = _engine([CSAT, COMPLAINTS, latest])
    tickets = [
        _ticket(1, 10, "bug", 2.0),
        _ticket(2, 40, "complaint", 4.0),
        _ticket(3, 5, "how-to", 5.0),  # filtered out of the CSAT mean
        _ticket(4, 89, "bug", 3.0),  # age 89: inside 90 days
        _ticket(5, 90, "complaint", 1.0),  # age 90: outside both windows
        _ticket(6, -3, "complaint", 1.0),  # after the as-of date: ignored
    ]
    nps = [
        {"account_id": "A1", "responded_at": days_ago(300), "score": 3.0},
        {"account_id": "A1", "responded_at": days_ago(20), "score": 9.0},
    ]
    out = row(decide([{"account_id": "A1"}], engine, tickets=tickets, nps_responses=nps))
    assert out["csat_90d"] == pytest.approx((2.0 + 4.0 + 3.0) / 3)
    assert out["complaints_60d"] == 1
    assert out["last_nps"] == 9.0


def test_no_rows_counts_zero_and_averages_nothing() -> None:
    engine = _engine([CSAT, COMPLAINTS])
    out = row(
        decide(
            [{"account_id": "A1"}, {"account_id": "A2"}],
            engine,
            tickets=[_ticket(1, 3, "bug", 4.0)],
        ),
        "A2",
    )
    assert out["complaints_60d"] == 0
    assert out["csat_90d"] is None or out["csat_90d"] != out["csat_90d"]  # null


def test_a_measure_and_a_trigger_on_a_table_signal() -> None:
    measures = [
        {
            "id": "csat",
            "signal": "csat_90d",
            "weight": 100,
            "bad": 2,
            "good": 5,
            "label": "Ticket CSAT",
        },
    ]
    data = load_model("standard").model_dump(mode="json", exclude_none=True)
    data["health"]["measures"] = measures
    data["signals"] = [CSAT]
    data["triggers"].append(
        {"id": "risk.low_csat", "when": "csat_90d < 3", "route": "csm_outreach"}
    )
    engine = Engine(model_from_dict(data, "csat model"))
    out = row(
        decide(
            [{"account_id": "A1"}],
            engine,
            tickets=[_ticket(1, 3, "bug", 2.5)],
            usage_events=steady_usage(),
        )
    )
    assert out["health_score"] == pytest.approx(100 * (2.5 - 2) / 3, abs=0.1)
    assert "risk.low_csat" in out["triggers"]


def test_a_missing_table_makes_the_signal_and_its_rules_inactive() -> None:
    data = load_model("standard").model_dump(mode="json", exclude_none=True)
    data["signals"] = [CSAT]
    data["triggers"].append(
        {"id": "risk.low_csat", "when": "csat_90d < 3", "route": "csm_outreach"}
    )
    decided = decide([{"account_id": "A1"}], Engine(model_from_dict(data, "m")))
    assert decided.unavailable["csat_90d"] == "table 'tickets' is missing"
    assert any(r.id == "risk.low_csat" for r in decided.inactive)


def test_bad_table_signals_are_model_file_errors() -> None:
    bad = [
        {"name": "a", "table": "tickets", "aggregate": "mean"},
        {"name": "b", "table": "tickets", "aggregate": "sum", "column": "category"},
        {"name": "c", "table": "tickets", "column": "satisfacton", "aggregate": "max"},
        {"name": "d", "table": "tickets", "where": "categry == 'x'"},
    ]
    with pytest.raises(ModelFileError) as err:
        _engine(bad)
    text = "\n".join(err.value.problems)
    assert "signals[0].column: missing" in text
    assert "sum needs a number column" in text
    assert "did you mean 'satisfaction'" in text
    assert "signals[3].where" in text

"""Touch-model file validation and the expression language it uses."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import hypothesis.strategies as st
import ibis
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings

from touchmodel.errors import ExpressionError, ModelFileError
from touchmodel.expr import Scope, compile_expr, referenced_names
from touchmodel.model.loader import load_model, model_from_dict, preset_dict


def problems_for(mutate: Any) -> list[str]:
    data = copy.deepcopy(preset_dict("standard"))
    mutate(data)
    with pytest.raises(ModelFileError) as info:
        model_from_dict(data, "my.yaml")
    assert str(info.value).startswith("my.yaml: ")
    return info.value.problems


def test_unknown_key_is_named_with_its_path() -> None:
    probs = problems_for(lambda d: d["tiers"][0].update(colour="red"))
    assert probs == ["tiers[0].colour: unknown key -- remove it or check its spelling"]


def test_wrong_type_names_value_and_expectation() -> None:
    probs = problems_for(lambda d: d["tiers"][1].update(level="ultra"))
    assert len(probs) == 1 and probs[0].startswith("tiers[1].level: value 'ultra' -- ")
    assert "'tech'" in probs[0] and "'high'" in probs[0]


def test_band_gap_and_overlap() -> None:
    gap = problems_for(lambda d: d["tiers"][2]["band"].update(min=26000))
    assert any("tiers[2].band.min: value 26000 -- leaves a gap; expected 25000" in p for p in gap)
    overlap = problems_for(lambda d: d["tiers"][2]["band"].update(min=20000))
    assert any("tiers[2].band.min: value 20000 -- overlaps the band below" in p for p in overlap)


def test_highest_band_must_be_open_ended() -> None:
    probs = problems_for(lambda d: d["tiers"][3]["band"].update(max=1_000_000))
    assert any(p.startswith("tiers[3].band.max: value 1e+06 -- expected null") for p in probs)


def test_levels_out_of_order() -> None:
    probs = problems_for(lambda d: d["tiers"][3].update(level="low"))
    assert any(p.startswith("tiers[3].level: value 'low' -- levels out of order") for p in probs)


def test_weights_must_sum_to_100() -> None:
    probs = problems_for(lambda d: d["health"]["measures"][0].update(weight=20))
    assert "health.measures: weights sum to 95 -- expected weights that sum to 100" in probs


def test_unknown_route_team_signal_and_event_group() -> None:
    def mutate(d: dict) -> None:
        d["triggers"][0]["route"] = "nowhere"
        d["routes"]["csm_outreach"]["team"] = "ghosts"
        d["triggers"][1]["when"] = "usage_chnge_pct <= -40"
        d["signals"] = [{"name": "vip_events", "events": "vip"}]

    probs = problems_for(mutate)
    assert any(
        p.startswith("triggers[0] (value.dedicated_csm).route: value 'nowhere' -- unknown route")
        for p in probs
    )
    assert any(p.startswith("routes.csm_outreach.team: value 'ghosts'") for p in probs)
    assert any("unknown name(s) usage_chnge_pct" in p for p in probs)
    assert any(p.startswith("signals[0].events: value 'vip' -- unknown event group") for p in probs)


def test_fired_only_in_overrides_and_must_match_a_trigger() -> None:
    def mutate(d: dict) -> None:
        d["triggers"][0]["when"] = "fired('risk.*')"
        d["lifecycle"]["overrides"][0]["when"] = "fired('danger.*')"

    probs = problems_for(mutate)
    assert any("fired() is only allowed in lifecycle overrides" in p for p in probs)
    assert any(
        "lifecycle.overrides[0].when: value 'danger.*' -- matches no trigger id" in p for p in probs
    )


def test_unsafe_expression_is_refused() -> None:
    probs = problems_for(lambda d: d["triggers"][0].update(when="__import__('os').system('x')"))
    assert any("not allowed" in p or "only plain calls" in p for p in probs)


def test_bad_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("tiers: [\n")
    with pytest.raises(ModelFileError, match="not valid YAML"):
        load_model(bad)
    with pytest.raises(ModelFileError, match="not found"):
        load_model(tmp_path / "nope.yaml")


def test_user_file_overrides_a_default_and_custom_signals_work(tmp_path: Path) -> None:
    from tests.conftest import days_ago, decide, row, steady_usage
    from touchmodel.engine import Engine

    data = preset_dict("standard")
    data["signals"] = [
        {"name": "exports_7d", "events": "exports", "window_days": 7, "aggregate": "count"},
        {"name": "big_account", "expr": "arr >= 20000 and exports_7d > 1"},
    ]
    data["events"]["custom"] = {"exports": ["export.*"]}
    data["triggers"].append(
        {"id": "custom.exporter", "when": "big_account", "route": "csm_outreach"}
    )
    data["tiers"][0]["band"]["max"] = 20000  # a user moves a band edge
    data["tiers"][1]["band"]["min"] = 20000
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(data))
    engine = Engine.from_spec(path)
    ev = (
        steady_usage() + [{"account_id": "A1", "timestamp": days_ago(1), "event": "export.csv"}] * 2
    )
    r = row(decide([{"arr": 19_000.0}], model=engine, usage_events=ev))
    assert r["tier"] == "digital" and "custom.exporter" not in r["triggers"]
    r = row(decide([{"arr": 21_000.0}], model=engine, usage_events=ev))
    assert r["tier"] == "low" and "custom.exporter" in r["triggers"] and r["exports_7d"] == 2


# --- the expression language ---------------------------------------------------------------


def _eval(text: str, **cols: list[Any]) -> list[Any]:
    t = ibis.memtable(pd.DataFrame(cols))
    value = compile_expr(text, Scope(resolve=lambda n: t[n]))
    return t.select(v=value).to_pyarrow()["v"].to_pylist()


def test_expressions_compile_to_columns() -> None:
    assert _eval("a * 12", a=[1.5, 2.0]) == [18.0, 24.0]
    assert _eval("a / b", a=[1.0, 1.0], b=[2.0, 0.0]) == [0.5, None]
    assert _eval("'big' if a >= 10 else 'small'", a=[10, 9]) == ["big", "small"]
    assert _eval("s in ['x', 'y'] and not a > 1", s=["x", "z"], a=[1, 1]) == [True, False]
    assert _eval("0 < a <= 2", a=[0, 1, 2, 3]) == [False, True, True, False]
    assert _eval("coalesce(a, 7)", a=[None, 1.0]) == [7.0, 1.0]
    d = dt.date(2026, 1, 31)
    assert _eval("add_months(d, -1)", d=[d]) == [dt.date(2025, 12, 31)]
    assert _eval("days_between(d, add_days(d, 3))", d=[d]) == [3]


@pytest.mark.parametrize(
    "text", ["a.b", "a[0]", "lambda: 1", "open('x')", "f(x=1)", "[1, 2]", "a if", ""]
)
def test_expressions_outside_the_whitelist_are_refused(text: str) -> None:
    with pytest.raises(ExpressionError):
        _eval(text, a=[1])


def test_referenced_names_excludes_function_names() -> None:
    assert referenced_names("coalesce(a, b) > c and fired") == {"a", "b", "c", "fired"}


@settings(max_examples=60, deadline=None)
@given(
    a=st.lists(st.integers(-1000, 1000), min_size=1, max_size=5),
    threshold=st.integers(-1000, 1000),
)
def test_comparisons_agree_with_python(a: list[int], threshold: int) -> None:
    assert _eval(f"a >= {threshold}", a=a) == [x >= threshold for x in a]
    assert _eval(f"not (a < {threshold}) or a == {threshold}", a=a) == [
        (not x < threshold) or x == threshold for x in a
    ]


def test_expression_signal_on_a_missing_table_is_unavailable_too() -> None:
    from tests.conftest import decide, row
    from touchmodel.engine import Engine

    data = preset_dict("standard")
    data["signals"] = [{"name": "noisy", "expr": "tickets_30d >= 2"}]
    data["triggers"].append({"id": "custom.noisy", "when": "noisy", "route": "csm_outreach"})
    engine = Engine(model_from_dict(data, "inline"))
    decided = decide([{}], model=engine)
    inactive = {r.id: r.reason for r in decided.inactive}
    assert "custom.noisy" in inactive and "tickets" in inactive["custom.noisy"]
    tickets = [
        {"ticket_id": f"T{i}", "account_id": "A1", "opened_at": dt.datetime(2026, 10, 30)}
        for i in range(2)
    ]
    assert "custom.noisy" in row(decide([{}], model=engine, tickets=tickets))["triggers"]


T0 = "triggers[0] (value.dedicated_csm)"


@pytest.mark.parametrize(
    "mutate,expected",
    [
        (lambda d: d["triggers"][0].update(when="usage_30d"),
         f"{T0}.when: value 'usage_30d' -- expected a true/false condition, got a float64 value"),
        (lambda d: d["triggers"][0].update(when="not premium_events_30d"),
         "expected a true/false condition"),
        (lambda d: d["triggers"][0].update(when="plan > 5"), f"{T0}.when: value 'plan > 5' -- "),
        (lambda d: d["health"]["measures"][0].update(signal="health_score"),
         "health.measures[0].signal: value 'health_score' -- unknown name(s) health_score"),
        (lambda d: d["tiering"].update(signal="name"),
         "tiering.signal: value 'name' -- expected a number, got a string value"),
        (lambda d: d["routes"]["expansion"].update(by="plan"),
         "routes.expansion.by: value 'plan' -- expected a number"),
        (lambda d: d["triggers"][0].update(when="-" * 1500 + "arr > 1"), f"{T0}.when: value"),
        (lambda d: d["lifecycle"].update(overrides=list(reversed(d["lifecycle"]["overrides"]))),
         "lifecycle.overrides: stages in order ['renewal', 'onboarding', 'at_risk'] -- expected the order"),
    ],
)  # fmt: skip
def test_expressions_are_type_checked_with_their_path(mutate: Any, expected: str) -> None:
    probs = problems_for(mutate)
    assert any(expected in p for p in probs), probs


def test_a_typo_in_a_route_is_reported_once_against_its_kind() -> None:
    probs = problems_for(lambda d: d["routes"]["csm_outreach"].update(sla_days="soon"))
    assert len(probs) == 1 and probs[0].startswith("routes.csm_outreach.sla_days: value 'soon'")


def test_extra_columns_are_typed_and_usable(tmp_path: Path) -> None:
    data = preset_dict("standard")
    data["extra_columns"] = {"nps_segment": "string"}
    data["triggers"].append(
        {"id": "custom.vip", "when": "nps_segment == 'vip'", "route": "csm_outreach"}
    )
    model_from_dict(data, "ok.yaml")
    data["triggers"][-1]["when"] = "nps_segment > 3"
    with pytest.raises(ModelFileError, match=r"triggers\[21\] \(custom.vip\)\.when"):
        model_from_dict(data, "bad.yaml")


def test_model_check_accepts_a_preset_name() -> None:
    from typer.testing import CliRunner

    from touchmodel.cli.app import app

    result = CliRunner().invoke(app, ["model", "check", "touch-model-design"])
    assert result.exit_code == 0 and "OK - model 'touch-model-design'" in result.stdout


def test_typos_get_a_did_you_mean() -> None:
    def mutate(d: dict) -> None:
        d["triggers"][1]["when"] = "usage_prev_30d > 0 and usage_chnge_pct <= -40"
        d["triggers"][2]["route"] = "csm_at_risk_outreec"

    probs = problems_for(mutate)
    assert any("(did you mean 'usage_change_pct'?)" in p for p in probs)
    assert any("(did you mean 'csm_at_risk_outreach'?)" in p for p in probs)

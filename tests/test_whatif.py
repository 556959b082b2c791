"""What-if: PATH=VALUE settings on the model file, validated, compared on the same data."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from tests.test_ops_day import SETTLED, account, write_csv
from touchmodel.cli.app import app
from touchmodel.errors import ModelFileError
from touchmodel.fit import whatif
from touchmodel.fit.whatif import (
    WhatIfError,
    apply_setting,
    changed_model,
    parse_setting,
)
from touchmodel.model.loader import preset_dict
from touchmodel.workspace import init_workspace

AS_OF = dt.date(2026, 11, 2)
runner = CliRunner()


def test_a_setting_splits_at_the_first_equals_outside_brackets() -> None:
    s = parse_setting("triggers[risk.inactive].when=days_inactive >= 45")
    assert (s.path, s.value_text) == ("triggers[risk.inactive].when", "days_inactive >= 45")
    with pytest.raises(WhatIfError, match="expected PATH=VALUE"):
        parse_setting("tiers[high].band.min")


def test_list_items_by_id_dict_keys_and_typed_values() -> None:
    data = preset_dict("standard")
    changes = apply_setting(data, parse_setting("triggers[risk.inactive].when=days_inactive >= 45"))
    assert [(c.before, c.after) for c in changes] == [
        ("days_inactive >= 30", "days_inactive >= 45")
    ]
    apply_setting(data, parse_setting("tiers[medium].accounts_per_csm.min=40"))
    assert data["tiers"][2]["accounts_per_csm"]["min"] == 40
    # A key the route does not have yet is added (the schema checks it).
    apply_setting(data, parse_setting("routes.csm_outreach.minutes=30"))
    assert data["routes"]["csm_outreach"]["minutes"] == 30
    apply_setting(data, parse_setting("health.measures[0].weight=25"))
    assert data["health"]["measures"][0]["weight"] == 25


def test_moving_a_band_edge_moves_the_neighbour_that_met_it() -> None:
    model, changes = changed_model(
        preset_dict("standard"), "standard", ["tiers[high].band.min=150000"]
    )
    assert [(c.path, c.before, c.after) for c in changes] == [
        ("tiers[high].band.min", 100000, 150000),
        ("tiers[medium].band.max", 100000, 150000),
    ]
    assert model.tier("medium").band.max == 150000


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "tiers[platinum].band.min=1",
            r"tiers\[platinum\] -- no such item; expected one of digital",
        ),
        ("health.wieghts.x=1", r"health.wieghts -- no such key here; expected one of measures"),
        ("tiers.band=1", r"tiers is a list -- expected tiers\[id\]"),
        ("tiers[high]..min=1", r"cannot read it"),
    ],
)
def test_a_path_the_file_does_not_have_is_named(setting: str, message: str) -> None:
    with pytest.raises(WhatIfError, match=message):
        changed_model(preset_dict("standard"), "standard", [setting])


def test_the_changed_model_is_validated_like_any_model_file() -> None:
    with pytest.raises(ModelFileError, match=r"health.wieghts: unknown key"):
        changed_model(preset_dict("standard"), "standard", ["health.wieghts=1"])
    with pytest.raises(ModelFileError) as err:
        changed_model(
            preset_dict("standard"),
            "standard",
            ["health.measures[recency].weight=10", "triggers[risk.inactive].when=days_inactve > 3"],
        )
    text = str(err.value)
    assert "standard with health.measures[recency].weight=10" in text
    assert "health.measures" in text and "100" in text  # weights no longer sum to 100
    assert "triggers[" in text and "days_inactve" in text


# ARR: 4 at $120K and 2 at $200K are high tier; moving high to $150K leaves 2.
ARR = [120_000.0] * 4 + [200_000.0] * 2 + [30_000.0] * 4


def _data(root: Path) -> Path:
    rows = [account(f"A{i}", arr, SETTLED) for i, arr in enumerate(ARR)]
    write_csv(root / "accounts.csv", rows)
    return root


def _measures(out: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    return {m["measure"]: (m["before"], m["after"]) for m in out["measures"]}


def test_whatif_on_a_data_folder_compares_tier_mix_headcount_and_cost(tmp_path: Path) -> None:
    data = _data(tmp_path / "data")
    res = runner.invoke(
        app,
        ["whatif", "--data", str(data), "--as-of", str(AS_OF), "--json",
         "--set", "tiers[high].band.min=150000"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    m = _measures(json.loads(res.output))
    assert m["tier mix: high"] == (pytest.approx(0.6), pytest.approx(0.2))
    assert m["tier mix: medium"] == (pytest.approx(0.4), pytest.approx(0.8))
    # Standard ratios: high 15-25 (target 20), medium 30-50 (target 40).
    assert m["CSMs needed (target ratios)"] == (
        pytest.approx(6 / 20 + 4 / 40),
        pytest.approx(2 / 20 + 8 / 40),
    )
    before_cost, after_cost = m["CS cost share of revenue"]
    assert after_cost < before_cost
    text = runner.invoke(
        app,
        ["whatif", "--data", str(data), "--as-of", str(AS_OF),
         "--set", "tiers[high].band.min=150000"],
        env={"COLUMNS": "200"},
    ).output  # fmt: skip
    assert "tiers[medium].band.max: 100000 -> 150000  (moved with it)" in text
    assert "60.0%" in text and "20.0%" in text and "-40.0 pts" in text


def test_a_bad_setting_is_a_one_line_error(tmp_path: Path) -> None:
    data = _data(tmp_path / "data")
    res = runner.invoke(app, ["whatif", "--data", str(data), "--set", "tiers[gold].band.min=1"])
    assert res.exit_code == 2
    assert res.output.startswith("error: --set 'tiers[gold].band.min=1'")


def test_in_a_workspace_nothing_is_written(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    assert ws.data_path is not None
    _data(ws.data_path)
    before = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()}
    res = runner.invoke(
        app,
        ["whatif", "--workspace", str(ws.root), "--as-of", str(AS_OF), "--json",
         "--set", "triggers[risk.health_low].when=health_score < 60"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    after = {p: p.read_bytes() for p in ws.root.rglob("*") if p.is_file()}
    assert after == before  # same files, same bytes: no state, no run folder, model as it was


def test_extra_measures_are_the_extension_point_for_more_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _data(tmp_path / "data")
    seen: list[Any] = []

    def high_band(model: Any, inputs: whatif.WhatIfInputs) -> dict[str, float | None]:
        seen.append(inputs.as_of)
        return {"high band starts at": model.tier("high").band.min}

    monkeypatch.setattr(whatif, "EXTRA_MEASURES", [high_band])
    out = whatif.run_whatif(
        "standard", ["tiers[high].band.min=150000"], data=data, as_of=AS_OF
    ).as_dict()
    assert _measures(out)["high band starts at"] == (100000, 150000)
    assert seen == [AS_OF, AS_OF]


def test_model_file_that_is_already_invalid_keeps_its_own_errors(tmp_path: Path) -> None:
    bad = preset_dict("standard")
    bad["tiers"][0]["band"]["max"] = 5
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ModelFileError, match=str(path)):
        whatif.model_dict(str(path))


def test_in_a_workspace_the_events_sent_to_v1_count_as_in_a_run(tmp_path: Path) -> None:
    from touchmodel.access.keys import create_key
    from touchmodel.ingest.store import store_rows
    from touchmodel.state.db import Store

    ws = init_workspace(tmp_path / "ws")
    assert ws.data_path is not None
    _data(ws.data_path)  # accounts only: no usage_events file
    store = Store(ws.state_url)
    try:
        key = create_key(store, "write", label="app")
        when = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC)
        with store.transaction() as s:
            store_rows(s, [
                {"key_id": key.id, "message_id": f"m{i}", "type": "track", "user_id": "u1",
                 "anonymous_id": None, "group_id": "A0", "event": "login",
                 "timestamp": when, "received_at": when,
                 "payload": {"type": "track", "event": "login", "userId": "u1",
                             "messageId": f"m{i}", "timestamp": when.isoformat(),
                             "context": {"groupId": "A0"}}}
                for i in range(3)
            ])  # fmt: skip
    finally:
        store.close()
    res = runner.invoke(
        app,
        ["whatif", "--workspace", str(ws.root), "--as-of", str(AS_OF), "--json",
         "--set", "triggers[risk.inactive].when=usage_30d > 0"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    # With A0's events the usage signals exist: the others, never seen, score low
    # on health and are at risk. Without them (a plain data folder) nothing can fire.
    assert _measures(json.loads(res.output))["at-risk share"][0] == pytest.approx(0.9)
    res = runner.invoke(
        app,
        ["whatif", "--data", str(ws.data_path), "--as-of", str(AS_OF), "--json",
         "--set", "triggers[risk.inactive].when=usage_30d > 0"],
    )  # fmt: skip
    assert _measures(json.loads(res.output))["at-risk share"] == (0.0, 0.0)

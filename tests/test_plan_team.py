"""The team file: validation, FTE splits, default costs and planning overrides."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest

from touchmodel.model.loader import load_model
from touchmodel.plan import PlanningDefaults, TeamFileError, load_team, read_team_file

STANDARD = load_model("standard")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "team.yaml"
    path.write_text(text)
    return path


def test_shipped_example_team_loads_for_the_standard_preset() -> None:
    path = Path(str(resources.files("touchmodel").joinpath("examples/team.yaml")))
    team, defaults = load_team(path, STANDARD)
    assert team.fte_by_tier == {"digital": 0.0, "low": 3.0, "medium": 6.0, "high": 4.0}
    assert team.headcount == 13
    assert team.cost == 3 * 100_000 + 6 * 120_000 + 4 * 150_000
    assert defaults.economics.gross_margin == 0.78


def test_csm_covering_two_tiers_is_split_evenly_and_costs_the_default(tmp_path: Path) -> None:
    team, _ = load_team(write(tmp_path, "csms: [{count: 3, tiers: [low, medium]}]"), STANDARD)
    assert team.fte("low") == team.fte("medium") == 1.5
    assert team.cost_by_tier["low"] == 1.5 * 120_000


def test_planning_section_overrides_defaults_including_csm_cost(tmp_path: Path) -> None:
    text = "csms: [{tiers: [high]}]\nplanning: {economics: {csm_cost: 90000, cs_share: {max: 0.2}}}"
    team, d = load_team(write(tmp_path, text), STANDARD)
    assert team.cost == 90_000
    assert d.economics.cs_share.max == 0.2 and d.economics.cs_share.min == 0.05
    assert d.six_factor == PlanningDefaults().six_factor


def test_unknown_tier_is_one_line_naming_file_path_value_and_valid_ids(tmp_path: Path) -> None:
    path = write(tmp_path, "csms:\n  - tiers: [high]\n  - tiers: [low, gold]\n")
    with pytest.raises(TeamFileError) as exc:
        load_team(path, STANDARD)
    msg = str(exc.value)
    assert msg == (
        f"{path}: csms[1].tiers[1]: value 'gold' -- expected a tier id of model 'standard' "
        "(digital, low, medium, high)"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("csms: [{tiers: [high], colour: red}]", "csms[0].colour: unknown key"),
        ("csms: [{tiers: []}]", "csms[0].tiers: value"),
        ("csms: [{tiers: [high], count: 0}]", "csms[0].count: value 0"),
        ("csms: [{tiers: [high], cost: -5}]", "csms[0].cost: value -5"),
        (
            "planning: {economics: {gross_margin: 1.5}}",
            "planning.economics.gross_margin: value 1.5",
        ),
        ("planning: {economics: {cs_share: {min: 0.2, max: 0.1}}}", "planning.economics.cs_share"),
        ("planning: {six_factor: {high_touch_min: 10}}", "planning.six_factor"),
        ("- just a list", "(top level): value list"),
        ("csms: [", "team.yaml:1:8: not valid YAML"),
    ],
)
def test_bad_team_files_name_the_path(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(TeamFileError) as exc:
        read_team_file(path)
    assert expected in str(exc.value)
    assert str(exc.value).startswith(str(path)) and "\n" not in str(exc.value)


def test_missing_team_file(tmp_path: Path) -> None:
    with pytest.raises(TeamFileError, match="not found"):
        read_team_file(tmp_path / "nope.yaml")


def test_empty_team_file_is_an_empty_team(tmp_path: Path) -> None:
    team, d = load_team(write(tmp_path, ""), STANDARD)
    assert team.headcount == 0 and d == PlanningDefaults()


def test_defaults_are_the_spec_figures() -> None:
    d = PlanningDefaults()
    assert d.economics.csm_cost == 120_000
    assert (d.economics.cs_share.min, d.economics.cs_share.max) == (0.05, 0.15)
    assert d.economics.arr_per_csm_multiple == 10
    assert [(h.min, h.max, h.accounts_per_csm) for h in d.hiring_triggers] == [
        (10_000, 25_000, 50), (25_000, 100_000, 30), (100_000, None, 15),
    ]  # fmt: skip
    sf = d.six_factor
    assert (sf.low_acv, sf.high_acv, sf.high_touch_min, sf.low_touch_min) == (
        10_000,
        100_000,
        20,
        12,
    )
    p = d.phases
    assert (p.launch_max_team, p.scale_max_team) == (3, 10)
    assert (p.early_scale_customers, p.growth_customers, p.scale_customers) == (100, 500, 2_000)

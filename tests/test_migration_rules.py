"""Tier migration rules in the touch-model file: schema, meaning checks and matching."""

from __future__ import annotations

import copy
from typing import Any, get_args

import pytest
import yaml

from touchmodel.errors import ModelFileError
from touchmodel.model.loader import PRESETS, load_model, model_from_dict, preset_dict, preset_yaml
from touchmodel.model.migrations import MigrationRule, OwnerKind
from touchmodel.model.schema import Owner

STANDARD = load_model("standard")


def with_rules(rules: list[dict[str, Any]]) -> dict[str, Any]:
    data = copy.deepcopy(preset_dict("standard"))
    data["migrations"] = rules
    return data


def problems(rules: list[dict[str, Any]]) -> list[str]:
    with pytest.raises(ModelFileError) as info:
        model_from_dict(with_rules(rules), "my.yaml")
    return info.value.problems


def rule(**kw: Any) -> dict[str, Any]:
    return {"id": "r", "task": "do it", "team": "csm", **kw}


def test_owner_kinds_are_the_schema_owner_kinds() -> None:
    # migrations.py spells them out to avoid an import cycle; they must not drift.
    assert get_args(OwnerKind) == get_args(Owner)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_has_the_two_default_rules(preset: str) -> None:
    rules = {r.id: r for r in load_model(preset).migrations}
    handover = rules["handover_to_dedicated"]
    assert handover.to_owner == ["dedicated_csm"] and handover.from_owner is None
    assert (handover.team, handover.sla_days, handover.reassign) == ("csm", 7, False)
    assert handover.task.startswith("Handover: introduce the new dedicated CSM")
    transition = rules["transition_from_dedicated"]
    assert transition.from_owner == ["dedicated_csm"]
    assert transition.to_owner == ["pooled_csm", "automation"]
    assert (transition.team, transition.sla_days) == ("previous_csm", 14)


def test_preset_yaml_round_trips_the_rules() -> None:
    data = yaml.safe_load(preset_yaml("standard"))
    assert model_from_dict(data, "x").migrations == STANDARD.migrations


def test_a_model_without_migrations_has_none() -> None:
    data = with_rules([])
    del data["migrations"]
    assert model_from_dict(data, "x").migrations == []


def test_scalar_or_list_conditions() -> None:
    model = model_from_dict(
        with_rules([rule(to_owner="dedicated_csm", from_tier=["low", "digital"])]), "x"
    )
    assert model.migrations[0].to_owner == ["dedicated_csm"]
    assert model.migrations[0].from_tier == ["low", "digital"]


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (
            [rule(to_tier="gold")],
            "migrations[0] (r).to_tier[0]: value 'gold' -- expected a tier id",
        ),
        ([rule(from_tier=["low", "hihg"])], "migrations[0] (r).from_tier[1]: value 'hihg'"),
        (
            [rule(team="sales")],
            "migrations[0] (r).team: value 'sales' -- expected one of the teams",
        ),
        ([rule(), rule()], "migrations[1] (r).id: value 'r' -- expected a unique rule id"),
        (
            [rule(to_owner="automation", to_tier="high")],
            "migrations[0] (r).to_tier[0]: value 'high' -- tier owned by dedicated_csm",
        ),
        ([rule(from_tier="low", to_tier="low")], "migrations[0] (r).to_tier: value ['low']"),
    ],
)
def test_bad_rules_name_path_and_value(rules: list[dict[str, Any]], expected: str) -> None:
    found = problems(rules)
    assert any(p.startswith(expected) for p in found), found


def test_typo_in_team_gets_a_hint() -> None:
    (found,) = problems([rule(team="previous_cms")])
    assert "did you mean 'previous_csm'?" in found


@pytest.mark.parametrize(
    ("rules", "where"),
    [
        ([rule(direction="sideways")], "migrations[0].direction"),
        ([rule(to_owner="robot")], "migrations[0].to_owner"),
        ([rule(colour="red")], "migrations[0].colour: unknown key"),
        ([rule(sla_days=-1)], "migrations[0].sla_days"),
        ([{"id": "r", "team": "csm"}], "migrations[0].task: missing"),
    ],
)
def test_structure_errors_name_the_path(rules: list[dict[str, Any]], where: str) -> None:
    assert any(p.startswith(where) for p in problems(rules))


def matches(r: MigrationRule, old: str | None, new: str) -> bool:
    tiers = {t.id: t for t in STANDARD.tiers}
    return r.matches(tiers.get(old) if old else None, tiers[new])


def test_matching_by_owner_tier_and_direction() -> None:
    into = MigrationRule.model_validate(rule(to_owner="dedicated_csm"))
    assert matches(into, "low", "medium") and matches(into, "high", "medium")
    assert not matches(into, "medium", "low") and not matches(into, "medium", "medium")
    up = MigrationRule.model_validate(rule(direction="up"))
    down = MigrationRule.model_validate(rule(direction="down"))
    assert matches(up, "digital", "high") and not matches(up, "high", "digital")
    assert matches(down, "high", "digital") and not matches(down, "digital", "high")
    named = MigrationRule.model_validate(rule(from_tier="low", to_tier=["medium", "high"]))
    assert matches(named, "low", "high") and not matches(named, "digital", "high")


def test_a_previous_tier_gone_from_the_model_matches_only_unconditional_rules() -> None:
    anything = MigrationRule.model_validate(rule())
    from_dedicated = MigrationRule.model_validate(rule(from_owner="dedicated_csm"))
    up = MigrationRule.model_validate(rule(direction="up"))
    assert matches(anything, "retired-tier", "low")
    assert not matches(from_dedicated, "retired-tier", "low")
    assert not matches(up, "retired-tier", "low")

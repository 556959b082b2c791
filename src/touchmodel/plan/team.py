"""The team file: who is on the CS team, which tiers they cover, what they cost.

Example (``touchmodel/examples/team.yaml``)::

    name: Acme customer success
    csms:
      - name: Dana
        tiers: [high]
        cost: 150000
      - name: Pooled pod
        count: 3
        tiers: [low, medium]
    planning:            # optional: override any figure of PlanningDefaults
      economics: {gross_margin: 0.78}

A CSM covering several tiers is split evenly across them (3 CSMs on
``[low, medium]`` is 1.5 FTE on each). A CSM without ``cost`` costs
``planning.economics.csm_cost`` ($120K by default, SPEC §6).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from touchmodel.errors import TouchmodelError
from touchmodel.model.loader import dotted
from touchmodel.model.schema import TouchModel
from touchmodel.plan.defaults import PlanningDefaults


class TeamFileError(TouchmodelError):
    """A team file is invalid. The message names the file, dotted path, value and expectation."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        # One line: the CLI prints user errors on a single line.
        super().__init__(f"{file}: " + "; ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CSMEntry(_Strict):
    """One CSM, or ``count`` identical CSMs, and the tiers they cover."""

    name: str = ""
    count: int = Field(default=1, ge=1)
    tiers: list[str] = Field(min_length=1)
    cost: float | None = Field(
        default=None, gt=0, description="Fully loaded cost per CSM, USD/year."
    )


class TeamFile(_Strict):
    """The whole team file."""

    name: str = "team"
    csms: list[CSMEntry] = Field(default_factory=list)
    planning: PlanningDefaults = Field(default_factory=PlanningDefaults)


@dataclass(frozen=True)
class Team:
    """A validated team: FTE and cost per tier, ready for arithmetic."""

    name: str
    fte_by_tier: dict[str, float]
    cost_by_tier: dict[str, float]
    source: str = "<team>"

    @property
    def headcount(self) -> float:
        """Total CSM FTE on the team."""
        return sum(self.fte_by_tier.values())

    @property
    def cost(self) -> float:
        """Total fully loaded cost of the team per year."""
        return sum(self.cost_by_tier.values())

    def fte(self, tier_id: str) -> float:
        """FTE covering ``tier_id`` (0 when nobody covers it)."""
        return self.fte_by_tier.get(tier_id, 0.0)


def build_team(file: TeamFile, model: TouchModel, source: str = "<team>") -> Team:
    """Check tier ids against ``model`` and split each CSM's FTE and cost over its tiers."""
    valid = [t.id for t in model.tiers]
    problems: list[str] = []
    for i, csm in enumerate(file.csms):
        for j, tid in enumerate(csm.tiers):
            if tid not in valid:
                problems.append(
                    f"csms[{i}].tiers[{j}]: value {tid!r} -- expected a tier id of model "
                    f"'{model.name}' ({', '.join(valid)})"
                )
    if problems:
        raise TeamFileError(source, problems)
    fte = dict.fromkeys(valid, 0.0)
    cost = dict.fromkeys(valid, 0.0)
    default_cost = file.planning.economics.csm_cost
    for csm in file.csms:
        tiers = list(dict.fromkeys(csm.tiers))
        share = csm.count / len(tiers)
        for tid in tiers:
            fte[tid] += share
            cost[tid] += share * (csm.cost if csm.cost is not None else default_cost)
    return Team(name=file.name, fte_by_tier=fte, cost_by_tier=cost, source=source)


def team_file_from_dict(data: Any, source: str) -> TeamFile:
    """Validate a parsed team file; raise TeamFileError naming every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TeamFileError(
            source, [f"(top level): value {type(data).__name__} -- expected a mapping of keys"]
        )
    try:
        return TeamFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            where = dotted(tuple(err["loc"]))
            value = err.get("input")
            shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
            if err["type"] == "missing":
                problems.append(f"{where}: missing -- this key is required")
            elif err["type"] == "extra_forbidden":
                problems.append(f"{where}: unknown key -- remove it or check its spelling")
            else:
                problems.append(f"{where}: value {shown} -- {err['msg']}")
        raise TeamFileError(source, problems) from None


def read_team_file(path: Path) -> TeamFile:
    """Read and validate a team YAML file (tier ids are checked later, against a model)."""
    if not path.exists():
        raise TeamFileError(str(path), ["(file): not found -- expected a team YAML file"])
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        raise TeamFileError(str(path), [f"{where}: not valid YAML -- {problem}"]) from None
    return team_file_from_dict(data, str(path))


def load_team(path: Path, model: TouchModel) -> tuple[Team, PlanningDefaults]:
    """Load a team file for ``model``: the team and the planning figures it overrides."""
    file = read_team_file(path)
    return build_team(file, model, str(path)), file.planning

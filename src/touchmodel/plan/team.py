"""The team file: who is on the CS team, which tiers they cover, what they cost.

Example (``touchmodel/examples/team.yaml``)::

    name: Acme customer success
    csms:
      - name: Dana
        tiers: [high]
        cost: 150000
      - name: Pooled pod
        members: [Ana, Ben, Cy]   # or `count: 3`: named "Pooled pod 1" .. "Pooled pod 3"
        tiers: [low, medium]
    planning:            # optional: override any figure of PlanningDefaults
      economics: {gross_margin: 0.78}

A CSM covering several tiers is split evenly across them (3 CSMs on
``[low, medium]`` is 1.5 FTE on each). A CSM without ``cost`` costs
``planning.economics.csm_cost`` ($120K by default, docs/touch-model.md).

Books (:mod:`touchmodel.ops.books`) need people, not FTE: :func:`book_owners`
turns each entry into named CSMs, each with a capacity per covered tier
(their FTE share of the tier x the tier's ``accounts_per_csm.max``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from touchmodel.errors import TouchmodelError
from touchmodel.model.loader import validation_problems
from touchmodel.model.schema import TouchModel
from touchmodel.plan.defaults import PlanningDefaults
from touchmodel.yaml_errors import yaml_error_text


class TeamFileError(TouchmodelError):
    """A team file is invalid. The message names the file, dotted path, value and expectation."""

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        # One line: the CLI prints user errors on a single line. A problem that
        # names the file itself (file:line:column) is not prefixed twice.
        named = bool(problems) and problems[0].startswith(f"{file}:")
        super().__init__(("" if named else f"{file}: ") + "; ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CSMEntry(_Strict):
    """One CSM, or several identical CSMs (``members`` or ``count``), and the tiers they cover."""

    name: str = ""
    members: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Names of the CSMs in this entry; their number is the entry's count.",
    )
    # None (not 1) so that a count given beside members can be checked against them.
    count: int | None = Field(default=None, ge=1)
    tiers: list[str] = Field(min_length=1)
    cost: float | None = Field(
        default=None, gt=0, description="Fully loaded cost per CSM, USD/year."
    )
    hours_per_week: float | None = Field(
        default=None,
        gt=0,
        le=100,
        description="Working hours per CSM per week (default planning.allocation.hours_per_week).",
    )
    outreach_share: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="Share of those hours free for at-risk outreach "
        "(default planning.allocation.outreach_share).",
    )

    @property
    def size(self) -> int:
        """How many CSMs the entry stands for: its members, else ``count``, else one."""
        if self.members is not None:
            return len(self.members)
        return self.count if self.count is not None else 1

    def names(self) -> list[str]:
        """The CSMs' names: ``members``, else ``name`` (one CSM), else ``"name 1"`` .. ``"name n"``.

        Names never depend on the entry's position, so reordering the file does
        not rename anyone (books are keyed by name). An unnamed entry is named
        after its tiers, e.g. ``"CSM (low, medium) 2"``.
        """
        if self.members is not None:
            return [m.strip() for m in self.members]
        base = self.name.strip() or f"CSM ({', '.join(dict.fromkeys(self.tiers))})"
        if self.size == 1:
            return [base]
        return [f"{base} {k}" for k in range(1, self.size + 1)]


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


def _tier_problems(file: TeamFile, model: TouchModel) -> list[str]:
    valid = [t.id for t in model.tiers]
    problems: list[str] = []
    for i, csm in enumerate(file.csms):
        for j, tid in enumerate(csm.tiers):
            if tid not in valid:
                problems.append(
                    f"csms[{i}].tiers[{j}]: value {tid!r} -- expected a tier id of model "
                    f"'{model.name}' ({', '.join(valid)})"
                )
    return problems


def build_team(file: TeamFile, model: TouchModel, source: str = "<team>") -> Team:
    """Check tier ids against ``model`` and split each CSM's FTE and cost over its tiers."""
    problems = _tier_problems(file, model)
    if problems:
        raise TeamFileError(source, problems)
    valid = [t.id for t in model.tiers]
    fte = dict.fromkeys(valid, 0.0)
    cost = dict.fromkeys(valid, 0.0)
    default_cost = file.planning.economics.csm_cost
    for csm in file.csms:
        tiers = list(dict.fromkeys(csm.tiers))
        share = csm.size / len(tiers)
        for tid in tiers:
            fte[tid] += share
            cost[tid] += share * (csm.cost if csm.cost is not None else default_cost)
    return Team(name=file.name, fte_by_tier=fte, cost_by_tier=cost, source=source)


@dataclass(frozen=True)
class BookOwner:
    """One named CSM who can own accounts, and how many accounts fit in each tier of their book.

    ``capacity[tier]`` is the CSM's FTE share of the tier (1/k for a CSM covering
    k tiers, as in planning) times the tier's ratio cap ``accounts_per_csm.max``;
    when the tier has no upper ratio (``max: null``, e.g. "500+") the minimum is
    the cap, since it is the only figure the model commits to. A tier without a
    ratio (automation only) has capacity 0.
    """

    name: str
    tiers: tuple[str, ...]
    capacity: dict[str, float]

    def covers(self, tier_id: str) -> bool:
        """Whether this CSM's book may hold accounts of ``tier_id``."""
        return tier_id in self.capacity

    def cap(self, tier_id: str) -> float:
        """Capacity for ``tier_id`` (0 when the CSM does not cover it)."""
        return self.capacity.get(tier_id, 0.0)


def tier_cap(model: TouchModel, tier_id: str) -> float:
    """Accounts one full-time CSM may hold in ``tier_id``: the ratio's max, else its min, else 0."""
    r = model.tier(tier_id).accounts_per_csm
    if r is None:
        return 0.0
    return r.max if r.max is not None else r.min


def book_owners(file: TeamFile, model: TouchModel, source: str = "<team>") -> list[BookOwner]:
    """Every named CSM of a team file, with a capacity per covered tier, in file order.

    Raises :class:`TeamFileError` (naming ``source``, the dotted path and the
    value) for unknown tier ids and for a name used twice: books are keyed by
    name, so two people with one name would share a book.
    """
    problems = _tier_problems(file, model)
    valid = {t.id for t in model.tiers}
    seen: dict[str, str] = {}
    owners: list[BookOwner] = []
    for i, csm in enumerate(file.csms):
        tiers = tuple(dict.fromkeys(csm.tiers))
        for j, person in enumerate(csm.names()):
            where = f"csms[{i}].members[{j}]" if csm.members is not None else f"csms[{i}].name"
            if person in seen:
                problems.append(
                    f"{where}: value {person!r} -- expected a unique CSM name (also {seen[person]})"
                )
                continue
            seen[person] = where
            # Unknown tiers are already a problem above; skip them so the loop finishes.
            caps = {t: tier_cap(model, t) / len(tiers) for t in tiers if t in valid}
            owners.append(BookOwner(name=person, tiers=tiers, capacity=caps))
    if problems:
        raise TeamFileError(source, problems)
    return owners


def _entry_problems(file: TeamFile) -> list[str]:
    """Checks across the keys of one entry, which pydantic field types cannot express."""
    problems: list[str] = []
    for i, csm in enumerate(file.csms):
        if csm.members is None:
            continue
        if csm.count is not None and csm.count != len(csm.members):
            problems.append(
                f"csms[{i}].count: value {csm.count} -- expected {len(csm.members)}, the number of "
                "members (or leave count out)"
            )
        for j, person in enumerate(csm.members):
            if not person.strip():
                problems.append(f"csms[{i}].members[{j}]: value {person!r} -- expected a name")
    return problems


def outreach_minutes(file: TeamFile) -> float:
    """CSM minutes per week the team has for at-risk outreach, over every entry."""
    alloc = file.planning.allocation
    return sum(
        csm.size
        * (csm.hours_per_week if csm.hours_per_week is not None else alloc.hours_per_week)
        * (csm.outreach_share if csm.outreach_share is not None else alloc.outreach_share)
        * 60.0
        for csm in file.csms
    )


def team_file_from_dict(data: Any, source: str) -> TeamFile:
    """Validate a parsed team file; raise TeamFileError naming every problem."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise TeamFileError(
            source, [f"(top level): value {type(data).__name__} -- expected a mapping of keys"]
        )
    try:
        file = TeamFile.model_validate(data)
    except ValidationError as exc:
        raise TeamFileError(source, validation_problems(exc)) from None
    problems = _entry_problems(file)
    if problems:
        raise TeamFileError(source, problems)
    return file


def read_team_file(path: Path) -> TeamFile:
    """Read and validate a team YAML file (tier ids are checked later, against a model)."""
    if not path.exists():
        raise TeamFileError(str(path), ["(file): not found -- expected a team YAML file"])
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise TeamFileError(str(path), [yaml_error_text(str(path), exc)]) from None
    return team_file_from_dict(data, str(path))


def load_team(path: Path, model: TouchModel) -> tuple[Team, PlanningDefaults]:
    """Load a team file for ``model``: the team and the planning figures it overrides."""
    file = read_team_file(path)
    return build_team(file, model, str(path)), file.planning


def load_book_owners(path: Path, model: TouchModel) -> list[BookOwner]:
    """Read a team file and list its named CSMs for ``model`` (see :func:`book_owners`)."""
    return book_owners(read_team_file(path), model, str(path))

"""Tier migration rules: the work an account's change of tier creates.

When an account's tier differs from its tier in the previous run, every rule
that matches the move (in file order) creates a task, e.g. a handover when an
account moves into a dedicated-CSM tier. The touch-model file lists them under
``migrations``::

    migrations:
      - id: handover_to_dedicated
        to_owner: dedicated_csm          # one owner kind or a list; absent = any
        task: "Handover: introduce the dedicated CSM, review account history"
        team: csm                        # the account's new CSM does it
        sla_days: 7
      - id: transition_from_dedicated
        from_owner: dedicated_csm
        to_owner: [pooled_csm, automation]
        task: "Transition: write handover notes for the pooled team"
        team: previous_csm               # the CSM the account leaves does it
        sla_days: 14

A rule matches a move from tier A to tier B when every condition it states
holds: ``from_owner``/``to_owner`` (A's / B's owner kind), ``from_tier``/
``to_tier`` (ids) and ``direction`` (``up``/``down`` compare the tiers' touch
levels; ``any``, the default, matches every change of tier, same level included).

``team`` is a team of the model's ``teams``, or ``csm`` (the account's new CSM
owns the task) or ``previous_csm`` (the CSM the account leaves owns it).
``reassign: true`` places a migrating account afresh (CRM owner or least-loaded
CSM of the new tier) even when its CSM covers the new tier; by default books
are sticky and the CSM keeps the account.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

if TYPE_CHECKING:
    from touchmodel.model.schema import Tier

# schema.py imports this module (TouchModel.migrations), so the owner kinds are
# spelled out here rather than imported; a test pins them to schema.Owner.
OwnerKind = Literal["dedicated_csm", "pooled_csm", "automation"]
Direction = Literal["up", "down", "any"]

# Task owners that are people, not a team of the model.
NEW_CSM = "csm"
PREVIOUS_CSM = "previous_csm"
CSM_TEAMS: tuple[str, ...] = (NEW_CSM, PREVIOUS_CSM)


def _as_list(value: object) -> object:
    """Let a rule name one owner kind or tier as a scalar: ``to_owner: dedicated_csm``."""
    return [value] if isinstance(value, str) else value


OwnerKinds = Annotated[list[OwnerKind] | None, BeforeValidator(_as_list)]
TierIds = Annotated[list[str] | None, BeforeValidator(_as_list)]


class MigrationRule(BaseModel):
    """One rule: which tier changes it applies to, and the task it creates."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_.-]*$")
    from_owner: OwnerKinds = Field(default=None, description="Owner kind(s) of the old tier.")
    to_owner: OwnerKinds = Field(default=None, description="Owner kind(s) of the new tier.")
    from_tier: TierIds = Field(default=None, description="Old tier id(s).")
    to_tier: TierIds = Field(default=None, description="New tier id(s).")
    direction: Direction = "any"
    task: str = Field(min_length=1, description="What has to be done, for the task list.")
    team: str = Field(
        description="A team of the model, or 'csm' (new CSM) or 'previous_csm' (old CSM)."
    )
    sla_days: int = Field(default=7, ge=0)
    reassign: bool = Field(
        default=False,
        description="Place the account afresh in its new tier instead of keeping its CSM.",
    )

    def matches(self, old: Tier | None, new: Tier) -> bool:
        """Whether this rule applies to a move from ``old`` to ``new``.

        ``old`` is None when the previous tier is no longer in the model; then
        only rules that say nothing about the old tier can match.
        """
        if old is not None and old.id == new.id:
            return False
        if self.to_owner is not None and new.owner not in self.to_owner:
            return False
        if self.to_tier is not None and new.id not in self.to_tier:
            return False
        if old is None:
            return self.from_owner is None and self.from_tier is None and self.direction == "any"
        if self.from_owner is not None and old.owner not in self.from_owner:
            return False
        if self.from_tier is not None and old.id not in self.from_tier:
            return False
        # Imported here: schema imports this module, so a top-level import would be a cycle.
        from touchmodel.model.schema import LEVELS

        step = LEVELS.index(new.level) - LEVELS.index(old.level)
        if self.direction == "up":
            return step > 0
        if self.direction == "down":
            return step < 0
        return True

"""Every planning figure of docs/touch-model.md as an overridable default.

The numbers below reproduce the SPEC exactly; a team file overrides any of them
in its ``planning:`` section (``planning: {cs_share: {max: 0.2}}``). Nothing in
the planning code hard-codes a figure: it reads it from :class:`PlanningDefaults`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from touchmodel.model.schema import Level


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HiringTrigger(_Strict):
    """A hiring trigger: one CSM of ``level`` per ``accounts_per_csm`` accounts in ``[min, max)`` ARR."""

    level: Level
    label: str
    min: float = Field(ge=0)
    max: float | None = None
    accounts_per_csm: int = Field(gt=0)


def _hiring_triggers() -> list[HiringTrigger]:
    return [
        HiringTrigger(
            level="low", label="low-touch CSM", min=10_000, max=25_000, accounts_per_csm=50
        ),
        HiringTrigger(
            level="medium", label="medium-touch CSM", min=25_000, max=100_000, accounts_per_csm=30
        ),
        HiringTrigger(
            level="high", label="high-touch CSM", min=100_000, max=None, accounts_per_csm=15
        ),
    ]


class ShareBand(_Strict):
    """CS cost as a share of revenue: below ``min`` under-invests, above ``max`` burns cash."""

    min: float = Field(default=0.05, ge=0, le=1)
    max: float = Field(default=0.15, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> ShareBand:
        if self.max < self.min:
            raise ValueError(f"max {self.max} is below min {self.min}")
        return self


class Economics(_Strict):
    """Unit-economics figures and the worked economics table (docs/touch-model.md)."""

    csm_cost: float = Field(
        default=120_000, gt=0, description="Fully loaded cost of one CSM, USD/year."
    )
    cs_share: ShareBand = Field(default_factory=ShareBand)
    # The CS budget the worked table uses ("CS budget at 10% of revenue").
    budget_share: float = Field(default=0.10, gt=0, le=1)
    # "A CSM costing $120K fully loaded must manage at least 10x that in ARR."
    arr_per_csm_multiple: float = Field(default=10, gt=0)
    # Gross margin used for "margin after CS" when the user gives none. SPEC gives no
    # company default; 80% is the enterprise row of the worked table.
    gross_margin: float = Field(default=0.80, ge=0, le=1)
    # Largest accounts-per-CSM ratio that is still high touch (top of 15-25, docs/touch-model.md).
    high_touch_max_ratio: float = Field(default=25, gt=0)
    # Largest ratio that is still a human relationship (top of low touch 50-100, docs/touch-model.md);
    # beyond it no CSM ratio works and the verdict is tech touch only.
    human_max_ratio: float = Field(default=100, gt=0)


class SixFactor(_Strict):
    """The six-factor model choice (docs/touch-model.md): factor cut points, result bands and rules."""

    # ACV zones: < low_acv is the tech zone, >= high_acv the high-touch zone.
    low_acv: float = Field(default=10_000, gt=0)
    high_acv: float = Field(default=100_000, gt=0)
    # Customer segment by employees: >= enterprise is 5 points, >= mid_market 3.
    enterprise_employees: int = Field(default=1_000, gt=0)
    mid_market_employees: int = Field(default=100, gt=0)
    # Gross margin: >= high 5 points, >= low 3 points.
    high_margin: float = Field(default=0.70, ge=0, le=1)
    low_margin: float = Field(default=0.50, ge=0, le=1)
    # Result bands; a total equal to a lower edge gets the more human model
    # (SPEC Decision: 20 is high touch, 12 is low touch).
    high_touch_min: int = Field(default=20, ge=6, le=30)
    low_touch_min: int = Field(default=12, ge=6, le=30)
    # Complexity score at or above which tech touch is never recommended.
    complexity_blocks_tech: int = Field(default=5, ge=1, le=5)
    # A zone "dominates" when it holds at least this share of accounts and of ARR;
    # when none dominates, customers spread over zones and the answer is hybrid.
    hybrid_zone_share: float = Field(default=0.80, gt=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> SixFactor:
        if self.high_acv <= self.low_acv:
            raise ValueError(f"high_acv {self.high_acv} must be above low_acv {self.low_acv}")
        if self.high_touch_min <= self.low_touch_min:
            raise ValueError(
                f"high_touch_min {self.high_touch_min} must be above low_touch_min {self.low_touch_min}"
            )
        if self.enterprise_employees <= self.mid_market_employees:
            raise ValueError("enterprise_employees must be above mid_market_employees")
        if self.high_margin <= self.low_margin:
            raise ValueError("high_margin must be above low_margin")
        return self


class Phases(_Strict):
    """CS organisation phases (docs/touch-model.md) and customer-count stages (docs/touch-model.md)."""

    launch_max_team: int = Field(default=3, ge=0)
    scale_max_team: int = Field(default=10, ge=0)
    # Customer counts where the stages start: early scale, growth, scale.
    early_scale_customers: int = Field(default=100, ge=0)
    growth_customers: int = Field(default=500, ge=0)
    scale_customers: int = Field(default=2_000, ge=0)


def _guideline() -> dict[str, tuple[float, float | None]]:
    # docs/touch-model.md CSM ratio guideline by touch level; tech has no upper bound (500+).
    return {"high": (15, 25), "medium": (30, 50), "low": (50, 100), "tech": (500, None)}


class Mistakes(_Strict):
    """Thresholds that detect the common mistakes (docs/touch-model.md) on the data."""

    # Over-serving: an account whose CS cost is above this share of its ARR
    # (the SPEC example is $3K on a $5K account, 60%). Twice the 15% ceiling so that
    # ordinary spread inside a tier does not trip it. Strategic accounts are exempt.
    over_serving_cost_share: float = Field(default=0.30, gt=0)
    # Under-investing: a strategic account, or one at or above this ARR, whose tier
    # level is below ``under_investing_min_level`` (a $200K account treated like $20K).
    under_investing_arr: float = Field(default=100_000, gt=0)
    under_investing_min_level: Level = "high"
    # Ignoring scale: docs/touch-model.md asks the model to hold at 2-3x today's volume. The
    # mistake fires when the team covers the model below ``scale_min_multiple`` x;
    # hires are planned for ``scale_plan_multiple`` x.
    scale_min_multiple: float = Field(default=2.0, gt=0)
    scale_plan_multiple: float = Field(default=3.0, gt=0)
    # docs/touch-model.md ratio guideline by level: a tier outside it under-attends or over-serves
    # (the "copied a competitor's ratio without context" symptom).
    ratio_guideline: dict[str, tuple[float, float | None]] = Field(default_factory=_guideline)


class Allocation(_Strict):
    """Figures for staffing the at-risk queue (:mod:`touchmodel.fit.allocate`).

    None of these is a published figure; they are our assumptions, stated so a team
    can replace them with its own (``planning: {allocation: {...}}``).
    """

    # A CSM's working week, and the share of it free for at-risk outreach: the
    # rest goes to scheduled calls and reviews, renewals, admin and internal work.
    hours_per_week: float = Field(default=40, gt=0, le=100)
    outreach_share: float = Field(default=0.25, gt=0, le=1)
    # A route without `minutes`: a human conversation, prepared and written up;
    # an automated route takes no CSM time.
    human_minutes: float = Field(default=45, ge=0, le=480)
    # A route without `save_rate`: the share of the churn risk that the work
    # removes. Human outreach saves some at-risk accounts, an automated
    # sequence far fewer.
    human_save_rate: float = Field(default=0.30, ge=0, le=1)
    automated_save_rate: float = Field(default=0.05, ge=0, le=1)
    # Without a fitted churn curve, the health score stands in for the risk:
    # (100 - health) / 100 x proxy_scale, and proxy_unknown when there is no score.
    proxy_scale: float = Field(default=1.0, gt=0, le=1)
    proxy_unknown: float = Field(default=0.5, ge=0, le=1)


class PlanningDefaults(_Strict):
    """All planning figures; ``PlanningDefaults()`` is exactly the SPEC."""

    economics: Economics = Field(default_factory=Economics)
    hiring_triggers: list[HiringTrigger] = Field(default_factory=_hiring_triggers)
    six_factor: SixFactor = Field(default_factory=SixFactor)
    phases: Phases = Field(default_factory=Phases)
    mistakes: Mistakes = Field(default_factory=Mistakes)
    allocation: Allocation = Field(default_factory=Allocation)
    # Projection horizons in months for `plan`.
    horizons_months: list[int] = Field(default_factory=lambda: [12, 24])
    # Suggested new band edges are rounded up to this step, so the suggestion is a
    # number a person would write in a model file.
    band_edge_step: float = Field(default=1_000, gt=0)
    # Growth rates above this are almost surely a typo ("40" for 40%).
    max_growth: float = Field(default=10.0, gt=0)

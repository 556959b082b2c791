"""The touch-model file as typed pydantic models.

Structure checks live here (types, required keys, ``extra="forbid"``);
checks that need the whole model (bands tile the line, weights sum to 100,
names resolve) live in :mod:`touchmodel.model.checks`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from touchmodel.model.cadences import Cadences
from touchmodel.model.migrations import MigrationRule
from touchmodel.sources.contract import ColumnType

Level = Literal["tech", "low", "medium", "high"]
LEVELS: tuple[Level, ...] = ("tech", "low", "medium", "high")
Owner = Literal["dedicated_csm", "pooled_csm", "automation"]
Channel = Literal[
    "email", "phone", "video", "in_app", "webinar", "help_center", "community", "in_person", "chat"
]
Interaction = Literal["proactive", "reactive", "educational", "transactional"]
Outcome = Literal["adoption", "expansion", "renewal", "advocacy"]
ScheduledCalls = Literal["none", "ad_hoc", "quarterly", "monthly"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Range(_Strict):
    """An inclusive numeric range; ``max: null`` means open-ended (e.g. 500+)."""

    min: float = Field(ge=0)
    max: float | None = None


class Band(_Strict):
    """A half-open band ``[min, max)`` on the tiering signal; ``max: null`` is unbounded."""

    min: float = 0
    max: float | None = None


class Tier(_Strict):
    """A touch tier and its answers to the five questions."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_-]*$")
    name: str
    level: Level
    band: Band
    # The five answers.
    frequency: str = Field(description="How often we engage proactively.")
    channels: list[Channel] = Field(min_length=1)
    interaction: list[Interaction] = Field(min_length=1)
    owner: Owner
    outcomes: list[Outcome] = Field(min_length=1)
    # Coverage and economics of the tier.
    coverage: str = ""
    scheduled_calls: ScheduledCalls = "none"
    accounts_per_csm: Range | None = Field(
        default=None, description="Ratio range; null when no CSM covers the tier."
    )
    cost_per_account: Range = Field(description="Fully loaded cost per account per year, USD.")
    share_of_base: Range | None = None


class Tiering(_Strict):
    """How accounts are placed in tiers."""

    signal: str = "arr"
    strategic_tier: str | None = Field(
        default=None,
        description="Tier that strategic accounts are lifted into, whatever their band.",
    )


class EventGroups(_Strict):
    """Which event names belong to which group. ``*`` is a wildcard."""

    usage: list[str] = Field(default_factory=lambda: ["*"])
    core: list[str] = Field(default_factory=list)
    premium: list[str] = Field(default_factory=list)
    integration: list[str] = Field(default_factory=list)
    executive: list[str] = Field(default_factory=list)
    milestone: list[str] = Field(default_factory=list)
    seats: list[str] = Field(default_factory=list)
    seats_removed: list[str] = Field(default_factory=list)
    custom: dict[str, list[str]] = Field(default_factory=dict)

    def groups(self) -> dict[str, list[str]]:
        """Every group by name, built-in and custom."""
        fixed = {
            k: getattr(self, k)
            for k in (
                "usage",
                "core",
                "premium",
                "integration",
                "executive",
                "milestone",
                "seats",
                "seats_removed",
            )
        }
        return {**fixed, **self.custom}


class TicketCategories(_Strict):
    """Which ticket categories count as complaint, downgrade or cancellation."""

    complaint: list[str] = Field(default_factory=lambda: ["complaint"])
    downgrade_or_cancel: list[str] = Field(default_factory=lambda: ["downgrade", "cancellation"])


class Plan(_Strict):
    id: str
    annual_price: float | None = Field(default=None, ge=0)


class ExprSignal(_Strict):
    """A user signal computed from other signals and account columns."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    expr: str
    description: str = ""


class EventSignal(_Strict):
    """A user signal counting (or summing) events of a group in a trailing window."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    events: str = Field(description="An event group name from `events`.")
    window_days: int = Field(default=30, gt=0)
    aggregate: Literal["count", "sum"] = "sum"
    description: str = ""


# The date each activity table is windowed by.
TABLE_DATES: dict[str, str] = {
    "usage_events": "timestamp",
    "tickets": "opened_at",
    "nps_responses": "responded_at",
    "payments": "due_date",
    "contacts": "created_at",
}
Aggregate = Literal["count", "sum", "mean", "min", "max", "latest", "count_distinct"]


class TableSignal(_Strict):
    """A user signal aggregated over any data table: rows in a trailing window, filtered.

    ``aggregate`` of ``column`` over the account's rows of ``table`` dated in
    the last ``window_days`` days (all rows up to the as-of date without a
    window) that satisfy ``where``. ``count`` needs no column; ``latest`` is
    the value of the newest row. No rows: 0 for ``count``/``count_distinct``,
    else missing.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    table: Literal["usage_events", "tickets", "nps_responses", "payments", "contacts"]
    aggregate: Aggregate = "count"
    column: str | None = None
    where: str | None = Field(default=None, description="A condition over the table's columns.")
    window_days: int | None = Field(default=30, gt=0)
    description: str = ""


def _tag_by_key(key: str, cls: type, present: str, absent: str) -> Callable[[object], str]:
    """A union discriminator: ``present`` when a dict has ``key`` (or is a ``cls``)."""

    def tag(value: object) -> str:
        has = key in value if isinstance(value, dict) else isinstance(value, cls)
        return present if has else absent

    return tag


def _signal_tag(value: object) -> str:
    if isinstance(value, dict):
        return "table" if "table" in value else "events" if "events" in value else "expr"
    return (
        "table"
        if isinstance(value, TableSignal)
        else "events"
        if isinstance(value, EventSignal)
        else "expr"
    )


# Tagged by shape, so an error in one kind is not also reported against the other.
Signal = Annotated[
    Annotated[ExprSignal, Tag("expr")]
    | Annotated[EventSignal, Tag("events")]
    | Annotated[TableSignal, Tag("table")],
    Discriminator(_signal_tag),
]


class Measure(_Strict):
    """One input of the health score: a signal scored linearly between ``bad`` and ``good``."""

    id: str
    signal: str
    weight: float = Field(gt=0, le=100)
    bad: float = Field(description="Value scored 0.")
    good: float = Field(description="Value scored 100; values beyond are clamped.")
    label: str = ""


class Grade(_Strict):
    id: str
    min: float = Field(ge=0, le=100)


class ChurnCurve(_Strict):
    """Churn probability within ``horizon_days`` as a function of the health score.

    Fitted by ``touchmodel calibrate`` (isotonic regression on a backtest):
    ``points`` are ``[health_score, probability]`` pairs with rising scores;
    between two points the probability is interpolated linearly, beyond the
    ends it stays at the end's value.
    """

    horizon_days: int = Field(gt=0)
    points: list[tuple[float, float]] = Field(min_length=1)
    fitted_on: str = Field(default="", description="What the curve was fitted on, for the record.")


class Health(_Strict):
    measures: list[Measure] = Field(min_length=1)
    grades: list[Grade] = Field(min_length=1)
    churn_probability: ChurnCurve | None = None


# docs/touch-model.md: the reported stage is the first of these that applies, else growth.
STAGE_ORDER: tuple[str, ...] = ("at_risk", "onboarding", "renewal")


class Override(_Strict):
    """A lifecycle override: when ``when`` holds, the level is raised (never lowered)."""

    stage: Literal["at_risk", "onboarding", "renewal"]
    when: str
    raise_to: Level | None = None
    raise_by: int | None = Field(default=None, ge=1, le=3)
    reason: str


class Lifecycle(_Strict):
    overrides: list[Override]


class Route(_Strict):
    """Who acts on a fired trigger, and how fast."""

    team: str
    action: str
    sla_days: int = Field(default=2, ge=0)
    channel: str | None = None
    # What the work costs and what it is worth, for staffing the queue (touchmodel.fit.allocate).
    # Absent: the team file's planning.allocation defaults (automation takes no CSM time).
    minutes: float | None = Field(
        default=None, ge=0, le=480, description="CSM minutes one work item of this route takes."
    )
    save_rate: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Assumed share of the churn risk this work removes when it is done.",
    )


class RouteBand(_Strict):
    below: float | None = None
    route: str


class SwitchRoute(_Strict):
    """A route chosen by a signal's value, e.g. expansion value bands."""

    by: str
    bands: list[RouteBand] = Field(min_length=1)


AnyRoute = Annotated[
    Annotated[Route, Tag("plain")] | Annotated[SwitchRoute, Tag("switch")],
    Discriminator(_tag_by_key("by", SwitchRoute, "switch", "plain")),
]


class Trigger(_Strict):
    id: str = Field(pattern=r"^[a-z_]+\.[a-z0-9_]+$")
    description: str = ""
    when: str
    route: str
    cooldown_days: int = Field(default=14, ge=0)
    enabled: bool = True


class Expansion(_Strict):
    """Expansion value: ARR x plan step where plans have prices, else ARR."""

    value_signal: str = "expansion_value"


class DiagnosticSettings(_Strict):
    """Limits of the data-fit diagnostics (see docs/diagnostics.md). They never change a decision."""

    max_fire_share: float = Field(
        default=0.20, gt=0, le=1, description="Flag a trigger firing on more than this share."
    )
    overlap_jaccard: float = Field(
        default=0.80,
        gt=0,
        le=1,
        description="Flag two triggers whose accounts overlap this much (Jaccard) or more.",
    )
    overlap_min_accounts: int = Field(
        default=10, ge=1, description="...and that fire together on at least this many accounts."
    )
    min_coverage: float = Field(
        default=0.50, ge=0, le=1, description="Flag a health measure with a value for fewer."
    )
    max_same_score: float = Field(
        default=0.95,
        gt=0,
        le=1,
        description="Flag a health measure giving one score to at least this share of accounts.",
    )
    max_at_risk_share: float = Field(
        default=0.15, gt=0, le=1, description="Flag an at-risk share above this."
    )
    risk_items_per_csm_week: float = Field(
        default=10, gt=0, description="At-risk work items one CSM can work in a week."
    )


class TouchModel(_Strict):
    """A whole touch-model file."""

    name: str
    description: str = ""
    version: int = 1
    tiering: Tiering = Field(default_factory=Tiering)
    tiers: list[Tier] = Field(min_length=1)
    plans: list[Plan] = Field(default_factory=list)
    events: EventGroups = Field(default_factory=EventGroups)
    ticket_categories: TicketCategories = Field(default_factory=TicketCategories)
    executive_titles: str = Field(
        default=r"(?i)\b(chief|ceo|cfo|coo|cto|cio|cro|cmo|ciso|[se]?vp|vice president|president)\b",
        description="Regular expression a contact title must match to count as executive.",
    )
    extra_columns: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="Extra accounts columns (beyond the data contract) that rules may use, with their types.",
    )
    signals: list[Signal] = Field(default_factory=list)
    health: Health
    lifecycle: Lifecycle
    teams: list[str] = Field(min_length=1)
    routes: dict[str, AnyRoute]
    triggers: list[Trigger]
    cadences: Cadences = Field(default_factory=Cadences)
    migrations: list[MigrationRule] = Field(default_factory=list)
    diagnostics: DiagnosticSettings = Field(default_factory=DiagnosticSettings)

    def tier(self, tier_id: str) -> Tier:
        for t in self.tiers:
            if t.id == tier_id:
                return t
        raise KeyError(tier_id)

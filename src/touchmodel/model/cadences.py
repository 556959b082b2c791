"""Cadences in the touch-model file: which touchpoints to plan, and when (docs/touch-model.md).

Everything is counted from the account's ``contract_start``:

- ``day: N``   -- day 1 is the contract start date itself, so day N is
  ``contract_start + (N - 1)`` days (onboarding "day 3" is two days after start).
- ``week: N``  -- the first day of week N: day ``7N - 6`` (week 1 = day 1,
  week 2 = day 8, week 4 = day 22). A "week 1 kickoff" should happen at once,
  not at the end of the first week.
- ``month: N`` -- N calendar months after contract start (the Nth monthly
  anniversary; Jan 31 + 1 month = Feb 28). "Month 1 milestone check-in" only
  makes sense at the end of the first month, and "month 3 QBR" at the end of
  the first quarter, when the 90-day onboarding window closes.

A one-off item has ``at``; a recurring item has ``after`` and ``every`` and
occurs at ``after + k * every`` for k = 1, 2, ... ("then biweekly check-ins"
after the month-3 QBR starts two weeks after it, never on the QBR's day).

A calendar line that *is* an automated-sequence email (medium "week 1 automated
onboarding email", low "day 1 automated welcome series") names that email in
``delivered_by`` (e.g. ``onboarding.day1``) instead of being planned a second
time: the calendar still reads as documented, and the account gets one email.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# The same literals as in schema.py, spelled out here because schema.py imports
# this module (for TouchModel.cadences): importing them back would be a cycle
# that breaks whichever module is imported first. A test pins them equal.
Level = Literal["tech", "low", "medium", "high"]
LEVELS: tuple[Level, ...] = ("tech", "low", "medium", "high")
Channel = Literal[
    "email", "phone", "video", "in_app", "webinar", "help_center", "community", "in_person", "chat"
]
ScheduledCalls = Literal["none", "ad_hoc", "quarterly", "monthly"]

# The email templates the delivery side knows (one file per name).
Template = Literal[
    "onboarding_day1",
    "onboarding_day3",
    "onboarding_day7",
    "onboarding_day14",
    "activation_day7",
    "activation_day14",
    "activation_day30",
    "renewal_60",
    "renewal_30",
    "renewal_14",
    "reengagement",
    "touchpoint",
]
OwnerRole = Literal["csm", "automation"]
Stage = Literal["onboarding", "growth", "renewal", "at_risk"]
_KEY = r"^[a-z][a-z0-9_]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _exactly_one(obj: BaseModel, names: tuple[str, ...]) -> None:
    given = [n for n in names if getattr(obj, n) is not None]
    if len(given) != 1:
        raise ValueError(f"expected exactly one of {', '.join(names)}, got {given or 'none'}")


class When(_Strict):
    """A point counted from contract start: exactly one of ``day``, ``week``, ``month``."""

    day: int | None = Field(default=None, ge=1)
    week: int | None = Field(default=None, ge=1)
    month: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _one(self) -> When:
        _exactly_one(self, ("day", "week", "month"))
        return self

    def parts(self) -> tuple[int, int]:
        """``(months, days)`` to add to ``contract_start`` to reach this point."""
        if self.month is not None:
            return self.month, 0
        if self.week is not None:
            return 0, 7 * (self.week - 1)
        assert self.day is not None  # guaranteed by the validator
        return 0, self.day - 1


class Every(_Strict):
    """A recurrence period: exactly one of ``days``, ``weeks``, ``months``."""

    days: int | None = Field(default=None, ge=1)
    weeks: int | None = Field(default=None, ge=1)
    months: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> Every:
        _exactly_one(self, ("days", "weeks", "months"))
        return self

    def parts(self) -> tuple[int, int]:
        """``(months, days)`` of one period."""
        if self.months is not None:
            return self.months, 0
        if self.weeks is not None:
            return 0, 7 * self.weeks
        assert self.days is not None
        return 0, self.days


class CalendarItem(_Strict):
    """One line of a cadence calendar: a one-off (``at``) or recurring (``after`` + ``every``)."""

    key: str = Field(pattern=_KEY, description="Stable key, unique within its calendar.")
    title: str
    at: When | None = None
    after: When | None = None
    every: Every | None = None
    channel: Channel
    automated: bool
    owner: OwnerRole
    template: Template | None = Field(
        default=None, description="Email template; required for automated emails."
    )
    delivered_by: str | None = Field(
        default=None,
        description="Key of the sequence email that already delivers this line "
        "(e.g. onboarding.day1); the item is then not planned a second time.",
    )


class Calendars(_Strict):
    """The touch model's cadence calendars by effective touch level; tech has none by default."""

    tech: list[CalendarItem] = Field(default_factory=list)
    low: list[CalendarItem] = Field(default_factory=list)
    medium: list[CalendarItem] = Field(default_factory=list)
    high: list[CalendarItem] = Field(default_factory=list)

    def for_level(self, level: Level) -> list[CalendarItem]:
        """The calendar of one level."""
        items: list[CalendarItem] = getattr(self, level)
        return items


class Step(_Strict):
    """One email of an automated sequence, on day N counted from contract start."""

    day: int = Field(ge=1)
    title: str
    template: Template


class RenewalStep(_Strict):
    """One renewal email, N days before the renewal date."""

    days_before: int = Field(ge=0)
    title: str
    template: Template


class Sequence(_Strict):
    """An automated email sequence from contract start, for the tier levels listed."""

    tier_levels: list[Level] = Field(
        default_factory=lambda: list(LEVELS),
        description="Tier levels (of the account's tier, not the effective level) it runs for.",
    )
    channel: Channel = "email"
    steps: list[Step] = Field(default_factory=list)


class RenewalSequence(_Strict):
    tier_levels: list[Level] = Field(default_factory=lambda: list(LEVELS))
    channel: Channel = "email"
    steps: list[RenewalStep] = Field(default_factory=list)


class Call(_Strict):
    """A recurring CSM call, every period from contract start."""

    title: str
    every: Every
    channel: Channel = "video"


CallKind = Literal["monthly", "quarterly"]


def _default_calls() -> dict[CallKind, Call]:
    return {
        "monthly": Call(title="Monthly account call", every=Every(months=1)),
        "quarterly": Call(title="Quarterly review call", every=Every(months=3)),
    }


def _default_stages() -> dict[Stage, ScheduledCalls]:
    return {"onboarding": "monthly", "at_risk": "monthly"}


def _high() -> list[Level]:
    return ["high"]


class ScheduledCallPlan(_Strict):
    """The touch model's "Scheduled calls": the rhythm comes from the tier's ``scheduled_calls``,
    raised by the lifecycle stage (onboarding and at-risk accounts get monthly calls).
    ``ad_hoc`` and ``none`` plan nothing: those calls come from triggers."""

    calls: dict[CallKind, Call] = Field(default_factory=_default_calls)
    stages: dict[Stage, ScheduledCalls] = Field(default_factory=_default_stages)


class Ebr(_Strict):
    """Executive business reviews for accounts whose tier has one of ``tier_levels``."""

    title: str = "Executive business review"
    tier_levels: list[Level] = Field(default_factory=_high)
    every: Every = Field(default_factory=lambda: Every(months=3))
    channel: Channel = "in_person"


def _steps(spec: list[tuple[int, str, str]]) -> list[Step]:
    return [Step.model_validate({"day": d, "title": t, "template": tpl}) for d, t, tpl in spec]


def _default_onboarding() -> Sequence:
    return Sequence(
        steps=_steps(
            [
                (1, "Welcome and quick start", "onboarding_day1"),
                (3, "Feature highlights", "onboarding_day3"),
                (7, "Use-case ideas", "onboarding_day7"),
                (14, "Success stories", "onboarding_day14"),
            ]
        )
    )


def _default_activation() -> Sequence:
    return Sequence(
        tier_levels=["tech"],
        steps=_steps(
            [
                (7, "Activation: first value", "activation_day7"),
                (14, "Activation: build the habit", "activation_day14"),
                (30, "Activation: go further", "activation_day30"),
            ]
        ),
    )


def _default_renewal() -> RenewalSequence:
    return RenewalSequence(
        steps=[
            RenewalStep.model_validate({"days_before": d, "title": t, "template": f"renewal_{d}"})
            for d, t in (
                (60, "Renewal in 60 days"),
                (30, "Renewal in 30 days"),
                (14, "Renewal in 14 days"),
            )
        ]
    )


def _item(**kw: object) -> CalendarItem:
    return CalendarItem.model_validate(kw)


def _csm(key: str, title: str, channel: str, **when: object) -> CalendarItem:
    return _item(key=key, title=title, channel=channel, automated=False, owner="csm", **when)


def _auto(key: str, title: str, channel: str, **kw: object) -> CalendarItem:
    return _item(key=key, title=title, channel=channel, automated=True, owner="automation", **kw)


def _default_calendars() -> Calendars:
    """The touch model's "Cadence calendars", line by line (kept identical to ``_common.yaml``)."""
    return Calendars(
        high=[
            _csm("kickoff", "Kickoff call", "video", at={"week": 1}),
            _csm("implementation_checkin", "Implementation check-in", "video", at={"week": 2}),
            _csm("success_milestone_review", "First success milestone review", "video", at={"week": 4}),
            _csm("first_month_retrospective", "First-month retrospective", "video", at={"month": 2}),
            _csm("qbr", "Quarterly business review", "video", at={"month": 3}),
            _csm("checkin", "Biweekly check-in", "video", after={"month": 3}, every={"weeks": 2}),
        ],
        medium=[
            _auto("onboarding_email", "Automated onboarding email", "email", at={"week": 1},
                  template="onboarding_day1", delivered_by="onboarding.day1"),
            _csm("checkin_call", "Check-in call", "phone", at={"week": 2}),
            _csm("milestone_checkin", "Milestone check-in", "video", at={"month": 1}),
            _csm("qbr", "First QBR", "video", at={"month": 3}),
            _csm("monthly_email", "Monthly touchpoint (email)", "email", after={"month": 2}, every={"months": 2}),
            _csm("monthly_call", "Monthly touchpoint (call)", "phone", after={"month": 3}, every={"months": 2}),
        ],
        low=[
            _auto("welcome_series", "Automated welcome series", "email", at={"day": 1},
                  template="onboarding_day1", delivered_by="onboarding.day1"),
            _auto("resources_checkin", "Automated check-in email with resources", "email",
                  at={"week": 2}, template="touchpoint"),
            _auto("milestone_celebration", "In-app milestone celebration", "in_app", at={"month": 1}),
            _csm("health_review", "Health review, CSM intervention as needed", "email", at={"month": 3}),
            _auto("quarterly_checkin", "Quarterly automated check-in", "email",
                  after={"month": 3}, every={"months": 3}, template="touchpoint"),
        ],
    )  # fmt: skip


class Cadences(_Strict):
    """Touchpoint planning: calendars, automated sequences, calls, EBR and the weekly cap."""

    horizon_days: int = Field(
        default=14, ge=0, description="Plan occurrences due from as-of to as-of + horizon_days."
    )
    weekly_cap: int = Field(
        default=3,
        ge=0,
        description="At most this many automated touchpoints per account per ISO week.",
    )
    calendars: Calendars = Field(default_factory=_default_calendars)
    onboarding: Sequence = Field(default_factory=_default_onboarding)
    activation: Sequence = Field(default_factory=_default_activation)
    renewal: RenewalSequence = Field(default_factory=_default_renewal)
    scheduled_calls: ScheduledCallPlan = Field(default_factory=ScheduledCallPlan)
    ebr: Ebr = Field(default_factory=Ebr)

    def sequence_keys(self) -> set[str]:
        """Keys of the one-off sequence emails a calendar line may be ``delivered_by``."""
        return {f"onboarding.day{s.day}" for s in self.onboarding.steps} | {
            f"activation.day{s.day}" for s in self.activation.steps
        }


def check_cadences(c: Cadences) -> list[str]:
    """Meaning problems of the ``cadences`` section, as ``dotted.path: ... -- ...`` lines."""
    problems: list[str] = []
    seq_keys = c.sequence_keys()
    for level in LEVELS:
        items = c.calendars.for_level(level)
        keys = [it.key for it in items]
        for i, it in enumerate(items):
            at = f"cadences.calendars.{level}[{i}]"
            if keys.index(it.key) != i:
                problems.append(
                    f"{at}.key: value {it.key!r} -- expected a key unique in the {level} calendar "
                    f"(also cadences.calendars.{level}[{keys.index(it.key)}])"
                )
            if (it.at is None) == (it.after is None) or (it.after is None) != (it.every is None):
                problems.append(
                    f"{at}: -- expected either 'at' (a one-off) or 'after' with 'every' (recurring)"
                )
            if it.automated != (it.owner == "automation"):
                problems.append(
                    f"{at}.owner: value {it.owner!r} -- expected 'automation' for an automated "
                    "item and 'csm' otherwise"
                )
            if it.automated and it.channel == "email" and it.template is None:
                problems.append(f"{at}.template: missing -- an automated email needs a template")
            if not it.automated and it.template is not None:
                problems.append(
                    f"{at}.template: value {it.template!r} -- only automated items use a template"
                )
            if it.delivered_by is not None and it.delivered_by not in seq_keys:
                problems.append(
                    f"{at}.delivered_by: value {it.delivered_by!r} -- expected the key of an "
                    f"onboarding or activation email, one of {sorted(seq_keys)}"
                )
    for name in ("onboarding", "activation"):
        days = [s.day for s in getattr(c, name).steps]
        for i, d in enumerate(days):
            if days.index(d) != i:
                problems.append(
                    f"cadences.{name}.steps[{i}].day: value {d} -- expected each day once "
                    f"(the key is {name}.day{d})"
                )
    before = [s.days_before for s in c.renewal.steps]
    for i, d in enumerate(before):
        if before.index(d) != i:
            problems.append(
                f"cadences.renewal.steps[{i}].days_before: value {d} -- expected each value once"
            )
    return problems

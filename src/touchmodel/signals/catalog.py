"""The names of every built-in signal, what each means and which table it needs.

The catalogue is the single list that static model checks, the engine and the
documentation read, so a signal cannot exist in one place and not the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from touchmodel.sources.contract import ACCOUNTS, IBIS_TYPES


@dataclass(frozen=True)
class SignalInfo:
    name: str
    table: str  # the optional table it needs ("accounts" = always available)
    description: str
    type: str = "float64"  # Ibis type, also of the NULL column when unavailable
    count: bool = False  # an account with no rows counts 0, not NULL
    columns: tuple[str, ...] = ()  # accounts columns it needs beyond the required ones


_U, _T, _N, _P, _C, _A = (
    "usage_events", "tickets", "nps_responses", "payments", "contacts", "accounts",
)  # fmt: skip
_I, _B, _D = "int64", "boolean", "date"

BUILTIN: tuple[SignalInfo, ...] = (
    SignalInfo("usage_30d", _U, "Usage units in the last 30 days (as-of day included).", count=True),
    SignalInfo("usage_prev_30d", _U, "Usage units in the 30 days before that.", count=True),
    SignalInfo("usage_change_pct", _U, "usage_30d vs usage_prev_30d in %; null when the previous period is 0."),
    SignalInfo("active_users_30d", _U, "Distinct users with a usage event in the last 30 days.", _I, True),
    SignalInfo("days_inactive", _U, "Days since the last usage event (since contract start if none).", _I),
    SignalInfo("plan_utilization", _U, "usage_30d / plan_limit; null without a plan limit.", columns=("plan_limit",)),
    SignalInfo("seats_change_30d", _U, "Seats added minus seats removed in the last 30 days (seat events).", count=True),
    SignalInfo("premium_events_30d", _U, "Premium-feature events in the last 30 days.", _I, True),
    SignalInfo("premium_feature_max_30d", _U, "Most uses of any one premium feature in the last 30 days.", _I, True),
    SignalInfo("integration_events_30d", _U, "Integration events in the last 30 days.", _I, True),
    SignalInfo("integration_first_use_30d", _U, "True when the first integration event ever is in the last 30 days.", _B),
    SignalInfo("executive_events_30d", _U, "Executive-intent events in the last 30 days.", _I, True),
    SignalInfo("milestone_events_30d", _U, "Milestone events in the last 30 days.", _I, True),
    SignalInfo("core_features_abandoned", _U, "Core events used in the previous 30 days with no use in the last 30.", _I, True),
    SignalInfo("tickets_14d", _T, "Tickets opened in the last 14 days.", _I, True),
    SignalInfo("tickets_30d", _T, "Tickets opened in the last 30 days.", _I, True),
    SignalInfo("complaint_tickets_30d", _T, "Complaint tickets opened in the last 30 days.", _I, True),
    SignalInfo("downgrade_cancel_tickets_30d", _T, "Downgrade or cancellation tickets in the last 30 days.", _I, True),
    SignalInfo("nps_latest_score", _N, "Score of the latest NPS response up to the as-of date."),
    SignalInfo("nps_latest_days_ago", _N, "Days since that response.", _I),
    SignalInfo("nps_score_180d", _N, "Latest NPS score if answered in the last 180 days, else null."),
    SignalInfo("failed_payments_30d", _P, "Failed payments due in the last 30 days.", _I, True),
    SignalInfo("failed_payments_90d", _P, "Failed payments due in the last 90 days.", _I, True),
    SignalInfo("executive_contacts", _C, "Contacts whose title matches `executive_titles` (C-level, VP).", _I, True),
    SignalInfo("days_since_start", _A, "Days since contract_start.", _I),
    SignalInfo("renewal_date_effective", _A, "renewal_date, or the next anniversary of contract_start.", _D),
    SignalInfo("days_to_renewal", _A, "Days until renewal_date_effective.", _I),
    SignalInfo("has_csm", _A, "True when the csm column names someone.", _B, columns=("csm",)),
    SignalInfo("is_lowest_plan", _A, "True when plan is the first plan of the model's `plans`.", _B, columns=("plan",)),
    SignalInfo("expansion_value", _A, "Expected ARR increase: ARR x plan step with a price list, else ARR."),
)  # fmt: skip

BY_NAME: dict[str, SignalInfo] = {s.name: s for s in BUILTIN}

# Names available to rules after the decision stage has computed them, with types.
DECISION_NAMES: dict[str, str] = {"health_score": "float64", "tier_level_rank": "int64"}

ACCOUNT_COLUMNS: tuple[str, ...] = tuple(c.name for c in ACCOUNTS.columns)
ACCOUNT_TYPES: dict[str, str] = {c.name: IBIS_TYPES[c.type] for c in ACCOUNTS.columns}

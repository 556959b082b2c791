"""Two hand-written baselines for the ``standard`` preset, to time the engine against.

Both compute, from the same Parquet files the engine reads, the same signals
(SPEC.md §10, ``signals/build.py``) and the same decision columns
(``decide/*.py``) for the ``standard`` preset, with every constant of the preset
written out by hand:

* :func:`run_sql` -- one DuckDB SQL query (CTEs) over ``read_parquet``;
* :func:`run_pandas` -- vectorized pandas/numpy (groupby, joins, ``np.select``),
  no Python loop over accounts or rows.

Neither validates rows the way the engine's loader does: the demo data is clean,
and the comparison in ``bench_decisions.py`` checks that all three agree.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

TABLE_NAMES = ("accounts", "usage_events", "tickets", "nps_responses", "payments", "contacts")

DECISION_COLUMNS = (
    "account_id", "as_of", "tier", "tier_level", "lifecycle_stage", "touch_level",
    "level_reasons", "health_score", "health_grade", "health_top_factor", "triggers", "routes",
)  # fmt: skip

# --- the standard preset, by hand -------------------------------------------------

# Event names that are not "usage" (usage: ["*", "!pricing.*", ...]).
NOT_USAGE_PREFIXES = (
    "pricing.",
    "seat.",
    "security_questionnaire.",
    "rfp.",
    "sales.",
    "milestone.",
)
CORE_EVENTS = ("report.created", "dashboard.viewed", "workflow.run", "record.updated")
EXECUTIVE_EVENTS = (
    "pricing.enterprise_viewed",
    "security_questionnaire.requested",
    "rfp.requested",
    "sales.procurement_contact",
)
EXECUTIVE_TITLES = r"(?i)\b(chief|ceo|cfo|coo|cto|cio|cro|cmo|ciso|vp|vice president|president)\b"

# (id, label, signal, weight, bad, good)
MEASURES = (
    ("usage_trend", "Usage trend (30d vs previous 30d)", "usage_change_pct", 25.0, -50.0, 10.0),
    ("recency", "Days since last use", "days_inactive", 20.0, 30.0, 3.0),
    ("adoption", "Plan utilization", "plan_utilization", 15.0, 0.05, 0.6),
    ("support", "Tickets in 30 days", "tickets_30d", 10.0, 6.0, 0.0),
    ("sentiment", "NPS (last 180 days)", "nps_score_180d", 20.0, 0.0, 10.0),
    ("billing", "Failed payments in 90 days", "failed_payments_90d", 10.0, 2.0, 0.0),
)

TIER_REASONS = {
    "digital": "tier 'digital' by arr in [0, 10,000)",
    "low": "tier 'low' by arr in [10,000, 25,000)",
    "medium": "tier 'medium' by arr in [25,000, 100,000)",
    "high": "tier 'high' by arr in [100,000, no limit)",
}
LIFT_REASON = "; strategic account lifted to tier 'high'"
AT_RISK_REASON = (
    "at risk: churn signals fired, escalated one level above the tier until it recovers"
)
ONBOARDING_REASON = "onboarding: first 90 days after contract start get high touch"
RENEWAL_REASON = "renewal window: 90 to 60 days before renewal, touch increases one level"

# Trigger ids in model order; a route is a plain id or the name of a switch route.
TRIGGERS = (
    ("value.dedicated_csm", "assign_dedicated_csm"),
    ("risk.usage_decline", "csm_immediate"),
    ("risk.usage_drop_mom", "csm_at_risk_outreach"),
    ("risk.inactive", "reengagement"),
    ("risk.feature_abandonment", "csm_outreach"),
    ("risk.ticket_spike", "csm_outreach"),
    ("risk.nps_detractor", "csm_immediate_followup"),
    ("risk.negative_feedback", "csm_outreach"),
    ("risk.payment_failed", "csm_billing"),
    ("risk.downgrade_or_cancel", "csm_immediate"),
    ("risk.health_low", "csm_outreach"),
    ("expansion.plan_capacity", "@expansion"),
    ("expansion.seat_growth", "@expansion"),
    ("expansion.premium_interest", "@expansion"),
    ("expansion.integration", "@expansion"),
    ("expansion.usage_velocity", "@expansion"),
    ("complexity.enterprise_feature_on_starter", "solutions_engineering"),
    ("executive.contact", "senior_account_executive"),
    ("executive.intent", "senior_account_executive"),
    ("lifecycle.renewal_window", "@renewal_outreach"),
    ("lifecycle.milestone", "@milestone"),
)
# Every built-in signal (signals/catalog.py); the baselines return them all, as the
# engine does, so neither side skips work the other does.
SIGNAL_COLUMNS = (
    "usage_30d", "usage_prev_30d", "usage_change_pct", "active_users_30d", "days_inactive",
    "plan_utilization", "seats_change_30d", "premium_events_30d", "premium_feature_max_30d",
    "integration_events_30d",
    "integration_first_use_30d", "executive_events_30d", "milestone_events_30d",
    "core_features_abandoned", "tickets_14d", "tickets_30d", "complaint_tickets_30d",
    "downgrade_cancel_tickets_30d", "nps_latest_score", "nps_latest_days_ago", "nps_score_180d",
    "failed_payments_30d", "failed_payments_90d", "executive_contacts", "days_since_start",
    "renewal_date_effective", "days_to_renewal", "has_csm", "is_lowest_plan", "expansion_value",
)  # fmt: skip
RISK_TRIGGERS = tuple(t for t, _ in TRIGGERS if t.startswith("risk."))


def table_files(data: Path) -> dict[str, list[str]]:
    """Parquet files per table: ``<table>.parquet`` or ``<table>/*.parquet``."""
    out: dict[str, list[str]] = {}
    for name in TABLE_NAMES:
        folder, single = data / name, data / f"{name}.parquet"
        if folder.is_dir():
            files = sorted(str(p) for p in folder.glob("*.parquet"))
        elif single.exists():
            files = [str(single)]
        else:
            files = []
        if not files:
            raise FileNotFoundError(f"{data}: no Parquet file for table {name!r}")
        out[name] = files
    return out


# --- one hand-written DuckDB query ------------------------------------------------


def _q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _sql_list(items: list[str] | tuple[str, ...]) -> str:
    return "[" + ", ".join(_q(i) for i in items) + "]"


def decision_sql(data: Path, as_of: dt.date) -> str:
    """The whole decision for every account as one DuckDB query."""
    f = {name: _sql_list(files) for name, files in table_files(data).items()}
    asof = f"DATE '{as_of.isoformat()}'"
    return f"""
WITH
ev AS (
  SELECT account_id, event, user_id, COALESCE(quantity, 1)::DOUBLE AS qty,
         date_diff('day', CAST("timestamp" AS DATE), {asof}) AS age,
         NOT (starts_with(event, 'pricing.') OR starts_with(event, 'seat.')
              OR starts_with(event, 'security_questionnaire.') OR starts_with(event, 'rfp.')
              OR starts_with(event, 'sales.') OR starts_with(event, 'milestone.')) AS is_usage
  FROM read_parquet({f["usage_events"]})
  WHERE CAST("timestamp" AS DATE) <= {asof}
),
usage AS (
  SELECT account_id,
    SUM(qty) FILTER (WHERE is_usage AND age < 30) AS usage_30d,
    SUM(qty) FILTER (WHERE is_usage AND age >= 30 AND age < 60) AS usage_prev_30d,
    MIN(age) FILTER (WHERE is_usage) AS last_usage_age,
    SUM(qty) FILTER (WHERE event = 'seat.added' AND age < 30) AS seats_added,
    SUM(qty) FILTER (WHERE event = 'seat.removed' AND age < 30) AS seats_removed,
    COUNT(*) FILTER (WHERE starts_with(event, 'premium.') AND age < 30) AS premium_events_30d,
    COUNT(*) FILTER (WHERE starts_with(event, 'integration.') AND age < 30)
      AS integration_events_30d,
    MAX(age) FILTER (WHERE starts_with(event, 'integration.')) AS first_integration_age,
    COUNT(*) FILTER (WHERE event IN {tuple(EXECUTIVE_EVENTS)} AND age < 30)
      AS executive_events_30d,
    COUNT(*) FILTER (WHERE starts_with(event, 'milestone.') AND age < 30) AS milestone_events_30d,
    -- a core feature used in days 30..59 and not in days 0..29, one term per feature
    (COUNT(*) FILTER (WHERE event = 'report.created' AND age BETWEEN 30 AND 59) > 0
       AND COUNT(*) FILTER (WHERE event = 'report.created' AND age < 30) = 0)::INT
    + (COUNT(*) FILTER (WHERE event = 'dashboard.viewed' AND age BETWEEN 30 AND 59) > 0
       AND COUNT(*) FILTER (WHERE event = 'dashboard.viewed' AND age < 30) = 0)::INT
    + (COUNT(*) FILTER (WHERE event = 'workflow.run' AND age BETWEEN 30 AND 59) > 0
       AND COUNT(*) FILTER (WHERE event = 'workflow.run' AND age < 30) = 0)::INT
    + (COUNT(*) FILTER (WHERE event = 'record.updated' AND age BETWEEN 30 AND 59) > 0
       AND COUNT(*) FILTER (WHERE event = 'record.updated' AND age < 30) = 0)::INT
      AS core_features_abandoned
  FROM ev
  GROUP BY account_id
),
-- the most uses of any one premium feature in the last 30 days
premium AS (
  SELECT account_id, MAX(n) AS premium_feature_max_30d
  FROM (SELECT account_id, event, COUNT(*) AS n FROM ev
        WHERE starts_with(event, 'premium.') AND age < 30
        GROUP BY account_id, event)
  GROUP BY account_id
),
-- distinct users: DISTINCT then count is faster in DuckDB than COUNT(DISTINCT) FILTER
active AS (
  SELECT account_id, COUNT(*) AS active_users_30d
  FROM (SELECT DISTINCT account_id, user_id FROM ev
        WHERE is_usage AND age < 30 AND user_id IS NOT NULL)
  GROUP BY account_id
),
tk AS (
  SELECT account_id,
    COUNT(*) FILTER (WHERE age < 14) AS tickets_14d,
    COUNT(*) FILTER (WHERE age < 30) AS tickets_30d,
    COUNT(*) FILTER (WHERE age < 30 AND lower(category) = 'complaint') AS complaint_tickets_30d,
    COUNT(*) FILTER (WHERE age < 30 AND lower(category) IN ('downgrade', 'cancellation'))
      AS downgrade_cancel_tickets_30d
  FROM (SELECT account_id, category,
               date_diff('day', CAST(opened_at AS DATE), {asof}) AS age
        FROM read_parquet({f["tickets"]}))
  WHERE age >= 0
  GROUP BY account_id
),
nps AS (
  SELECT account_id,
    -- the latest response; two at the same instant: the lower score
    arg_max(score::DOUBLE, epoch_us(responded_at) * 16 + (10 - score)) AS nps_latest_score,
    MIN(age) AS nps_latest_days_ago
  FROM (SELECT account_id, score, responded_at,
               date_diff('day', CAST(responded_at AS DATE), {asof}) AS age
        FROM read_parquet({f["nps_responses"]}))
  WHERE age >= 0
  GROUP BY account_id
),
pay AS (
  SELECT account_id,
    COUNT(*) FILTER (WHERE status = 'failed' AND age < 30) AS failed_payments_30d,
    COUNT(*) FILTER (WHERE status = 'failed' AND age < 90) AS failed_payments_90d
  FROM (SELECT account_id, status, date_diff('day', CAST(due_date AS DATE), {asof}) AS age
        FROM read_parquet({f["payments"]}))
  WHERE age >= 0
  GROUP BY account_id
),
ct AS (
  SELECT account_id,
    COUNT(*) FILTER (WHERE regexp_matches(COALESCE(title, ''), '{EXECUTIVE_TITLES}'))
      AS executive_contacts
  FROM read_parquet({f["contacts"]})
  GROUP BY account_id
),
acc AS (
  SELECT account_id, arr::DOUBLE AS arr, plan_limit::DOUBLE AS plan_limit,
    COALESCE(strategic, FALSE) AS strategic,
    (csm IS NOT NULL AND trim(csm) <> '') AS has_csm,
    COALESCE(plan = 'starter', FALSE) AS is_lowest_plan,
    arr::DOUBLE AS expansion_value,
    date_diff('day', CAST(contract_start AS DATE), {asof}) AS days_since_start,
    -- renewal_date, else the first anniversary of contract_start on or after the
    -- as-of date (and after the start)
    COALESCE(CAST(renewal_date AS DATE), CASE
      WHEN CAST(contract_start AS DATE) + to_years(year({asof}) - year(contract_start)) < {asof}
        OR CAST(contract_start AS DATE) + to_years(year({asof}) - year(contract_start))
           <= CAST(contract_start AS DATE)
      THEN CAST(CAST(contract_start AS DATE) + to_years(year({asof}) - year(contract_start))
                + INTERVAL 1 YEAR AS DATE)
      ELSE CAST(CAST(contract_start AS DATE) + to_years(year({asof}) - year(contract_start))
                AS DATE)
    END) AS renewal_date_effective
  FROM read_parquet({f["accounts"]})
  -- customers on the as-of date only: not churned by then, contract started
  WHERE NOT COALESCE(CAST(churned_on AS DATE) <= {asof}, FALSE)
    AND CAST(contract_start AS DATE) <= {asof}
),
sig AS (
  SELECT acc.account_id, acc.arr, acc.strategic, acc.has_csm, acc.is_lowest_plan,
    acc.expansion_value, acc.days_since_start, acc.renewal_date_effective,
    date_diff('day', {asof}, acc.renewal_date_effective) AS days_to_renewal,
    COALESCE(u.usage_30d, 0) AS usage_30d,
    COALESCE(u.usage_prev_30d, 0) AS usage_prev_30d,
    COALESCE(active.active_users_30d, 0) AS active_users_30d,
    CASE WHEN COALESCE(u.usage_prev_30d, 0) > 0
      THEN (COALESCE(u.usage_30d, 0) - u.usage_prev_30d) * 100.0 / u.usage_prev_30d
    END AS usage_change_pct,
    COALESCE(u.last_usage_age, greatest(acc.days_since_start, 0)) AS days_inactive,
    CASE WHEN acc.plan_limit > 0 THEN COALESCE(u.usage_30d, 0) / acc.plan_limit
    END AS plan_utilization,
    COALESCE(u.seats_added, 0) - COALESCE(u.seats_removed, 0) AS seats_change_30d,
    COALESCE(u.premium_events_30d, 0) AS premium_events_30d,
    COALESCE(premium.premium_feature_max_30d, 0) AS premium_feature_max_30d,
    COALESCE(u.integration_events_30d, 0) AS integration_events_30d,
    COALESCE(u.first_integration_age < 30, FALSE) AS integration_first_use_30d,
    COALESCE(u.executive_events_30d, 0) AS executive_events_30d,
    COALESCE(u.milestone_events_30d, 0) AS milestone_events_30d,
    COALESCE(u.core_features_abandoned, 0) AS core_features_abandoned,
    COALESCE(tk.tickets_14d, 0) AS tickets_14d,
    COALESCE(tk.tickets_30d, 0) AS tickets_30d,
    COALESCE(tk.complaint_tickets_30d, 0) AS complaint_tickets_30d,
    COALESCE(tk.downgrade_cancel_tickets_30d, 0) AS downgrade_cancel_tickets_30d,
    nps.nps_latest_score, nps.nps_latest_days_ago,
    CASE WHEN nps.nps_latest_days_ago < 180 THEN nps.nps_latest_score END AS nps_score_180d,
    COALESCE(pay.failed_payments_30d, 0) AS failed_payments_30d,
    COALESCE(pay.failed_payments_90d, 0) AS failed_payments_90d,
    COALESCE(ct.executive_contacts, 0) AS executive_contacts
  FROM acc
  LEFT JOIN usage u USING (account_id)
  LEFT JOIN premium USING (account_id)
  LEFT JOIN active USING (account_id)
  LEFT JOIN tk USING (account_id)
  LEFT JOIN nps USING (account_id)
  LEFT JOIN pay USING (account_id)
  LEFT JOIN ct USING (account_id)
),
scored AS (
  SELECT *,
    -- each measure: 0..100 on a line from bad to good, clamped; NULL input drops out
    CASE WHEN usage_change_pct IS NOT NULL THEN
      greatest(least((usage_change_pct::DOUBLE - (-50.0)) / 60.0, 1.0), 0.0) * 100.0 END AS s1,
    greatest(least((days_inactive::DOUBLE - 30.0) / (-27.0), 1.0), 0.0) * 100.0 AS s2,
    CASE WHEN plan_utilization IS NOT NULL THEN
      greatest(least((plan_utilization - 0.05) / {0.6 - 0.05!r}, 1.0), 0.0) * 100.0 END AS s3,
    greatest(least((tickets_30d::DOUBLE - 6.0) / (-6.0), 1.0), 0.0) * 100.0 AS s4,
    CASE WHEN nps_score_180d IS NOT NULL THEN
      greatest(least((nps_score_180d - 0.0) / 10.0, 1.0), 0.0) * 100.0 END AS s5,
    greatest(least((failed_payments_90d::DOUBLE - 2.0) / (-2.0), 1.0), 0.0) * 100.0 AS s6,
    CASE WHEN coalesce(arr, 0) >= 100000 THEN 3 WHEN coalesce(arr, 0) >= 25000 THEN 2
         WHEN coalesce(arr, 0) >= 10000 THEN 1 ELSE 0 END AS band_rank
  FROM sig
),
weighted AS (
  SELECT *,
    0.0 + CASE WHEN s1 IS NULL THEN 0.0 ELSE 25.0 END + 20.0
      + CASE WHEN s3 IS NULL THEN 0.0 ELSE 15.0 END + 10.0
      + CASE WHEN s5 IS NULL THEN 0.0 ELSE 20.0 END + 10.0 AS total_weight,
    CASE WHEN strategic AND band_rank < 3 THEN 3 ELSE band_rank END AS tier_rank
  FROM scored
),
health AS (
  SELECT *,
    round((0.0 + COALESCE(s1, 0.0) * CASE WHEN s1 IS NULL THEN 0.0 ELSE 25.0 END
      + s2 * 20.0
      + COALESCE(s3, 0.0) * CASE WHEN s3 IS NULL THEN 0.0 ELSE 15.0 END
      + s4 * 10.0
      + COALESCE(s5, 0.0) * CASE WHEN s5 IS NULL THEN 0.0 ELSE 20.0 END
      + s6 * 10.0) / total_weight, 1) AS health_score,
    COALESCE((100.0 - s1) * 25.0 / total_weight, 0.0) AS l1,
    (100.0 - s2) * 20.0 / total_weight AS l2,
    COALESCE((100.0 - s3) * 15.0 / total_weight, 0.0) AS l3,
    (100.0 - s4) * 10.0 / total_weight AS l4,
    COALESCE((100.0 - s5) * 20.0 / total_weight, 0.0) AS l5,
    (100.0 - s6) * 10.0 / total_weight AS l6
  FROM weighted
),
fired AS (
  SELECT *,
    greatest(l1, l2, l3, l4, l5, l6) AS worst,
    COALESCE(arr >= 50000 AND NOT has_csm, FALSE) AS f_dedicated_csm,
    COALESCE(usage_prev_30d > 0 AND usage_change_pct <= -40, FALSE) AS f_usage_decline,
    COALESCE(usage_prev_30d > 0 AND usage_change_pct <= -50, FALSE) AS f_usage_drop_mom,
    COALESCE(days_inactive >= 30, FALSE) AS f_inactive,
    core_features_abandoned > 0 AS f_feature_abandonment,
    tickets_14d >= 3 AS f_ticket_spike,
    COALESCE(nps_latest_score <= 6 AND nps_latest_days_ago < 90, FALSE) AS f_nps_detractor,
    complaint_tickets_30d > 0 AS f_negative_feedback,
    failed_payments_30d > 0 AS f_payment_failed,
    downgrade_cancel_tickets_30d > 0 AS f_downgrade_or_cancel,
    COALESCE(health_score < 40, FALSE) AS f_health_low,
    COALESCE(plan_utilization >= 0.8, FALSE) AS f_plan_capacity,
    seats_change_30d > 0 AS f_seat_growth,
    premium_feature_max_30d >= 3 AS f_premium_interest,
    integration_first_use_30d AS f_integration,
    COALESCE(usage_prev_30d > 0 AND usage_change_pct >= 50, FALSE) AS f_usage_velocity,
    premium_events_30d > 0 AND is_lowest_plan AS f_feature_on_starter,
    executive_contacts > 0 AS f_executive_contact,
    executive_events_30d > 0 AS f_executive_intent,
    COALESCE(days_to_renewal >= 60 AND days_to_renewal <= 90, FALSE) AS f_renewal_window,
    milestone_events_30d > 0 AS f_milestone,
    COALESCE(days_since_start >= 0 AND days_since_start < 90, FALSE) AS in_onboarding,
    CASE WHEN coalesce(arr, 0) < 25000 THEN 'inapp_upsell'
         WHEN coalesce(arr, 0) < 100000 THEN 'inside_sales'
         ELSE 'account_executive' END AS expansion_route,
    least(tier_rank + 1, 3) AS one_up
  FROM health
),
staged AS (
  SELECT *,
    (f_usage_decline OR f_usage_drop_mom OR f_inactive OR f_feature_abandonment
     OR f_ticket_spike OR f_nps_detractor OR f_negative_feedback OR f_payment_failed
     OR f_downgrade_or_cancel OR f_health_low) AS at_risk
  FROM fired
),
ranked AS (
  SELECT *,
    CASE WHEN at_risk THEN greatest(tier_rank, one_up) ELSE tier_rank END AS rank1
  FROM staged
),
ranked2 AS (
  SELECT *, CASE WHEN in_onboarding THEN 3 ELSE rank1 END AS rank2 FROM ranked
),
ranked3 AS (
  SELECT *,
    CASE WHEN f_renewal_window THEN greatest(rank2, one_up) ELSE rank2 END AS rank3
  FROM ranked2
)
SELECT
  account_id,
  {asof} AS as_of,
  CASE tier_rank WHEN 3 THEN 'high' WHEN 2 THEN 'medium' WHEN 1 THEN 'low' ELSE 'digital' END
    AS tier,
  CASE tier_rank WHEN 3 THEN 'high' WHEN 2 THEN 'medium' WHEN 1 THEN 'low' ELSE 'tech' END
    AS tier_level,
  CASE WHEN at_risk THEN 'at_risk' WHEN in_onboarding THEN 'onboarding'
       WHEN f_renewal_window THEN 'renewal' ELSE 'growth' END AS lifecycle_stage,
  CASE rank3 WHEN 3 THEN 'high' WHEN 2 THEN 'medium' WHEN 1 THEN 'low' ELSE 'tech' END
    AS touch_level,
  concat_ws('; ',
    CASE band_rank WHEN 3 THEN {_q(TIER_REASONS["high"])} WHEN 2 THEN {_q(TIER_REASONS["medium"])}
         WHEN 1 THEN {_q(TIER_REASONS["low"])} ELSE {_q(TIER_REASONS["digital"])} END
      || CASE WHEN tier_rank > band_rank THEN {_q(LIFT_REASON)} ELSE '' END,
    CASE WHEN at_risk AND one_up > tier_rank THEN {_q(AT_RISK_REASON + " (")} || concat_ws(', ',
      CASE WHEN f_usage_decline THEN 'risk.usage_decline' END,
      CASE WHEN f_usage_drop_mom THEN 'risk.usage_drop_mom' END,
      CASE WHEN f_inactive THEN 'risk.inactive' END,
      CASE WHEN f_feature_abandonment THEN 'risk.feature_abandonment' END,
      CASE WHEN f_ticket_spike THEN 'risk.ticket_spike' END,
      CASE WHEN f_nps_detractor THEN 'risk.nps_detractor' END,
      CASE WHEN f_negative_feedback THEN 'risk.negative_feedback' END,
      CASE WHEN f_payment_failed THEN 'risk.payment_failed' END,
      CASE WHEN f_downgrade_or_cancel THEN 'risk.downgrade_or_cancel' END,
      CASE WHEN f_health_low THEN 'risk.health_low' END) || ')' END,
    CASE WHEN in_onboarding AND rank1 < 3 THEN {_q(ONBOARDING_REASON)} END,
    CASE WHEN f_renewal_window AND one_up > rank2 THEN {_q(RENEWAL_REASON)} END
  ) AS level_reasons,
  health_score,
  CASE WHEN health_score >= 70 THEN 'green' WHEN health_score >= 40 THEN 'yellow'
       WHEN health_score >= 0 THEN 'red' END AS health_grade,
  CASE WHEN worst <= 0.05 THEN NULL
       WHEN l1 = worst THEN 'Usage trend (30d vs previous 30d)'
       WHEN l2 = worst THEN 'Days since last use'
       WHEN l3 = worst THEN 'Plan utilization'
       WHEN l4 = worst THEN 'Tickets in 30 days'
       WHEN l5 = worst THEN 'NPS (last 180 days)'
       WHEN l6 = worst THEN 'Failed payments in 90 days' END AS health_top_factor,
  concat_ws('; ',
    CASE WHEN f_dedicated_csm THEN 'value.dedicated_csm' END,
    CASE WHEN f_usage_decline THEN 'risk.usage_decline' END,
    CASE WHEN f_usage_drop_mom THEN 'risk.usage_drop_mom' END,
    CASE WHEN f_inactive THEN 'risk.inactive' END,
    CASE WHEN f_feature_abandonment THEN 'risk.feature_abandonment' END,
    CASE WHEN f_ticket_spike THEN 'risk.ticket_spike' END,
    CASE WHEN f_nps_detractor THEN 'risk.nps_detractor' END,
    CASE WHEN f_negative_feedback THEN 'risk.negative_feedback' END,
    CASE WHEN f_payment_failed THEN 'risk.payment_failed' END,
    CASE WHEN f_downgrade_or_cancel THEN 'risk.downgrade_or_cancel' END,
    CASE WHEN f_health_low THEN 'risk.health_low' END,
    CASE WHEN f_plan_capacity THEN 'expansion.plan_capacity' END,
    CASE WHEN f_seat_growth THEN 'expansion.seat_growth' END,
    CASE WHEN f_premium_interest THEN 'expansion.premium_interest' END,
    CASE WHEN f_integration THEN 'expansion.integration' END,
    CASE WHEN f_usage_velocity THEN 'expansion.usage_velocity' END,
    CASE WHEN f_feature_on_starter THEN 'complexity.enterprise_feature_on_starter' END,
    CASE WHEN f_executive_contact THEN 'executive.contact' END,
    CASE WHEN f_executive_intent THEN 'executive.intent' END,
    CASE WHEN f_renewal_window THEN 'lifecycle.renewal_window' END,
    CASE WHEN f_milestone THEN 'lifecycle.milestone' END
  ) AS triggers,
  concat_ws('; ',
    CASE WHEN f_dedicated_csm THEN 'assign_dedicated_csm' END,
    CASE WHEN f_usage_decline THEN 'csm_immediate' END,
    CASE WHEN f_usage_drop_mom THEN 'csm_at_risk_outreach' END,
    CASE WHEN f_inactive THEN 'reengagement' END,
    CASE WHEN f_feature_abandonment THEN 'csm_outreach' END,
    CASE WHEN f_ticket_spike THEN 'csm_outreach' END,
    CASE WHEN f_nps_detractor THEN 'csm_immediate_followup' END,
    CASE WHEN f_negative_feedback THEN 'csm_outreach' END,
    CASE WHEN f_payment_failed THEN 'csm_billing' END,
    CASE WHEN f_downgrade_or_cancel THEN 'csm_immediate' END,
    CASE WHEN f_health_low THEN 'csm_outreach' END,
    CASE WHEN f_plan_capacity THEN expansion_route END,
    CASE WHEN f_seat_growth THEN expansion_route END,
    CASE WHEN f_premium_interest THEN expansion_route END,
    CASE WHEN f_integration THEN expansion_route END,
    CASE WHEN f_usage_velocity THEN expansion_route END,
    CASE WHEN f_feature_on_starter THEN 'solutions_engineering' END,
    CASE WHEN f_executive_contact THEN 'senior_account_executive' END,
    CASE WHEN f_executive_intent THEN 'senior_account_executive' END,
    CASE WHEN f_renewal_window THEN
      CASE WHEN tier_rank < 1 THEN 'renewal_sequence' ELSE 'csm_renewal' END END,
    CASE WHEN f_milestone THEN
      CASE WHEN tier_rank < 2 THEN 'milestone_automated' ELSE 'milestone_personal' END END
  ) AS routes,
  {", ".join(SIGNAL_COLUMNS)}
FROM ranked3
"""


def run_sql(data: Path, as_of: dt.date) -> Any:
    """Execute :func:`decision_sql` on a fresh in-memory DuckDB; an Arrow table."""
    import duckdb

    con = duckdb.connect()
    try:
        return con.sql(decision_sql(data, as_of)).to_arrow_table()
    finally:
        con.close()


# --- vectorized pandas -------------------------------------------------------------


def _round1(x: Any) -> Any:
    """Round to 0.1 half away from zero, as DuckDB's round(x, 1) does."""
    import numpy as np

    y = x * 10.0
    return np.where(y >= 0, np.floor(y + 0.5), np.ceil(y - 0.5)) / 10.0


def _days(values: Any, as_of: dt.date) -> Any:
    """Whole days from each date/timestamp to ``as_of`` (int64 numpy array)."""
    import numpy as np
    import pandas as pd

    s = pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_any_dtype(s.dtype):
        s = pd.to_datetime(s)
    days = s.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    out = np.datetime64(as_of, "D").astype(np.int64) - days.astype(np.int64)
    missing = np.isnat(days)
    if missing.any():  # NaN, so that every comparison with a missing date is false
        return np.where(missing, np.nan, out)
    return out


def _codes(keys: Any, index: Any) -> Any:
    """Position of each key in the accounts index (-1 when unknown), via categories."""
    import pandas as pd

    cat = keys if isinstance(keys.dtype, pd.CategoricalDtype) else keys.astype("category")
    lookup = index.get_indexer(cat.cat.categories)
    out = lookup[cat.cat.codes.to_numpy()]
    out[cat.cat.codes.to_numpy() < 0] = -1
    return out


def _per_account(frame: Any, n: int, aggs: dict[str, tuple[str, str]]) -> Any:
    """``frame.groupby('acc').agg(...)`` reindexed onto all ``n`` accounts (a left join)."""
    import numpy as np

    got = frame.groupby("acc", sort=False).agg(**aggs)
    return got.reindex(np.arange(n))


def run_pandas(data: Path, as_of: dt.date) -> Any:
    """Signals and decisions as one pandas DataFrame, computed with vectorized pandas/numpy."""
    import numpy as np
    import pandas as pd

    files = table_files(data)
    nan = np.nan

    def read(name: str, columns: list[str], categorical: list[str] | None = None) -> Any:
        path = files[name][0] if len(files[name]) == 1 else str(data / name)
        return pd.read_parquet(path, columns=columns, read_dictionary=categorical or None)

    def frame(columns: dict[str, Any]) -> Any:
        # copy=False: no consolidation copy of millions of rows
        return pd.DataFrame(columns, copy=False)

    acc = read(
        "accounts",
        ["account_id", "arr", "contract_start", "renewal_date", "plan", "plan_limit",
         "strategic", "csm", "churned_on"],
    )  # fmt: skip
    # customers on the as-of date only: not churned by then, contract started
    churned = _days(acc["churned_on"], as_of) >= 0
    not_started = _days(acc["contract_start"], as_of) < 0
    acc = acc.loc[~churned & ~not_started].reset_index(drop=True)
    n = len(acc)
    index = pd.Index(acc["account_id"])

    # usage events: one grouped pass over indicator columns
    ev = read(
        "usage_events",
        ["account_id", "timestamp", "event", "user_id", "quantity"],
        ["account_id", "event"],
    )
    age = _days(ev["timestamp"], as_of)
    keep = age >= 0
    if not keep.all():
        ev, age = ev.loc[keep], age[keep]
    acc_code = _codes(ev["account_id"], index)
    events = ev["event"].astype("category")
    names = pd.Series(events.cat.categories.astype(str))
    ecode = events.cat.codes.to_numpy()

    def flag(mask: Any) -> Any:
        """A per-event-name flag, spread to every row."""
        return np.asarray(mask, dtype=bool)[ecode]

    starts = names.str.startswith
    not_usage = np.zeros(len(names), dtype=bool)
    for prefix in NOT_USAGE_PREFIXES:
        not_usage |= starts(prefix).to_numpy()
    is_usage = flag(~not_usage)
    is_integration = flag(starts("integration."))
    qty = ev["quantity"].astype("float64").fillna(1.0).to_numpy()
    last30 = age < 30
    usage30 = is_usage & last30
    rows = frame(
        {
            "acc": acc_code,
            "u30": np.where(usage30, qty, 0.0),
            "uprev": np.where(is_usage & (age >= 30) & (age < 60), qty, 0.0),
            "last_usage_age": np.where(is_usage, age, nan),
            "seats": np.where(flag(names == "seat.added") & last30, qty, 0.0)
            - np.where(flag(names == "seat.removed") & last30, qty, 0.0),
            "premium": flag(starts("premium.")) & last30,
            "integration": is_integration & last30,
            "first_integration_age": np.where(is_integration, age, nan),
            "executive": flag(names.isin(EXECUTIVE_EVENTS)) & last30,
            "milestone": flag(starts("milestone.")) & last30,
        }
    )
    usage = (
        rows.groupby("acc", sort=False)
        .agg(
            usage_30d=("u30", "sum"),
            usage_prev_30d=("uprev", "sum"),
            last_usage_age=("last_usage_age", "min"),
            seats_change_30d=("seats", "sum"),
            premium_events_30d=("premium", "sum"),
            integration_events_30d=("integration", "sum"),
            first_integration_age=("first_integration_age", "max"),
            executive_events_30d=("executive", "sum"),
            milestone_events_30d=("milestone", "sum"),
        )
        .reindex(np.arange(n))
    )
    del rows
    # distinct users with a usage event in the last 30 days
    users = frame({"acc": acc_code[usage30], "user": ev["user_id"].array[usage30]})
    active_users = (
        users.dropna().drop_duplicates().groupby("acc").size().reindex(np.arange(n), fill_value=0)
    )
    del users
    # the most uses of any one premium feature in the last 30 days
    is_premium = flag(starts("premium.")) & last30
    premium_per_feature = frame({"acc": acc_code[is_premium], "event": ecode[is_premium]})
    premium_max = (
        premium_per_feature.groupby(["acc", "event"], sort=False)
        .size()
        .groupby(level="acc")
        .max()
        .reindex(np.arange(n), fill_value=0)
        .to_numpy()
    )
    # core-feature abandonment: per (account, core event) over the last 60 days
    is_core = flag(names.isin(CORE_EVENTS)) & (age < 60)
    core = frame({"acc": acc_code[is_core], "event": ecode[is_core], "last": last30[is_core]})
    per_feature = core.groupby(["acc", "event"], sort=False)["last"].sum()
    abandoned = (per_feature == 0).groupby(level="acc").sum()
    core_abandoned = abandoned.reindex(np.arange(n), fill_value=0).to_numpy()
    del ev, core, events, qty, age, acc_code, is_usage, usage30, last30

    # tickets
    tk = read("tickets", ["account_id", "opened_at", "category"])
    t_age = _days(tk["opened_at"], as_of)
    category = tk["category"].str.lower()
    t_last30 = t_age < 30
    tickets = (
        frame(
            {
                "acc": _codes(tk["account_id"], index),
                "t14": t_age < 14,
                "t30": t_last30,
                "complaint": t_last30 & (category == "complaint").fillna(False).to_numpy(bool),
                "downgrade": t_last30
                & category.isin(["downgrade", "cancellation"]).fillna(False).to_numpy(bool),
            }
        )[t_age >= 0]
        .groupby("acc", sort=False)
        .sum()
        .reindex(np.arange(n), fill_value=0)
    )

    # NPS: the latest response, the lower score when two share the instant
    nps = read("nps_responses", ["account_id", "responded_at", "score"])
    responses = frame(
        {
            "acc": _codes(nps["account_id"], index),
            "at": nps["responded_at"].to_numpy(),
            "age": _days(nps["responded_at"], as_of),
            "score": nps["score"].astype("float64").to_numpy(),
        }
    )
    responses = responses[responses["age"] >= 0].sort_values(
        ["acc", "at", "score"], ascending=[True, False, True]
    )
    latest = responses.drop_duplicates("acc").set_index("acc").reindex(np.arange(n))
    nps_score = latest["score"].to_numpy()
    nps_days = latest["age"].to_numpy()
    nps_180 = np.where(nps_days < 180, nps_score, nan)

    # payments
    pay = read("payments", ["account_id", "due_date", "status"])
    p_age = _days(pay["due_date"], as_of)
    failed = (pay["status"] == "failed").fillna(False).to_numpy(bool)
    payments = (
        frame(
            {
                "acc": _codes(pay["account_id"], index),
                "f30": failed & (p_age < 30),
                "f90": failed & (p_age < 90),
            }
        )[p_age >= 0]
        .groupby("acc", sort=False)
        .sum()
        .reindex(np.arange(n), fill_value=0)
    )

    # contacts: the model's regex; a non-capturing group keeps pandas from warning
    ct = read("contacts", ["account_id", "title"])
    pattern = EXECUTIVE_TITLES.replace(r"\b(", r"\b(?:", 1)
    is_exec_title = ct["title"].fillna("").str.contains(pattern, regex=True).to_numpy(bool)
    exec_contacts = (
        frame({"acc": _codes(ct["account_id"], index), "x": is_exec_title})
        .groupby("acc", sort=False)["x"]
        .sum()
        .reindex(np.arange(n), fill_value=0)
        .to_numpy()
    )

    # accounts
    start = pd.to_datetime(acc["contract_start"])
    days_since_start = _days(start, as_of)
    month, day = start.dt.month.to_numpy(), start.dt.day.to_numpy()

    def anniversary(year: int, dom: Any) -> Any:
        """``year``-month-dom, the day clipped to the month's length (Feb 29 -> 28)."""
        first = pd.to_datetime(pd.DataFrame({"year": year, "month": month, "day": 1}))
        clipped = np.minimum(dom, first.dt.days_in_month.to_numpy())
        return first + pd.to_timedelta(clipped - 1, "D")

    candidate = anniversary(as_of.year, day)
    next_year = anniversary(as_of.year + 1, candidate.dt.day.to_numpy())
    too_early = (candidate < pd.Timestamp(as_of)) | (candidate <= start)
    next_anniversary = candidate.where(~too_early, next_year)
    renewal = pd.to_datetime(acc["renewal_date"]).fillna(next_anniversary)
    days_to_renewal = -_days(renewal, as_of)
    arr = acc["arr"].astype("float64").to_numpy()
    arr0 = np.nan_to_num(arr, nan=0.0)
    csm = acc["csm"]
    has_csm = (csm.notna() & (csm.fillna("").str.strip() != "")).to_numpy(bool)
    is_lowest = (acc["plan"] == "starter").fillna(False).to_numpy(bool)
    strategic = acc["strategic"].astype("boolean").fillna(False).to_numpy(bool)
    plan_limit = acc["plan_limit"].astype("float64").to_numpy()

    # derived usage signals
    u30 = usage["usage_30d"].fillna(0).to_numpy()
    uprev = usage["usage_prev_30d"].fillna(0).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(uprev > 0, (u30 - uprev) * 100.0 / uprev, nan)
        utilization = np.where(plan_limit > 0, u30 / plan_limit, nan)
    last_use = usage["last_usage_age"].to_numpy()
    days_inactive = np.where(np.isnan(last_use), np.maximum(days_since_start, 0), last_use)
    seats_change = usage["seats_change_30d"].fillna(0).to_numpy()
    premium = usage["premium_events_30d"].fillna(0).to_numpy()
    integration_first = (usage["first_integration_age"] < 30).to_numpy(bool)
    executive_events = usage["executive_events_30d"].fillna(0).to_numpy()
    milestones = usage["milestone_events_30d"].fillna(0).to_numpy()
    tickets_14d = tickets["t14"].to_numpy()
    tickets_30d = tickets["t30"].to_numpy()

    # health: each measure 0..100; a missing input drops out and gives its weight away
    inputs = {
        "usage_change_pct": change,
        "days_inactive": days_inactive.astype("float64"),
        "plan_utilization": utilization,
        "tickets_30d": tickets_30d.astype("float64"),
        "nps_score_180d": nps_180,
        "failed_payments_90d": payments["f90"].to_numpy().astype("float64"),
    }
    scores, weights = [], []
    for _id, _label, signal, weight, bad, good in MEASURES:
        scores.append(np.clip((inputs[signal] - bad) / (good - bad), 0.0, 1.0) * 100.0)
        weights.append(np.where(np.isnan(scores[-1]), 0.0, weight))
    total = sum(weights, np.zeros(n))
    weighted = sum(
        (np.nan_to_num(s, nan=0.0) * w for s, w in zip(scores, weights, strict=True)), np.zeros(n)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        health = _round1(np.where(total > 0, weighted / total, nan))
        lost = [
            np.nan_to_num((100.0 - s) * w / total, nan=0.0)
            for s, w in zip(scores, weights, strict=True)
        ]
    worst = np.maximum.reduce(lost)
    top_factor = np.select(
        [(lo == worst) & (worst > 0.05) for lo in lost], [m[1] for m in MEASURES], default=None
    )
    grade = np.select([health >= 70, health >= 40, health >= 0], ["green", "yellow", "red"], None)

    # tiers: ARR bands, strategic accounts lifted to high
    band_rank = np.select([arr0 >= 100000, arr0 >= 25000, arr0 >= 10000], [3, 2, 1], 0)
    tier_rank = np.where(strategic & (band_rank < 3), 3, band_rank)
    tier_names = np.array(["digital", "low", "medium", "high"], dtype=object)
    levels = np.array(["tech", "low", "medium", "high"], dtype=object)

    # triggers, in model order
    fired = {
        "value.dedicated_csm": (arr >= 50000) & ~has_csm,
        "risk.usage_decline": (uprev > 0) & (change <= -40),
        "risk.usage_drop_mom": (uprev > 0) & (change <= -50),
        "risk.inactive": days_inactive >= 30,
        "risk.feature_abandonment": core_abandoned > 0,
        "risk.ticket_spike": tickets_14d >= 3,
        "risk.nps_detractor": (nps_score <= 6) & (nps_days < 90),
        "risk.negative_feedback": tickets["complaint"].to_numpy() > 0,
        "risk.payment_failed": payments["f30"].to_numpy() > 0,
        "risk.downgrade_or_cancel": tickets["downgrade"].to_numpy() > 0,
        "risk.health_low": health < 40,
        "expansion.plan_capacity": utilization >= 0.8,
        "expansion.seat_growth": seats_change > 0,
        "expansion.premium_interest": premium_max >= 3,
        "expansion.integration": integration_first,
        "expansion.usage_velocity": (uprev > 0) & (change >= 50),
        "complexity.enterprise_feature_on_starter": (premium > 0) & is_lowest,
        "executive.contact": exec_contacts > 0,
        "executive.intent": executive_events > 0,
        "lifecycle.renewal_window": (days_to_renewal >= 60) & (days_to_renewal <= 90),
        "lifecycle.milestone": milestones > 0,
    }
    expansion_route = np.select(
        [arr0 < 25000, arr0 < 100000], ["inapp_upsell", "inside_sales"], "account_executive"
    )
    switch_routes = {
        "@expansion": expansion_route.astype(object),
        "@renewal_outreach": np.where(tier_rank < 1, "renewal_sequence", "csm_renewal"),
        "@milestone": np.where(tier_rank < 2, "milestone_automated", "milestone_personal"),
    }

    def join(parts: list[tuple[Any, Any]], sep: str) -> Any:
        """concat_ws: per row, the texts whose condition holds, joined by ``sep``."""
        out = np.full(n, "", dtype=object)
        first = np.ones(n, dtype=bool)
        for cond, text in parts:
            piece = np.where(first, "", sep).astype(object) + np.asarray(text, dtype=object)
            out = np.where(cond, out + piece, out)
            first &= ~cond
        return out

    triggers = join([(fired[t], t) for t, _ in TRIGGERS], "; ")
    routes = join([(fired[t], switch_routes.get(r, r)) for t, r in TRIGGERS], "; ")

    # lifecycle overrides in priority order; each raises the level, never lowers it
    at_risk = np.logical_or.reduce([fired[t] for t in RISK_TRIGGERS])
    onboarding = (days_since_start >= 0) & (days_since_start < 90)
    renewal_window = fired["lifecycle.renewal_window"]
    one_up = np.minimum(tier_rank + 1, 3)
    rank1 = np.where(at_risk, np.maximum(tier_rank, one_up), tier_rank)
    rank2 = np.where(onboarding, 3, rank1)
    rank3 = np.where(renewal_window, np.maximum(rank2, one_up), rank2)
    stage = np.select(
        [at_risk, onboarding, renewal_window], ["at_risk", "onboarding", "renewal"], "growth"
    )
    evidence = join([(fired[t], t) for t in RISK_TRIGGERS], ", ")
    tier_reason = np.array([TIER_REASONS[t] for t in tier_names], dtype=object)[band_rank]
    tier_reason = np.where(tier_rank > band_rank, tier_reason + LIFT_REASON, tier_reason)
    level_reasons = join(
        [
            (np.ones(n, dtype=bool), tier_reason),
            (at_risk & (one_up > tier_rank), AT_RISK_REASON + " (" + evidence + ")"),
            (onboarding & (rank1 < 3), ONBOARDING_REASON),
            (renewal_window & (one_up > rank2), RENEWAL_REASON),
        ],
        "; ",
    )

    return frame(
        {
            "account_id": acc["account_id"].to_numpy(),
            "as_of": np.full(n, np.datetime64(as_of, "D")),
            "tier": tier_names[tier_rank],
            "tier_level": levels[tier_rank],
            "lifecycle_stage": stage,
            "touch_level": levels[rank3],
            "level_reasons": level_reasons,
            "health_score": health,
            "health_grade": grade,
            "health_top_factor": top_factor,
            "triggers": triggers,
            "routes": routes,
            # signals
            "usage_30d": u30,
            "usage_prev_30d": uprev,
            "usage_change_pct": change,
            "active_users_30d": active_users.to_numpy(),
            "days_inactive": days_inactive,
            "plan_utilization": utilization,
            "seats_change_30d": seats_change,
            "premium_events_30d": premium,
            "premium_feature_max_30d": premium_max,
            "integration_events_30d": usage["integration_events_30d"].fillna(0).to_numpy(),
            "integration_first_use_30d": integration_first,
            "executive_events_30d": executive_events,
            "milestone_events_30d": milestones,
            "core_features_abandoned": core_abandoned,
            "tickets_14d": tickets_14d,
            "tickets_30d": tickets_30d,
            "complaint_tickets_30d": tickets["complaint"].to_numpy(),
            "downgrade_cancel_tickets_30d": tickets["downgrade"].to_numpy(),
            "nps_latest_score": nps_score,
            "nps_latest_days_ago": nps_days,
            "nps_score_180d": nps_180,
            "failed_payments_30d": payments["f30"].to_numpy(),
            "failed_payments_90d": payments["f90"].to_numpy(),
            "executive_contacts": exec_contacts,
            "days_since_start": days_since_start,
            "renewal_date_effective": renewal.to_numpy(dtype="datetime64[D]"),
            "days_to_renewal": days_to_renewal,
            "has_csm": has_csm,
            "is_lowest_plan": is_lowest,
            "expansion_value": arr,
        }
    )

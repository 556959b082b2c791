"""A seeded generator of demo data: a B2B SaaS customer base in the data contract.

The output folder follows SPEC.md §10 exactly: ``accounts.parquet``,
``usage_events/part-NNNNN.parquet`` (one part per chunk of accounts) and
``tickets.parquet``, ``nps_responses.parquet``, ``payments.parquet``,
``contacts.parquet`` (one row group per chunk). Column names and Arrow types
come from :mod:`touchmodel.sources.contract`.

Randomness is drawn per fixed block of :data:`BLOCK_ACCOUNTS` accounts from a
generator seeded with ``(seed, block index)``. The content therefore depends
only on ``seed``, ``as_of`` and ``accounts``, never on ``chunk_accounts``:
chunking only decides how rows are split into files, so a small chunk size to
save memory does not change the data set. Every step is vectorized over a
block; Python loops run per block or per chunk, never per row.

Accounts follow archetypes (healthy, declining, inactive, growing, at plan
capacity, churned) chosen so that every default trigger of the presets fires
for a realistic share of the base.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from touchmodel.sources.contract import TABLES

__all__ = [
    "ARCHETYPES",
    "BLOCK_ACCOUNTS",
    "PROGRESS_STEP",
    "DemoSummary",
    "contract_schema",
    "generate",
]

# Accounts per random-number block. Part of the data definition: changing it
# changes the generated data for every seed.
BLOCK_ACCOUNTS = 1000
# The step name passed to ``progress``; done/total count accounts.
PROGRESS_STEP = "accounts"
WINDOW_DAYS = 90
TICKET_DAYS = 180
NPS_DAYS = 365
PAYMENT_DAYS = 183

# Table order in DemoSummary.rows; usage_events is the only table written as parts.
TABLE_NAMES = ("accounts", "usage_events", "tickets", "nps_responses", "payments", "contacts")
PARTED_TABLES = frozenset({"usage_events"})

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "bool": pa.bool_(),
}

US_PER_DAY = 86_400 * 1_000_000

# --- archetypes ------------------------------------------------------------
ARCHETYPES = ("healthy", "declining", "inactive", "growing", "capacity", "churned")
HEALTHY, DECLINING, INACTIVE, GROWING, CAPACITY, CHURNED = range(6)
# Churn is only possible for accounts older than MIN_CHURN_TENURE days; the
# draws for younger accounts fall back to healthy, hence 3.5% for ~3% overall.
_ARCHETYPE_P = np.array([0.615, 0.12, 0.07, 0.12, 0.04, 0.035])
MIN_CHURN_TENURE = 150

# --- accounts ----------------------------------------------------------------
ARR_MEDIAN = 12_000.0
# sigma 1.29 puts ~44% below $10K, ~27% at $10-25K, ~24% at $25-100K, ~5% at $100K+.
ARR_SIGMA = 1.29
ARR_MIN, ARR_MAX = 1_000.0, 1_000_000.0
BAND_EDGES = np.array([10_000.0, 25_000.0, 50_000.0, 100_000.0])

PLANS = ("starter", "growth", "business", "enterprise")
# Upper ARR bound of each plan but the last (applied to a noisy ARR so plans overlap).
_PLAN_ARR_BOUNDS = np.array([6_000.0, 20_000.0, 75_000.0])
# Usage units per 30 days. Set at ~2.5-3x the typical healthy usage of the plan,
# so ~10% of accounts reach 80% utilization (more among growing accounts).
PLAN_LIMITS = np.array([60.0, 100.0, 150.0, 250.0])
_PRICE_PER_SEAT = np.array([400.0, 500.0, 650.0, 800.0])

CORE_EVENTS = ("report.created", "dashboard.viewed", "workflow.run", "record.updated")
PREMIUM_EVENTS = ("premium.advanced_analytics", "premium.sso", "premium.audit_log")
INTEGRATION_EVENTS = ("integration.salesforce", "integration.slack", "integration.hubspot")
EXECUTIVE_EVENTS = (
    "pricing.enterprise_viewed",
    "security_questionnaire.requested",
    "rfp.requested",
    "sales.procurement_contact",
)
MILESTONE_EVENTS = ("milestone.first_workflow", "milestone.100_reports")
SEAT_EVENTS = ("seat.added", "seat.removed")
EVENT_NAMES = (
    CORE_EVENTS + PREMIUM_EVENTS + INTEGRATION_EVENTS + EXECUTIVE_EVENTS + MILESTONE_EVENTS
) + SEAT_EVENTS
_EV = {name: i for i, name in enumerate(EVENT_NAMES)}
_CORE0, _PREMIUM0, _INTEGRATION0, _EXECUTIVE0 = (
    _EV[CORE_EVENTS[0]],
    _EV[PREMIUM_EVENTS[0]],
    _EV[INTEGRATION_EVENTS[0]],
    _EV[EXECUTIVE_EVENTS[0]],
)
# Relative popularity of the core features before per-account variation.
_CORE_PREFERENCE = np.array([1.0, 1.6, 0.7, 1.3])
_EXECUTIVE_WEIGHTS = np.array([0.5, 0.2, 0.1, 0.2])


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_INDUSTRIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("Software", 0.22, ("Software", "Labs", "Systems", "Cloud")),
    ("Financial Services", 0.12, ("Capital", "Financial", "Payments", "Advisors")),
    ("Healthcare", 0.10, ("Health", "Care", "Medical", "Clinics")),
    ("Manufacturing", 0.10, ("Manufacturing", "Industries", "Robotics", "Works")),
    ("Retail", 0.08, ("Retail", "Outfitters", "Market", "Stores")),
    ("Education", 0.06, ("Learning", "Academy", "Education")),
    ("Logistics", 0.07, ("Logistics", "Freight", "Shipping")),
    ("Media", 0.05, ("Media", "Studios", "Publishing")),
    ("Professional Services", 0.10, ("Partners", "Consulting", "Group")),
    ("Real Estate", 0.04, ("Properties", "Realty", "Homes")),
    ("Energy", 0.03, ("Energy", "Power", "Solar")),
    ("Nonprofit", 0.03, ("Foundation", "Alliance", "Trust")),
)
_NAME_FIRST = _words(
    "Blue North Bright Silver Red Green Iron Summit Harbor Pine Cedar Maple Granite Swift "
    "Clear True Bold Prime Golden Coastal Atlas Nova Apex Crescent River Stone Oak Eagle "
    "Falcon Polar Sunny Quantum Vertex Lumen Echo Urban Alpine Copper Velvet Orbit"
)
_NAME_SECOND = _words(
    "ridge field wave bridge path point forge peak lake line gate bay crest stream rock "
    "light wind grove spark tide trail haven port vale leaf loop mill shore sky frame "
    "pixel signal vector matrix beacon anchor compass canyon meadow"
)
_CSMS = (
    "Dana Whitfield",
    "Marcus Lee",
    "Priya Raman",
    "Sofia Alvarez",
    "Tom Becker",
    "Aisha Okafor",
    "Jonas Weber",
    "Emily Chen",
    "Rafael Costa",
    "Hannah Schmidt",
    "Kenji Watanabe",
    "Olivia Brown",
    "Samuel Greene",
    "Lena Novak",
    "Diego Romero",
    "Grace Kim",
    "Victor Dubois",
    "Nora Lindqvist",
    "Omar Haddad",
    "Chloe Martin",
    "Ethan Walsh",
    "Maya Patel",
    "Lucas Moreau",
    "Zoe Fischer",
)
_FIRST_NAMES = _words(
    "James Mary Robert Linda Michael Sarah David Laura Daniel Anna Paul Julia Mark Nina "
    "Peter Elena Kevin Sophie Brian Clara Steven Rosa Andrew Maria Thomas Lisa Chris Eva "
    "Ahmed Fatima Wei Mei Raj Anita Carlos Lucia Ivan Olga Kofi Amara"
)
_LAST_NAMES = _words(
    "Smith Johnson Miller Davis Garcia Wilson Moore Taylor Anderson Thomas Jackson White "
    "Harris Martin Thompson Clark Lewis Walker Young Allen King Wright Scott Green Baker "
    "Adams Nelson Hill Campbell Mitchell Roberts Carter Phillips Evans Turner Torres "
    "Parker Collins Edwards Stewart"
)
EXECUTIVE_TITLES = (
    "CEO",
    "COO",
    "CFO",
    "CTO",
    "Chief Revenue Officer",
    "Chief Customer Officer",
    "VP Operations",
    "VP Sales",
    "VP Engineering",
    "VP Customer Success",
    "VP Finance",
    "Vice President, Marketing",
)
STAFF_TITLES = (
    "Operations Manager",
    "Analyst",
    "Director of Support",
    "Senior Analyst",
    "Project Manager",
    "IT Administrator",
    "Sales Operations Manager",
    "Head of Data",
    "Customer Success Lead",
    "Office Manager",
    "Software Engineer",
    "Director of Marketing",
    "Product Manager",
    "Finance Manager",
    "Business Analyst",
    "Team Lead",
)
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
_PRIORITY_P = np.array([0.25, 0.50, 0.18, 0.07])
# Mean hours to close, by priority.
_PRIORITY_HOURS = np.array([60.0, 30.0, 16.0, 6.0])
TICKET_CATEGORIES = (
    "how-to",
    "billing",
    "bug",
    "integration",
    "complaint",
    "downgrade",
    "cancellation",
)
_CATEGORY_P_CALM = np.array([0.40, 0.13, 0.23, 0.14, 0.05, 0.03, 0.02])
_CATEGORY_P_RISK = np.array([0.25, 0.12, 0.22, 0.10, 0.14, 0.10, 0.07])
_SATISFACTION_P_CALM = np.array([0.05, 0.07, 0.15, 0.33, 0.40])
_SATISFACTION_P_RISK = np.array([0.28, 0.25, 0.22, 0.15, 0.10])
_NPS_COMMENTS = (
    (
        "Too slow for our volume.",
        "We keep hitting bugs in workflows.",
        "Hard to get value out of it.",
        "Considering alternatives at renewal.",
        "Support takes too long to answer.",
    ),
    (
        "Good overall, a few rough edges.",
        "Reporting could be more flexible.",
        "Does the job; pricing feels high.",
        "Would like more integrations.",
    ),
    (
        "Great product, the team loves it.",
        "Dashboards save us hours every week.",
        "Support is fast and helpful.",
        "Easy to roll out to new teams.",
    ),
)
PAYMENT_STATUSES = ("paid", "failed", "refunded")

MAX_USERS = 9_999
_USER_SUFFIX = pa.array([f"U{i:04d}" for i in range(1, MAX_USERS + 1)])


def contract_schema(table: str) -> pa.Schema:
    """The Arrow schema of a contract table, in contract column order."""
    return pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in TABLES[table].columns])


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate` wrote."""

    folder: Path
    accounts: int
    rows: dict[str, int]  # rows written per table name


@dataclass
class _Counters:
    """Running numbers for ids that are sequential across the whole data set."""

    tickets: int = 0
    invoices: int = 0
    contacts: int = 0


@dataclass
class _Rows:
    """Rows of one table for one block, with each row's global account index."""

    table: pa.Table
    account: np.ndarray  # non-decreasing

    def between(self, lo: int, hi: int) -> pa.Table:
        start, stop = np.searchsorted(self.account, [lo, hi], side="left")
        return self.table.slice(int(start), int(stop - start))


@dataclass
class _Block:
    """Every table for one block of accounts, plus the ground truth tests can check."""

    tables: dict[str, _Rows]
    attributes: dict[str, np.ndarray]  # per-account arrays, incl. "archetype"


class _Days:
    """Day arithmetic relative to the as-of date, on epoch-day integers."""

    def __init__(self, as_of: dt.date, rng: np.random.Generator) -> None:
        self.as_of = int(np.datetime64(as_of, "D").astype(np.int64))
        self.rng = rng

    def is_weekend(self, age: np.ndarray) -> np.ndarray:
        # 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays.
        return (self.as_of - age + 3) % 7 >= 5

    def ages(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """A day age in [lo, hi] per row; weekends are rarer (B2B activity)."""
        rng = self.rng
        lo = np.asarray(lo, dtype=np.int64)
        span = np.asarray(hi, dtype=np.int64) - lo + 1
        age = lo + (rng.random(lo.size) * span).astype(np.int64)
        redo = self.is_weekend(age) & (rng.random(lo.size) > 0.3)
        for _ in range(64):
            idx = np.flatnonzero(redo)
            if idx.size == 0:
                break
            age[idx] = lo[idx] + (rng.random(idx.size) * span[idx]).astype(np.int64)
            redo[idx] = self.is_weekend(age[idx]) & (rng.random(idx.size) > 0.3)
        return age

    def timestamps(self, age: np.ndarray) -> np.ndarray:
        """Microsecond timestamps on the given day ages, mostly in working hours."""
        rng = self.rng
        office = rng.normal(13.5 * 3600, 2.6 * 3600, age.size)
        anytime = rng.random(age.size) * 86_400
        seconds = np.where(rng.random(age.size) < 0.85, office, anytime).clip(0, 86_399)
        millis = rng.integers(0, 1000, age.size)
        day = self.as_of - age.astype(np.int64)
        return day * US_PER_DAY + seconds.astype(np.int64) * 1_000_000 + millis * 1000

    def anniversary(self, start: np.ndarray, years: np.ndarray) -> np.ndarray:
        """``start`` plus whole years as epoch days; Feb 29 falls back to Feb 28."""
        d = start.astype("datetime64[D]")
        month = d.astype("datetime64[M]")
        dom = (d - month.astype("datetime64[D]")).astype(np.int64)
        target = month + (12 * years).astype("timedelta64[M]")
        return _month_day(target, dom)

    def next_anniversary(self, start: np.ndarray) -> np.ndarray:
        """First anniversary of ``start`` on/after as-of: the default signals use if it is null."""
        as_of_year = np.datetime64(self.as_of, "D").astype("datetime64[Y]").astype(np.int64)
        years = as_of_year - start.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)
        cand = self.anniversary(start, years)
        return np.where(cand < self.as_of, self.anniversary(start, years + 1), cand)


def _month_day(month: np.ndarray, dom: np.ndarray) -> np.ndarray:
    """Epoch day of day-of-month ``dom`` (0-based) in ``month``, clamped to its last day."""
    first = month.astype("datetime64[D]").astype(np.int64)
    length = (month + 1).astype("datetime64[D]").astype(np.int64) - first
    return first + np.minimum(dom, length - 1)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _pick(values: tuple[str, ...] | list[str], idx: np.ndarray) -> pa.Array:
    return pa.array(values, pa.string()).take(pa.array(idx, pa.int64()))


def _categorical(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    return np.minimum(np.searchsorted(np.cumsum(p), rng.random(size), side="right"), len(p) - 1)


def _repeat(counts: np.ndarray) -> np.ndarray:
    """Row index ``i`` repeated ``counts[i]`` times."""
    return np.repeat(np.arange(counts.size), counts)


def _dates(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(days.astype("datetime64[D]"), pa.date32(), mask=null)


def _stamps(us: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    return pa.array(us.astype(np.int64).view("datetime64[us]"), pa.timestamp("us"), mask=null)


def _table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    schema = contract_schema(name)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


# --- one block -------------------------------------------------------------


def _generate_block(
    seed: int, block: int, n: int, as_of: dt.date, width: int, counters: _Counters
) -> _Block:
    """All tables for accounts ``block * BLOCK_ACCOUNTS`` .. ``+ n``, advancing ``counters``."""
    rng = np.random.default_rng([seed, block])
    days = _Days(as_of, rng)
    first = block * BLOCK_ACCOUNTS
    glob = first + np.arange(n)
    acc = _accounts(rng, days, n)
    account_ids = _ids("ACC-", glob + 1, width)
    tables: dict[str, _Rows] = {}

    tables["accounts"] = _Rows(_accounts_table(rng, days, acc, account_ids), glob)
    local, events = _usage_events(rng, days, acc, account_ids)
    tables["usage_events"] = _Rows(events, first + local)
    contacts, contact_local, n_contacts = _contacts(rng, days, acc, account_ids, counters)
    tables["contacts"] = _Rows(contacts, first + contact_local)
    local, tickets = _tickets(rng, days, acc, account_ids, counters)
    tables["tickets"] = _Rows(tickets, first + local)
    local, nps = _nps(rng, days, acc, account_ids, n_contacts, counters)
    tables["nps_responses"] = _Rows(nps, first + local)
    local, payments = _payments(rng, days, acc, account_ids, counters)
    tables["payments"] = _Rows(payments, first + local)
    counters.contacts += int(n_contacts.sum())
    return _Block(tables=tables, attributes=acc)


def _accounts(rng: np.random.Generator, days: _Days, n: int) -> dict[str, np.ndarray]:
    """Per-account attributes as numpy arrays (the shared basis of every table)."""
    arr = np.exp(np.log(ARR_MEDIAN) + ARR_SIGMA * rng.standard_normal(n))
    # Redraw out-of-range values instead of clipping, so no spike piles up at the bounds.
    for _ in range(64):
        bad = np.flatnonzero((arr < ARR_MIN) | (arr > ARR_MAX))
        if bad.size == 0:
            break
        arr[bad] = np.exp(np.log(ARR_MEDIAN) + ARR_SIGMA * rng.standard_normal(bad.size))
    arr = np.clip(arr, ARR_MIN, ARR_MAX)
    # Contract values look like prices: mostly to $10, some on a round $500.
    arr = np.where(rng.random(n) < 0.12, np.round(arr / 500) * 500, np.round(arr, -1))
    arr = np.maximum(arr, ARR_MIN)
    edge = rng.random(n) < 0.012
    arr[edge] = BAND_EDGES[rng.integers(0, BAND_EDGES.size, int(edge.sum()))]

    plan = np.searchsorted(_PLAN_ARR_BOUNDS, arr * np.exp(rng.normal(0, 0.25, n)), side="right")
    seats = np.maximum(1, np.round(arr / _PRICE_PER_SEAT[plan] * np.exp(rng.normal(0, 0.3, n))))
    seats = seats.astype(np.int64)
    employees = np.maximum(seats, np.round(seats * np.exp(rng.normal(1.3, 0.6, n)))).astype(
        np.int64
    )
    tenure = rng.integers(1, 3 * 365 + 1, n)  # days since contract start; 90/1095 ≈ 8% onboarding
    start = days.as_of - tenure

    archetype = _categorical(rng, _ARCHETYPE_P, n)
    archetype[(archetype == CHURNED) & (tenure < MIN_CHURN_TENURE)] = HEALTHY
    churned = archetype == CHURNED
    churn_age = np.zeros(n, np.int64)
    span = np.minimum(120, tenure[churned] - 30)
    churn_age[churned] = 1 + (rng.random(span.size) * span).astype(np.int64)
    # Events stop before the first day without them (``quiet``): inactive accounts have
    # been silent for 31+ days; churned ones went quiet 1-6 weeks before churning.
    quiet = np.zeros(n, np.int64)
    inactive = archetype == INACTIVE
    quiet[inactive] = rng.integers(31, 111, int(inactive.sum()))
    quiet[churned] = churn_age[churned] + rng.integers(7, 41, int(churned.sum()))

    # Usage units per 30 days for a steady account: grows with seats. The floor keeps
    # small accounts from swinging by chance across the ±40-50% trigger thresholds.
    u30 = (10.0 + 5.0 * seats**0.45) * np.exp(rng.normal(0, 0.35, n))
    cap = archetype == CAPACITY
    u30[cap] = PLAN_LIMITS[plan[cap]] * rng.uniform(0.85, 1.15, int(cap.sum()))
    mult = np.exp(rng.normal(0, 0.08, (n, 3)))  # [last 30 days, 30-59, 60-89]
    for code, lo, hi in (
        (DECLINING, (0.30, 0.95, 0.95), (0.60, 1.05, 1.15)),
        (INACTIVE, (0.60, 0.80, 0.95), (1.00, 1.00, 1.05)),
        (GROWING, (1.60, 0.95, 0.60), (2.60, 1.05, 0.90)),
        (CAPACITY, (0.97, 0.85, 0.80), (1.03, 1.00, 1.00)),
        (CHURNED, (0.40, 0.65, 0.95), (0.60, 0.85, 1.05)),
    ):
        sel = archetype == code
        mult[sel] = rng.uniform(lo, hi, (int(sel.sum()), 3))
    return {
        "arr": arr,
        "plan": plan,
        "seats": seats,
        "employees": employees,
        "tenure": tenure,
        "start": start,
        "archetype": archetype,
        "churn_age": churn_age,
        "quiet": quiet,
        "u30": u30,
        "mult": mult,
    }


def _accounts_table(
    rng: np.random.Generator, days: _Days, acc: dict[str, np.ndarray], ids: pa.Array
) -> pa.Table:
    n = len(ids)
    arr, archetype = acc["arr"], acc["archetype"]
    industry = _categorical(rng, np.array([w for _, w, _ in _INDUSTRIES]), n)
    suffixes = [s for _, _, ss in _INDUSTRIES for s in ss]
    offsets = np.cumsum([0] + [len(ss) for _, _, ss in _INDUSTRIES])
    sizes = np.diff(offsets)
    suffix = offsets[industry] + (rng.random(n) * sizes[industry]).astype(np.int64)
    w1 = rng.integers(0, len(_NAME_FIRST), n)
    w2 = rng.integers(0, len(_NAME_SECOND), n)
    name = pc.binary_join_element_wise(
        pc.binary_join_element_wise(_pick(_NAME_FIRST, w1), _pick(_NAME_SECOND, w2), ""),
        _pick(suffixes, suffix),
        " ",
    )
    acc["name_first"], acc["name_second"] = w1, w2

    strategic = rng.random(n) < np.where(arr >= 100_000, 0.06, 0.013)
    # Dedicated CSMs cover most $25K+ accounts, with deliberate gaps at $50K+
    # so that `value.dedicated_csm` has work to do.
    covered = (arr >= 25_000) | strategic
    missing_p = np.where(arr >= 50_000, 0.15, 0.06)
    has_csm = covered & (rng.random(n) >= missing_p)
    csm = _pick(_CSMS, rng.integers(0, len(_CSMS), n))
    renewal = days.next_anniversary(acc["start"])
    no_renewal = rng.random(n) < 0.20
    churned = archetype == CHURNED
    return _table(
        "accounts",
        {
            "account_id": ids,
            "name": name,
            "arr": pa.array(arr, pa.float64()),
            "contract_start": _dates(acc["start"]),
            "renewal_date": _dates(renewal, no_renewal),
            "employees": pa.array(acc["employees"], pa.int64()),
            "plan": _pick(PLANS, acc["plan"]),
            "plan_limit": pa.array(PLAN_LIMITS[acc["plan"]], pa.float64()),
            "seats": pa.array(acc["seats"], pa.int64()),
            "industry": _pick([i for i, _, _ in _INDUSTRIES], industry),
            "strategic": pa.array(strategic, pa.bool_()),
            "csm": pc.if_else(pa.array(has_csm), csm, pa.scalar(None, pa.string())),
            "churned_on": _dates(days.as_of - acc["churn_age"], ~churned),
        },
    )


def _usage_events(
    rng: np.random.Generator, days: _Days, acc: dict[str, np.ndarray], ids: pa.Array
) -> tuple[np.ndarray, pa.Table]:
    n = acc["arr"].size
    archetype, plan, mult = acc["archetype"], acc["plan"], acc["mult"]
    parts_acct: list[np.ndarray] = []
    parts_age: list[np.ndarray] = []
    parts_code: list[np.ndarray] = []

    def add(acct: np.ndarray, age: np.ndarray, code: np.ndarray | int) -> None:
        parts_acct.append(acct)
        parts_age.append(age)
        parts_code.append(np.broadcast_to(np.asarray(code, np.int64), acct.shape))

    def in_period(period: np.ndarray) -> np.ndarray:
        return days.ages(30 * period, 30 * period + 29)

    # Core features. Usage follows work routines, so period counts vary less than
    # Poisson (a quarter of the Poisson variance); with pure Poisson noise ~10% of
    # steady small accounts would cross the ±40-50% trend triggers by chance.
    expected = acc["u30"][:, None] * mult
    counts = np.round(0.75 * expected).astype(np.int64) + rng.poisson(0.25 * expected)
    acct = np.repeat(np.repeat(np.arange(n), 3), counts.ravel())
    period = np.repeat(np.tile(np.arange(3), n), counts.ravel())
    # Each account relies on its main feature and adopts each other one with p=0.75;
    # adopted features get a steady share, so abandonment comes from the archetype,
    # not from a feature used twice by chance.
    weights = rng.gamma(4.0, 1.0, (n, 4)) * _CORE_PREFERENCE
    weights[(rng.random((n, 4)) < 0.25) & (weights < weights.max(axis=1, keepdims=True))] = 0
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    feature = np.minimum((rng.random(acct.size)[:, None] > cum[acct]).sum(axis=1), 3)
    # Half the declining accounts drop the core feature they relied on most.
    abandons = (archetype == DECLINING) & (rng.random(n) < 0.5)
    keep = ~(abandons[acct] & (period == 0) & (feature == weights.argmax(axis=1)[acct]))
    acct, period, feature = acct[keep], period[keep], feature[keep]
    add(acct, in_period(period), _CORE0 + feature)

    # Premium exploration: locked features tried, more often on the smaller plans.
    explorer = rng.random(n) < np.array([0.10, 0.08, 0.06, 0.04])[plan]
    recent = np.where(explorer, 1 + rng.poisson(1.5, n), 0)
    older = np.where(explorer, rng.poisson(0.8, n), 0)
    a = _repeat(recent)
    add(a, days.ages(np.zeros(a.size), np.full(a.size, 29)), _PREMIUM0 + rng.integers(0, 3, a.size))
    a = _repeat(older)
    add(
        a,
        days.ages(np.full(a.size, 30), np.full(a.size, 89)),
        _PREMIUM0 + rng.integers(0, 3, a.size),
    )

    # Integrations: an established one (first used long ago) or a new one this month.
    kind = rng.integers(0, 3, n)
    established = rng.random(n) < 0.35
    rate = np.where(established[:, None], np.maximum(0.5, 0.06 * acc["u30"])[:, None] * mult, 0)
    counts = rng.poisson(rate)
    counts[:, 2] += established  # at least one early use, so it is not "first use"
    a = np.repeat(np.repeat(np.arange(n), 3), counts.ravel())
    p = np.repeat(np.tile(np.arange(3), n), counts.ravel())
    add(a, in_period(p), _INTEGRATION0 + kind[a])
    new_p = np.where(archetype == GROWING, 0.15, 0.05)
    fresh = ~established & (rng.random(n) < new_p)
    a = _repeat(np.where(fresh, 1 + rng.poisson(3, n), 0))
    add(a, days.ages(np.zeros(a.size), np.full(a.size, 29)), _INTEGRATION0 + kind[a])

    # Seats: growing and at-capacity accounts add seats, declining ones remove them.
    added = np.full((6, 3), 0.06)  # per 30-day period, by archetype
    added[GROWING] = (1.5, 0.3, 0.2)
    added[CAPACITY] = (0.8, 0.2, 0.2)
    added[DECLINING] = (0.02, 0.05, 0.1)
    removed = np.full((6, 3), 0.03)
    removed[DECLINING] = (0.8, 0.2, 0.05)
    removed[CHURNED] = (0.3, 1.0, 0.3)
    for seat_event, rates in ((_EV["seat.added"], added), (_EV["seat.removed"], removed)):
        counts = rng.poisson(rates[archetype])
        a = np.repeat(np.repeat(np.arange(n), 3), counts.ravel())
        p = np.repeat(np.tile(np.arange(3), n), counts.ravel())
        add(a, in_period(p), seat_event)

    # Executive intent: rare, likelier for bigger and growing accounts.
    exec_p = 0.012 + 0.02 * (acc["arr"] >= 25_000) + 0.02 * np.isin(archetype, (GROWING, CAPACITY))
    a = _repeat(np.where(rng.random(n) < exec_p, 1 + rng.poisson(0.4, n), 0))
    add(
        a,
        days.ages(np.zeros(a.size), np.full(a.size, WINDOW_DAYS - 1)),
        _EXECUTIVE0 + _categorical(rng, _EXECUTIVE_WEIGHTS, a.size),
    )

    # Milestones: first workflow soon after the start; 100 reports now and then.
    tenure = acc["tenure"]
    first_wf = (tenure < WINDOW_DAYS) & (rng.random(n) < 0.6)
    a = np.flatnonzero(first_wf)
    add(a, np.maximum(0, tenure[a] - rng.integers(2, 22, a.size)), _EV["milestone.first_workflow"])
    a = np.flatnonzero(rng.random(n) < 0.012)
    add(a, rng.integers(0, WINDOW_DAYS, a.size), _EV["milestone.100_reports"])

    acct = np.concatenate(parts_acct).astype(np.int64)
    age = np.concatenate(parts_age).astype(np.int64)
    code = np.concatenate(parts_code).astype(np.int64)
    keep = (age >= acc["quiet"][acct]) & (age <= tenure[acct])
    acct, age, code = acct[keep], age[keep], code[keep]

    stamp = days.timestamps(age)
    window_start = (days.as_of - WINDOW_DAYS + 1) * US_PER_DAY
    order = np.argsort((acct << 43) + (stamp - window_start), kind="stable")
    acct, stamp, code = acct[order], stamp[order], code[order]

    # Bulk edits: a few record updates touch many records at once.
    quantity = np.ones(acct.size)
    bulk = (code == _EV["record.updated"]) & (rng.random(acct.size) < 0.03)
    quantity[bulk] = rng.integers(2, 6, int(bulk.sum()))
    # A few power users do most of the work; seat changes come from the admin (user 1).
    users = np.clip(np.round(acc["seats"] * rng.uniform(0.4, 0.9, n)), 1, MAX_USERS).astype(int)
    user = np.floor(users[acct] * rng.random(acct.size) ** 1.6).astype(np.int64)
    user[(code == _EV["seat.added"]) | (code == _EV["seat.removed"])] = 0
    account_col = ids.take(pa.array(acct))
    table = _table(
        "usage_events",
        {
            "account_id": account_col,
            "timestamp": _stamps(stamp),
            "event": _pick(EVENT_NAMES, code),
            "user_id": pc.binary_join_element_wise(
                account_col, _USER_SUFFIX.take(pa.array(user)), "-"
            ),
            "quantity": pa.array(quantity, pa.float64()),
        },
    )
    return acct, table


def _contacts(
    rng: np.random.Generator,
    days: _Days,
    acc: dict[str, np.ndarray],
    ids: pa.Array,
    counters: _Counters,
) -> tuple[pa.Table, np.ndarray, np.ndarray]:
    size = np.clip((np.log(acc["arr"]) - np.log(ARR_MIN)) / np.log(1000), 0, 1)
    count = 1 + rng.binomial(4, 0.1 + 0.6 * size)
    acct = _repeat(count)
    m = acct.size
    # Founders answer for small companies, so execs are likelier there.
    exec_p = np.where(acc["employees"][acct] < 50, 0.12, 0.05)
    is_exec = rng.random(m) < exec_p
    title = pc.if_else(
        pa.array(is_exec),
        _pick(EXECUTIVE_TITLES, rng.integers(0, len(EXECUTIVE_TITLES), m)),
        _pick(STAFF_TITLES, rng.integers(0, len(STAFF_TITLES), m)),
    )
    first = _pick(_FIRST_NAMES, rng.integers(0, len(_FIRST_NAMES), m))
    last = _pick(_LAST_NAMES, rng.integers(0, len(_LAST_NAMES), m))
    domain = pc.binary_join_element_wise(
        _pick(_NAME_FIRST, acc["name_first"][acct]),
        _pick(_NAME_SECOND, acc["name_second"][acct]),
        ".com",
        "",
    )
    email = pc.utf8_lower(
        pc.binary_join_element_wise(pc.binary_join_element_wise(first, last, "."), domain, "@")
    )
    email = pc.if_else(pa.array(rng.random(m) < 0.05), pa.scalar(None, pa.string()), email)
    age = days.ages(np.zeros(m), acc["tenure"][acct] + 30)
    table = _table(
        "contacts",
        {
            "contact_id": _ids("CON-", counters.contacts + 1 + np.arange(m), 8),
            "account_id": ids.take(pa.array(acct)),
            "email": email,
            "title": title,
            "created_at": _stamps(days.timestamps(age)),
        },
    )
    return table, acct, count


def _tickets(
    rng: np.random.Generator,
    days: _Days,
    acc: dict[str, np.ndarray],
    ids: pa.Array,
    counters: _Counters,
) -> tuple[np.ndarray, pa.Table]:
    n = acc["arr"].size
    archetype = acc["archetype"]
    at_risk = np.isin(archetype, (DECLINING, CHURNED))
    t30 = 0.12 * acc["seats"] ** 0.3
    recent_mult = np.array([1.0, 2.5, 0.3, 1.2, 1.3, 1.5])[archetype]
    older = _repeat(rng.poisson(t30 * 5))
    recent = _repeat(rng.poisson(t30 * recent_mult))
    # A burst of issues: several tickets within two weeks.
    spike = _repeat(
        np.where(rng.random(n) < np.where(at_risk, 0.05, 0.008), 3 + rng.poisson(0.7, n), 0)
    )
    cancel = np.flatnonzero((archetype == CHURNED) & (rng.random(n) < 0.6))
    acct = np.concatenate([older, recent, spike, cancel])
    age = np.concatenate(
        [
            days.ages(np.full(older.size, 30), np.full(older.size, TICKET_DAYS - 1)),
            days.ages(np.zeros(recent.size), np.full(recent.size, 29)),
            days.ages(np.zeros(spike.size), np.full(spike.size, 13)),
            acc["churn_age"][cancel] + rng.integers(3, 31, cancel.size),
        ]
    )
    m = acct.size
    category = np.where(
        at_risk[acct],
        _categorical(rng, _CATEGORY_P_RISK, m),
        _categorical(rng, _CATEGORY_P_CALM, m),
    )
    category[m - cancel.size :] = TICKET_CATEGORIES.index("cancellation")
    keep = (age <= acc["tenure"][acct]) & (age >= acc["churn_age"][acct])
    acct, age, category = acct[keep], age[keep], category[keep]
    opened = days.timestamps(age)
    order = np.lexsort((opened, acct))
    acct, opened, category = acct[order], opened[order], category[order]
    m = acct.size

    priority = _categorical(rng, _PRIORITY_P, m)
    hours = rng.exponential(_PRIORITY_HOURS[priority])
    closed = opened + (hours * 3600).astype(np.int64) * 1_000_000
    end_of_as_of = (days.as_of + 1) * US_PER_DAY
    open_now = (closed >= end_of_as_of) | (rng.random(m) < 0.04)
    grim = at_risk[acct] | (category == TICKET_CATEGORIES.index("complaint"))
    score = 1 + np.where(
        grim, _categorical(rng, _SATISFACTION_P_RISK, m), _categorical(rng, _SATISFACTION_P_CALM, m)
    )
    rated = ~open_now & (rng.random(m) < 0.5)
    table = _table(
        "tickets",
        {
            "ticket_id": _ids("TCK-", counters.tickets + 1 + np.arange(m), 8),
            "account_id": ids.take(pa.array(acct)),
            "opened_at": _stamps(opened),
            "closed_at": _stamps(closed, open_now),
            "priority": _pick(TICKET_PRIORITIES, priority),
            "category": _pick(TICKET_CATEGORIES, category),
            "satisfaction": pa.array(score.astype(np.float64), pa.float64(), mask=~rated),
        },
    )
    counters.tickets += m
    return acct, table


def _nps(
    rng: np.random.Generator,
    days: _Days,
    acc: dict[str, np.ndarray],
    ids: pa.Array,
    n_contacts: np.ndarray,
    counters: _Counters,
) -> tuple[np.ndarray, pa.Table]:
    n = acc["arr"].size
    archetype = acc["archetype"]
    unhappy = np.isin(archetype, (DECLINING, INACTIVE, CHURNED))
    # ~46% drawn so that ~40% remain once young and churned accounts are masked.
    answered = rng.random(n) < 0.46
    acct = _repeat(np.where(answered, 1 + rng.binomial(2, 0.3, n), 0))
    age = days.ages(np.zeros(acct.size), np.full(acct.size, NPS_DAYS - 1))
    keep = (age <= acc["tenure"][acct]) & (age >= acc["churn_age"][acct])
    acct, age = acct[keep], age[keep]
    stamp = days.timestamps(age)
    order = np.lexsort((stamp, acct))
    acct, stamp = acct[order], stamp[order]
    m = acct.size

    # Group 0 detractor, 1 passive, 2 promoter.
    group = np.where(
        unhappy[acct],
        _categorical(rng, np.array([0.50, 0.30, 0.20]), m),
        _categorical(rng, np.array([0.18, 0.32, 0.50]), m),
    )
    detractor = _categorical(rng, np.array([0.03, 0.03, 0.05, 0.08, 0.12, 0.27, 0.42]), m)
    score = np.select([group == 0, group == 1], [detractor, 7 + rng.integers(0, 2, m)], 9)
    score = np.where(group == 2, 9 + rng.integers(0, 2, m), score)
    offsets = np.cumsum([0] + [len(c) for c in _NPS_COMMENTS])
    sizes = np.diff(offsets)
    comment_idx = offsets[group] + (rng.random(m) * sizes[group]).astype(np.int64)
    comments = [c for group_comments in _NPS_COMMENTS for c in group_comments]
    no_comment = rng.random(m) >= 0.35
    first_contact = np.concatenate([[0], np.cumsum(n_contacts)[:-1]])
    contact = counters.contacts + 1 + first_contact[acct]
    contact += (rng.random(m) * n_contacts[acct]).astype(np.int64)
    table = _table(
        "nps_responses",
        {
            "account_id": ids.take(pa.array(acct)),
            "responded_at": _stamps(stamp),
            "score": pa.array(score.astype(np.int64), pa.int64()),
            "contact_id": _ids("CON-", contact, 8),
            "comment": pc.if_else(
                pa.array(no_comment), pa.scalar(None, pa.string()), _pick(comments, comment_idx)
            ),
        },
    )
    return acct, table


def _payments(
    rng: np.random.Generator,
    days: _Days,
    acc: dict[str, np.ndarray],
    ids: pa.Array,
    counters: _Counters,
) -> tuple[np.ndarray, pa.Table]:
    n = acc["arr"].size
    arr, start, archetype = acc["arr"], acc["start"], acc["archetype"]
    annual = rng.random(n) < np.where(arr >= 25_000, 0.85, 0.30)

    # Monthly invoices fall on the contract's day of month over the last 7 months.
    start_d = start.astype("datetime64[D]")
    dom = (start_d - start_d.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)
    as_of_month = np.datetime64(days.as_of, "D").astype("datetime64[M]")
    back = np.arange(7)
    months = as_of_month - back.astype("timedelta64[M]")
    monthly_due = _month_day(np.broadcast_to(months, (n, 7)), dom[:, None])
    monthly_ok = ~annual[:, None] & np.ones((n, 7), bool)
    # Annual invoices fall on the last anniversary (the contract start counts).
    years = np.datetime64(days.as_of, "D").astype("datetime64[Y]").astype(
        np.int64
    ) - start_d.astype("datetime64[Y]").astype(np.int64)
    cand = days.anniversary(start, years)
    annual_due = np.where(cand <= days.as_of, cand, days.anniversary(start, years - 1))

    due = np.concatenate([monthly_due, annual_due[:, None]], axis=1)
    ok = np.concatenate([monthly_ok, annual[:, None]], axis=1)
    churn_day = np.where(archetype == CHURNED, days.as_of - acc["churn_age"], days.as_of + 1)
    ok &= (due <= days.as_of) & (due > days.as_of - PAYMENT_DAYS)
    ok &= (due >= start[:, None]) & (due < churn_day[:, None])
    acct = np.nonzero(ok)[0]
    due = due[ok]
    order = np.lexsort((due, acct))
    acct, due = acct[order], due[order]
    m = acct.size

    amount = np.round(np.where(annual[acct], arr[acct], arr[acct] / 12), 2)
    fail_p = np.where(np.isin(archetype[acct], (DECLINING, CHURNED)), 0.07, 0.02)
    roll = rng.random(m)
    status = np.where(roll < fail_p, 1, np.where(roll > 0.996, 2, 0))
    lag = (rng.random(m) * np.minimum(7, days.as_of - due + 1)).astype(np.int64)
    paid = days.timestamps(days.as_of - due - lag)
    table = _table(
        "payments",
        {
            "account_id": ids.take(pa.array(acct)),
            "invoice_id": _ids("INV-", counters.invoices + 1 + np.arange(m), 8),
            "due_date": _dates(due),
            "amount": pa.array(amount, pa.float64()),
            "status": _pick(PAYMENT_STATUSES, status),
            "paid_at": _stamps(paid, status == 1),
        },
    )
    counters.invoices += m
    return acct, table


# --- streaming into files --------------------------------------------------


def _clear_previous(out_dir: Path) -> None:
    """Remove files a previous run wrote, so no stale part survives a smaller run."""
    for name in TABLE_NAMES:
        (out_dir / f"{name}.parquet").unlink(missing_ok=True)
        folder = out_dir / name
        if folder.is_dir():
            for part in folder.glob("part-*.parquet"):
                part.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()


def generate(
    out_dir: Path,
    *,
    accounts: int = 2000,
    as_of: dt.date,
    seed: int = 7,
    chunk_accounts: int = 20_000,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoSummary:
    """Write a demo data folder for ``accounts`` accounts as of ``as_of``.

    The same ``seed``, ``as_of`` and ``accounts`` give the same data whatever
    ``chunk_accounts`` is, and byte-identical files for the same
    ``chunk_accounts``. At most one chunk of rows (plus one block of
    :data:`BLOCK_ACCOUNTS` accounts) is held in memory. Files of a previous run
    in ``out_dir`` (the contract tables only) are replaced.

    ``progress(PROGRESS_STEP, done, total)`` is called with the number of
    accounts written so far, once at the start and after every chunk.
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    if chunk_accounts < 1:
        raise ValueError("chunk_accounts must be at least 1")
    if seed < 0:
        raise ValueError("seed must be non-negative")
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir)
    (out_dir / "usage_events").mkdir(exist_ok=True)

    width = max(6, len(str(accounts)))
    schemas = {name: contract_schema(name) for name in TABLE_NAMES}
    rows = dict.fromkeys(TABLE_NAMES, 0)
    buffers: dict[str, list[pa.Table]] = {name: [] for name in TABLE_NAMES}
    writers = {
        name: pq.ParquetWriter(out_dir / f"{name}.parquet", schemas[name])
        for name in TABLE_NAMES
        if name not in PARTED_TABLES
    }
    counters = _Counters()
    part = 0

    def flush() -> None:
        nonlocal part
        for name in TABLE_NAMES:
            pieces = buffers[name]
            table = pa.concat_tables(pieces) if pieces else schemas[name].empty_table()
            buffers[name] = []
            rows[name] += table.num_rows
            if name in PARTED_TABLES:
                pq.write_table(table, out_dir / name / f"part-{part:05d}.parquet")
            elif table.num_rows:
                writers[name].write_table(table)
        part += 1

    if progress:
        progress(PROGRESS_STEP, 0, accounts)
    chunk_end = min(chunk_accounts, accounts)
    try:
        for block in range(math.ceil(accounts / BLOCK_ACCOUNTS)):
            first = block * BLOCK_ACCOUNTS
            last = min(first + BLOCK_ACCOUNTS, accounts)
            generated = _generate_block(seed, block, last - first, as_of, width, counters)
            pos = first
            while pos < last:
                stop = min(chunk_end, last)
                for name, block_rows in generated.tables.items():
                    buffers[name].append(block_rows.between(pos, stop))
                pos = stop
                if pos == chunk_end:
                    flush()
                    if progress:
                        progress(PROGRESS_STEP, chunk_end, accounts)
                    chunk_end = min(chunk_end + chunk_accounts, accounts)
    finally:
        for writer in writers.values():
            writer.close()
    return DemoSummary(folder=out_dir, accounts=accounts, rows=rows)

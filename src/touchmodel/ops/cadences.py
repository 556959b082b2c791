"""Plan touchpoints from the model's cadences (docs/touch-model.md), for all accounts in one pass.

Every calendar line, sequence step, call rhythm and EBR is one Ibis expression
over the accounts table (a Python loop over the handful of *items*, never over
accounts); they are unioned, then two window passes apply the rules that need
the whole plan of an account:

- one CSM meeting a day: a human touchpoint due the same day as a more
  important one (EBR > calendar > scheduled call) is skipped, the meeting held
  covers both;
- the weekly cap: at most ``weekly_cap`` automated touchpoints per account per
  ISO week (Monday to Sunday), counting those already planned or sent
  (``existing``); the earliest, then the most important, are kept.

The planner is a pure function of its inputs: re-planning after a tier or
level change is calling it again; the caller cancels planned rows whose key
is no longer in the plan. Occurrences before ``as_of`` are never backfilled.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import ibis
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.errors import DataError
from touchmodel.model.cadences import LEVELS, Every, When
from touchmodel.model.schema import TouchModel
from touchmodel.signals.build import _next_anniversary

OUTPUT_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("key", pa.string()),
        ("sequence", pa.string()),
        ("title", pa.string()),
        ("due", pa.date32()),
        ("channel", pa.string()),
        ("automated", pa.bool_()),
        ("owner_role", pa.string()),
        ("level", pa.string()),
        ("template", pa.string()),
        ("status", pa.string()),
        ("reason", pa.string()),
    ]
)
INPUT_COLUMNS = (
    "account_id",
    "tier",
    "touch_level",
    "contract_start",
    "renewal_date",
    "lifecycle_stage",
)

# Importance when two touchpoints compete (lower wins): time-bound renewal
# reminders first, then the onboarding and activation sequences, then reviews.
_RANK = {"renewal": 0, "onboarding": 1, "activation": 2, "ebr": 3, "calendar": 4, "calls": 5}
_CALL_RANK = {"none": 0, "ad_hoc": 1, "quarterly": 2, "monthly": 3}
# Existing rows with these statuses never reached the customer: not counted.
_NOT_SENT = ("skipped", "cancelled", "canceled", "failed")
_EXISTING_SCHEMA = pa.schema(
    [
        ("account_id", pa.string()),
        ("due", pa.date32()),
        ("automated", pa.bool_()),
        ("status", pa.string()),
        ("key", pa.string()),
        ("reason", pa.string()),
    ]
)


def plan_touchpoints(
    model: TouchModel,
    accounts: pa.Table,
    as_of: dt.date,
    existing: pa.Table | None = None,
) -> pa.Table:
    """Touchpoints due from ``as_of`` to ``as_of + cadences.horizon_days``, both included.

    ``accounts`` has one row per account: ``account_id``, ``tier`` (a tier id
    of the model), ``touch_level`` (the effective level), ``contract_start``,
    ``renewal_date`` (null: the next anniversary of contract_start on or after
    ``as_of``, as the ``days_to_renewal`` signal) and ``lifecycle_stage``.
    ``existing`` (optional): touchpoints planned or sent before, with
    ``account_id``, ``due``, ``automated``, ``status`` and optionally ``key``;
    automated ones count towards the weekly cap unless their status is one of
    skipped/cancelled/failed, or their key is re-planned here (not counted twice).

    Returns :data:`OUTPUT_SCHEMA` rows sorted by account_id, due, key; status is
    ``planned`` or ``skipped`` (with the reason).
    """
    _check_accounts(model, accounts)
    cad = model.cadences
    lo, hi = as_of, as_of + dt.timedelta(days=cad.horizon_days)
    base = _base(model, ibis.memtable(accounts.select(list(INPUT_COLUMNS))), as_of)
    parts = [p.filter((p.due >= lo) & (p.due <= hi)) for p in _candidates(model, base, as_of)]
    if not parts:
        return OUTPUT_SCHEMA.empty_table()
    plan = ibis.union(*parts, distinct=False)
    plan = _one_meeting_a_day(plan)
    plan = _weekly_cap(plan, _existing(existing), cad.weekly_cap)
    ordered = plan.select(*OUTPUT_SCHEMA.names).order_by(["account_id", "due", "key"])
    # DuckDB's date + interval is a timestamp at midnight: cast back to dates.
    return ibis.duckdb.connect().to_pyarrow(ordered).cast(OUTPUT_SCHEMA)


def _check_accounts(model: TouchModel, accounts: pa.Table) -> None:
    """Refuse inputs the plan would silently get wrong (vectorized, on the Arrow table)."""
    missing = [c for c in INPUT_COLUMNS if c not in accounts.column_names]
    if missing:
        raise DataError(f"plan_touchpoints: accounts lacks column(s) {', '.join(missing)}")
    tiers = {t.id for t in model.tiers}
    for col, known in (("tier", tiers), ("touch_level", set(LEVELS))):
        found = set(pc.unique(accounts[col]).to_pylist())
        unknown = sorted(str(v) for v in found - known)
        if unknown:
            raise DataError(
                f"plan_touchpoints: accounts.{col} has unknown value(s) {unknown}; "
                f"expected one of {sorted(known)}"
            )


def _base(model: TouchModel, accounts: ir.Table, as_of: dt.date) -> ir.Table:
    """Accounts with the tier's level, the call rhythm and the effective renewal date."""
    a = accounts
    start = a.contract_start.cast("date")
    day = ibis.literal(as_of, type="date")

    def by_tier(value: dict[str, str | int]) -> ir.Value:
        return ibis.cases(*[(a.tier == t, ibis.literal(v)) for t, v in value.items()])

    tier_calls = by_tier({t.id: _CALL_RANK[t.scheduled_calls] for t in model.tiers})
    stages = model.cadences.scheduled_calls.stages
    stage_calls = (
        ibis.cases(*[(a.lifecycle_stage == s, _CALL_RANK[k]) for s, k in stages.items()], else_=0)
        if stages
        else ibis.literal(0)
    )
    return a.select(
        "account_id",
        touch_level=a.touch_level.cast("string"),
        tier_level=by_tier({t.id: t.level for t in model.tiers}),
        # docs/touch-model.md: onboarding and at-risk accounts get monthly calls whatever their tier.
        call_rank=ibis.greatest(tier_calls, stage_calls),
        start=start,
        renewal=ibis.coalesce(a.renewal_date.cast("date"), _next_anniversary(start, day)),
        months_elapsed=(day.year() - start.year()) * 12 + day.month() - start.month(),
    )


def _shift(
    start: ir.DateValue, months: ir.IntegerValue | int, days: ir.IntegerValue | int
) -> ir.DateValue:
    """``start`` plus calendar months, then days (months first: Jan 31 + 1 month = Feb 28)."""
    out = start
    if not isinstance(months, int) or months:
        m = ibis.literal(months) if isinstance(months, int) else months
        out = (out + m.as_interval("M")).cast("date")
    if not isinstance(days, int) or days:
        d = ibis.literal(days) if isinstance(days, int) else days
        out = (out + d.as_interval("D")).cast("date")
    return out


def _occurrences(t: ir.Table, after: When, every: Every, as_of: dt.date, horizon: int) -> ir.Table:
    """``t`` with one row per occurrence ``after + k * every`` (k >= 1) that may fall in the window.

    ``k`` starts at a lower bound at or before the first occurrence due on
    ``as_of`` or later, and a fixed number of candidates covers the horizon;
    the caller keeps those inside the window. Rows stay per (account, k): no
    Python per account.
    """
    am, ad = after.parts()
    pm, pd = every.parts()
    if pd:  # a period in days: exact whole-day arithmetic from the anchor
        anchor = _shift(t.start, am, ad)
        k0 = ibis.greatest(1, ibis.literal(as_of).delta(anchor, unit="day") // pd)
        n = horizon // pd + 2
    else:  # a period in months: count months from contract start, never drift on short months
        k0 = ibis.greatest(1, (t.months_elapsed - am - ad // 28 - 2) // pm)
        n = 5 + (horizon // 28 + 4) // pm
    ks = ibis.memtable({"_j": list(range(n))})
    rows = t.cross_join(ks)
    k = k0 + rows._j
    return rows.mutate(_k=k, due=_shift(rows.start, am + k * pm, ad + k * pd))


def _row(
    t: ir.Table,
    *,
    key: str,
    recurring: bool,
    sequence: str,
    title: str,
    channel: str,
    automated: bool,
    owner: str,
    template: str | None,
    rank: int,
) -> ir.Table:
    """The output columns for one item; recurring keys carry the due date."""
    k = ibis.literal(key)
    return t.select(
        "account_id",
        key=(k + "@" + t.due.strftime("%Y-%m-%d")) if recurring else k,
        sequence=ibis.literal(sequence),
        title=ibis.literal(title),
        due=t.due,
        channel=ibis.literal(channel),
        automated=ibis.literal(automated),
        owner_role=ibis.literal(owner),
        level=t.touch_level,
        template=ibis.literal(template, type="string"),
        _rank=ibis.literal(rank, type="int64"),
    )


def _candidates(model: TouchModel, base: ir.Table, as_of: dt.date) -> Iterator[ir.Table]:
    """One expression per cadence item, each over all accounts it applies to."""
    cad = model.cadences
    horizon = cad.horizon_days
    for level in LEVELS:
        on_level = base.filter(base.touch_level == level)
        for item in cad.calendars.for_level(level):
            if item.delivered_by is not None:
                continue  # that sequence email is this line; never sent twice
            seq = f"calendar.{level}"
            if item.at is not None:
                rows = on_level.mutate(due=_shift(on_level.start, *item.at.parts()))
            else:
                assert item.after is not None and item.every is not None  # check_cadences
                rows = _occurrences(on_level, item.after, item.every, as_of, horizon)
            yield _row(
                rows,
                key=f"{seq}.{item.key}",
                recurring=item.at is None,
                sequence=seq,
                title=item.title,
                channel=item.channel,
                automated=item.automated,
                owner=item.owner,
                template=item.template,
                rank=_RANK["calendar"],
            )
    for name in ("onboarding", "activation"):
        sequence = getattr(cad, name)
        for_tier = base.filter(base.tier_level.isin(sequence.tier_levels))
        for step in sequence.steps:
            yield _row(
                for_tier.mutate(due=_shift(for_tier.start, 0, step.day - 1)),
                key=f"{name}.day{step.day}",
                recurring=False,
                sequence=name,
                title=step.title,
                channel=sequence.channel,
                automated=True,
                owner="automation",
                template=step.template,
                rank=_RANK[name],
            )
    renewing = base.filter(base.tier_level.isin(cad.renewal.tier_levels))
    for rstep in cad.renewal.steps:
        yield _row(
            # Renewals recur yearly, so the key carries the date like a recurring item.
            renewing.mutate(due=_shift(renewing.renewal, 0, -rstep.days_before)),
            key=f"renewal.{rstep.days_before}",
            recurring=True,
            sequence="renewal",
            title=rstep.title,
            channel=cad.renewal.channel,
            automated=True,
            owner="automation",
            template=rstep.template,
            rank=_RANK["renewal"],
        )
    for kind, call in cad.scheduled_calls.calls.items():
        calling = base.filter(base.call_rank == _CALL_RANK[kind])
        yield _row(
            _occurrences(calling, When(month=0), call.every, as_of, horizon),
            key=f"calls.{kind}",
            recurring=True,
            sequence="calls",
            title=call.title,
            channel=call.channel,
            automated=False,
            owner="csm",
            template=None,
            rank=_RANK["calls"],
        )
    ebr = cad.ebr
    with_ebr = base.filter(base.tier_level.isin(ebr.tier_levels))
    yield _row(
        _occurrences(with_ebr, When(month=0), ebr.every, as_of, horizon),
        key="ebr",
        recurring=True,
        sequence="ebr",
        title=ebr.title,
        channel=ebr.channel,
        automated=False,
        owner="csm",
        template=None,
        rank=_RANK["ebr"],
    )


def _one_meeting_a_day(plan: ir.Table) -> ir.Table:
    """Skip a human touchpoint due the same day as a more important one for the account."""
    w = ibis.window(
        group_by=[plan.account_id, plan.due, plan.automated], order_by=[plan._rank, plan.key]
    )
    plan = plan.mutate(_nth=ibis.row_number().over(w), _first=plan.key.first().over(w))
    clash = ~plan.automated & (plan._nth > 0)
    return plan.mutate(
        status=ibis.ifelse(clash, "skipped", "planned"),
        reason=ibis.ifelse(
            clash,
            "same day as " + plan._first + ": one CSM meeting covers both",
            ibis.null().cast("string"),
        ),
    )


def _existing(existing: pa.Table | None) -> ir.Table:
    """Touchpoints stored before, as (account_id, key, week, counts toward the cap)."""
    if existing is None:
        existing = _EXISTING_SCHEMA.empty_table()
    for optional in ("key", "reason"):  # without keys every row counts
        if optional not in existing.column_names:
            existing = existing.append_column(optional, pa.nulls(existing.num_rows, pa.string()))
    t = ibis.memtable(existing.select(_EXISTING_SCHEMA.names).cast(_EXISTING_SCHEMA))
    return t.select(
        "account_id",
        "key",
        "status",
        "reason",
        _week=_week_start(t.due.cast("date")),
        _counts=t.automated & ~t.status.isin(_NOT_SENT),
    )


def _week_start(due: ir.DateValue) -> ir.DateValue:
    """The Monday of ``due``'s ISO week."""
    return _shift(due, 0, -due.day_of_week.index())


def _weekly_cap(plan: ir.Table, existing: ir.Table, cap: int) -> ir.Table:
    """Skip automated touchpoints beyond ``cap`` per account and ISO week."""
    plan = plan.mutate(_week=_week_start(plan.due))
    # Stored touchpoints are decided: the ones that go out hold their slot, and a
    # re-planned key is the stored row, not a new candidate (its status stands).
    # Only new keys compete for what is left of the week.
    counted = existing.filter(existing._counts)
    already = counted.group_by(["account_id", "_week"]).aggregate(_already=counted.count())
    stored = existing.filter(existing.key.notnull()).select(
        "account_id", "key", _stored=existing.status, _stored_reason=existing.reason
    )
    stored = stored.distinct(on=["account_id", "key"], keep="first")
    plan = plan.left_join(already, ["account_id", "_week"]).drop("account_id_right", "_week_right")
    plan = plan.left_join(stored, ["account_id", "key"]).drop("account_id_right", "key_right")
    competing = plan.automated & (plan.status == "planned") & plan._stored.isnull()
    w = ibis.window(
        group_by=[plan.account_id, plan._week, competing], order_by=[plan.due, plan._rank, plan.key]
    )
    used = plan._already.fill_null(0) + ibis.row_number().over(w) + 1
    over = competing & (used > cap)
    reason = (
        f"weekly cap: {cap} automated touchpoints per account per ISO week, week of "
        + plan._week.strftime("%Y-%m-%d")
        + " already full"
    )
    decided = plan._stored.notnull()
    return plan.mutate(
        status=ibis.cases((decided, plan._stored), (over, "skipped"), else_=plan.status),
        reason=ibis.cases((decided, plan._stored_reason), (over, reason), else_=plan.reason),
    )

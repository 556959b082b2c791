"""Per-account signals as of a date, as one Ibis expression over all accounts.

Each source table is reduced to one row per account by a single grouped pass
with conditional aggregates (``sum(where=...)``), then left-joined onto the
accounts. Nothing here runs Python per account, so the same expression runs
on DuckDB or on any other Ibis backend.

Windows are whole days counted back from the as-of date, which is included:
"last 30 days" is age 0..29, "the 30 days before" is age 30..59. Rows dated
after the as-of date are ignored, so a past date can be replayed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from itertools import pairwise

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from touchmodel.expr import Function, Scope, compile_expr, referenced_names
from touchmodel.model.schema import TABLE_DATES, EventSignal, ExprSignal, TableSignal, TouchModel
from touchmodel.signals.catalog import BUILTIN

_NUMERIC_NULL = ibis.null().cast("float64")


@dataclass
class SignalTable:
    """Signals for every account, plus what could not be computed and why."""

    table: ir.Table
    # signal name -> reason it is unavailable (e.g. the table it needs is missing)
    unavailable: dict[str, str]


def event_group_predicate(event: ir.StringValue, patterns: list[str]) -> ir.BooleanValue:
    """Match event names against glob patterns; a leading ``!`` removes earlier matches."""
    result: ir.BooleanValue = ibis.literal(False)
    exact: list[str] = []

    def flush(res: ir.BooleanValue) -> ir.BooleanValue:
        if exact:
            res = res | event.isin(list(exact))
            exact.clear()
        return res

    for raw in patterns:
        negate = raw.startswith("!")
        pattern = raw[1:] if negate else raw
        if "*" not in pattern:
            if negate:
                result = flush(result) & (event != pattern)
            else:
                exact.append(pattern)
            continue
        result = flush(result)
        if pattern == "*":
            match: ir.BooleanValue = ibis.literal(True)
        elif pattern.endswith("*") and pattern.count("*") == 1:
            match = event.startswith(pattern[:-1])
        else:
            regex = "^" + ".*".join(re.escape(p) for p in pattern.split("*")) + "$"
            match = event.re_search(regex)
        result = (result & ~match) if negate else (result | match)
    return flush(result)


def _age(as_of: ir.DateValue, when: ir.Value) -> ir.IntegerValue:
    return as_of.delta(when.cast("date"), unit="day")


def _ages(ts: ir.TimestampValue, as_of: dt.date, lo: int, hi: int | None = None) -> ir.BooleanValue:
    """Rows whose age in whole days is in ``[lo, hi)`` (``hi=None``: no upper bound).

    Written as a range on the raw timestamp with constant bounds, not as a
    per-row date difference: the backend can then filter while scanning.
    """

    def start_of(day: dt.date) -> ir.TimestampValue:
        return ibis.literal(dt.datetime.combine(day, dt.time()), type="timestamp")

    cond = ts < start_of(as_of - dt.timedelta(days=lo - 1))
    if hi is not None:
        cond = cond & (ts >= start_of(as_of - dt.timedelta(days=hi - 1)))
    return cond


def _usage_signals(events: ir.Table, model: TouchModel, as_of: dt.date) -> ir.Table:
    groups = model.events.groups()
    e = events.filter(_ages(events.timestamp, as_of, 0))
    # The conditions most aggregates share, as columns: evaluated once per row.
    e = e.mutate(
        _usage=event_group_predicate(e.event, groups["usage"]),
        _last30=_ages(e.timestamp, as_of, 0, 30),
    )
    is_usage = e._usage
    last30 = e._last30
    prev30 = _ages(e.timestamp, as_of, 30, 60)
    qty = e.quantity.cast("float64")

    def in_group(name: str) -> ir.BooleanValue:
        return event_group_predicate(e.event, groups[name])

    integration = in_group("integration")
    metrics: dict[str, ir.Value] = {
        "usage_30d": qty.sum(where=is_usage & last30),
        "usage_prev_30d": qty.sum(where=is_usage & prev30),
        # Ages come from the extreme timestamps after grouping, not per row.
        "_last_usage_at": e.timestamp.max(where=is_usage),
        "_seats_added": qty.sum(where=in_group("seats") & last30),
        "_seats_removed": qty.sum(where=in_group("seats_removed") & last30),
        "premium_events_30d": e.count(where=in_group("premium") & last30),
        "integration_events_30d": e.count(where=integration & last30),
        "_first_integration_at": e.timestamp.min(where=integration),
        "executive_events_30d": e.count(where=in_group("executive") & last30),
        "milestone_events_30d": e.count(where=in_group("milestone") & last30),
    }
    for sig in model.signals:
        if isinstance(sig, EventSignal):
            window = in_group(sig.events) & _ages(e.timestamp, as_of, 0, sig.window_days)
            metrics[sig.name] = (
                e.count(where=window) if sig.aggregate == "count" else qty.sum(where=window)
            )
    core = _exact_core_events(events, model)
    if core is not None:
        # Core abandonment in this same pass (see _exact_core_events): one bit
        # per core feature, OR-ed per account for each 30-day window. Two
        # aggregates without filters cost next to nothing here, where a
        # second pass grouped by (account, event) reads and groups most rows
        # of the table again.
        bit = ibis.cases(
            *[(e.event == name, ibis.literal(1 << j, type="int64")) for j, name in enumerate(core)],
            else_=ibis.literal(0, type="int64"),
        )
        zero = ibis.literal(0, type="int64")
        metrics["_core_last"] = ibis.ifelse(last30, bit, zero).bit_or()
        metrics["_core_prev"] = ibis.ifelse(prev30, bit, zero).bit_or()
    agg = e.group_by("account_id").aggregate(**metrics)
    day = ibis.literal(as_of, type="date")
    extra: dict[str, ir.Value] = {}
    if core is not None:
        # Features used in days 30..59 and not in days 0..29: bits set in
        # _core_prev and not in _core_last, counted with integer arithmetic
        # (on ~one row per account).
        abandoned: ir.IntegerValue = ibis.literal(0, type="int64")
        for j in range(len(core)):
            prev_j = (agg._core_prev // (1 << j)) % 2
            last_j = (agg._core_last // (1 << j)) % 2
            abandoned = abandoned + prev_j * (1 - last_j)
        extra["core_features_abandoned"] = abandoned.cast("int64")
    out = agg.mutate(
        _last_usage_age=_age(day, agg._last_usage_at),
        _first_integration_age=_age(day, agg._first_integration_at),
        **extra,
    )
    drop = ["_last_usage_at", "_first_integration_at"]
    if core is not None:
        drop += ["_core_last", "_core_prev"]
    return out.drop(*drop)


# Up to this many core features get a bit each (int64 holds them with room to spare).
_MAX_FOLDED_CORE = 32


def _exact_core_events(events: ir.Table, model: TouchModel) -> list[str] | None:
    """The core event names, when the usage pass can track each one as a bit.

    That needs a fixed, short list: plain names (no ``*`` glob, no ``!``
    exclusion), at most ``_MAX_FOLDED_CORE`` of them, and a backend with a
    bitwise-OR aggregate (DuckDB has one, PySpark's Ibis compiler does not).
    Otherwise None, and :func:`_per_feature_signals` groups by (account,
    event) instead; both give the same ``core_features_abandoned`` (missing
    means 0: the signal is a count, filled with 0 after the join).
    """
    patterns = model.events.core
    if not patterns or any("*" in p or p.startswith("!") for p in patterns):
        return None
    names = list(dict.fromkeys(patterns))
    if len(names) > _MAX_FOLDED_CORE:
        return None
    try:
        backend = events.get_backend()
    except Exception:  # an unbound table: no backend to ask, take the general path
        return None
    return names if backend.has_operation(ops.BitOr) else None


def _active_users(events: ir.Table, model: TouchModel, as_of: dt.date) -> ir.Table:
    """Distinct users with usage in the last 30 days.

    Filtering to the window and taking distinct (account, user) pairs first
    groups far fewer rows than a filtered COUNT(DISTINCT) over every event.
    """
    recent = events.filter(
        _ages(events.timestamp, as_of, 0, 30) & events.user_id.notnull()
        & event_group_predicate(events.event, model.events.groups()["usage"])
    )  # fmt: skip
    pairs = recent.select("account_id", "user_id").distinct()
    return pairs.group_by("account_id").aggregate(active_users_30d=pairs.count())


def _per_feature_signals(events: ir.Table, model: TouchModel, as_of: dt.date) -> ir.Table:
    """Signals that need counts per feature: core abandonment and premium interest."""
    is_premium = event_group_predicate(events.event, model.events.premium)
    if _exact_core_events(events, model) is not None:
        # Core abandonment is counted in the usage pass (_usage_signals); only
        # the premium events of the last 30 days, a small share, are grouped
        # here. An account whose premium uses are all older gets NULL, not 0;
        # the signal is a count, filled with 0 after the join either way.
        recent = events.filter(_ages(events.timestamp, as_of, 0, 30) & is_premium)
        per_event = recent.group_by(["account_id", "event"]).aggregate(_last=recent.count())
        return per_event.group_by("account_id").aggregate(
            premium_feature_max_30d=per_event._last.max()
        )
    is_core = event_group_predicate(events.event, model.events.core)
    e = events.filter(_ages(events.timestamp, as_of, 0, 60) & (is_core | is_premium))
    last30 = _ages(e.timestamp, as_of, 0, 30)
    per_feature = e.group_by(["account_id", "event"]).aggregate(
        _last=e.count(where=last30),
        _prev=e.count(where=~last30),
    )
    core = event_group_predicate(per_feature.event, model.events.core)
    premium = event_group_predicate(per_feature.event, model.events.premium)
    abandoned = core & (per_feature._prev > 0) & (per_feature._last == 0)
    return per_feature.group_by("account_id").aggregate(
        core_features_abandoned=per_feature.count(where=abandoned),
        premium_feature_max_30d=per_feature._last.max(where=premium),
    )


def usage_part(events: ir.Table, model: TouchModel, as_of: dt.date) -> ir.Table:
    """Every signal read from usage events, one row per account that has events.

    The heaviest part of the decision query (one grouped pass over all
    events, shared by its three aggregates), and the only one that depends
    on nothing but the events: the engine can compute it ahead, while the
    other tables load (see :mod:`touchmodel.signals.staging`), and pass the
    result to :func:`build_signals` as ``usage``.

    The usage pass groups every event up to the as-of date, so every account
    in the other two (recent premium events, recent users) is in it: left
    joins lose nothing.
    """
    usage = _usage_signals(events, model, as_of)
    features = _per_feature_signals(events, model, as_of)
    users = _active_users(events, model, as_of)
    joined = usage.left_join(features, "account_id", rname="{name}__f").left_join(
        users, "account_id", rname="{name}__u"
    )
    return joined.drop("account_id__f", "account_id__u")


def _ticket_signals(tickets: ir.Table, model: TouchModel, as_of: ir.DateValue) -> ir.Table:
    t = tickets.mutate(_age=_age(as_of, tickets.opened_at)).filter(lambda x: x._age >= 0)
    cats = model.ticket_categories
    last30 = t._age < 30
    category = t.category.lower()
    return t.group_by("account_id").aggregate(
        tickets_14d=t.count(where=t._age < 14),
        tickets_30d=t.count(where=last30),
        complaint_tickets_30d=t.count(
            where=last30 & category.isin([c.lower() for c in cats.complaint])
        ),
        downgrade_cancel_tickets_30d=t.count(
            where=last30 & category.isin([c.lower() for c in cats.downgrade_or_cancel])
        ),
    )


def _nps_signals(nps: ir.Table, as_of: ir.DateValue) -> ir.Table:
    n = nps.mutate(_age=_age(as_of, nps.responded_at)).filter(lambda x: x._age >= 0)
    # The latest response wins; two at the same instant take the lower score,
    # the cautious reading for a detractor rule.
    latest_key = n.responded_at.epoch_seconds() * 16 + (10 - n.score.cast("int64"))
    agg = n.group_by("account_id").aggregate(
        nps_latest_score=n.score.cast("float64").argmax(latest_key),
        nps_latest_days_ago=n._age.min(),
    )
    return agg.mutate(
        nps_score_180d=ibis.ifelse(
            agg.nps_latest_days_ago < 180, agg.nps_latest_score, _NUMERIC_NULL
        )
    )


def _payment_signals(payments: ir.Table, as_of: ir.DateValue) -> ir.Table:
    p = payments.mutate(_age=_age(as_of, payments.due_date)).filter(lambda x: x._age >= 0)
    failed = p.status == "failed"
    return p.group_by("account_id").aggregate(
        failed_payments_30d=p.count(where=failed & (p._age < 30)),
        failed_payments_90d=p.count(where=failed & (p._age < 90)),
    )


def _contact_signals(contacts: ir.Table, model: TouchModel) -> ir.Table:
    is_exec = contacts.title.fill_null("").re_search(model.executive_titles)
    return contacts.group_by("account_id").aggregate(
        executive_contacts=contacts.count(where=is_exec)
    )


def _table_signals(
    rows: ir.Table, table: str, signals: list[TableSignal], as_of: dt.date
) -> ir.Table:
    """User signals over one data table: one grouped pass, a filtered aggregate per signal."""
    when = rows[TABLE_DATES[table]].cast("timestamp")
    t = rows.filter(_ages(when, as_of, 0))
    when = t[TABLE_DATES[table]].cast("timestamp")
    scope = table_scope(t, as_of)
    metrics: dict[str, ir.Value] = {}
    for sig in signals:
        cond: ir.BooleanValue = ibis.literal(True)
        if sig.window_days is not None:
            cond = cond & _ages(when, as_of, 0, sig.window_days)
        if sig.where:
            cond = cond & compile_expr(sig.where, scope).fill_null(False)
        if sig.aggregate == "count":
            metrics[sig.name] = t.count(where=cond)
            continue
        col = t[sig.column]
        if sig.aggregate == "count_distinct":
            metrics[sig.name] = col.nunique(where=cond)
        elif sig.aggregate == "latest":
            metrics[sig.name] = col.argmax(when, where=cond)
        else:
            metrics[sig.name] = getattr(col.cast("float64"), sig.aggregate)(where=cond)
    return t.group_by("account_id").aggregate(**metrics)


def table_signal_problem(sig: TableSignal, tables: Mapping[str, ir.Table]) -> str | None:
    """Why a table signal cannot be computed on these tables, or None."""
    if sig.table not in tables:
        return f"table '{sig.table}' is missing"
    if sig.column is not None and sig.column not in tables[sig.table].columns:
        return f"column '{sig.table}.{sig.column}' is missing"
    return None


def _next_anniversary(start: ir.DateValue, as_of: ir.DateValue) -> ir.DateValue:
    """The first anniversary of ``start`` on or after ``as_of`` (and after ``start``)."""
    years = (as_of.year() - start.year()).as_interval("Y")
    candidate = (start + years).cast("date")
    too_early = (candidate < as_of) | (candidate <= start)
    return ibis.ifelse(too_early, (candidate + ibis.interval(years=1)).cast("date"), candidate)


def _expansion_value(accounts: ir.Table, model: TouchModel) -> ir.Value:
    priced = [(p.id, p.annual_price) for p in model.plans if p.annual_price]
    if len(priced) < 2:
        return accounts.arr.cast("float64")
    steps = [
        (accounts.plan == cur_id, ibis.literal(nxt_price / cur_price - 1))
        for (cur_id, cur_price), (_, nxt_price) in pairwise(priced)
    ]
    # The top plan has no next step: its expansion value is its ARR (more seats/usage).
    step = ibis.cases(*steps, else_=ibis.literal(1.0))
    return accounts.arr.cast("float64") * step


def build_signals(
    tables: Mapping[str, ir.Table],
    model: TouchModel,
    as_of: dt.date,
    absent_columns: Collection[str] = (),
    usage: ir.Table | None = None,
) -> SignalTable:
    """All built-in and user signals for every account in ``tables['accounts']``.

    ``absent_columns`` names accounts columns the source did not have (the
    loader fills them with NULL): signals and rules that need them are
    reported unavailable instead of reading the NULLs as "no".
    ``usage``: :func:`usage_part` of ``tables['usage_events']``, already
    computed (a table with the same columns); built here when not given.
    """
    asof = ibis.literal(as_of, type="date")
    accounts = tables["accounts"]
    unavailable: dict[str, str] = {
        col: f"column 'accounts.{col}' is missing" for col in absent_columns
    }
    for info in BUILTIN:
        if info.table != "accounts" and info.table not in tables:
            unavailable[info.name] = f"table '{info.table}' is missing"
        for col in info.columns:
            if col in absent_columns:
                unavailable.setdefault(info.name, f"column 'accounts.{col}' is missing")

    contract_start = accounts.contract_start.cast("date")
    renewal = ibis.coalesce(
        accounts.renewal_date.cast("date"), _next_anniversary(contract_start, asof)
    )
    lowest = model.plans[0].id if model.plans else None
    joined = accounts.mutate(
        days_since_start=_age(asof, contract_start),
        renewal_date_effective=renewal,
        days_to_renewal=renewal.delta(asof, unit="day"),
        has_csm=accounts.csm.notnull() & (accounts.csm.strip() != ""),
        is_lowest_plan=(accounts.plan == lowest).fill_null(False)
        if lowest
        else ibis.literal(False),
        expansion_value=_expansion_value(accounts, model),
    )

    parts: list[ir.Table] = []
    if usage is not None:
        parts.append(usage)
    elif "usage_events" in tables:
        parts.append(usage_part(tables["usage_events"], model, as_of))
    if "tickets" in tables:
        parts.append(_ticket_signals(tables["tickets"], model, asof))
    if "nps_responses" in tables:
        parts.append(_nps_signals(tables["nps_responses"], asof))
    if "payments" in tables:
        parts.append(_payment_signals(tables["payments"], asof))
    if "contacts" in tables:
        parts.append(_contact_signals(tables["contacts"], model))
    table_sigs = [s for s in model.signals if isinstance(s, TableSignal)]
    by_table: dict[str, list[TableSignal]] = {}
    for tsig in table_sigs:
        problem = table_signal_problem(tsig, tables)
        if problem is None:
            by_table.setdefault(tsig.table, []).append(tsig)
        else:
            unavailable[tsig.name] = problem
    for name, sigs in by_table.items():
        parts.append(_table_signals(tables[name], name, sigs, as_of))
    # One chain of joins and one select for everything below: each further
    # select (a mutate, a drop) is a nested query the SQL compiler tries to
    # merge with the whole query under it, which is most of its compile time.
    right_keys = set()
    for i, part in enumerate(parts):
        joined = joined.left_join(part, "account_id", rname=f"{{name}}__{i}")
        right_keys.add(f"account_id__{i}")

    cols = set(joined.columns) - right_keys
    event_sigs = [s.name for s in model.signals if isinstance(s, EventSignal)]
    counted = [s.name for s in table_sigs if s.aggregate in ("count", "count_distinct")]
    counts = [i.name for i in BUILTIN if i.count] + event_sigs + counted
    fills: dict[str, ir.Value] = {
        name: joined[name].fill_null(0) for name in counts if name in cols
    }
    if "usage_30d" in cols:
        u30 = joined.usage_30d.fill_null(0)
        prev = joined.usage_prev_30d.fill_null(0)
        fills["usage_change_pct"] = ibis.ifelse(
            prev > 0, (u30 - prev) * 100.0 / prev, _NUMERIC_NULL
        )
        fills["days_inactive"] = ibis.coalesce(
            joined._last_usage_age, ibis.greatest(joined.days_since_start, 0)
        )
        limit = joined.plan_limit.cast("float64")
        fills["plan_utilization"] = ibis.ifelse(limit > 0, u30 / limit, _NUMERIC_NULL)
        fills["seats_change_30d"] = joined._seats_added.fill_null(
            0
        ) - joined._seats_removed.fill_null(0)
        fills["integration_first_use_30d"] = (joined._first_integration_age < 30).fill_null(False)
    # Columns in the order a mutate would give: filled ones in place, new ones after.
    out: dict[str, ir.Value] = {
        c: fills.get(c, joined[c]) for c in joined.columns if c not in right_keys
    }
    out.update({name: value for name, value in fills.items() if name not in out})
    # Missing tables still give the column (a typed NULL) so every rule
    # compiles; rules that need them are reported inactive, not evaluated.
    unimplemented = [i.name for i in BUILTIN if i.name not in out and i.name not in unavailable]
    if unimplemented:  # the catalogue and this module drifted apart: a bug, not user input
        raise RuntimeError(f"signals in the catalogue but not computed: {unimplemented}")
    nulls = {i.name: ibis.null().cast(i.type) for i in BUILTIN if i.name not in out}
    for name in event_sigs:
        if name not in out:
            nulls[name] = _NUMERIC_NULL
            unavailable[name] = "table 'usage_events' is missing"
    for tsig in table_sigs:
        if tsig.name not in out:
            nulls[tsig.name] = _NUMERIC_NULL  # unavailable: reason recorded above
    out.update(nulls)
    joined = joined.select(**{k: v for k, v in out.items() if not k.startswith("_")})

    # User expression signals, in file order, each may use the ones before it.
    for sig in model.signals:
        if isinstance(sig, ExprSignal):
            needs = sorted(n for n in referenced_names(sig.expr) if n in unavailable)
            if needs:
                # Keep the root causes only, so reports group by missing table.
                unavailable[sig.name] = "; ".join(sorted({unavailable[n] for n in needs}))
            value = compile_expr(sig.expr, table_scope(joined, as_of))
            joined = joined.mutate(**{sig.name: value})
    return SignalTable(table=joined, unavailable=unavailable)


def table_scope(
    table: ir.Table, as_of: dt.date, functions: Mapping[str, Function] | None = None
) -> Scope:
    """An expression scope whose names are ``table``'s columns plus ``as_of``."""
    day = ibis.literal(as_of, type="date")

    def resolve(name: str) -> ir.Value:
        if name == "as_of":
            return day
        if name in table.columns:
            return table[name]
        raise KeyError(name)

    return Scope(resolve=resolve, functions=dict(functions or {}))

"""Data-fit diagnostics: what in a touch model cannot work, or works too much, on this data.

A model file can be valid and still fit the data badly: an event group that
matches none of the data's event names leaves its triggers silent, a
threshold above every observed value never fires, a trigger that fires on
half the base or two that fire on the same accounts flood the queue, a health
measure without data or without spread scores nothing. Each finding says
what, with the numbers, and why it matters.

Everything is computed from what a run already has: the executed decision
and signal tables (Arrow), the engine's inactive rules, and one query for the
distinct event names of the usage table. Counts are Arrow/NumPy aggregates
over whole columns; nothing loops over accounts in Python.
"""

from __future__ import annotations

import ast
import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.decide.rules import SEP
from touchmodel.expr import parse, referenced_names
from touchmodel.model.schema import EventSignal, ExprSignal, Route, TouchModel
from touchmodel.signals.build import event_group_predicate

if TYPE_CHECKING:
    from touchmodel.engine import Decided
    from touchmodel.plan.team import Team

# The event groups each built-in usage signal is counted from (signals/build.py,
# _usage_signals and friends). A test checks every usage signal is listed.
EVENT_SIGNAL_GROUPS: dict[str, tuple[str, ...]] = {
    "usage_30d": ("usage",),
    "usage_prev_30d": ("usage",),
    "usage_change_pct": ("usage",),
    "active_users_30d": ("usage",),
    "days_inactive": ("usage",),
    "plan_utilization": ("usage",),
    "seats_change_30d": ("seats", "seats_removed"),
    "premium_events_30d": ("premium",),
    "premium_feature_max_30d": ("premium",),
    "integration_events_30d": ("integration",),
    "integration_first_use_30d": ("integration",),
    "executive_events_30d": ("executive",),
    "milestone_events_30d": ("milestone",),
    "core_features_abandoned": ("core",),
}
AT_RISK_STAGE = "at_risk"
RISK_FAMILY = "risk."
AUTOMATION_TEAM = "automation"
CSM_TEAM = "csm"  # the route team whose work goes to the account's CSM (ops.workitems)
_CHUNK = 65_536  # accounts per block of the co-firing count
# How each kind of finding is headed wherever findings are listed.
FINDING_LABELS: dict[str, str] = {
    "cannot_fire": "cannot fire",
    "fires_often": "fires often",
    "overlap": "fire together",
    "measure": "health measure",
    "health_score": "health score",
    "at_risk": "at-risk share",
    "capacity": "team capacity",
}


@dataclass(frozen=True)
class Finding:
    """One thing to look at: ``kind`` says what, ``cause`` why, ``message`` both in words."""

    kind: str  # cannot_fire | fires_often | overlap | measure | health_score | at_risk | capacity
    cause: str
    subjects: list[str]
    message: str
    numbers: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RiskLoad:
    """The at-risk share and the risk work items the queue asks of people."""

    accounts: int
    at_risk: int
    share: float
    items_for_people: int  # fired risk triggers routed to any team but automation
    items_for_csms: int  # ... routed to the CSM team
    csm_items_per_week: float  # re-opened at most once per cooldown while the risk lasts
    team_fte: float | None = None
    capacity_per_week: float | None = None


@dataclass(frozen=True)
class Diagnostics:
    """Every finding of one run or check, and the at-risk load behind two of them."""

    accounts: int
    event_names: int | None  # distinct event names in the data; None without usage events
    findings: list[Finding]
    risk: RiskLoad

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, as stored in run.json and the run record."""
        return asdict(self)


@dataclass(frozen=True)
class EventNames:
    """What the data's event names say about the model's event groups."""

    count: int  # distinct event names in the usage rows up to the as-of date
    matched: dict[str, int]  # event group -> how many of those names it matches


def event_names(
    tables: Mapping[str, ir.Table], model: TouchModel, as_of: dt.date
) -> EventNames | None:
    """Count the distinct event names up to ``as_of`` and those each event group matches.

    One query: the distinct names, then every group's patterns applied to them
    with the engine's own matcher. None without a usage table.
    """
    if "usage_events" not in tables:
        return None
    events = tables["usage_events"]
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    recent = events.filter(events.timestamp < ibis.literal(end, type="timestamp"))
    names = recent.select("event").distinct()
    names = names.filter(names.event.notnull())
    groups = model.events.groups()
    counts = names.aggregate(
        _names=names.count(),
        **{
            f"g{i}": event_group_predicate(names.event, pats).cast("int64").sum()
            for i, pats in enumerate(groups.values())
        },
    ).to_pyarrow()
    return EventNames(
        count=int(counts["_names"][0].as_py() or 0),
        matched={g: int(counts[f"g{i}"][0].as_py() or 0) for i, g in enumerate(groups)},
    )


def diagnose(
    model: TouchModel,
    decided: Decided,
    names: EventNames | None,
    team: Team | None = None,
) -> Diagnostics:
    """All findings for ``decided`` (a run's executed tables) under ``model``.

    ``names``: the data's event names against the model's event groups
    (:func:`event_names`); None when there is no usage table (its rules are
    then inactive already).
    ``team``: when known, the at-risk work is set against its CSMs.
    """
    n = decided.decisions.num_rows
    inactive = {r.id: r.reason for r in decided.inactive}
    dead = _dead_signals(model, names) if names is not None else {}
    findings = _inactive_findings(decided)
    findings += _cannot_fire(model, decided.accounts, inactive, dead, n)
    active = [t.id for t in model.triggers if t.enabled and t.id not in inactive]
    fired = _Fired.of(decided.decisions)
    co = _co_firing(fired, n, active)
    findings += _fires_often(model, active, co, n)
    findings += _overlaps(model, active, co)
    findings += _measures(model, decided.accounts, inactive, dead, n)
    risk = _risk_load(model, decided.decisions, fired, team)
    findings += _risk_findings(model, risk, active, co)
    return Diagnostics(
        accounts=n,
        event_names=None if names is None else names.count,
        findings=findings,
        risk=risk,
    )


# --- what reads which event group ------------------------------------------------------


def _signal_groups(model: TouchModel) -> dict[str, set[str]]:
    """Every signal counted from usage events, with the event groups it reads (transitively)."""
    groups: dict[str, set[str]] = {k: set(v) for k, v in EVENT_SIGNAL_GROUPS.items()}
    for sig in model.signals:
        if isinstance(sig, EventSignal):
            groups[sig.name] = {sig.events}
        elif isinstance(sig, ExprSignal):
            reads = set().union(*(groups.get(x, set()) for x in referenced_names(sig.expr)))
            if reads:
                groups[sig.name] = reads
    return groups


def _dead_signals(model: TouchModel, names: EventNames) -> dict[str, str]:
    """Signals whose every event group matches no event name in the data, with why."""
    matched = names.matched
    patterns = model.events.groups()
    out: dict[str, str] = {}
    for signal, groups in _signal_groups(model).items():
        if not groups or any(matched.get(g, 0) for g in groups):
            continue
        parts = []
        for g in sorted(groups):
            pats = patterns.get(g, [])
            if not pats:
                parts.append(f"'{g}' (empty in the model file)")
            elif all(p.startswith("!") for p in pats):
                parts.append(f"'{g}' ({', '.join(pats)}: only exclusions, so it matches nothing)")
            else:
                parts.append(f"'{g}' ({', '.join(pats)})")
        noun, verb = ("event groups", "match") if len(parts) > 1 else ("event group", "matches")
        tail = (
            "; the data has no usage events"
            if not names.count
            else f", which {verb} none of the {names.count:,} event names in the data"
        )
        out[signal] = f"{signal}, counted from {noun} {' and '.join(parts)}{tail}"
    return out


# --- triggers that cannot fire ----------------------------------------------------------


def _inactive_findings(decided: Decided) -> list[Finding]:
    """The engine's inactive rules (a table or column missing), as findings."""
    out = []
    for rule in decided.inactive:
        if rule.reason == "disabled in the model file":
            continue
        if rule.id.startswith("health."):
            msg = (
                f"{rule.id} is not scored: it {rule.reason}; its weight goes to the other measures"
            )
            out.append(Finding("measure", "missing_input", [rule.id], msg))
        else:
            what = "cannot apply" if rule.id.startswith("override.") else "cannot fire"
            msg = f"{rule.id} {what}: it {rule.reason}"
            out.append(Finding("cannot_fire", "missing_input", [rule.id], msg))
    return out


def _conditions(model: TouchModel) -> Iterator[tuple[str, str]]:
    """(id, condition) of every enabled trigger and every lifecycle override."""
    for trig in model.triggers:
        if trig.enabled:
            yield trig.id, trig.when
    for ov in model.lifecycle.overrides:
        yield f"override.{ov.stage}", ov.when


def _cannot_fire(
    model: TouchModel,
    accounts: pa.Table,
    inactive: Mapping[str, str],
    dead: Mapping[str, str],
    n: int,
) -> list[Finding]:
    """Rules reading a signal of an event group the data lacks, or with a threshold out of range."""
    out: list[Finding] = []
    ranges = _Ranges(accounts)
    for rid, when in _conditions(model):
        if rid in inactive:
            continue
        verb = "cannot apply" if rid.startswith("override.") else "cannot fire"
        reads = sorted(x for x in referenced_names(when) if x in dead)
        if reads:
            msg = f"{rid} {verb}: it reads " + "; ".join(dead[x] for x in reads)
            out.append(Finding("cannot_fire", "no_events", [rid], msg, {"signals": reads}))
            continue
        if n == 0:
            continue
        can_true, _, why = _possible(parse(when), ranges)
        if not can_true and why:
            msg = f"{rid} {verb}: " + "; ".join(why) + f" (over the {n:,} decided accounts)"
            out.append(Finding("cannot_fire", "threshold", [rid], msg))
    return out


class _Ranges:
    """Lowest and highest non-null value of numeric and boolean columns, each computed once."""

    def __init__(self, table: pa.Table) -> None:
        self._table = table
        self._seen: dict[str, tuple[float, float] | None] = {}

    def known(self, name: str) -> bool:
        """Whether ``name`` is a numeric or boolean column of the table."""
        if name not in self._table.column_names:
            return False
        kind = self._table.schema.field(name).type
        return bool(
            pa.types.is_boolean(kind) or pa.types.is_integer(kind) or pa.types.is_floating(kind)
        )

    def get(self, name: str) -> tuple[float, float] | None:
        """(lowest, highest) of a :meth:`known` column; None when it has no value at all."""
        if name not in self._seen:
            col = self._table[name]
            if pa.types.is_boolean(col.type):
                col = col.cast(pa.int8())
            mm = pc.min_max(col).as_py()
            lo, hi = mm["min"], mm["max"]
            self._seen[name] = None if lo is None else (float(lo), float(hi))
        return self._seen[name]


_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}


def _possible(node: ast.expr, ranges: _Ranges) -> tuple[bool, bool, list[str]]:
    """Whether ``node`` can be true / false on the observed values, and why it cannot be true.

    Only comparisons of a signal with a number (and bare boolean signals) are
    judged; anything else may be either. A null comparison is neither, as the
    engine counts it as not fired.
    """
    if isinstance(node, ast.BoolOp):
        parts = [_possible(v, ranges) for v in node.values]
        if isinstance(node.op, ast.And):
            why = [w for t, _, ws in parts if not t for w in ws]
            return all(t for t, _, _ in parts), any(f for _, f, _ in parts), why
        why = [w for _, _, ws in parts for w in ws]
        return any(t for t, _, _ in parts), all(f for _, f, _ in parts), why
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        t, f, _ = _possible(node.operand, ranges)
        return f, t, ([] if f else [f"`{ast.unparse(node)}` is never true"])
    if isinstance(node, ast.Name):
        if not ranges.known(node.id):
            return True, True, []
        r = ranges.get(node.id)
        if r is None:
            return False, False, [f"{node.id} has no value for any account"]
        t, f = r[1] > 0, r[0] == 0
        return t, f, ([] if t else [f"{node.id} is false for every account"])
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        return _compare(node, ranges)
    return True, True, []


def _compare(node: ast.Compare, ranges: _Ranges) -> tuple[bool, bool, list[str]]:
    left, op, right = node.left, node.ops[0], node.comparators[0]
    if isinstance(left, ast.Constant) and isinstance(right, ast.Name) and type(op) in _FLIP:
        left, right, op = right, left, _FLIP[type(op)]()
    number = getattr(right, "value", None)
    if not (isinstance(left, ast.Name) and isinstance(right, ast.Constant)):
        return True, True, []
    if isinstance(number, bool) or not isinstance(number, int | float):
        return True, True, []
    if not ranges.known(left.id):
        return True, True, []
    r = ranges.get(left.id)
    text = f"`{ast.unparse(node)}` is never true"
    if r is None:
        return False, False, [f"{text}: {left.id} has no value for any account"]
    lo, hi = r
    c = float(number)
    judged = {
        ast.GtE: (hi >= c, lo < c),
        ast.Gt: (hi > c, lo <= c),
        ast.LtE: (lo <= c, hi > c),
        ast.Lt: (lo < c, hi >= c),
        ast.Eq: (lo <= c <= hi, not lo == hi == c),
        ast.NotEq: (not lo == hi == c, lo <= c <= hi),
    }.get(type(op))
    if judged is None:
        return True, True, []
    can_true, can_false = judged
    seen = (
        f"{left.id} is {lo:g} on every account"
        if lo == hi
        else f"{left.id} ranges {lo:g} to {hi:g}"
    )
    return can_true, can_false, ([] if can_true else [f"{text}: {seen}"])


# --- how often triggers fire, and together ---------------------------------------------


@dataclass(frozen=True)
class _Fired:
    """Every fired (account, trigger, route) of a run: one entry per work item it asks for."""

    rows: np.ndarray  # the account's row in the decisions
    triggers: pa.Array
    routes: pa.Array

    @classmethod
    def of(cls, decisions: pa.Table) -> _Fired:
        """Split the ``triggers`` and ``routes`` text columns (same order, same length per row)."""
        parts = [
            pc.split_pattern(decisions[c].combine_chunks().fill_null(""), SEP)
            for c in ("triggers", "routes")
        ]
        triggers, routes = (pc.list_flatten(p) for p in parts)
        rows = pc.list_parent_indices(parts[0]).to_numpy()
        # An account without triggers splits into one empty string: not a fired trigger.
        keep = pc.not_equal(triggers, "")
        return cls(
            rows=rows[keep.to_numpy(zero_copy_only=False)],
            triggers=triggers.filter(keep),
            routes=routes.filter(keep),
        )


def _co_firing(fired: _Fired, n: int, ids: list[str]) -> np.ndarray:
    """A ``len(ids)`` square matrix: accounts on which trigger i and trigger j both fired.

    The diagonal is each trigger's own count. Built block by block from the
    fired (account, trigger) pairs, so memory stays small at any base size.
    """
    k = len(ids)
    co = np.zeros((k, k), dtype=np.int64)
    if k == 0 or n == 0:
        return co
    idx = pc.index_in(fired.triggers, value_set=pa.array(ids, pa.string()))
    valid = pc.is_valid(idx).to_numpy(zero_copy_only=False)
    rows = fired.rows[valid]
    cols = idx.to_numpy(zero_copy_only=False)[valid].astype(np.int64)
    for start in range(0, n, _CHUNK):
        lo, hi = np.searchsorted(rows, [start, start + _CHUNK])
        block = np.zeros((min(_CHUNK, n - start), k), dtype=np.float32)
        block[rows[lo:hi] - start, cols[lo:hi]] = 1.0
        co += (block.T @ block).astype(np.int64)
    return co


def _pct(x: float) -> str:
    return f"{x:.1%}"


def _fires_often(model: TouchModel, ids: list[str], co: np.ndarray, n: int) -> list[Finding]:
    limit = model.diagnostics.max_fire_share
    out = []
    for i, tid in enumerate(ids):
        fired = int(co[i, i])
        if n and fired / n > limit:
            msg = (
                f"{tid} fires on {_pct(fired / n)} of accounts ({fired:,} of {n:,}), above "
                f"{limit:.0%} (diagnostics.max_fire_share): a trigger that flags this many "
                "accounts tells little about any of them; raise its threshold or narrow it"
            )
            out.append(
                Finding("fires_often", "share", [tid], msg, {"fired": fired, "share": fired / n})
            )
    return out


def _overlaps(model: TouchModel, ids: list[str], co: np.ndarray) -> list[Finding]:
    s = model.diagnostics
    out = []
    for i in range(len(ids)):
        for j in range(i + 1, len(ids)):
            both = int(co[i, j])
            either = int(co[i, i] + co[j, j]) - both
            if both < s.overlap_min_accounts or either == 0 or both / either < s.overlap_jaccard:
                continue
            jac = both / either
            msg = (
                f"{ids[i]} and {ids[j]} fire together: on {both:,} of the {either:,} accounts "
                f"either fires on (Jaccard {jac:.2f}, limit {s.overlap_jaccard:.2f}), so those "
                "accounts get two work items for one problem; merge them or make one exclude "
                "the other"
            )
            nums = {"both": both, "either": either, "jaccard": round(jac, 4)}
            out.append(Finding("overlap", "jaccard", [ids[i], ids[j]], msg, nums))
    return out


# --- health measures ---------------------------------------------------------------------


def _measures(
    model: TouchModel,
    accounts: pa.Table,
    inactive: Mapping[str, str],
    dead: Mapping[str, str],
    n: int,
) -> list[Finding]:
    """Measures (and the score) with no value for most accounts, or one score for nearly all."""
    s = model.diagnostics
    out: list[Finding] = []
    if n == 0:
        return out
    for m in model.health.measures:
        mid = f"health.{m.id}"
        col = f"health__{m.id}"
        if mid in inactive or col not in accounts.column_names:
            continue
        if m.signal in dead:
            msg = f"{mid} scores nothing real: it reads {dead[m.signal]}"
            out.append(Finding("measure", "no_events", [mid], msg, {"signal": m.signal}))
            continue
        scores = accounts[col]
        have = n - scores.null_count
        if have / n < s.min_coverage:
            msg = (
                f"{mid} has a value for only {_pct(have / n)} of accounts ({have:,} of {n:,}): "
                f"{m.signal} is empty for the rest, so their health score leaves it out "
                f"(diagnostics.min_coverage {s.min_coverage:.0%})"
            )
            out.append(Finding("measure", "no_coverage", [mid], msg, {"coverage": have / n}))
            continue
        mode = pc.mode(scores.drop_null()).to_pylist()
        if mode:
            value, count = mode[0]["mode"], int(mode[0]["count"])
            if count / have >= s.max_same_score:
                seen = pc.min_max(accounts[m.signal]).as_py()
                msg = (
                    f"{mid} gives the same score ({value:g}) to {_pct(count / have)} of the "
                    f"accounts it scores, so it tells only {_pct(1 - count / have)} apart "
                    f"(diagnostics.max_same_score {s.max_same_score:.0%}); its bounds are "
                    f"bad {m.bad:g} / good {m.good:g}, {m.signal} takes {seen['min']:g} to "
                    f"{seen['max']:g}: move the bounds into that range, or drop the measure "
                    "if it only flags a rare event"
                )
                nums = {"score": value, "share": count / have}
                out.append(Finding("measure", "no_variance", [mid], msg, nums))
    if "health_score" in accounts.column_names:
        missing = accounts["health_score"].null_count
        if n - missing < s.min_coverage * n:
            msg = (
                f"the health score is empty for {_pct(missing / n)} of accounts: "
                "none of their measures has a value"
            )
            out.append(Finding("health_score", "no_coverage", ["health_score"], msg))
    return out


# --- the at-risk queue ----------------------------------------------------------------


def _risk_load(
    model: TouchModel, decisions: pa.Table, fired: _Fired, team: Team | None
) -> RiskLoad:
    """At-risk accounts, and the risk work items routed to people and to CSMs."""
    n = decisions.num_rows
    at_risk = int(pc.sum(pc.equal(decisions["lifecycle_stage"], AT_RISK_STAGE)).as_py() or 0)
    risk = pc.starts_with(fired.triggers, RISK_FAMILY).to_numpy(zero_copy_only=False)
    route_ids = list(model.routes)
    teams = [r.team if isinstance(r, Route) else "" for r in model.routes.values()] + [""]
    at = pc.index_in(fired.routes, value_set=pa.array(route_ids, pa.string()))
    at_np = at.fill_null(len(route_ids)).to_numpy(zero_copy_only=False)
    cooldown = {t.id: max(t.cooldown_days, 1) for t in model.triggers}
    ids = sorted(cooldown)
    days = np.array([cooldown[t] for t in ids] + [1], dtype=np.float64)
    pos = pc.index_in(fired.triggers, value_set=pa.array(ids, pa.string()))
    days_of = days[pos.fill_null(len(ids)).to_numpy(zero_copy_only=False)]
    human = risk & np.array([t != AUTOMATION_TEAM for t in teams])[at_np]
    to_csm = risk & np.array([t == CSM_TEAM for t in teams])[at_np]
    people, csm = int(human.sum()), int(to_csm.sum())
    per_week = float((7.0 / days_of[to_csm]).sum())
    fte = None if team is None else team.headcount
    capacity = None if fte is None else fte * model.diagnostics.risk_items_per_csm_week
    return RiskLoad(
        accounts=n,
        at_risk=at_risk,
        share=at_risk / n if n else 0.0,
        items_for_people=people,
        items_for_csms=csm,
        csm_items_per_week=round(per_week, 1),
        team_fte=fte,
        capacity_per_week=capacity,
    )


def _risk_findings(
    model: TouchModel, risk: RiskLoad, ids: list[str], co: np.ndarray
) -> list[Finding]:
    s = model.diagnostics
    out = []
    if risk.accounts and risk.share > s.max_at_risk_share:
        counts = sorted(
            ((int(co[i, i]), t) for i, t in enumerate(ids) if t.startswith(RISK_FAMILY)),
            reverse=True,
        )
        top = ", ".join(f"{t} ({c:,})" for c, t in counts[:3] if c)
        msg = (
            f"{_pct(risk.share)} of accounts are at risk ({risk.at_risk:,} of {risk.accounts:,}), "
            f"above {s.max_at_risk_share:.0%} (diagnostics.max_at_risk_share): a queue that "
            "flags this many is soon ignored"
        ) + (f"; most flagged by {top}" if top else "")
        out.append(Finding("at_risk", "share", [AT_RISK_STAGE], msg, {"share": risk.share}))
    if risk.capacity_per_week is not None and risk.csm_items_per_week > risk.capacity_per_week:
        msg = (
            f"the at-risk queue asks CSMs for up to {risk.csm_items_per_week:,.0f} work items a "
            f"week ({risk.items_for_csms:,} now, each re-opened at most once per its trigger's "
            f"cooldown while the risk lasts); {risk.team_fte:g} CSMs at "
            f"{s.risk_items_per_csm_week:g} a week (diagnostics.risk_items_per_csm_week) can "
            f"work {risk.capacity_per_week:,.0f}"
        )
        nums = {"per_week": risk.csm_items_per_week, "capacity": risk.capacity_per_week}
        out.append(Finding("capacity", "over", ["team"], msg, nums))
    return out

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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.decide.decisions import split_lists
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


def event_names(tables: Mapping[str, ir.Table], as_of: dt.date) -> list[str] | None:
    """The distinct event names of usage rows up to ``as_of``; None without a usage table."""
    if "usage_events" not in tables:
        return None
    events = tables["usage_events"]
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    recent = events.filter(events.timestamp < ibis.literal(end, type="timestamp"))
    names = recent.select("event").distinct().to_pyarrow()["event"]
    return sorted(str(n) for n in names.drop_null().to_pylist())


def diagnose(
    model: TouchModel,
    decided: Decided,
    names: Sequence[str] | None,
    team: Team | None = None,
) -> Diagnostics:
    """All findings for ``decided`` (a run's executed tables) under ``model``.

    ``names``: the data's distinct event names (:func:`event_names`); None
    when there is no usage table (its rules are then inactive already).
    ``team``: when known, the at-risk work is set against its CSMs.
    """
    n = decided.decisions.num_rows
    inactive = {r.id: r.reason for r in decided.inactive}
    dead = _dead_signals(model, names) if names is not None else {}
    findings = _inactive_findings(decided)
    findings += _cannot_fire(model, decided.accounts, inactive, dead, n)
    active = [t.id for t in model.triggers if t.enabled and t.id not in inactive]
    co = _co_firing(decided.decisions, active)
    findings += _fires_often(model, active, co, n)
    findings += _overlaps(model, active, co)
    findings += _measures(model, decided.accounts, inactive, dead, n)
    risk = _risk_load(model, decided.decisions, team)
    findings += _risk_findings(model, risk, active, co)
    return Diagnostics(
        accounts=n,
        event_names=None if names is None else len(names),
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


def _group_matches(model: TouchModel, names: Sequence[str]) -> dict[str, int]:
    """How many of ``names`` each event group matches (with the engine's own matcher)."""
    groups = model.events.groups()
    table = ibis.memtable(pa.table({"event": pa.array(list(names), pa.string())}))
    counts = table.aggregate(
        **{
            f"g{i}": event_group_predicate(table.event, pats).cast("int64").sum()
            for i, pats in enumerate(groups.values())
        }
    ).to_pyarrow()
    return {g: int(counts[f"g{i}"][0].as_py() or 0) for i, g in enumerate(groups)}


def _dead_signals(model: TouchModel, names: Sequence[str]) -> dict[str, str]:
    """Signals whose every event group matches no event name in the data, with why."""
    matched = _group_matches(model, names)
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
            if not names
            else f", which {verb} none of the {len(names):,} event names in the data"
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


def _co_firing(decisions: pa.Table, ids: list[str]) -> np.ndarray:
    """A ``len(ids)`` square matrix: accounts on which trigger i and trigger j both fired.

    The diagonal is each trigger's own count. Built block by block from the
    fired (account, trigger) pairs, so memory stays small at any base size.
    """
    k = len(ids)
    co = np.zeros((k, k), dtype=np.int64)
    if k == 0 or decisions.num_rows == 0:
        return co
    lists = split_lists(decisions.select(["level_reasons", "triggers", "routes"]))["triggers"]
    flat = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists).to_numpy()
    idx = pc.index_in(flat, value_set=pa.array(ids, pa.string()))
    valid = pc.is_valid(idx).to_numpy(zero_copy_only=False)
    rows, cols = rows[valid], idx.to_numpy(zero_copy_only=False)[valid].astype(np.int64)
    n = decisions.num_rows
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
                msg = (
                    f"{mid} gives the same score ({value:g}) to {_pct(count / have)} of the "
                    f"accounts it scores: it does not tell accounts apart "
                    f"(diagnostics.max_same_score {s.max_same_score:.0%}); move its bad/good "
                    f"bounds into the range {m.signal} takes, or drop it"
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


def _risk_load(model: TouchModel, decisions: pa.Table, team: Team | None) -> RiskLoad:
    """At-risk accounts, and the risk work items routed to people and to CSMs."""
    n = decisions.num_rows
    at_risk = int(pc.sum(pc.equal(decisions["lifecycle_stage"], AT_RISK_STAGE)).as_py() or 0)
    people = csm = 0
    per_week = 0.0
    if n:
        lists = split_lists(decisions.select(["level_reasons", "triggers", "routes"]))
        fired = pc.list_flatten(lists["triggers"])
        routes = pc.list_flatten(lists["routes"])
        risk = pc.starts_with(fired, RISK_FAMILY).to_numpy(zero_copy_only=False)
        route_ids = list(model.routes)
        teams = np.array(
            [r.team if isinstance(r, Route) else "" for r in model.routes.values()] + [""]
        )
        at = pc.index_in(routes, value_set=pa.array(route_ids, pa.string()))
        team_of = teams[at.fill_null(len(route_ids)).to_numpy(zero_copy_only=False)]
        cooldown = {t.id: max(t.cooldown_days, 1) for t in model.triggers}
        ids = sorted(cooldown)
        days = np.array([cooldown[t] for t in ids] + [1], dtype=np.float64)
        pos = pc.index_in(fired, value_set=pa.array(ids, pa.string()))
        days_of = days[pos.fill_null(len(ids)).to_numpy(zero_copy_only=False)]
        human = risk & (team_of != AUTOMATION_TEAM)
        to_csm = risk & (team_of == CSM_TEAM)
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

"""Spend CSM time where it saves the most ARR: the at-risk queue as a knapsack.

Every at-risk work item (a fired ``risk.*`` trigger) is worth an *expected ARR
kept* if it is done::

    churn probability x ARR x save rate of its route

The churn probability is the model's fitted curve (``health.churn_probability``);
without one, a proxy from the health score, ``(100 - health) / 100``, which is
a ranking, not a probability (every result says which was used). The save rate
and the minutes of work come from the route (``save_rate``, ``minutes``), else
from the team file's ``planning.allocation`` defaults. Two items for one
account cannot both save the same risk: the items of an account are valued in
order of save rate, each on what the ones before it leave, so together they
never keep more than ``probability x ARR``.

The team has so many CSM minutes a week for this work (team file: hours per
week x outreach share per CSM). Choosing the items to staff is a 0/1 knapsack;
it is solved greedily by value per minute (the LP relaxation's order), filling
what is left after the first item that does not fit with the next ones that do.
Routes that take no CSM time (automation, or a team other than the CSMs) are
always staffed. Everything is numpy over whole columns: linear in items after
one sort, no Python loop per account.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.decide.rules import SEP
from touchmodel.model.schema import Route, TouchModel
from touchmodel.plan.defaults import Allocation, PlanningDefaults
from touchmodel.plan.team import outreach_minutes, read_team_file

if TYPE_CHECKING:
    from touchmodel.engine import Decided

RISK_PREFIX = "risk."
# The route team whose work the team file's CSMs do (same as the work items' owner rule).
CSM_TEAM = "csm"
AUTOMATION_TEAM = "automation"
CURVE = "churn probability (fitted curve)"
PROXY = (
    "health proxy: (100 - health score) / 100, not a calibrated probability "
    "(fit one with `touchmodel calibrate`)"
)


@dataclass(frozen=True)
class RouteTerms:
    """What one work item of a route costs and keeps."""

    minutes: float
    save_rate: float
    csm_time: bool  # counts against the CSMs' weekly capacity


def route_terms(model: TouchModel, alloc: Allocation) -> dict[str, RouteTerms]:
    """Minutes, save rate and whether it is CSM time, for every plain route of ``model``."""
    out = {}
    for rid, route in model.routes.items():
        if not isinstance(route, Route):
            continue  # a switch route resolves to a plain one before any item exists
        automated = route.team == AUTOMATION_TEAM
        minutes = route.minutes
        if minutes is None:
            minutes = 0.0 if automated else alloc.human_minutes
        save = route.save_rate
        if save is None:
            save = alloc.automated_save_rate if automated else alloc.human_save_rate
        out[rid] = RouteTerms(minutes, save, route.team == CSM_TEAM and minutes > 0)
    return out


def risk_probability(
    health_score: np.ndarray, churn_probability: np.ndarray | None, alloc: Allocation
) -> tuple[np.ndarray, str]:
    """The churn risk per account and what it is: the fitted curve, else the health proxy.

    ``health_score`` and ``churn_probability`` are float arrays with NaN for missing.
    An account without a score gets ``alloc.proxy_unknown`` either way (unknown is
    not safe, and not certain churn either).
    """
    if churn_probability is not None:
        p, basis = churn_probability, CURVE
    else:
        p, basis = (100.0 - health_score) / 100.0 * alloc.proxy_scale, PROXY
    return np.where(np.isnan(p), alloc.proxy_unknown, np.clip(p, 0.0, 1.0)), basis


def item_values(account: np.ndarray, at_risk: np.ndarray, save_rate: np.ndarray) -> np.ndarray:
    """Expected ARR kept per item; ``at_risk`` is probability x ARR of the item's account.

    ``account`` is an integer code per item. Within an account, items are taken
    in order of save rate (highest first); each keeps ``save`` of what the ones
    before it leave, so an account's items together keep at most its ARR at risk.
    """
    n = account.shape[0]
    if n == 0:
        return np.zeros(0)
    order = np.lexsort((np.arange(n), -save_rate, account))
    s = np.minimum(save_rate[order], 1.0 - 1e-12)  # log(0) would poison the running sum
    log_left = np.log1p(-s)
    run = np.cumsum(log_left)
    acc = account[order]
    starts = np.r_[True, acc[1:] != acc[:-1]]
    # Sum of log(1 - s) over the account's earlier items: the running sum minus
    # its value just before the account's first item, minus this item.
    before_group = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    base = (run - log_left)[before_group]
    left = np.exp(run - log_left - base)
    out = np.empty(n)
    out[order] = at_risk[order] * s * left
    return out


def staff(
    value: np.ndarray, minutes: np.ndarray, csm_time: np.ndarray, capacity: float | None
) -> np.ndarray:
    """Which items to staff within ``capacity`` CSM minutes (None: no limit known).

    Greedy by value per minute (ties: higher value, then the given order); after
    the first item that does not fit, the next ones that still fit are taken,
    in the same order, until nothing fits. When the single most valuable item
    that fits is worth more than that whole choice (a week shorter than a few
    items), it goes first: the result is then never below half the optimum, and
    on weeks of many items it is within a fraction of one item of it.
    """
    staffed = ~csm_time
    if capacity is None:
        return np.ones_like(staffed)
    cand = np.flatnonzero(csm_time)
    ratio = value[cand] / minutes[cand]
    order = cand[np.lexsort((cand, -value[cand], -ratio))]
    left = float(capacity) + 1e-9  # minutes are sums of floats
    greedy = _fill(staffed.copy(), order, minutes, left)
    fits = order[minutes[order] <= left]
    if fits.size:
        best = fits[np.argmax(value[fits])]
        if value[best] > value[greedy & csm_time].sum():
            staffed[best] = True
            return _fill(staffed, order[order != best], minutes, left - minutes[best])
    return greedy


def _fill(staffed: np.ndarray, order: np.ndarray, minutes: np.ndarray, left: float) -> np.ndarray:
    """Take items in ``order`` while they fit in ``left`` minutes, skipping those that do not."""
    order = order[minutes[order] <= left]
    # Each pass takes at least its first item (it fits), and the next pass drops
    # the item that stopped it: a few passes, about one per distinct size.
    while order.size:
        used = np.cumsum(minutes[order])
        k = int(np.searchsorted(used, left, side="right"))  # a prefix: the sum only grows
        staffed[order[:k]] = True
        left -= float(used[k - 1])
        order = order[k:]
        order = order[minutes[order] <= left]
    return staffed


def queue_order(value: np.ndarray) -> np.ndarray:
    """Positions of the items with the highest expected ARR kept first; ties keep their order.

    NaN (an item that keeps nothing measurable, e.g. an expansion) goes last.
    """
    key = np.where(np.isnan(value), -np.inf, value)
    return np.argsort(-key, kind="stable")


@dataclass(frozen=True)
class Staffing:
    """The at-risk work of one as-of date, valued and staffed."""

    items: pa.Table  # account_id, trigger, route, minutes, save_rate, probability,
    # expected_arr_kept, staffed; highest expected ARR kept first
    basis: str  # what the probability is (CURVE or PROXY)
    capacity_minutes: float | None  # None: no team file, nothing is over capacity
    minutes_needed: float  # CSM minutes of all the at-risk items
    minutes_staffed: float
    kept: float  # expected ARR kept by the staffed items
    left_over: float  # expected ARR kept by the items over capacity, were they done

    @property
    def over_capacity(self) -> int:
        """Items beyond this week's capacity."""
        return int(
            self.items.num_rows - pc.sum(self.items["staffed"].cast("int64"), min_count=0).as_py()
        )


def fired_items(decisions: pa.Table, prefix: str | None = None) -> tuple[pa.Table, np.ndarray]:
    """One row per fired trigger (account_id, trigger, route), and the row of its account.

    ``decisions`` holds the ``; ``-joined ``triggers`` and ``routes`` columns;
    ``prefix`` keeps only the triggers whose id starts with it.
    """
    trig = pc.split_pattern(decisions["triggers"].fill_null(""), SEP)
    route = pc.split_pattern(decisions["routes"].fill_null(""), SEP)
    parent = pc.list_parent_indices(trig).to_numpy()
    t = pc.list_flatten(trig)
    r = pc.list_flatten(route)
    keep = pc.starts_with(t, prefix) if prefix is not None else pc.not_equal(t, "")
    parent = parent[keep.to_numpy(zero_copy_only=False)]
    items = pa.table(
        {
            "account_id": decisions["account_id"].take(pa.array(parent)),
            "trigger": t.filter(keep),
            "route": r.filter(keep),
        }
    )
    return items, parent


def risk_items(decisions: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """The fired ``risk.*`` triggers of ``decisions`` (see :func:`fired_items`)."""
    return fired_items(decisions, RISK_PREFIX)


def _floats(table: pa.Table, name: str) -> np.ndarray:
    col = table[name].cast("float64")
    return (
        col.to_numpy().astype("float64")
        if col.null_count == 0
        else col.fill_null(np.nan).to_numpy()
    )


def value_risk_items(
    model: TouchModel, decisions: pa.Table, arr: np.ndarray, alloc: Allocation | None = None
) -> tuple[pa.Table, str]:
    """Every fired ``risk.*`` trigger of ``decisions`` with its minutes, save rate and value.

    ``decisions`` needs ``account_id``, ``triggers``, ``routes``, ``health_score``
    and, when the model has a churn curve, ``churn_probability``; ``arr`` is in
    its order. Returns the items (account_id, trigger, route, minutes, save_rate,
    probability, expected_arr_kept, csm_time) in decision order, and the basis.
    """
    a = alloc or Allocation()
    has_curve = "churn_probability" in decisions.column_names
    p_acc, basis = risk_probability(
        _floats(decisions, "health_score"),
        _floats(decisions, "churn_probability") if has_curve else None,
        a,
    )
    items, parent = risk_items(decisions)
    terms = route_terms(model, a)
    codes, uniq = _codes(items["route"])
    minutes = np.array([terms[u].minutes for u in uniq], dtype="float64")[codes]
    save = np.array([terms[u].save_rate for u in uniq], dtype="float64")[codes]
    csm_time = np.array([terms[u].csm_time for u in uniq], dtype=bool)[codes]
    p = p_acc[parent]
    value = item_values(parent, p * arr[parent], save)
    table = items.append_column("minutes", pa.array(minutes))
    table = table.append_column("save_rate", pa.array(save))
    table = table.append_column("probability", pa.array(np.round(p, 4)))
    table = table.append_column("expected_arr_kept", pa.array(np.round(value, 2)))
    table = table.append_column("csm_time", pa.array(csm_time))
    return table, basis


def staff_items(items: pa.Table, capacity_minutes: float | None, basis: str) -> Staffing:
    """Staff valued items (see :func:`value_risk_items`) within ``capacity_minutes``."""
    if "staffed" in items.column_names:  # re-staffing (one more CSM)
        items = items.drop_columns(["staffed"])
    value = _floats(items, "expected_arr_kept")
    minutes = _floats(items, "minutes")
    csm_time = items["csm_time"].to_numpy(zero_copy_only=False).astype(bool)
    staffed = staff(value, minutes, csm_time, capacity_minutes)
    table = items.append_column("staffed", pa.array(staffed))
    table = table.take(pa.array(queue_order(value)))
    need = minutes * csm_time
    return Staffing(
        items=table,
        basis=basis,
        capacity_minutes=capacity_minutes,
        minutes_needed=float(need.sum()),
        minutes_staffed=float(need[staffed].sum()),
        kept=float(value[staffed].sum()),
        left_over=float(value[~staffed].sum()),
    )


def allocate(
    model: TouchModel,
    decisions: pa.Table,
    arr: np.ndarray,
    capacity_minutes: float | None,
    alloc: Allocation | None = None,
) -> Staffing:
    """Value and staff the at-risk items of one run's ``decisions`` (``arr`` in the same order)."""
    items, basis = value_risk_items(model, decisions, arr, alloc)
    return staff_items(items, capacity_minutes, basis)


def arr_of(decisions: pa.Table, accounts: pa.Table) -> np.ndarray:
    """Each decided account's ARR (0 when empty), in the order of ``decisions``."""
    pos = pc.index_in(decisions["account_id"], value_set=accounts["account_id"].combine_chunks())
    arr = accounts["arr"].cast("float64").take(pos).fill_null(0.0)
    return arr.to_numpy()


def plan_staffing(
    model: TouchModel, result: Decided, team: Path | None, defaults: PlanningDefaults
) -> tuple[Staffing, NextCsm | None]:
    """Staff a run's at-risk items with the team file's weekly outreach minutes, and one more CSM.

    Without a team file the capacity is unknown: every item is staffed and
    there is no "one more CSM" figure.
    """
    capacity = None if team is None else outreach_minutes(read_team_file(team))
    staffing = allocate(
        model,
        result.decisions,
        arr_of(result.decisions, result.accounts),
        capacity,
        defaults.allocation,
    )
    more = None if capacity is None else one_more_csm(staffing, defaults.allocation)
    return staffing, more


def staffing_record(staffing: Staffing, more: NextCsm | None, top: int = 10) -> dict[str, Any]:
    """The staffing as JSON-able data: totals, one more CSM, and the first ``top`` items."""
    out: dict[str, Any] = {
        "basis": staffing.basis,
        "capacity_minutes_per_week": staffing.capacity_minutes,
        "items": staffing.items.num_rows,
        "over_capacity": staffing.over_capacity,
        "minutes_needed": staffing.minutes_needed,
        "minutes_staffed": staffing.minutes_staffed,
        "expected_arr_kept": round(staffing.kept, 2),
        "expected_arr_kept_over_capacity": round(staffing.left_over, 2),
        "top_items": staffing.items.slice(0, top).to_pylist(),
    }
    if more is not None:
        out["one_more_csm"] = {
            "minutes_per_week": more.minutes_per_week,
            "expected_arr_kept_per_week": round(more.per_week, 2),
            "expected_arr_kept_per_year_if_every_week_is_like_this": round(more.per_week * 52, 2),
        }
    return out


def _codes(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, list[str]]:
    """Integer codes and the distinct values, so per-route figures are looked up once per route."""
    enc = pc.dictionary_encode(column)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.combine_chunks()
    if len(enc) == 0:
        return np.zeros(0, dtype="int64"), []
    return enc.indices.to_numpy(zero_copy_only=False).astype("int64"), enc.dictionary.to_pylist()


@dataclass(frozen=True)
class NextCsm:
    """What one more CSM's outreach time would keep this week, at the current queue."""

    minutes_per_week: float
    kept_now: float
    kept_with_one_more: float

    @property
    def per_week(self) -> float:
        """Expected ARR kept by the extra capacity, on this week's queue."""
        return self.kept_with_one_more - self.kept_now


def one_more_csm(staffing: Staffing, alloc: Allocation | None = None) -> NextCsm:
    """Re-staff ``staffing``'s items with one more CSM's outreach minutes (the defaults' CSM).

    Needs a known capacity (a team file): without one nothing is over capacity.
    """
    a = alloc or Allocation()
    if staffing.capacity_minutes is None:
        raise ValueError("one_more_csm needs the team's capacity (a team file)")
    block = a.hours_per_week * a.outreach_share * 60.0
    more = staff_items(staffing.items, staffing.capacity_minutes + block, staffing.basis)
    return NextCsm(minutes_per_week=block, kept_now=staffing.kept, kept_with_one_more=more.kept)

"""Summaries of a decision run, as plain data for any interface to render."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.decide.decisions import split_lists
from touchmodel.engine import Decided
from touchmodel.model.schema import TouchModel


@dataclass
class TierRow:
    tier: str
    level: str
    accounts: int
    arr: float
    share_accounts: float
    share_arr: float


@dataclass
class RunSummary:
    accounts: int
    arr: float
    tiers: list[TierRow]
    grades: dict[str, int]
    health_quartiles: list[float | None]
    stages: dict[str, int]
    touch_levels: dict[str, int]
    # (family, route) -> number of fired triggers routed there
    triggers_by_route: dict[tuple[str, str], int] = field(default_factory=dict)
    triggers: dict[str, int] = field(default_factory=dict)


def _counts(col: pa.Array | pa.ChunkedArray) -> dict[str, int]:
    vc = pc.value_counts(col.fill_null("(none)"))
    return {str(v["values"]): int(v["counts"]) for v in vc.to_pylist()}


def summarize(model: TouchModel, decided: Decided) -> RunSummary:
    """Accounts and ARR per tier, health spread, stages, and triggers by family and route."""
    d = decided.decisions
    arr_by_id = decided.accounts.select(["account_id", "arr"])
    joined = d.select(["account_id", "tier", "tier_level"]).join(arr_by_id, "account_id")
    total_arr = float(pc.sum(joined["arr"]).as_py() or 0.0)
    grouped = joined.group_by("tier").aggregate([("arr", "sum"), ("account_id", "count")])
    by_tier = {
        r["tier"]: (int(r["account_id_count"]), float(r["arr_sum"] or 0.0))
        for r in grouped.to_pylist()
    }
    n = d.num_rows
    tiers = []
    for t in sorted(model.tiers, key=lambda t: t.band.min):
        count, arr = by_tier.get(t.id, (0, 0.0))
        tiers.append(
            TierRow(
                t.id,
                t.level,
                count,
                arr,
                count / n if n else 0.0,
                arr / total_arr if total_arr else 0.0,
            )
        )
    scores = d["health_score"]
    quartiles: list[float | None] = [None] * 5
    if pc.count(scores).as_py():
        q = pc.quantile(scores, q=[0, 0.25, 0.5, 0.75, 1.0])
        quartiles = [round(float(x), 1) for x in q.to_pylist()]

    lists = split_lists(d.select(["level_reasons", "triggers", "routes"]))
    fired = pc.list_flatten(lists["triggers"])
    routes = pc.list_flatten(lists["routes"])
    by_route: dict[tuple[str, str], int] = {}
    if len(fired):
        families = pc.list_element(pc.split_pattern(fired, ".", max_splits=1), 0)
        pairs = pa.table({"family": families, "route": routes})
        for r in pairs.group_by(["family", "route"]).aggregate([("route", "count")]).to_pylist():
            by_route[(r["family"], r["route"])] = int(r["route_count"])
    return RunSummary(
        accounts=n,
        arr=total_arr,
        tiers=tiers,
        grades=_counts(d["health_grade"]),
        health_quartiles=quartiles,
        stages=_counts(d["lifecycle_stage"]),
        touch_levels=_counts(d["touch_level"]),
        triggers_by_route=dict(sorted(by_route.items())),
        triggers=dict(sorted(_counts(fired).items())) if len(fired) else {},
    )

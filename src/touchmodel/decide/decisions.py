"""Assemble the decision for every account: tier, health, triggers, level, routes.

The stages are chained as Ibis ``mutate`` steps over the signal table, so the
backend receives one query and evaluates all accounts in one pass.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.decide.health import add_health
from touchmodel.decide.rules import (
    SEP,
    InactiveRule,
    add_overrides,
    split_overrides,
    split_triggers,
    trigger_columns,
)
from touchmodel.decide.tiers import tier_columns
from touchmodel.model.schema import TouchModel
from touchmodel.signals.build import SignalTable

# The decision output (docs/data-contract.md), in this order. Public contract.
DECISION_COLUMNS: tuple[str, ...] = (
    "account_id", "as_of", "tier", "tier_level", "lifecycle_stage", "touch_level",
    "level_reasons", "health_score", "health_grade", "health_top_factor", "triggers", "routes",
)  # fmt: skip
LIST_COLUMNS: tuple[str, ...] = ("level_reasons", "triggers", "routes")
# Added after the fixed columns when the model has a fitted churn curve.
RISK_COLUMNS: tuple[str, ...] = ("churn_probability", "arr_at_risk")


def decision_columns(model: TouchModel) -> tuple[str, ...]:
    """The decision output's columns for ``model``: the fixed ones, then the risk ones if fitted."""
    if model.health.churn_probability is None:
        return DECISION_COLUMNS
    return DECISION_COLUMNS + RISK_COLUMNS


@dataclass
class DecisionPlan:
    """The decision query, not yet executed, and what it could not evaluate."""

    table: ir.Table
    inactive: list[InactiveRule]
    unavailable: dict[str, str]


def plan_decisions(model: TouchModel, signals: SignalTable, as_of: dt.date) -> DecisionPlan:
    """Build the full decision expression over every account."""
    t = signals.table
    t = t.mutate(**tier_columns(model, t))
    t = add_health(model, t, set(signals.unavailable))
    unavailable = dict(signals.unavailable)
    if all(m.signal in unavailable for m in model.health.measures):
        causes = sorted({unavailable[m.signal] for m in model.health.measures})
        unavailable["health_score"] = "no health measure has its input (" + "; ".join(causes) + ")"
    active, inactive = split_triggers(model, unavailable)
    overrides, inactive_overrides = split_overrides(model, unavailable)
    t = t.mutate(**trigger_columns(t, active, as_of))
    t = add_overrides(model, overrides, t, active, as_of)
    t = t.drop(*[c for c in t.columns if c.startswith("_")])
    # A measure without its input is not scored; its weight goes to the others.
    inactive_measures = [
        InactiveRule(f"health.{m.id}", f"needs {m.signal}: {signals.unavailable[m.signal]}")
        for m in model.health.measures
        if m.signal in signals.unavailable
    ]
    return DecisionPlan(
        table=t,
        inactive=inactive + inactive_overrides + inactive_measures,
        unavailable=unavailable,
    )


def split_lists(table: pa.Table) -> pa.Table:
    """Turn the ``; ``-joined list columns into Arrow lists (for Parquet)."""
    empty = pa.scalar([], type=pa.list_(pa.string()))
    for name in LIST_COLUMNS:
        col = table[name].combine_chunks()
        parts = pc.split_pattern(col.fill_null(""), SEP)
        lists = pc.if_else(pc.equal(col.fill_null(""), ""), empty, parts)
        table = table.set_column(table.schema.get_field_index(name), name, lists)
    return table

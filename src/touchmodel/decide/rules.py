"""Triggers, lifecycle overrides and routes, compiled to columns of one expression.

Every enabled trigger becomes a boolean column ``fired__<id>``. A trigger that
needs a signal whose table is missing is *inactive*: it is reported and not
evaluated, rather than silently false.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from touchmodel.expr import called_functions, compile_expr, referenced_names
from touchmodel.model.schema import LEVELS, Override, SwitchRoute, TouchModel, Trigger
from touchmodel.signals.build import table_scope

SEP = "; "


def fired_col(trigger_id: str) -> str:
    return "fired__" + trigger_id.replace(".", "__")


@dataclass(frozen=True)
class InactiveRule:
    id: str
    reason: str


def _missing_inputs(names: set[str], unavailable: dict[str, str]) -> str | None:
    missing = sorted(n for n in names if n in unavailable)
    if not missing:
        return None
    return f"needs {', '.join(missing)}: " + "; ".join(sorted({unavailable[n] for n in missing}))


def route_inputs(model: TouchModel, route_id: str) -> set[str]:
    """Signals a route reads to pick its target (a switch route's ``by``)."""
    route = model.routes[route_id]
    return {route.by} if isinstance(route, SwitchRoute) else set()


def split_triggers(
    model: TouchModel, unavailable: dict[str, str]
) -> tuple[list[Trigger], list[InactiveRule]]:
    """Enabled triggers that can run, and the inactive ones with the reason."""
    active, inactive = [], []
    for trig in model.triggers:
        if not trig.enabled:
            inactive.append(InactiveRule(trig.id, "disabled in the model file"))
            continue
        names = referenced_names(trig.when) | route_inputs(model, trig.route)
        why = _missing_inputs(names, unavailable)
        if why:
            inactive.append(InactiveRule(trig.id, why))
        else:
            active.append(trig)
    return active, inactive


def split_overrides(
    model: TouchModel, unavailable: dict[str, str]
) -> tuple[list[Override], list[InactiveRule]]:
    """Overrides that can run, and the inactive ones (id ``override.<stage>``) with the reason."""
    active, inactive = [], []
    for ov in model.lifecycle.overrides:
        why = _missing_inputs(referenced_names(ov.when), unavailable)
        if why:
            inactive.append(InactiveRule(f"override.{ov.stage}", why))
        else:
            active.append(ov)
    return active, inactive


def trigger_columns(
    table: ir.Table, triggers: list[Trigger], as_of: dt.date
) -> dict[str, ir.Value]:
    """One ``fired__<id>`` boolean per trigger; a null condition counts as not fired."""
    scope = table_scope(table, as_of)
    return {fired_col(t.id): compile_expr(t.when, scope).fill_null(False) for t in triggers}


def _join_nonnull(parts: list[ir.Value]) -> ir.StringValue:
    if not parts:
        return ibis.literal("")
    # concat_ws skips nulls on every backend we target, so unfired parts vanish.
    return ibis.literal(SEP).join(parts)


def add_overrides(
    model: TouchModel,
    overrides: list[Override],
    table: ir.Table,
    triggers: list[Trigger],
    as_of: dt.date,
) -> ir.Table:
    """Add the stage, effective level and reasons, the fired triggers and their routes.

    Columns ``lifecycle_stage``, ``touch_level``, ``touch_level_rank``,
    ``level_reasons``, ``triggers``, ``routes`` and ``as_of``. Each override's
    condition is first its own ``_applies<i>`` column, so the ranks and
    reasons refer to it by name instead of repeating the condition; two
    selects in all keep the compiled query small.
    """
    trigger_ids = [t.id for t in triggers]

    def fired(pattern: str) -> ir.BooleanValue:
        out: ir.BooleanValue = ibis.literal(False)
        for tid in trigger_ids:
            if fnmatch.fnmatchcase(tid, pattern):
                out = out | table[fired_col(tid)]
        return out

    scope = table_scope(table, as_of, {"fired": fired})
    t = table.mutate(
        **{
            f"_applies{i}": compile_expr(ov.when, scope).fill_null(False)
            for i, ov in enumerate(overrides)
        }
    )
    null = ibis.null().cast("string")
    rank: ir.IntegerValue = t.tier_level_rank
    reasons: list[ir.Value] = [t.tier_reason]
    for i, ov in enumerate(overrides):
        target = _target_rank(ov, t.tier_level_rank)
        applies = t[f"_applies{i}"]
        text = ibis.literal(ov.reason)
        evidence = _fired_evidence(ov, trigger_ids, t)
        if evidence is not None:
            text = text + " (" + evidence + ")"
        reasons.append(ibis.ifelse(applies & (target > rank), text, null))
        rank = ibis.ifelse(applies, ibis.greatest(rank, target), rank)
    return t.mutate(
        lifecycle_stage=ibis.cases(
            *[(t[f"_applies{i}"], ibis.literal(ov.stage)) for i, ov in enumerate(overrides)],
            else_=ibis.literal("growth"),
        ),
        touch_level=rank.cases(*[(i, lvl) for i, lvl in enumerate(LEVELS)], else_="high"),
        touch_level_rank=rank,
        level_reasons=_join_nonnull(reasons),
        as_of=ibis.literal(as_of, type="date"),
        **route_columns(model, t, triggers),
    )


def _target_rank(ov: Override, tier_rank: ir.IntegerValue) -> ir.IntegerValue:
    if ov.raise_to is not None:
        return ibis.literal(LEVELS.index(ov.raise_to))
    return ibis.least(tier_rank + (ov.raise_by or 0), len(LEVELS) - 1)


def _fired_evidence(ov: Override, trigger_ids: list[str], table: ir.Table) -> ir.StringValue | None:
    """The fired trigger ids an override's ``fired()`` calls matched, as text."""
    patterns = [a[0] for fn, a in called_functions(ov.when) if fn == "fired" and a]
    ids = [t for t in trigger_ids if any(fnmatch.fnmatchcase(t, p) for p in patterns)]
    if not ids:
        return None
    return ibis.literal(", ").join(
        [ibis.ifelse(table[fired_col(t)], ibis.literal(t), ibis.null().cast("string")) for t in ids]
    )


def route_columns(
    model: TouchModel, table: ir.Table, triggers: list[Trigger]
) -> dict[str, ir.Value]:
    """``triggers`` and ``routes``: fired ids and their resolved route ids, in the same order."""
    fired_ids: list[ir.Value] = []
    routes: list[ir.Value] = []
    null = ibis.null().cast("string")
    for trig in triggers:
        is_fired = table[fired_col(trig.id)]
        fired_ids.append(ibis.ifelse(is_fired, ibis.literal(trig.id), null))
        routes.append(ibis.ifelse(is_fired, resolve_route(model, trig.route, table), null))
    return {"triggers": _join_nonnull(fired_ids), "routes": _join_nonnull(routes)}


def resolve_route(model: TouchModel, route_id: str, table: ir.Table) -> ir.StringValue:
    """A plain route id; switch routes pick one by their signal's bands."""
    route = model.routes[route_id]
    if not isinstance(route, SwitchRoute):
        return ibis.literal(route_id)
    value = table[route.by].cast("float64").fill_null(0)
    cases = [(value < b.below, ibis.literal(b.route)) for b in route.bands if b.below is not None]
    return ibis.cases(*cases, else_=ibis.literal(route.bands[-1].route))

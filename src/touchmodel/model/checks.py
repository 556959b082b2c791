"""Meaning checks on a structurally valid touch model.

Each check returns problems as ``"dotted.path: value X -- expected Y"`` lines;
the loader prefixes the file name. All problems are collected, not just the
first, so a user can fix a file in one pass.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
import re
from itertools import pairwise
from typing import Any

import ibis
import ibis.expr.types as ir

from touchmodel.errors import ExpressionError, did_you_mean
from touchmodel.expr import Function, called_functions, compile_expr, referenced_names
from touchmodel.model.cadences import check_cadences
from touchmodel.model.migrations import CSM_TEAMS
from touchmodel.model.schema import (
    LEVELS,
    STAGE_ORDER,
    EventSignal,
    SwitchRoute,
    TableSignal,
    TouchModel,
)
from touchmodel.signals.build import table_scope
from touchmodel.signals.catalog import ACCOUNT_TYPES, BUILTIN, DECISION_NAMES
from touchmodel.sources.contract import IBIS_TYPES, TABLES

# Functions that only make sense in a given context.
_OVERRIDE_FUNCTIONS = {"fired"}


def _fmt(x: float | None) -> str:
    if x is None:
        return "null (no upper bound)"
    return f"{x:g}"


def _check_tiers(model: TouchModel) -> list[str]:
    problems: list[str] = []
    ids = [t.id for t in model.tiers]
    for i, tid in enumerate(ids):
        if ids.index(tid) != i:
            problems.append(f"tiers[{i}].id: value {tid!r} -- expected a unique tier id")
    # Bands must tile [0, inf) with half-open [min, max) bands and no overlap.
    order = sorted(range(len(model.tiers)), key=lambda i: model.tiers[i].band.min)
    expected_min = 0.0
    for pos, i in enumerate(order):
        band = model.tiers[i].band
        if band.max is not None and band.max <= band.min:
            problems.append(
                f"tiers[{i}].band.max: value {_fmt(band.max)} -- expected more than min {_fmt(band.min)}"
            )
        if not math.isclose(band.min, expected_min):
            what = "overlaps the band below" if band.min < expected_min else "leaves a gap"
            problems.append(
                f"tiers[{i}].band.min: value {_fmt(band.min)} -- {what}; expected {_fmt(expected_min)} "
                "(bands are half-open [min, max) and must cover 0 to no upper bound)"
            )
        is_last = pos == len(order) - 1
        if band.max is None and not is_last:
            problems.append(
                f"tiers[{i}].band.max: value null -- only the highest band may be open-ended"
            )
        if is_last and band.max is not None:
            problems.append(
                f"tiers[{i}].band.max: value {_fmt(band.max)} -- expected null: the highest band "
                "must be open-ended so every account has a tier"
            )
        expected_min = band.max if band.max is not None else expected_min
    # Levels must not go down as bands go up.
    for a, b in pairwise(order):
        if LEVELS.index(model.tiers[b].level) < LEVELS.index(model.tiers[a].level):
            problems.append(
                f"tiers[{b}].level: value {model.tiers[b].level!r} -- levels out of order: expected "
                f"at least {model.tiers[a].level!r}, the level of the band below ({model.tiers[a].id!r})"
            )
    for i, t in enumerate(model.tiers):
        for field in ("accounts_per_csm", "cost_per_account", "share_of_base"):
            r = getattr(t, field)
            if r is not None and r.max is not None and r.max < r.min:
                problems.append(
                    f"tiers[{i}].{field}.max: value {_fmt(r.max)} -- expected at least min {_fmt(r.min)}"
                )
        if t.owner != "automation" and t.accounts_per_csm is None:
            problems.append(
                f"tiers[{i}].accounts_per_csm: value null -- expected a ratio range for a tier owned by {t.owner}"
            )
    st = model.tiering.strategic_tier
    if st is not None and st not in ids:
        problems.append(
            f"tiering.strategic_tier: value {st!r} -- expected one of the tier ids {ids}"
        )
    return problems


def _check_health(model: TouchModel) -> list[str]:
    problems: list[str] = []
    total = sum(m.weight for m in model.health.measures)
    if not math.isclose(total, 100.0, abs_tol=1e-9):
        problems.append(
            f"health.measures: weights sum to {total:g} -- expected weights that sum to 100"
        )
    for i, m in enumerate(model.health.measures):
        if m.bad == m.good:
            problems.append(
                f"health.measures[{i}].good: value {m.good:g} -- expected a value different from bad"
            )
    ids = [m.id for m in model.health.measures]
    for i, mid in enumerate(ids):
        if ids.index(mid) != i:
            problems.append(f"health.measures[{i}].id: value {mid!r} -- expected a unique id")
    mins = [g.min for g in model.health.grades]
    if mins != sorted(mins, reverse=True) or len(set(mins)) != len(mins):
        problems.append(f"health.grades: minimums {mins} -- expected strictly decreasing minimums")
    if mins and mins[-1] != 0:
        problems.append(
            f"health.grades[{len(mins) - 1}].min: value {mins[-1]:g} -- expected 0 so every score has a grade"
        )
    curve = model.health.churn_probability
    if curve is not None:
        scores = [x for x, _ in curve.points]
        if scores != sorted(scores) or len(set(scores)) != len(scores):
            problems.append(
                f"health.churn_probability.points: scores {scores} -- expected strictly rising scores"
            )
        for i, (_, p) in enumerate(curve.points):
            if not 0.0 <= p <= 1.0:
                problems.append(
                    f"health.churn_probability.points[{i}]: probability {p:g} -- expected 0 to 1"
                )
    return problems


_CHECK_DATE = dt.date(2000, 1, 1)  # any date: checks compile, they never execute


def _check_expression(
    text: str,
    path: str,
    table: ir.Table,
    want: str,
    functions: dict[str, Function] | None = None,
) -> list[str]:
    """Compile ``text`` against an unbound table typed like the real one.

    Ibis is lazy, so this costs nothing but catches unknown names, type errors
    (``plan > 5``) and conditions that are not true/false, each with its path.
    """
    try:
        used = referenced_names(text)
        calls = called_functions(text)
    except ExpressionError as exc:
        return [f"{path}: value {text!r} -- {exc.reason}"]
    unknown = sorted(used - set(table.columns) - {"as_of", "true", "false", "null"})
    if unknown:
        hints = [h for n in unknown if (h := did_you_mean(n, table.columns))]
        return [
            f"{path}: value {text!r} -- unknown name(s) {', '.join(unknown)}; expected signals, "
            "accounts columns, or names listed in extra_columns" + "".join(hints)
        ]
    for fn, _args in calls:
        if fn in _OVERRIDE_FUNCTIONS and fn not in (functions or {}):
            return [f"{path}: value {text!r} -- {fn}() is only allowed in lifecycle overrides"]
    try:
        value = compile_expr(text, table_scope(table, _CHECK_DATE, functions))
    except ExpressionError as exc:
        return [f"{path}: value {text!r} -- {exc.reason}"]
    got = value.type()
    if want == "boolean" and not got.is_boolean():
        return [f"{path}: value {text!r} -- expected a true/false condition, got a {got} value"]
    if want == "numeric" and not got.is_numeric():
        return [f"{path}: value {text!r} -- expected a number, got a {got} value"]
    return []


def _signal_schema(model: TouchModel) -> tuple[dict[str, Any], list[str]]:
    """Types of every name a signal may have: accounts, built-ins and user signals."""
    schema: dict[str, Any] = dict(ACCOUNT_TYPES)
    schema.update({c: IBIS_TYPES[t] for c, t in model.extra_columns.items()})
    schema.update({i.name: i.type for i in BUILTIN})
    problems: list[str] = []
    for i, sig in enumerate(model.signals):
        if sig.name in schema:
            problems.append(
                f"signals[{i}].name: value {sig.name!r} -- expected a name not already in use"
            )
            continue
        if isinstance(sig, EventSignal):
            schema[sig.name] = "int64" if sig.aggregate == "count" else "float64"
            continue
        if isinstance(sig, TableSignal):
            found = _check_table_signal(sig, f"signals[{i}]")
            problems += found
            schema[sig.name] = (
                "int64" if sig.aggregate in ("count", "count_distinct") else "float64"
            )
            continue
        table = ibis.table(schema, name="signals")
        found = _check_expression(sig.expr, f"signals[{i}].expr", table, "any")
        problems += found
        if not found:
            schema[sig.name] = compile_expr(sig.expr, table_scope(table, _CHECK_DATE)).type()
    return schema, problems


def _check_table_signal(sig: TableSignal, path: str) -> list[str]:
    """A table signal's column and filter, checked against the table's contract columns."""
    spec = TABLES[sig.table]
    columns = {c.name: c.type for c in spec.columns}
    problems: list[str] = []
    if sig.aggregate != "count" and sig.column is None:
        problems.append(f"{path}.column: missing -- aggregate {sig.aggregate!r} needs a column")
    if sig.column is not None:
        if sig.column not in columns:
            problems.append(
                f"{path}.column: value {sig.column!r} -- expected a column of {sig.table}"
                f"{did_you_mean(sig.column, columns)} ({', '.join(columns)})"
            )
        elif sig.aggregate in ("sum", "mean", "min", "max") and columns[sig.column] not in (
            "number",
            "integer",
            "bool",
        ):
            problems.append(
                f"{path}.column: value {sig.column!r} -- {sig.aggregate} needs a number column, "
                f"{sig.table}.{sig.column} is {columns[sig.column]}"
            )
    if sig.where:
        rows = ibis.table({c: IBIS_TYPES[t] for c, t in columns.items()}, name=sig.table)
        problems += _check_expression(sig.where, f"{path}.where", rows, "boolean")
    return problems


def _check_routes(model: TouchModel) -> list[str]:
    problems: list[str] = []
    for rid, route in model.routes.items():
        if isinstance(route, SwitchRoute):
            for j, band in enumerate(route.bands):
                target = model.routes.get(band.route)
                if target is None:
                    problems.append(
                        f"routes.{rid}.bands[{j}].route: value {band.route!r} -- expected a route id"
                        f"{did_you_mean(band.route, model.routes)}"
                    )
                elif isinstance(target, SwitchRoute):
                    problems.append(
                        f"routes.{rid}.bands[{j}].route: value {band.route!r} -- expected a plain route, "
                        "not another switch"
                    )
            belows = [b.below for b in route.bands]
            if belows[-1] is not None or any(b is None for b in belows[:-1]):
                problems.append(
                    f"routes.{rid}.bands: value {belows} -- expected every band but the last to have "
                    "'below', and the last to have none"
                )
            elif belows[:-1] != sorted(belows[:-1]):  # type: ignore[type-var]
                problems.append(
                    f"routes.{rid}.bands: value {belows} -- expected increasing 'below' values"
                )
        elif route.team not in model.teams:
            problems.append(
                f"routes.{rid}.team: value {route.team!r} -- expected one of the teams {model.teams}"
            )
    return problems


def _check_events(model: TouchModel) -> list[str]:
    problems = []
    groups = model.events.groups()
    for i, sig in enumerate(model.signals):
        if isinstance(sig, EventSignal) and sig.events not in groups:
            problems.append(
                f"signals[{i}].events: value {sig.events!r} -- unknown event group; expected one of "
                f"{sorted(groups)}"
            )
    for name, patterns in groups.items():
        for j, p in enumerate(patterns):
            core = p.lstrip("!")
            if not core or not re.fullmatch(r"[^\s]+", core):
                problems.append(
                    f"events.{name}[{j}]: value {p!r} -- expected an event name or glob"
                )
    return problems


def _check_migrations(model: TouchModel) -> list[str]:
    """Migration rules name known tiers and teams, and can match some change of tier."""
    problems: list[str] = []
    tiers = {t.id: t for t in model.tiers}
    ids = [r.id for r in model.migrations]
    for i, rule in enumerate(model.migrations):
        at = f"migrations[{i}] ({rule.id})"
        if ids.index(rule.id) != i:
            problems.append(
                f"{at}.id: value {rule.id!r} -- expected a unique rule id "
                f"(also migrations[{ids.index(rule.id)}])"
            )
        for side in ("from", "to"):
            owners = getattr(rule, f"{side}_owner")
            for j, tid in enumerate(getattr(rule, f"{side}_tier") or []):
                if tid not in tiers:
                    problems.append(
                        f"{at}.{side}_tier[{j}]: value {tid!r} -- expected a tier id"
                        f"{did_you_mean(tid, tiers)} ({', '.join(tiers)})"
                    )
                elif owners is not None and tiers[tid].owner not in owners:
                    # Both conditions must hold, so this rule could never match.
                    problems.append(
                        f"{at}.{side}_tier[{j}]: value {tid!r} -- tier owned by "
                        f"{tiers[tid].owner}, but {side}_owner is {owners}; expected a tier "
                        f"that {side}_owner allows, or no {side}_owner"
                    )
        if (
            rule.from_tier is not None
            and rule.to_tier is not None
            and (set(rule.from_tier) == set(rule.to_tier) and len(rule.from_tier) == 1)
        ):
            problems.append(
                f"{at}.to_tier: value {rule.to_tier} -- same as from_tier, so it matches no "
                "change of tier; expected another tier"
            )
        if rule.team not in model.teams and rule.team not in CSM_TEAMS:
            problems.append(
                f"{at}.team: value {rule.team!r} -- expected one of the teams {model.teams}, "
                f"or {' / '.join(CSM_TEAMS)} (the new / the previous CSM)"
                f"{did_you_mean(rule.team, [*model.teams, *CSM_TEAMS])}"
            )
    return problems


def check_model(model: TouchModel) -> list[str]:
    """All meaning problems of a model, empty when it is sound."""
    problems = _check_tiers(model)
    problems += _check_events(model)
    schema, signal_problems = _signal_schema(model)
    problems += signal_problems
    signals = ibis.table(schema, name="signals")
    decided = ibis.table({**schema, **DECISION_NAMES}, name="decisions")
    problems += _check_expression(model.tiering.signal, "tiering.signal", signals, "numeric")
    problems += _check_health(model)
    for i, m in enumerate(model.health.measures):
        problems += _check_expression(m.signal, f"health.measures[{i}].signal", signals, "numeric")
    problems += _check_routes(model)
    for rid, route in model.routes.items():
        if isinstance(route, SwitchRoute):
            problems += _check_expression(route.by, f"routes.{rid}.by", decided, "numeric")
    trigger_ids = [t.id for t in model.triggers]
    for i, trig in enumerate(model.triggers):
        # The id beside the position: "triggers[3]" alone sends users counting.
        at = f"triggers[{i}] ({trig.id})"
        if trigger_ids.index(trig.id) != i:
            first = trigger_ids.index(trig.id)
            problems.append(
                f"{at}.id: value {trig.id!r} -- expected a unique trigger id (also triggers[{first}])"
            )
        if trig.route not in model.routes:
            problems.append(
                f"{at}.route: value {trig.route!r} -- unknown route"
                f"{did_you_mean(trig.route, model.routes)}; expected one of {sorted(model.routes)}"
            )
        problems += _check_expression(trig.when, f"{at}.when", decided, "boolean")
    problems += _check_overrides(model, decided, trigger_ids)
    problems += check_cadences(model.cadences)
    problems += _check_migrations(model)
    return problems


def _check_overrides(model: TouchModel, decided: ir.Table, trigger_ids: list[str]) -> list[str]:
    problems: list[str] = []
    patterns: list[tuple[str, object]] = []

    def fired(pattern: object = None) -> ir.Value:
        patterns.append((path, pattern))
        return ibis.literal(True)

    for i, ov in enumerate(model.lifecycle.overrides):
        path = f"lifecycle.overrides[{i}]"
        if (ov.raise_to is None) == (ov.raise_by is None):
            problems.append(f"{path}: -- expected exactly one of raise_to or raise_by")
        problems += _check_expression(ov.when, f"{path}.when", decided, "boolean", {"fired": fired})
    for path, pattern in patterns:
        if not isinstance(pattern, str):
            problems.append(f"{path}.when: fired() -- expected a quoted trigger id or glob")
        elif not any(fnmatch.fnmatchcase(t, pattern) for t in trigger_ids):
            problems.append(f"{path}.when: value {pattern!r} -- matches no trigger id")
    stages = [ov.stage for ov in model.lifecycle.overrides]
    for i, st in enumerate(stages):
        if stages.index(st) != i:
            problems.append(
                f"lifecycle.overrides[{i}].stage: value {st!r} -- expected each stage once"
            )
    order = [st for st in STAGE_ORDER if st in stages]
    if stages == order or len(set(stages)) != len(stages):
        return problems
    problems.append(
        f"lifecycle.overrides: stages in order {stages} -- expected the order {order} "
        "(the reported stage is the first that applies: at_risk, onboarding, renewal; "
        'see docs/touch-model.md, "Lifecycle overrides")'
    )
    return problems

"""Meaning checks on a structurally valid touch model.

Each check returns problems as ``"dotted.path: value X -- expected Y"`` lines;
the loader prefixes the file name. All problems are collected, not just the
first, so a user can fix a file in one pass.
"""

from __future__ import annotations

import fnmatch
import math
import re
from itertools import pairwise

from touchmodel.errors import ExpressionError
from touchmodel.expr import called_functions, referenced_names
from touchmodel.model.schema import LEVELS, EventSignal, ExprSignal, SwitchRoute, TouchModel
from touchmodel.signals.catalog import ACCOUNT_COLUMNS, BY_NAME, DECISION_NAMES

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


def _check_health(model: TouchModel, names: set[str]) -> list[str]:
    problems: list[str] = []
    total = sum(m.weight for m in model.health.measures)
    if not math.isclose(total, 100.0, abs_tol=1e-9):
        problems.append(
            f"health.measures: weights sum to {total:g} -- expected weights that sum to 100"
        )
    for i, m in enumerate(model.health.measures):
        if m.signal not in names:
            problems.append(
                f"health.measures[{i}].signal: value {m.signal!r} -- expected a known signal"
            )
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
    return problems


def _check_expression(
    text: str, path: str, names: set[str], allowed_functions: set[str]
) -> list[str]:
    try:
        used = referenced_names(text)
        calls = called_functions(text)
    except ExpressionError as exc:
        return [f"{path}: value {text!r} -- {exc.reason}"]
    problems = []
    unknown = sorted(used - names - {"true", "false", "null"})
    if unknown:
        problems.append(
            f"{path}: value {text!r} -- unknown name(s) {', '.join(unknown)}; expected signals, "
            "accounts columns, or names listed in extra_columns"
        )
    for fn, _args in calls:
        if fn in _OVERRIDE_FUNCTIONS and fn not in allowed_functions:
            problems.append(
                f"{path}: value {text!r} -- {fn}() is only allowed in lifecycle overrides"
            )
    return problems


def _check_routes(model: TouchModel, names: set[str]) -> list[str]:
    problems: list[str] = []
    for rid, route in model.routes.items():
        if isinstance(route, SwitchRoute):
            if route.by not in names:
                problems.append(f"routes.{rid}.by: value {route.by!r} -- expected a known signal")
            for j, band in enumerate(route.bands):
                target = model.routes.get(band.route)
                if target is None:
                    problems.append(
                        f"routes.{rid}.bands[{j}].route: value {band.route!r} -- expected a route id"
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


def known_names(model: TouchModel) -> set[str]:
    """Every name a rule may use: account columns, built-in and user signals, decision values."""
    return (
        set(ACCOUNT_COLUMNS)
        | set(BY_NAME)
        | set(DECISION_NAMES)
        | set(model.extra_columns)
        | {s.name for s in model.signals}
    )


def check_model(model: TouchModel) -> list[str]:
    """All meaning problems of a model, empty when it is sound."""
    problems = _check_tiers(model)
    problems += _check_events(model)
    names = known_names(model)
    if model.tiering.signal not in names:
        problems.append(
            f"tiering.signal: value {model.tiering.signal!r} -- expected a known signal or accounts column"
        )
    problems += _check_health(model, names)
    # User expression signals may use earlier ones only.
    seen = set(ACCOUNT_COLUMNS) | set(BY_NAME) | set(model.extra_columns) | {"as_of"}
    seen |= {s.name for s in model.signals if isinstance(s, EventSignal)}
    for i, sig in enumerate(model.signals):
        if sig.name in BY_NAME or sig.name in ACCOUNT_COLUMNS:
            problems.append(
                f"signals[{i}].name: value {sig.name!r} -- expected a name not already built in"
            )
        if isinstance(sig, ExprSignal):
            problems += _check_expression(sig.expr, f"signals[{i}].expr", seen, set())
        seen.add(sig.name)
    problems += _check_routes(model, names)
    trigger_ids = [t.id for t in model.triggers]
    for i, trig in enumerate(model.triggers):
        if trigger_ids.index(trig.id) != i:
            problems.append(f"triggers[{i}].id: value {trig.id!r} -- expected a unique trigger id")
        if trig.route not in model.routes:
            problems.append(
                f"triggers[{i}].route: value {trig.route!r} -- unknown route; expected one of "
                f"{sorted(model.routes)}"
            )
        problems += _check_expression(trig.when, f"triggers[{i}].when", names, set())
    for i, ov in enumerate(model.lifecycle.overrides):
        path = f"lifecycle.overrides[{i}]"
        if (ov.raise_to is None) == (ov.raise_by is None):
            problems.append(f"{path}: -- expected exactly one of raise_to or raise_by")
        problems += _check_expression(ov.when, f"{path}.when", names, _OVERRIDE_FUNCTIONS)
        try:
            for fn, args in called_functions(ov.when):
                if fn == "fired":
                    pattern = args[0] if args else None
                    if not isinstance(pattern, str):
                        problems.append(
                            f"{path}.when: fired() -- expected a quoted trigger id or glob"
                        )
                    elif not any(fnmatch.fnmatchcase(t, pattern) for t in trigger_ids):
                        problems.append(f"{path}.when: value {pattern!r} -- matches no trigger id")
        except ExpressionError:
            pass  # already reported by _check_expression
    stages = [ov.stage for ov in model.lifecycle.overrides]
    for i, st in enumerate(stages):
        if stages.index(st) != i:
            problems.append(
                f"lifecycle.overrides[{i}].stage: value {st!r} -- expected each stage once"
            )
    return problems

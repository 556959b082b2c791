"""What-if: change a few values of the touch model and see what the change does, before acting.

``PATH=VALUE`` settings address the model file by dotted path; a list element
is named by its id in brackets (or by its position)::

    tiers[high].band.min=150000
    triggers[risk.inactive].when=days_inactive >= 45
    health.measures[recency].weight=10
    tiers[medium].accounts_per_csm.min=40
    routes.csm_outreach.minutes=30

The changed model is validated like any model file (every problem named);
moving a tier's band edge also moves the neighbouring tier's edge that met it,
so the bands still tile. The model is run on the same data before and after
(no state, no files: the workspace is never touched) and the measures are
compared: tier mix, at-risk share, CSM work items and outreach hours per CSM,
headcount needed and CS cost share of revenue (from :mod:`touchmodel.plan`).
"""

from __future__ import annotations

import copy
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.compute as pc
import yaml

from touchmodel.engine import Decided, Engine
from touchmodel.errors import TouchmodelError
from touchmodel.fit.allocate import (
    CSM_TEAM,
    arr_of,
    fired_items,
    staff_items,
    value_risk_items,
)
from touchmodel.model.loader import PRESETS, model_from_dict, preset_dict
from touchmodel.model.schema import Route, TouchModel
from touchmodel.plan import PlanningDefaults, as_portfolio, plan_capacity
from touchmodel.plan.team import TeamFile, build_team, outreach_minutes, read_team_file

if TYPE_CHECKING:
    from touchmodel.ingest.feed import IngestedInput
    from touchmodel.workspace import Workspace


class WhatIfError(TouchmodelError):
    """A ``--set`` that cannot be applied: bad syntax, or a path the model file does not have."""


@dataclass(frozen=True)
class Setting:
    """One ``PATH=VALUE``, as typed and as parsed."""

    text: str
    path: str
    value_text: str


@dataclass(frozen=True)
class Change:
    """One value changed in the model file."""

    path: str
    before: Any
    after: Any
    note: str = ""  # e.g. "moved with tiers[high].band.min"


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_STEP = re.compile(r"\.([A-Za-z_][A-Za-z0-9_\-]*)|\[([^\]]*)\]")


def parse_setting(text: str) -> Setting:
    """Split ``PATH=VALUE`` at the first ``=`` outside brackets."""
    depth = 0
    for i, ch in enumerate(text):
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == "=" and depth == 0:
            path, value = text[:i].strip(), text[i + 1 :].strip()
            if path:
                return Setting(text, path, value)
            break
    raise WhatIfError(
        f"--set: value {text!r} -- expected PATH=VALUE, e.g. tiers[high].band.min=150000"
    )


def _segments(setting: Setting) -> list[tuple[str, str]]:
    """``tiers[high].band.min`` as [("key", "tiers"), ("item", "high"), ("key", "band"), ...]."""
    path = setting.path
    first = _NAME.match(path)
    out: list[tuple[str, str]] = []
    pos = 0
    if first is not None:
        out.append(("key", first.group(0)))
        pos = first.end()
    while first is not None and pos < len(path):
        m = _STEP.match(path, pos)
        if m is None:
            break
        out.append(("key", m.group(1)) if m.group(1) else ("item", m.group(2).strip().strip("'\"")))
        pos = m.end()
    if first is None or pos < len(path):
        raise WhatIfError(
            f"--set {setting.text!r}: path {path!r} -- cannot read it at {path[pos:]!r}; "
            "expected names joined by dots, list items as [id] or [position]"
        )
    return out


def _shown(parts: list[tuple[str, str]]) -> str:
    text = ""
    for kind, name in parts:
        text += f"[{name}]" if kind == "item" else ("." if text else "") + name
    return text


def _child(node: Any, kind: str, name: str, setting: Setting, where: str) -> Any:
    if isinstance(node, list):
        if kind == "item":
            for el in node:
                if isinstance(el, dict) and str(el.get("id", el.get("key"))) == name:
                    return el
            if name.isdigit() and int(name) < len(node):
                return node[int(name)]
            ids = [str(el.get("id", el.get("key"))) for el in node if isinstance(el, dict)]
            raise WhatIfError(
                f"--set {setting.text!r}: {where}[{name}] -- no such item; expected one of "
                f"{', '.join(ids) or 'a position'}"
            )
        raise WhatIfError(f"--set {setting.text!r}: {where} is a list -- expected {where}[id]")
    if isinstance(node, dict) and name in node:
        return node[name]
    keys = ", ".join(map(str, node)) if isinstance(node, dict) else "nothing"
    raise WhatIfError(
        f"--set {setting.text!r}: {where}.{name} -- no such key here; expected one of {keys}"
    )


def _parse_value(text: str, current: Any) -> Any:
    """A string field takes the text as typed (expressions contain ':' and '#'); else YAML."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        text = text[1:-1]
        if isinstance(current, str):
            return text
    if isinstance(current, str):
        return text
    try:
        return yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return text


def apply_setting(data: dict[str, Any], setting: Setting) -> list[Change]:
    """Apply one setting to a model dict in place; the changes made (with band neighbours)."""
    parts = _segments(setting)
    node: Any = data
    for i, (kind, name) in enumerate(parts[:-1]):
        node = _child(node, kind, name, setting, _shown(parts[:i]) or "(top level)")
    kind, name = parts[-1]
    where = _shown(parts)
    if isinstance(node, list):
        target = _child(node, kind, name, setting, _shown(parts[:-1]))
        raise WhatIfError(
            f"--set {setting.text!r}: {where} is a whole item ({type(target).__name__}) -- "
            f"set one of its fields, e.g. {where}.weight"
        )
    if not isinstance(node, dict) or kind != "key":
        raise WhatIfError(f"--set {setting.text!r}: {where} -- expected a key of a mapping")
    before = node.get(name)
    after = _parse_value(setting.value_text, before)
    node[name] = after
    changes = [Change(where, before, after)]
    changes += _move_neighbour_edge(data, parts, before, after)
    return changes


def _move_neighbour_edge(
    data: dict[str, Any], parts: list[tuple[str, str]], before: Any, after: Any
) -> list[Change]:
    """``tiers[x].band.min`` (or max) moved: the tier whose band met that edge follows it."""
    if len(parts) != 4 or parts[0] != ("key", "tiers") or parts[2] != ("key", "band"):
        return []
    edge = parts[3][1]
    if edge not in ("min", "max") or not isinstance(after, int | float) or before is None:
        return []
    other = "max" if edge == "min" else "min"
    out = []
    for tier in data.get("tiers", []):
        band = tier.get("band") if isinstance(tier, dict) else None
        if isinstance(band, dict) and tier.get("id") != parts[1][1] and band.get(other) == before:
            band[other] = after
            out.append(
                Change(f"tiers[{tier.get('id')}].band.{other}", before, after, "moved with it")
            )
    return out


def changed_model(
    base: dict[str, Any], source: str, settings: list[str]
) -> tuple[TouchModel, list[Change]]:
    """``base`` with every setting applied, validated; raises naming every problem."""
    if not settings:
        raise WhatIfError("--set: missing -- give at least one PATH=VALUE")
    data = copy.deepcopy(base)
    changes: list[Change] = []
    for text in settings:
        changes += apply_setting(data, parse_setting(text))
    label = f"{source} with " + "; ".join(settings)
    return model_from_dict(data, label), changes


def model_dict(spec: str) -> tuple[dict[str, Any], str]:
    """A preset or a model file as a plain dict (validated as it is), and its name for messages."""
    if spec in PRESETS:
        data = preset_dict(spec)
    else:
        from touchmodel.model.loader import load_model

        load_model(spec)  # the unchanged file must be valid first, with its own errors
        data = yaml.safe_load(Path(spec).read_text("utf-8"))
    return data, spec


# --------------------------------------------------------------- measures


@dataclass(frozen=True)
class WhatIfInputs:
    """What both runs read: for a measure that needs more than the decisions."""

    data: Path | str
    mapping: Path | None
    as_of: dt.date
    team: TeamFile | None


# Extension point: more before/after measures. Each hook gets the model and the
# inputs and returns {label: value} rows appended to the comparison. The
# backtest's health-score ROC AUC belongs here once `touchmodel backtest` exists.
MeasureHook = Callable[[TouchModel, WhatIfInputs], dict[str, float | None]]

BACKTEST_LABEL = "backtest health AUC (90-day churn)"


def backtest_auc(model: TouchModel, inputs: WhatIfInputs) -> dict[str, float | None]:
    """The health score's ROC AUC against churn within 90 days, over up to 6 monthly dates.

    The dates end 90 days before the newest data (so every label is known)
    and start no earlier than 60 days after the oldest event (so every
    window has its data). None when the data has no churn history to learn
    from, or does not reach back far enough.
    """
    from touchmodel.fit.backtest import backtest
    from touchmodel.fit.replay import BacktestError, data_end, month_dates, replay

    loaded = _loaded_for_backtest(inputs)
    end = data_end(loaded)
    accounts = loaded.tables["accounts"]
    if end is None or accounts.churned_on.notnull().sum().to_pyarrow().as_py() == 0:
        return {BACKTEST_LABEL: None}
    first_event = _oldest_activity(loaded)
    last = end - dt.timedelta(days=90)
    first = max(last - dt.timedelta(days=152), first_event + dt.timedelta(days=60))
    if first > last:
        return {BACKTEST_LABEL: None}
    try:
        rep = replay(Engine(model), loaded, month_dates(first, last), 90)
    except BacktestError:
        return {BACKTEST_LABEL: None}
    return {
        BACKTEST_LABEL: backtest(
            rep, [g.id for g in model.health.grades], reference=False
        ).health_auc
    }


_LOADED: dict[tuple[str, str, dt.date], Any] = {}


def _loaded_for_backtest(inputs: WhatIfInputs) -> Any:
    """The data loaded once per what-if (both sides replay the same tables)."""
    from touchmodel.fit.replay import load_for_replay

    key = (str(inputs.data), str(inputs.mapping), inputs.as_of)
    if key not in _LOADED:
        _LOADED.clear()
        _LOADED[key] = load_for_replay(inputs.data, inputs.mapping, inputs.as_of)[1]
    return _LOADED[key]


def _oldest_activity(loaded: Any) -> dt.date:
    tables = loaded.tables
    if "usage_events" in tables:
        oldest = tables["usage_events"].timestamp.cast("date").min().to_pyarrow().as_py()
        if oldest is not None:
            return oldest
    return dt.date.min + dt.timedelta(days=1)


EXTRA_MEASURES: list[MeasureHook] = [backtest_auc]


def _share(mask: np.ndarray) -> float | None:
    return float(mask.mean()) if mask.size else None


def measures(
    model: TouchModel, decided: Decided, team: TeamFile | None, defaults: PlanningDefaults
) -> dict[str, float | None]:
    """The compared figures of one run, by label (shares 0..1, counts, FTE, hours)."""
    dec = decided.decisions
    out: dict[str, float | None] = {"accounts": float(dec.num_rows)}
    tiers = dec["tier"].to_numpy(zero_copy_only=False)
    for tier in sorted(model.tiers, key=lambda t: t.band.min):
        out[f"tier mix: {tier.id}"] = _share(tiers == tier.id)
    stage = dec["lifecycle_stage"].to_numpy(zero_copy_only=False)
    out["at-risk share"] = _share(stage == "at_risk")
    crew = None if team is None else build_team(team, model)
    plan = plan_capacity(model, as_portfolio(decided.accounts), crew, defaults)
    heads = crew.headcount if crew is not None and crew.headcount > 0 else plan.csms_target
    items, _ = fired_items(dec)
    csm_routes = [r for r, v in model.routes.items() if isinstance(v, Route) and v.team == CSM_TEAM]
    csm_items = int(pc.sum(pc.is_in(items["route"], value_set=_strings(csm_routes))).as_py() or 0)
    out["CSM work items per CSM (open this week)"] = csm_items / heads if heads > 0 else None
    alloc = (team.planning if team is not None else defaults).allocation
    valued, basis = value_risk_items(model, dec, arr_of(dec, decided.accounts), alloc)
    capacity = None if team is None else outreach_minutes(team)
    staffing = staff_items(valued, capacity, basis)
    out["at-risk outreach hours per CSM per week"] = (
        staffing.minutes_needed / 60 / heads if heads > 0 else None
    )
    out["expected ARR kept by the staffed at-risk work"] = staffing.kept
    out["CSMs needed (target ratios)"] = plan.csms_target
    out["CS cost share of revenue"] = plan.cost_share
    return out


def _strings(values: list[str]) -> Any:
    import pyarrow as pa

    return pa.array(values, type=pa.string())


def format_measure(label: str, value: float | None) -> str:
    """A measure as shown: shares as percentages, money in dollars, the rest with one decimal."""
    if value is None:
        return "-"
    if "AUC" in label:
        return f"{value:.3f}"
    if label.startswith("tier mix") or "share" in label:
        return f"{value:.1%}"
    if "ARR" in label:
        return f"${value:,.0f}"
    if label == "accounts":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def format_change(label: str, before: float | None, after: float | None) -> str:
    """After minus before, in the measure's own unit (percentage points for shares)."""
    if before is None or after is None:
        return ""
    diff = after - before
    if "AUC" in label:
        return f"{diff:+.3f}"
    if label.startswith("tier mix") or "share" in label:
        return f"{diff * 100:+.1f} pts"
    if "ARR" in label:
        return f"{'+' if diff >= 0 else '-'}${abs(diff):,.0f}"
    if label == "accounts":
        return f"{diff:+,.0f}"
    return f"{diff:+,.1f}"


@dataclass
class WhatIf:
    """Before and after, measure by measure."""

    model: str
    as_of: dt.date
    changes: list[Change]
    before: dict[str, float | None]
    after: dict[str, float | None]
    risk_basis: str = ""
    notes: list[str] = field(default_factory=list)

    def rows(self) -> list[tuple[str, float | None, float | None]]:
        """(label, before, after) in the order measured; a label only one side has is kept."""
        labels = list(dict.fromkeys([*self.before, *self.after]))
        return [(k, self.before.get(k), self.after.get(k)) for k in labels]

    def shown(self) -> list[dict[str, str]]:
        """The rows as shown to a person: measure, before, after, change."""
        return [
            {
                "measure": k,
                "before": format_measure(k, b),
                "after": format_measure(k, a),
                "change": format_change(k, b, a),
            }
            for k, b, a in self.rows()
        ]

    def as_dict(self) -> dict[str, Any]:
        """JSON-able."""
        return {
            "model": self.model,
            "as_of": self.as_of.isoformat(),
            "changes": [
                {"path": c.path, "before": c.before, "after": c.after, "note": c.note}
                for c in self.changes
            ],
            "measures": [{"measure": k, "before": b, "after": a} for k, b, a in self.rows()],
            "risk_basis": self.risk_basis,
            "notes": self.notes,
        }


def run_whatif(
    model_spec: str,
    settings: list[str],
    *,
    data: Path | str,
    as_of: dt.date,
    mapping: Path | None = None,
    team_path: Path | None = None,
    ingested: IngestedInput | None = None,
) -> WhatIf:
    """Run the model and its changed copy on ``data`` and compare them. Writes nothing.

    ``ingested``: events sent to a workspace's ``/v1``, as a daily run reads them.
    """
    base, source = model_dict(model_spec)
    after_model, changes = changed_model(base, source, settings)
    before_model = model_from_dict(base, source)
    team = read_team_file(team_path) if team_path is not None else None
    defaults = team.planning if team is not None else PlanningDefaults()
    inputs = WhatIfInputs(data, mapping, as_of, team)
    sides: list[dict[str, float | None]] = []
    try:
        for model in (before_model, after_model):
            if team is not None:
                build_team(team, model)  # a team naming a tier the changed model lost is an error
            result = Engine(model, source).run(
                data, as_of=as_of, mapping=mapping, ingested=ingested
            )
            m = measures(model, result, team, defaults)
            for hook in EXTRA_MEASURES:
                m.update(hook(model, inputs))
            sides.append(m)
    finally:
        _LOADED.clear()  # the backtest's tables live only as long as this what-if
    basis = (
        "fitted churn curve"
        if after_model.health.churn_probability is not None
        else "health proxy (no fitted churn curve)"
    )
    notes = [] if team is not None else ["no team file: per-CSM figures use the CSMs needed"]
    return WhatIf(source, as_of, changes, sides[0], sides[1], basis, notes)


def settings_from_text(text: str) -> list[str]:
    """One setting per non-blank line (the dashboard's form); ``#`` starts a comment line."""
    lines = [line.strip() for line in text.splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def workspace_ingested(ws: Workspace, as_of: dt.date) -> IngestedInput | None:
    """The events sent to the workspace's ``/v1`` up to ``as_of`` (read only), None if none."""
    from touchmodel.ingest.feed import ingested_input
    from touchmodel.state.db import Store

    store = Store(ws.state_url)
    try:
        got = ingested_input(store, as_of)
    finally:
        store.close()
    return None if got.empty else got


def workspace_team(ws: Workspace) -> Path | None:
    """The workspace's team file, when it has one."""
    return ws.team_path if ws.team_path is not None and ws.team_path.is_file() else None


def workspace_whatif(ws: Workspace, settings: list[str], as_of: dt.date) -> WhatIf:
    """A what-if on a workspace's model, data, mapping, team and ingested events; nothing written."""
    if ws.data_path is None:
        raise TouchmodelError("touchmodel.yaml: data -- no data folder named; what-if needs one")
    return run_whatif(
        ws.model_spec,
        settings,
        data=ws.data_path,
        as_of=as_of,
        mapping=ws.mapping_path,
        team_path=workspace_team(ws),
        ingested=workspace_ingested(ws, as_of),
    )

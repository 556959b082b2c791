"""The touch-model file as the five answers per tier, and checking a model text.

Each tier answers five questions (docs/touch-model.md): how often we engage (frequency),
through which channels, what kind of interaction, who owns it, and which
outcomes it drives. An invalid model file is a result here, never an error:
the dashboard shows its problems and the API returns them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import yaml

from touchmodel.errors import ModelFileError, TouchmodelError
from touchmodel.model.loader import PRESETS, load_model, model_from_dict
from touchmodel.model.schema import Tier, TouchModel
from touchmodel.workspace import Workspace
from touchmodel.yaml_errors import plain_problem

# A model file is a few hundred lines; anything far larger is not one.
MAX_MODEL_BYTES = 1_000_000
# YAML aliases can make a small text expand into a huge structure ("billion
# laughs"); a touch model needs nowhere near this many nodes once expanded.
MAX_NODES = 200_000
SOURCE = "<request body>"


@dataclass(frozen=True)
class TierAnswers:
    """One tier and its five answers, plus the coverage and economics it states."""

    id: str
    name: str
    level: str
    band_min: float
    band_max: float | None
    frequency: str
    channels: list[str]
    interaction: list[str]
    owner: str
    outcomes: list[str]
    coverage: str
    accounts_per_csm: dict[str, float | None] | None
    cost_per_account: dict[str, float | None]


@dataclass(frozen=True)
class ModelView:
    """The workspace's model: valid with its tiers, or invalid with its problems."""

    source: str
    valid: bool
    name: str | None = None
    description: str = ""
    tiering_signal: str | None = None
    tiers: list[TierAnswers] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict."""
        return asdict(self)


@dataclass(frozen=True)
class CheckResult:
    """Whether a model text is valid, its problems, and what it holds when it is."""

    valid: bool
    problems: list[str]
    name: str | None = None
    tiers: int | None = None
    triggers: int | None = None


def tier_answers(tier: Tier) -> TierAnswers:
    """The five answers of one tier."""
    apc = tier.accounts_per_csm
    return TierAnswers(
        id=tier.id,
        name=tier.name,
        level=tier.level,
        band_min=tier.band.min,
        band_max=tier.band.max,
        frequency=tier.frequency,
        channels=list(tier.channels),
        interaction=list(tier.interaction),
        owner=tier.owner,
        outcomes=list(tier.outcomes),
        coverage=tier.coverage,
        accounts_per_csm=None if apc is None else {"min": apc.min, "max": apc.max},
        cost_per_account={"min": tier.cost_per_account.min, "max": tier.cost_per_account.max},
    )


def _view(model: TouchModel, source: str) -> ModelView:
    return ModelView(
        source=source,
        valid=True,
        name=model.name,
        description=model.description,
        tiering_signal=model.tiering.signal,
        tiers=[tier_answers(t) for t in sorted(model.tiers, key=lambda t: t.band.min)],
    )


def workspace_model(ws: Workspace) -> ModelView:
    """The workspace's touch model as five answers per tier, or its validation problems."""
    spec = ws.model_spec
    # The file as touchmodel.yaml names it: no server paths in what clients see.
    source = f"preset {spec}" if spec in PRESETS else ws.config.model
    try:
        return _view(load_model(spec), source)
    except ModelFileError as exc:
        return ModelView(source=source, valid=False, problems=list(exc.problems))
    except TouchmodelError as exc:
        return ModelView(source=source, valid=False, problems=[str(exc)])


def _node_count(node: yaml.Node, limit: int) -> int:
    """Nodes in the document with every alias expanded, stopping once past ``limit``."""
    count = 0
    stack: list[yaml.Node] = [node]
    while stack:
        n = stack.pop()
        count += 1
        if count > limit:
            return count
        if isinstance(n, yaml.SequenceNode):
            stack.extend(n.value)
        elif isinstance(n, yaml.MappingNode):
            for key, value in n.value:
                stack.extend((key, value))
    return count


TOO_DEEP = "(top level): nested too deeply to read -- expected a touch-model file"


def _parse(text: str) -> tuple[Any, list[str]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except RecursionError:  # the parser recurses per nesting level: "[[[[..." is a result
        return None, [TOO_DEEP]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        return None, [f"{where}: not valid YAML -- {plain_problem(exc)}"]
    if node is None:
        return None, ["(top level): empty document -- expected a touch-model mapping"]
    if _node_count(node, MAX_NODES) > MAX_NODES:
        return None, [
            f"(top level): more than {MAX_NODES:,} values once YAML aliases are expanded "
            "-- expected a touch-model file"
        ]
    try:
        return yaml.safe_load(text), []
    except RecursionError:
        return None, [TOO_DEEP]
    except yaml.YAMLError as exc:  # composed but not constructible (e.g. a bad tag)
        return None, [f"(file): not valid YAML -- {str(exc).splitlines()[0]}"]


def check_model_text(text: str) -> CheckResult:
    """Validate a touch-model YAML text the way `touchmodel model check` does."""
    data, problems = _parse(text)
    if problems:
        return CheckResult(False, problems)
    try:
        model = model_from_dict(data, SOURCE)
    except ModelFileError as exc:
        return CheckResult(False, list(exc.problems))
    except TouchmodelError as exc:
        return CheckResult(False, [str(exc)])
    return CheckResult(True, [], model.name, len(model.tiers), len(model.triggers))

"""Load a touch-model file or a shipped preset: YAML -> schema -> meaning checks.

Every problem is reported with the file, the dotted path inside it, the value
found and what was expected, e.g.::

    my.yaml: tiers[1].band.min: value 9000 -- expected the band to start at 10000 ...
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from touchmodel.errors import ModelFileError, did_you_mean
from touchmodel.model.checks import check_model
from touchmodel.model.schema import TouchModel
from touchmodel.yaml_errors import yaml_error_text

PRESETS: tuple[str, ...] = ("standard", "hybrid", "touch-model-design")
DEFAULT_PRESET = "standard"


# Union tags pydantic puts in locations; they are not keys of the user's file.
_TAGS = {("routes", "plain"), ("routes", "switch"), ("signals", "expr"), ("signals", "events")}


def dotted(loc: tuple[int | str, ...]) -> str:
    """Turn a pydantic location into ``tiers[1].band.min``."""
    if len(loc) > 2 and (loc[0], loc[2]) in _TAGS:
        loc = loc[:2] + loc[3:]
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


# The shipped presets are parsed on every run: libyaml's parser when PyYAML has
# it (a third of a run's model loading otherwise), the same safe constructor.
_PRESET_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _preset_text(name: str) -> str:
    return resources.files("touchmodel.model.presets").joinpath(f"{name}.yaml").read_text("utf-8")


def preset_dict(name: str) -> dict[str, Any]:
    """A shipped preset as a plain dict: the shared defaults plus the preset's tiers."""
    if name not in PRESETS:
        raise ModelFileError(
            f"preset:{name}",
            [
                f"(top level): unknown preset {name!r}{did_you_mean(name, PRESETS)}, "
                f"expected one of {', '.join(PRESETS)}"
            ],
        )
    common = yaml.load(_preset_text("_common"), Loader=_PRESET_LOADER)
    specific = yaml.load(_preset_text(name), Loader=_PRESET_LOADER)
    # Key order chosen for reading: identity, tiers, then the machinery.
    merged: dict[str, Any] = {k: specific[k] for k in ("name", "description", "tiering")}
    merged["tiers"] = specific["tiers"]
    merged.update(common)
    return merged


def preset_yaml(name: str) -> str:
    """A preset as one complete, standalone YAML touch-model file, comments kept.

    The preset's own file (identity and tiers) and the shared defaults have no
    top-level key in common, so their texts joined are one valid document,
    and the comments that explain each part survive.
    """
    preset_dict(name)  # validates the name
    header = (
        f"# touchmodel preset '{name}'. Copy this file, edit it, and check it with\n"
        f"#   touchmodel model check my-model.yaml\n"
        f"# Names rules may use: touchmodel model signals\n\n"
    )
    return header + _preset_text(name).rstrip() + "\n\n" + _preset_text("_common")


def validation_problems(exc: ValidationError, prefix: str = "") -> list[str]:
    """Pydantic errors as our one-line problems: dotted path, value, expectation.

    ``prefix`` names the section the validated data came from (e.g. ``delivery``).
    """
    problems = []
    for err in exc.errors():
        where = ".".join(p for p in (prefix, dotted(tuple(err["loc"]))) if p) or "(top level)"
        value = err.get("input")
        shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
        if err["type"] == "missing":
            problems.append(f"{where}: missing -- this key is required")
        elif err["type"] == "extra_forbidden":
            problems.append(f"{where}: unknown key -- remove it or check its spelling")
        else:
            problems.append(f"{where}: value {shown} -- {err['msg']}")
    return problems


def model_from_dict(data: Any, source: str) -> TouchModel:
    """Validate a parsed YAML document; raise ModelFileError with every problem found."""
    if not isinstance(data, dict):
        raise ModelFileError(
            source, [f"(top level): value {type(data).__name__} -- expected a mapping of keys"]
        )
    try:
        model = TouchModel.model_validate(data)
    except ValidationError as exc:
        raise ModelFileError(source, validation_problems(exc)) from None
    problems = check_model(model)
    if problems:
        raise ModelFileError(source, problems)
    return model


def load_model(spec: str | Path) -> TouchModel:
    """Load a preset by name or a touch-model YAML file by path."""
    if isinstance(spec, str) and spec in PRESETS:
        return model_from_dict(preset_dict(spec), f"preset:{spec}")
    path = Path(spec)
    if not path.exists():
        raise ModelFileError(
            str(path),
            [
                f"(file): not found{did_you_mean(path.name, PRESETS)} -- expected a YAML file "
                f"or a preset name ({', '.join(PRESETS)})"
            ],
        )
    try:
        data = yaml.safe_load(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        raise ModelFileError(str(path), [yaml_error_text(str(path), exc)]) from None
    return model_from_dict(data, str(path))


def model_hash(model: TouchModel) -> str:
    """A short stable hash of a model's content, to record which model made a decision.

    The diagnostics' limits are left out: they change what is reported, never a decision.
    """
    text = model.model_dump_json(exclude={"diagnostics"})
    return hashlib.sha256(text.encode()).hexdigest()[:12]

"""A workspace: one folder holding a team's touch model, team file, data and state.

``touchmodel init DIR`` writes it; every command run inside it (or with
``--workspace DIR``, or ``TOUCHMODEL_WORKSPACE``) takes the model, the team
and the state database from ``DIR/touchmodel.yaml``.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from touchmodel.errors import TouchmodelError, did_you_mean
from touchmodel.model.loader import DEFAULT_PRESET, PRESETS, preset_yaml, validation_problems
from touchmodel.ops.delivery_config import DeliveryConfig
from touchmodel.yaml_errors import yaml_error_text

WORKSPACE_FILE = "touchmodel.yaml"
WORKSPACE_ENV = "TOUCHMODEL_WORKSPACE"


class WorkspaceError(TouchmodelError):
    """A workspace is missing or its touchmodel.yaml is invalid."""


class ServeConfig(BaseModel):
    """``serve:`` in touchmodel.yaml: where `touchmodel serve` listens and what it schedules."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, ge=1, le=65535)
    run_at: dt.time | None = Field(
        default=dt.time(6, 0),
        description="Local time of the daily run (HH:MM); null: no scheduled runs.",
    )
    dispatch_every: float = Field(
        default=60.0, gt=0, description="Seconds between outbox dispatches."
    )


class WorkspaceConfig(BaseModel):
    """``touchmodel.yaml``: where a workspace's parts are. Relative paths are from its folder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(default="model.yaml", description="Touch-model file or preset name.")
    team: str | None = Field(default="team.yaml", description="Team file (books, planning).")
    data: str | None = Field(
        default="data", description="Default --data folder, or a database URL (docs/warehouse.md)."
    )
    mapping: str | None = Field(default=None, description="Default --mapping file.")
    engine: Literal["duckdb", "spark"] = Field(
        default="duckdb", description="Where the decision query runs (docs/spark.md)."
    )
    spark_master: str | None = Field(default=None, description="Spark master URL (engine: spark).")
    spark_staging: str | None = Field(
        default=None, description="Folder the Spark executors read the checked tables from."
    )
    state: str = Field(
        default="sqlite:///state.db",
        description="State database URL; a relative SQLite path is inside the workspace.",
    )
    out: str = Field(default="runs", description="Decision files go to <out>/<as-of date>/.")
    templates: str = Field(default="templates", description="Overrides of the email templates.")
    chunk_size: int = Field(
        default=2000, ge=1, le=10000, description="Accounts written per transaction during a run."
    )
    max_data_lag_days: int = Field(
        default=14,
        ge=0,
        description="A run's as-of date may be at most this many days after the newest "
        "activity (usage, tickets, NPS, payments) in the data; later needs --force.",
    )
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)


@dataclass(frozen=True)
class Workspace:
    """A loaded workspace: its folder and its validated configuration."""

    root: Path
    config: WorkspaceConfig

    def resolve(self, value: str) -> Path:
        """A path from touchmodel.yaml, relative to the workspace folder."""
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.root / path

    @property
    def model_spec(self) -> str:
        """A preset name as is, else the model file's path."""
        spec = self.config.model
        return spec if spec in PRESETS else str(self.resolve(spec))

    @property
    def team_path(self) -> Path | None:
        return self.resolve(self.config.team) if self.config.team else None

    @property
    def data_path(self) -> Path | str | None:
        """The data folder, or a database URL (``scheme://...``) kept as it is."""
        if self.config.data and "://" in self.config.data:
            return self.config.data
        return self.resolve(self.config.data) if self.config.data else None

    @property
    def mapping_path(self) -> Path | None:
        return self.resolve(self.config.mapping) if self.config.mapping else None

    @property
    def templates_dir(self) -> Path:
        return self.resolve(self.config.templates)

    @property
    def state_url(self) -> str:
        """The state URL, with a relative SQLite path made absolute inside the workspace."""
        url = self.config.state
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url.startswith(prefix + "/"):
            return prefix + str(self.resolve(url.removeprefix(prefix)))
        return url

    def out_dir(self, as_of: str) -> Path:
        """Where one as-of date's decision files go."""
        return self.resolve(self.config.out) / as_of


def holds_files(folder: Path) -> bool:
    """Whether ``folder`` exists and holds anything to read (hidden files such as .gitkeep aside)."""
    return folder.is_dir() and any(not p.name.startswith(".") for p in folder.iterdir())


def load_workspace(root: Path) -> Workspace:
    """Read and validate ``root/touchmodel.yaml``."""
    file = root / WORKSPACE_FILE
    try:
        data = yaml.safe_load(file.read_text()) or {}
    except OSError as exc:
        raise WorkspaceError(f"{file}: cannot read ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise WorkspaceError(yaml_error_text(str(file), exc)) from None
    try:
        config = WorkspaceConfig.model_validate(data)
    except ValidationError as exc:
        raise WorkspaceError(f"{file}: " + "; ".join(validation_problems(exc))) from None
    return Workspace(root.resolve(), config)


def find_workspace(explicit: Path | None = None, start: Path | None = None) -> Workspace | None:
    """The workspace to use: ``explicit``, else $TOUCHMODEL_WORKSPACE, else the nearest
    folder from ``start`` (default: the current one) upwards holding touchmodel.yaml."""
    chosen = explicit or (
        Path(os.environ[WORKSPACE_ENV]) if os.environ.get(WORKSPACE_ENV) else None
    )
    if chosen is not None:
        if not (chosen / WORKSPACE_FILE).is_file():
            raise WorkspaceError(
                f"{chosen}: not a workspace (no {WORKSPACE_FILE}); see `touchmodel init`"
            )
        return load_workspace(chosen)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / WORKSPACE_FILE).is_file():
            return load_workspace(folder)
    return None


def require_workspace(explicit: Path | None = None) -> Workspace:
    """Like :func:`find_workspace`, but a missing workspace is an error."""
    ws = find_workspace(explicit)
    if ws is None:
        raise WorkspaceError(
            f"no {WORKSPACE_FILE} here or above: run `touchmodel init DIR` and work inside DIR, "
            "or pass --workspace DIR"
        )
    return ws


def _template(name: str) -> str:
    return (resources.files("touchmodel") / "examples" / name).read_text()


def init_workspace(
    root: Path, *, preset: str = DEFAULT_PRESET, state: str | None = None, force: bool = False
) -> Workspace:
    """Create a workspace: touchmodel.yaml, model.yaml, team.yaml, data/, templates/, state.

    Existing files other than touchmodel.yaml are kept (a user's model is never
    overwritten); touchmodel.yaml itself only with ``force``.
    """
    from touchmodel.state.db import Store

    if preset not in PRESETS:
        raise WorkspaceError(
            f"--preset: unknown preset {preset!r}{did_you_mean(preset, PRESETS)}, expected one "
            f"of {', '.join(PRESETS)}"
        )
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    config_file = root / WORKSPACE_FILE
    if config_file.exists() and not force:
        raise WorkspaceError(f"{config_file}: already a workspace (use --force to rewrite it)")
    text = _template("workspace.yaml")
    if state is not None:
        text = text.replace("state: sqlite:///state.db", f"state: {state}")
    config_file.write_text(text)
    try:
        ws = load_workspace(root)
        Store(ws.state_url).close()  # creates and migrates the database
    except Exception:
        config_file.unlink()  # a failed init leaves no half-made workspace behind
        if created and not any(root.iterdir()):
            root.rmdir()
        raise
    files: dict[str, str] = {
        "model.yaml": preset_yaml(preset),
        "team.yaml": _template("team.yaml"),
    }
    for name, content in files.items():
        if not (root / name).exists():
            (root / name).write_text(content)
    for folder in ("data", "templates/email", "runs"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return ws


def workspace_summary(ws: Workspace) -> dict[str, Any]:
    """Where things are, for `touchmodel init` and `touchmodel status` to print."""
    return {
        "workspace": str(ws.root),
        "model": ws.model_spec,
        "team": str(ws.team_path) if ws.team_path else None,
        "data": str(ws.data_path) if ws.data_path else None,
        "state": ws.state_url,
        "templates": str(ws.templates_dir),
    }

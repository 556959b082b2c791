"""``touchmodel whatif``: what a change to the model file would do, on your data.

Thin: parse flags, call :mod:`touchmodel.fit.whatif`, render with
:mod:`touchmodel.cli.fit_render` (or print ``--json``). The main app calls
:func:`register`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from touchmodel.cli._common import parse_as_of, user_errors
from touchmodel.cli.fit_render import render_whatif
from touchmodel.cli.planning import shipped
from touchmodel.errors import TouchmodelError
from touchmodel.model.loader import DEFAULT_PRESET


def whatif_cmd(
    settings: Annotated[
        list[str],
        typer.Option(
            "--set",
            help="PATH=VALUE in the model file, e.g. tiers[high].band.min=150000 or "
            'triggers[risk.inactive].when="days_inactive >= 45". Repeat for more.',
        ),
    ],
    data: Annotated[
        Path | None,
        typer.Option("--data", "-d", help="Folder of CSV/Parquet files (default: workspace's)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", "-m", help="Preset or model file (default: the workspace's)."),
    ] = None,
    mapping: Annotated[
        Path | None, typer.Option("--mapping", help="Mapping file for your columns.")
    ] = None,
    team: Annotated[
        Path | None,
        typer.Option("--team", help="Team file (default: the workspace's); 'example' for ours."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Decide as of this date (YYYY-MM-DD).")
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", "-w", help="Workspace folder (default: the current one)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """What would this change do? Tier mix, at-risk share, work per CSM, headcount, CS cost.

    Runs the model and the changed model on the same data and compares them.
    Nothing is written: not the workspace's state, not its model file.
    """
    from touchmodel.fit.whatif import run_whatif, workspace_ingested, workspace_team
    from touchmodel.workspace import find_workspace

    when = parse_as_of(as_of)
    ws = find_workspace(workspace)
    folder = data or (ws.data_path if ws is not None else None)
    if folder is None:
        raise TouchmodelError("--data: required outside a workspace (or run `touchmodel init DIR`)")
    result = run_whatif(
        model or (ws.model_spec if ws is not None else DEFAULT_PRESET),
        settings,
        data=folder,
        as_of=when,
        mapping=mapping or (ws.mapping_path if ws is not None else None),
        team_path=shipped(team, "team.yaml") or (workspace_team(ws) if ws else None),
        # A workspace's own data folder also has the events sent to its /v1.
        ingested=workspace_ingested(ws, when) if ws is not None and data is None else None,
    )
    if as_json:
        typer.echo(json.dumps(result.as_dict(), indent=2, default=str))
        return
    render_whatif(Console(), result)


def register(app: typer.Typer) -> None:
    """Add ``whatif`` to the main app."""
    app.command("whatif")(user_errors(whatif_cmd))

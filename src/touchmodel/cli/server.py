"""`touchmodel serve` and `touchmodel keys`: the HTTP server and its credentials."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from touchmodel.cli._common import CliApp, user_errors
from touchmodel.cli.operations import WorkspaceOpt, open_store
from touchmodel.errors import TouchmodelError
from touchmodel.workspace import Workspace

console = Console()
keys_app = CliApp(help="API tokens (dashboard, REST API) and write keys (event ingestion).")


def register(app: typer.Typer) -> None:
    """Add `serve` and `keys` to the main app."""
    app.command("serve")(serve)
    app.add_typer(keys_app, name="keys")


@user_errors
def serve(
    workspace: WorkspaceOpt = None,
    host: Annotated[
        str | None, typer.Option(help="Address (default: serve.host, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: serve.port, 8000).")] = None,
    scheduler: Annotated[
        bool, typer.Option(help="Run the daily run at serve.run_at and dispatch the outbox.")
    ] = True,
) -> None:
    """Serve the dashboard, the REST API and Segment-compatible ingestion (one process)."""
    import uvicorn

    from touchmodel.server.app import create_app
    from touchmodel.server.scheduler import Scheduler
    from touchmodel.workspace import require_workspace

    ws = require_workspace(workspace)
    cfg = ws.config.serve
    bind_host, bind_port = host or cfg.host, port or cfg.port
    _check_port(bind_host, bind_port)
    app = create_app(ws)
    timer = Scheduler(ws, app.state.store) if scheduler else None
    # The scheduler's runs and dispatches show in the console, like uvicorn's own lines.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")
    console.print(
        f"touchmodel serving {ws.root} on http://{bind_host}:{bind_port}  "
        f"(dashboard /, API /api, ingestion /v1)"
    )
    if timer is not None:
        when = cfg.run_at.strftime("%H:%M") if cfg.run_at else "never (serve.run_at is null)"
        console.print(f"daily run at {when}; outbox every {cfg.dispatch_every:g}s")
        timer.start()
    try:
        uvicorn.run(app, host=bind_host, port=bind_port, log_level="info", access_log=False)
    finally:
        if timer is not None:
            timer.stop()
        app.state.store.close()


def _check_port(host: str, port: int) -> None:
    """A one-line error for a port in use, before anything starts."""
    import socket

    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise TouchmodelError(
                f"--port {port}: cannot listen on {host}:{port} ({exc.strerror}); "
                "is another touchmodel serve running? pick another with --port"
            ) from None


@keys_app.command("create")
@user_errors
def keys_create(
    kind: Annotated[
        str, typer.Option("--kind", help="api (dashboard, REST API) or write (events).")
    ],
    role: Annotated[
        str | None, typer.Option("--role", help="admin or csm (api keys; default admin).")
    ] = None,
    csm: Annotated[
        str | None, typer.Option("--csm", help="The CSM (name in team.yaml) a csm key belongs to.")
    ] = None,
    label: Annotated[str, typer.Option("--label", help="What the key is for.")] = "",
    workspace: WorkspaceOpt = None,
) -> None:
    """Create a key and print it once: only its hash is stored."""
    from touchmodel.access.keys import create_key

    with open_store(workspace) as (ws, store):
        new = create_key(store, kind, role=role, csm=csm, label=label, team=team_names(ws))
    who = f" role={new.role}" + (f" csm={new.csm}" if new.csm else "") if new.kind == "api" else ""
    typer.echo(new.secret)
    typer.echo(
        f"key {new.id} ({new.kind}{who}) created; it is shown only now, so store it safely",
        err=True,
    )


@keys_app.command("list")
@user_errors
def keys_list(workspace: WorkspaceOpt = None) -> None:
    """The keys: id, kind, role, prefix, created, last used, revoked (never the secret)."""
    from touchmodel.access.keys import list_keys

    with open_store(workspace) as (_ws, store):
        rows = list_keys(store)
    table = Table("id", "kind", "role", "csm", "label", "prefix", "created", "last used", "revoked")
    for r in rows:
        table.add_row(
            str(r.id),
            r.kind,
            r.role or "",
            r.csm or "",
            r.label,
            r.prefix + "…",
            _minute(r.created_at),
            _minute(r.last_used_at) or "never",
            _minute(r.revoked_at),
        )
    # A console of this call: the terminal's width now, not when the module was imported.
    Console().print(table if rows else "no keys yet: `touchmodel keys create --kind api`")


def team_names(ws: Workspace) -> list[str]:
    """The CSMs named in the workspace's team file (none without one)."""
    from touchmodel.plan.team import read_team_file

    if ws.team_path is None:
        return []
    return [name for entry in read_team_file(ws.team_path).csms for name in entry.names()]


def _minute(when: dt.datetime | None) -> str:
    return when.strftime("%Y-%m-%d %H:%M") if when else ""


@keys_app.command("revoke")
@user_errors
def keys_revoke(
    key_id: Annotated[int, typer.Argument(help="The key's id.")], workspace: WorkspaceOpt = None
) -> None:
    """Revoke a key: requests with it are refused from now on."""
    from touchmodel.access.keys import revoke_key

    with open_store(workspace) as (_ws, store):
        revoke_key(store, key_id)
    typer.echo(f"key {key_id} revoked")

"""A real touchmodel server on loopback for API, ingestion and browser tests.

``served_workspace`` builds a workspace with demo data and two completed
daily runs (so there is history, migrations and a queue), and creates one key
of each kind. ``LiveServer`` runs the real app under uvicorn in a thread on a
free port: requests cross a real socket, as a user's would.
"""

from __future__ import annotations

import datetime as dt
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn

from touchmodel.access.keys import create_key
from touchmodel.demo.generator import generate
from touchmodel.ops.daily import run_day
from touchmodel.server.app import create_app
from touchmodel.state.db import Store
from touchmodel.workspace import Workspace, init_workspace, load_workspace

AS_OF = dt.date(2026, 11, 1)
PREVIOUS = AS_OF - dt.timedelta(days=7)


@dataclass
class ServedWorkspace:
    """A workspace ready to serve, and the keys a test signs in with."""

    ws: Workspace
    admin_token: str
    csm_token: str
    csm_name: str
    write_key: str


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def build_workspace(
    root: Path, *, accounts: int = 300, state_url: str | None = None
) -> ServedWorkspace:
    """A workspace with demo data, two runs (a week apart) and one key of each kind."""
    ws = init_workspace(root, state=state_url)
    data = ws.data_path
    assert data is not None
    generate(data, accounts=accounts, as_of=AS_OF, seed=5)
    for as_of in (PREVIOUS, AS_OF):
        run_day(ws, as_of=as_of, dispatch_messages=False)
    store = Store(ws.state_url)
    try:
        from sqlalchemy import func, select

        from touchmodel.state.tables import Assignment

        with store.transaction() as session:
            csm_name = session.scalars(
                select(Assignment.csm).group_by(Assignment.csm).order_by(func.count().desc())
            ).first()
        assert csm_name, "the demo run assigns books"
        admin = create_key(store, "api", role="admin", label="test admin")
        csm = create_key(store, "api", role="csm", csm=csm_name)
        write = create_key(store, "write", label="test source")
    finally:
        store.close()
    return ServedWorkspace(load_workspace(root), admin.secret, csm.secret, csm_name, write.secret)


def copy_workspace(src: ServedWorkspace, dest: Path) -> ServedWorkspace:
    """A private copy of a built SQLite workspace (building one takes seconds; copying doesn't)."""
    shutil.copytree(src.ws.root, dest)
    return ServedWorkspace(
        load_workspace(dest), src.admin_token, src.csm_token, src.csm_name, src.write_key
    )


class LiveServer:
    """The app of one workspace under uvicorn in a background thread."""

    def __init__(self, ws: Workspace) -> None:
        self.app = create_app(ws)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)
        self.app.state.store.close()


@contextmanager
def live_server(ws: Workspace) -> Iterator[LiveServer]:
    """Serve ``ws`` on a free loopback port for the duration of the block."""
    server = LiveServer(ws).start()
    try:
        yield server
    finally:
        server.stop()

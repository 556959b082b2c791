"""`touchmodel serve` and `touchmodel keys` as a user runs them, and the scheduler's timing."""

from __future__ import annotations

import datetime as dt
import logging
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from tests.live_server import AS_OF, free_port
from touchmodel.demo.generator import generate
from touchmodel.server.scheduler import Scheduler
from touchmodel.state.db import Store
from touchmodel.state.tables import ApiKey, Run
from touchmodel.workspace import init_workspace, load_workspace

CLI = [sys.executable, "-m", "touchmodel.cli.app"]


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_keys_are_printed_once_stored_hashed_listed_and_revoked(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    made = cli(
        "keys", "create", "--kind", "api", "--role", "csm", "--csm", "Dana Reyes", cwd=ws.root
    )
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip()
    assert secret.startswith("tm_api_") and "shown only now" in made.stderr
    store = Store(ws.state_url)
    with store.transaction() as session:
        row = session.scalars(select(ApiKey)).one()
        assert (
            secret not in (row.key_hash, row.prefix)
            and row.role == "csm"
            and row.csm == "Dana Reyes"
        )
    store.close()
    listed = cli("keys", "list", cwd=ws.root)
    assert "Dana" in listed.stdout and secret not in listed.stdout
    bad = cli("keys", "create", "--kind", "api", "--role", "boss", cwd=ws.root)
    assert bad.returncode == 2 and "--role: found 'boss'" in bad.stderr
    write_with_role = cli("keys", "create", "--kind", "write", "--role", "admin", cwd=ws.root)
    assert write_with_role.returncode == 2 and "take no role" in write_with_role.stderr
    assert cli("keys", "revoke", str(row.id), cwd=ws.root).returncode == 0
    assert cli("keys", "revoke", "999", cwd=ws.root).returncode == 2


def test_serve_answers_health_and_api_then_stops_cleanly(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    token = cli("keys", "create", "--kind", "api", cwd=ws.root).stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), "--no-scheduler"],
        cwd=ws.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)
        auth = {"Authorization": f"Bearer {token}"}
        spec = httpx.get(url + "/api/openapi.json", headers=auth).json()
        assert spec["info"]["title"] == "touchmodel"
        assert httpx.get(url + "/login").status_code == 200
        # The dashboard's pinned front-end packages are served from npm's install.
        assert "htmx" in httpx.get(url + "/static/vendor/htmx.org/dist/htmx.min.js").text
        assert token.startswith("tm_api_")
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    # uvicorn shuts down gracefully, then re-raises the signal it caught (exit by SIGTERM).
    assert proc.returncode in (0, -signal.SIGTERM), out
    assert "Application shutdown complete" in out and f"http://127.0.0.1:{port}" in out


def test_serve_outside_a_workspace_is_a_one_line_error(tmp_path: Path) -> None:
    r = cli("serve", "--no-scheduler", cwd=tmp_path)
    assert r.returncode == 2 and "touchmodel init" in r.stderr


class FixedClock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_the_scheduler_runs_the_day_once_after_run_at(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    assert ws.data_path is not None
    generate(ws.data_path, accounts=60, as_of=AS_OF, seed=3)
    ws = load_workspace(ws.root)
    store = Store(ws.state_url)
    clock = FixedClock(dt.datetime.combine(AS_OF, dt.time(5, 59)))
    timer = Scheduler(ws, store, clock=clock)

    def runs() -> list[tuple[dt.date, str]]:
        with store.transaction() as session:
            return [(r.as_of, r.status) for r in session.scalars(select(Run).order_by(Run.id))]

    timer.tick()
    assert runs() == [], "06:00 is the default run_at: nothing before it"
    clock.now = dt.datetime.combine(AS_OF, dt.time(6, 0))
    timer.tick()
    assert runs() == [(AS_OF, "completed")]
    timer.tick()
    assert runs() == [(AS_OF, "completed")], "a completed day is not run again"
    store.close()


def test_a_failed_scheduled_run_is_recorded_and_not_retried_every_tick(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    assert ws.data_path is not None
    (ws.data_path / "accounts.csv").write_text("account_id,name\nA1,Acme\n")  # no arr: fails
    store = Store(ws.state_url)
    timer = Scheduler(ws, store, clock=FixedClock(dt.datetime.combine(AS_OF, dt.time(7))))
    timer.tick()
    timer.tick()
    with store.transaction() as session:
        statuses = [r.status for r in session.scalars(select(Run))]
    assert timer.last_error is not None and "accounts" in timer.last_error
    # Recorded as failed once, not once per tick: the retry waits for retry_seconds.
    assert statuses == ["failed"]
    store.close()


def test_the_scheduler_skips_an_empty_data_folder_with_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = init_workspace(tmp_path / "ws")  # a new workspace: data/ is empty
    assert ws.data_path is not None
    (ws.data_path / ".gitkeep").write_text("")  # hidden files are not data
    store = Store(ws.state_url)
    timer = Scheduler(ws, store, clock=FixedClock(dt.datetime.combine(AS_OF, dt.time(7))))
    with caplog.at_level(logging.INFO, logger="touchmodel.scheduler"):
        for _ in range(3):
            timer.tick()
    with store.transaction() as session:
        assert list(session.scalars(select(Run))) == [], "no failed run is recorded"
    assert timer.last_error is None
    lines = [r for r in caplog.records if r.name == "touchmodel.scheduler"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert "skipped" in lines[0].getMessage() and "data" in lines[0].getMessage()
    assert lines[0].exc_info is None
    # Once the exports arrive, the day runs at the next tick.
    generate(ws.data_path, accounts=30, as_of=AS_OF, seed=3)
    timer.tick()
    with store.transaction() as session:
        assert [r.status for r in session.scalars(select(Run))] == ["completed"]
    store.close()


def test_a_scheduled_run_far_after_the_newest_data_is_refused_in_one_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ws = init_workspace(tmp_path / "ws")
    assert ws.data_path is not None
    generate(ws.data_path, accounts=30, as_of=AS_OF, seed=3)  # exports that stopped arriving
    store = Store(ws.state_url)
    late = AS_OF + dt.timedelta(days=60)
    timer = Scheduler(ws, store, clock=FixedClock(dt.datetime.combine(late, dt.time(7))))
    with caplog.at_level(logging.INFO, logger="touchmodel.scheduler"):
        timer.tick()
    with store.transaction() as session:
        assert list(session.scalars(select(Run))) == [], "refused: nothing recorded"
    store.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "days after the newest activity" in errors[0].getMessage()


def test_serve_on_an_empty_data_folder_logs_one_line_and_records_no_run(tmp_path: Path) -> None:
    ws = init_workspace(tmp_path / "ws")
    config = ws.root / "touchmodel.yaml"
    config.write_text(config.read_text() + "\nserve:\n  run_at: '00:00'\n")  # due at once
    token = cli("keys", "create", "--kind", "api", cwd=ws.root).stdout.strip()
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        cwd=ws.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.1)
        # The scheduler ticks at start: by now it has looked at the data folder.
        runs = httpx.get(url + "/api/runs", headers={"Authorization": f"Bearer {token}"})
        assert runs.status_code == 200 and runs.json()["total"] == 0, runs.text
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    skipped = [ln for ln in out.splitlines() if "skipped" in ln]
    assert len(skipped) == 1 and "holds no files" in skipped[0], out
    assert "Traceback" not in out and "failed" not in out, out


@pytest.mark.parametrize("value", ["25:00", "soon"])
def test_a_bad_run_at_names_the_field(tmp_path: Path, value: str) -> None:
    ws = init_workspace(tmp_path / "ws")
    text = (
        (ws.root / "touchmodel.yaml").read_text().replace('run_at: "06:00"', f'run_at: "{value}"')
    )
    (ws.root / "touchmodel.yaml").write_text(text)
    r = cli("keys", "list", cwd=ws.root)
    assert r.returncode == 2 and "serve.run_at" in r.stderr


def test_serve_on_a_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    import socket

    ws = init_workspace(tmp_path / "ws")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = cli("serve", "--no-scheduler", "--port", str(port), cwd=ws.root)
    assert r.returncode == 2 and f"--port {port}: cannot listen" in r.stderr

"""Daily runs in a workspace, as a user runs them: real processes, a real database.

* a new user's path: init, run twice, see the queue;
* a run killed with SIGKILL half way, then run again, ends in the same state
  as one clean run: no duplicate work items, touchpoints or messages.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, func, select, text

from tests.delivery_servers import Mailbox, Receiver, http_receiver, smtp_server
from touchmodel.demo.generator import generate
from touchmodel.state.db import make_engine
from touchmodel.state.tables import Base, Run, Snapshot

AS_OF = dt.date(2026, 11, 1)
CLI = [sys.executable, "-m", "touchmodel.cli.app"]

# Columns that name a process's attempt, not the state: ids, clocks, run links.
VOLATILE = {"id", "run_id", "created_run_id", "at", "created_at", "next_attempt_at", "sent_at",
            "work_item_id", "touchpoint_id", "started_at", "finished_at"}  # fmt: skip


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("demo") / "data"
    generate(folder, accounts=400, as_of=AS_OF, seed=11)
    return folder


def cli(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"touchmodel {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def init(folder: Path, state_url: str, **settings: Any) -> Path:
    cli("init", str(folder), "--state", state_url, cwd=folder.parent)
    config = yaml.safe_load((folder / "touchmodel.yaml").read_text())
    config.update(settings)
    (folder / "touchmodel.yaml").write_text(yaml.safe_dump(config))
    return folder


def state_digest(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every state table but the run log (and its journal), as sorted rows without volatile columns."""
    engine = make_engine(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with engine.connect() as conn:
        for name, table in Base.metadata.tables.items():
            if name in ("runs", "run_changes"):
                continue
            cols = [c for c in table.columns if c.name not in VOLATILE]
            rows = [dict(r._mapping) for r in conn.execute(select(*cols))]
            for row in rows:
                # A row id inside a message body is not state either.
                item = (row.get("payload") or {}).get("work_item")
                if isinstance(item, dict):
                    item.pop("id", None)
            out[name] = sorted(tuple(map(repr, r.values())) for r in rows)
    engine.dispose()
    return out


def test_a_new_user_inits_runs_twice_and_sees_the_queue(tmp_path: Path, demo_data: Path) -> None:
    ws = tmp_path / "acme-cs"
    cli("init", str(ws), cwd=tmp_path)
    assert (ws / "touchmodel.yaml").is_file() and (ws / "model.yaml").is_file()
    first = cli("run", "--data", str(demo_data), "--as-of", AS_OF.isoformat(), cwd=ws)
    assert "work items created" in first.stdout
    digest = state_digest(f"sqlite:///{ws / 'state.db'}")
    second = cli("run", "--data", str(demo_data), "--as-of", AS_OF.isoformat(), cwd=ws)
    assert "nothing changed" in second.stdout
    assert state_digest(f"sqlite:///{ws / 'state.db'}") == digest
    items = json.loads(cli("tasks", "--json", cwd=ws).stdout)
    assert items, "the demo data fires triggers"
    for item in items:
        assert {"account_id", "trigger", "status", "owner", "due"} <= item.keys()
        assert item["status"] == "open"
    assert (ws / "runs" / AS_OF.isoformat() / "decisions.csv").is_file()
    runs = json.loads(cli("runs", "--json", cwd=ws).stdout)
    assert [r["status"] for r in runs] == ["completed", "completed"]
    assert (
        runs[1]["changes"]["snapshots_written"] > 0 and runs[0]["changes"]["snapshots_written"] == 0
    )


def test_queue_filters_and_user_actions_from_the_cli(tmp_path: Path, demo_data: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", str(ws), cwd=tmp_path)
    cli("run", "--data", str(demo_data), "--as-of", AS_OF.isoformat(), cwd=ws)
    items = json.loads(cli("tasks", "--json", cwd=ws).stdout)
    first = items[0]
    mine = json.loads(cli("tasks", "--json", "--owner", first["owner"], cwd=ws).stdout)
    assert mine and all(i["owner"] == first["owner"] for i in mine)
    cli("snooze", str(first["id"]), "--until", "2026-11-20", "--reason", "customer on holiday",
        "--on", AS_OF.isoformat(), cwd=ws)  # fmt: skip
    snoozed = json.loads(cli("tasks", "--json", "--status", "snoozed", cwd=ws).stdout)
    assert [i["id"] for i in snoozed] == [first["id"]]
    assert snoozed[0]["snooze_reason"] == "customer on holiday"
    again = cli("snooze", str(first["id"]), "--until", "2026-11-20", "--reason",
                "customer on holiday", "--on", AS_OF.isoformat(), cwd=ws, check=False)  # fmt: skip
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert "already snoozed until 2026-11-20" in again.stderr  # a conflict, one line
    bad = cli("close", "99999", "--reason", "x", cwd=ws, check=False)
    assert bad.returncode == 2 and "work item 99999: not found" in bad.stderr
    cli("close", str(first["id"]), "--reason", "resolved on call", cwd=ws)
    history = cli("history", first["account_id"], cwd=ws).stdout
    assert AS_OF.isoformat() in history


def test_run_outside_a_workspace_without_data_is_a_one_line_error(tmp_path: Path) -> None:
    proc = cli("run", "--as-of", "2026-11-01", cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("error: --data: required outside a workspace")


def _kill_mid_run(ws: Path, demo_data: Path, url: str) -> None:
    """Start a run, SIGKILL it once some chunks are committed and others are not."""
    proc = subprocess.Popen(
        [*CLI, "run", "--data", str(demo_data), "--as-of", AS_OF.isoformat()],
        cwd=ws, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    engine = make_engine(url)
    deadline = time.monotonic() + 240
    written = 0
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with engine.connect() as conn:
                    written = conn.scalar(select(func.count()).select_from(Snapshot)) or 0
            except Exception:  # the database may not exist yet
                written = 0
            if written >= 20:
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.01)
        proc.wait(timeout=30)
        with engine.connect() as conn:
            status = conn.scalar(select(Run.status).order_by(Run.id.desc()).limit(1))
            total = conn.scalar(select(func.count()).select_from(Snapshot))
    finally:
        engine.dispose()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert status == "running" and 0 < (total or 0) < 390, (status, total)


def test_a_run_killed_half_way_then_rerun_equals_one_clean_run(
    tmp_path: Path, demo_data: Path, state_url: str
) -> None:
    """Kill -9 while chunks are being written; the re-run's state and deliveries equal a
    clean run's: no work item, touchpoint or message twice, each message delivered once."""
    with (
        http_receiver() as clean_hook, smtp_server() as clean_mail,
        http_receiver() as hook, smtp_server() as mail,
    ):  # fmt: skip
        clean_url = f"sqlite:///{tmp_path / 'clean.db'}"
        clean = init(
            tmp_path / "clean", clean_url, chunk_size=1, delivery=_delivery(clean_hook, clean_mail)
        )
        cli("run", "--data", str(demo_data), "--as-of", AS_OF.isoformat(), cwd=clean)

        crashed = init(
            tmp_path / "crashed", state_url, chunk_size=1, delivery=_delivery(hook, mail)
        )
        _kill_mid_run(crashed, demo_data, state_url)
        assert hook.requests == 0 and not mail.messages  # killed before delivering anything
        cli("run", "--data", str(demo_data), "--as-of", AS_OF.isoformat(), cwd=crashed)

    got, want = state_digest(state_url), state_digest(clean_url)
    for table in want:
        extra, missing = set(got[table]) - set(want[table]), set(want[table]) - set(got[table])
        assert not extra and not missing, (table, sorted(extra)[:3], sorted(missing)[:3])
    assert got == want
    assert clean_hook.accepted and set(hook.accepted) == set(clean_hook.accepted)
    assert set(hook.accepted.values()) == {1}, "a webhook message was delivered twice"
    ids = [m["Message-ID"] for m in mail.messages]
    assert ids and len(ids) == len(set(ids)) == len(clean_mail.messages)
    engine = create_engine(make_engine(state_url).url)
    with engine.connect() as conn:
        statuses = conn.execute(text("SELECT status FROM runs ORDER BY id")).scalars().all()
    engine.dispose()
    assert statuses == ["abandoned", "completed"]


def _delivery(hook: Receiver, mail: Mailbox) -> dict[str, Any]:
    return {
        "webhook": {"url": hook.url},
        "email": {"host": mail.host, "port": mail.port, "sender": "success@example.com"},
    }


def test_one_item_with_its_history_and_dates_checked(tmp_path: Path, demo_data: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", str(ws), cwd=tmp_path)
    one_csm = {"csms": [{"members": ["Solo"], "tiers": ["low", "medium", "high"]}]}
    (ws / "team.yaml").write_text(yaml.safe_dump(one_csm))  # far too small: books over cap
    cli("run", "--data", str(demo_data), "--as-of", AS_OF.isoformat(), cwd=ws)
    first = json.loads(cli("tasks", "--json", "--limit", "1", cwd=ws).stdout)[0]
    early = cli(
        "close", str(first["id"]), "--reason", "x", "--on", "2026-10-01", cwd=ws, check=False
    )
    assert early.returncode == 2 and "created 2026-11-01" in early.stderr
    bad = cli("close", str(first["id"]), "--reason", "x", "--on", "2026-99-01", cwd=ws, check=False)
    assert bad.stderr.startswith("error: --on: value '2026-99-01'")
    cli(
        "close", str(first["id"]), "--reason", "called", "--on", "2026-11-02", "--by", "ada", cwd=ws
    )
    detail = json.loads(cli("task", str(first["id"]), "--json", cwd=ws).stdout)
    assert [e["action"] for e in detail["history"]] == ["created", "closed"]
    assert detail["history"][1] == {
        "on": "2026-11-02",
        "action": "closed",
        "reason": "called",
        "by": "ada",
    }
    text = cli("tasks", cwd=ws).stdout
    assert "(the first 50; --limit N for more)" in text
    rebalance = cli("rebalance", cwd=ws).stdout
    assert "no CSM covering those tiers has room" in " ".join(rebalance.split())

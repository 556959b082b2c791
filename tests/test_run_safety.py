"""A wrong --as-of cannot silently damage a workspace: refusals, dry runs and undo.

On SQLite and PostgreSQL (``state_url``). The state is compared table by table,
every column, before and after: a dry run and an undo must leave it exactly
as it was.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from tests.delivery_servers import http_receiver
from tests.test_ops_day import D0, SETTLED, TEAM, account, write_csv
from touchmodel.ops.as_of_guard import AsOfRefused
from touchmodel.ops.daily import run_day
from touchmodel.ops.run_journal import UndoError, undo_latest_run
from touchmodel.ops.workitems import close
from touchmodel.state.db import Store, make_engine
from touchmodel.state.tables import Base, Run, WorkItem
from touchmodel.workspace import Workspace, init_workspace, load_workspace

D1 = D0 + dt.timedelta(days=1)
RENEWAL = (D0 + dt.timedelta(days=75)).isoformat()  # fires lifecycle.renewal_window


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Workspace:
    w = init_workspace(tmp_path / "ws", state=state_url)
    (w.root / "team.yaml").write_text(yaml.safe_dump(TEAM))
    return w


def data(w: Workspace, accounts: list[dict[str, Any]], usage_until: dt.date | None = None) -> None:
    """Write the data folder: ``accounts``, and daily usage for each up to ``usage_until``."""
    folder = w.root / "data"
    for old in folder.glob("*.csv"):
        old.unlink()
    write_csv(folder / "accounts.csv", accounts)
    if usage_until is not None:
        events = [
            {"account_id": a["account_id"], "timestamp": f"{usage_until - dt.timedelta(days=d)}T10:00:00",
             "event": "login", "user_id": "u1"}
            for a in accounts for d in range(40)
        ]  # fmt: skip
        write_csv(folder / "usage_events.csv", events)


def day0() -> list[dict[str, Any]]:
    return [
        account("A", 30000, SETTLED, renewal_date=RENEWAL),
        account("B", 30000, SETTLED),
        account("C", 150000, SETTLED, renewal_date=RENEWAL),
    ]


def day1() -> list[dict[str, Any]]:
    """A churns (its items close, its book is released), B moves up a tier, N is new."""
    return [
        account("A", 30000, SETTLED, renewal_date=RENEWAL, churned_on=D0.isoformat()),
        account("B", 150000, SETTLED),
        account("C", 150000, SETTLED, renewal_date=RENEWAL),
        account("N", 5000, D1),
    ]


def digest(w: Workspace) -> dict[str, list[str]]:
    """Every row of every state table but the run log and its journal, every column."""
    engine = make_engine(w.state_url)
    out: dict[str, list[str]] = {}
    with engine.connect() as conn:
        for name, table in Base.metadata.tables.items():
            if name in ("runs", "run_changes"):
                continue
            rows = conn.execute(select(table)).mappings().all()
            out[name] = sorted(json.dumps(dict(r), default=str, sort_keys=True) for r in rows)
    engine.dispose()
    return out


def files(w: Workspace) -> list[str]:
    return sorted(str(p.relative_to(w.root)) for p in (w.root / "runs").rglob("*"))


def statuses(w: Workspace) -> list[tuple[dt.date, str]]:
    store = Store(w.state_url)
    try:
        with store.transaction() as s:
            return [(r.as_of, r.status) for r in s.scalars(select(Run).order_by(Run.id))]
    finally:
        store.close()


def test_an_as_of_far_after_the_newest_data_is_refused_unless_forced(ws: Workspace) -> None:
    data(ws, day0(), usage_until=D0)
    late = D0 + dt.timedelta(days=183)
    before = digest(ws)
    with pytest.raises(AsOfRefused) as info:
        run_day(ws, as_of=late)
    message = str(info.value)
    assert "183 days after the newest activity" in message
    assert f"usage_events.timestamp {D0}" in message and "max_data_lag_days" in message
    assert "--force" in message
    # Refused before writing anything: no items, no failed run on the portfolio page.
    assert digest(ws) == before and statuses(ws) == [] and files(ws) == []
    # Within the limit (14 days by default) the run goes ahead; so it does when forced.
    run_day(ws, as_of=D0 + dt.timedelta(days=14))
    run_day(ws, as_of=late, force=True)
    assert [s for _d, s in statuses(ws)] == ["completed", "completed"]


def test_the_data_lag_limit_is_set_in_touchmodel_yaml(ws: Workspace) -> None:
    path = ws.root / "touchmodel.yaml"
    path.write_text(path.read_text() + "\nmax_data_lag_days: 2\n")
    w = load_workspace(ws.root)
    data(w, day0(), usage_until=D0)
    with pytest.raises(AsOfRefused, match=r"3 days after .* the limit is 2 days"):
        run_day(w, as_of=D0 + dt.timedelta(days=3))
    run_day(w, as_of=D0 + dt.timedelta(days=2))


def test_an_as_of_before_the_last_run_is_refused_unless_forced(ws: Workspace) -> None:
    data(ws, day0())
    run_day(ws, as_of=D1)
    before = digest(ws)
    with pytest.raises(AsOfRefused, match=f"before the workspace's last run \\({D1}, run 1\\)"):
        run_day(ws, as_of=D0)
    assert digest(ws) == before and statuses(ws) == [(D1, "completed")]
    run_day(ws, as_of=D1)  # the same day again is a re-run, not a step back
    run_day(ws, as_of=D0, force=True)
    assert statuses(ws)[-1] == (D0, "completed")


def test_a_dry_run_says_what_would_change_and_writes_nothing(ws: Workspace) -> None:
    data(ws, day0())
    run_day(ws, as_of=D0)
    data(ws, day1())
    state, written = digest(ws), files(ws)
    dry = run_day(ws, as_of=D1, dry_run=True)
    assert dry.dry_run and dry.result.files == {}
    assert digest(ws) == state, "a dry run writes nothing to the state"
    assert files(ws) == written, "a dry run writes no decision files"
    assert statuses(ws) == [(D0, "completed")], "a dry run is not recorded"
    changes = dry.changes
    assert changes["work_items_created"] > 0 and changes["work_items_auto_closed"] > 0
    assert changes["touchpoints_cancelled"] > 0 and changes["book_changes"] > 0
    # What it announced is what the real run then does.
    real = run_day(ws, as_of=D1)
    assert real.changes == changes


def test_undo_puts_the_state_back_as_it_was_before_the_latest_run(ws: Workspace) -> None:
    data(ws, day0())
    run_day(ws, as_of=D0)
    state = digest(ws)
    data(ws, day1())
    first = run_day(ws, as_of=D1)
    assert digest(ws) != state
    store = Store(ws.state_url)
    try:
        done = undo_latest_run(store)
    finally:
        store.close()
    assert done.run_id == first.run_id and done.removed["work_items"] > 0
    assert done.restored["work_items"] > 0  # A's items, closed by the run, are open again
    assert digest(ws) == state, "every row is back as it was, ids and dates included"
    assert statuses(ws) == [(D0, "completed"), (D1, "undone")]
    # Nothing of the undone run lingers (cooldowns from its closes, its books):
    # running the day again does exactly what it did the first time.
    again = run_day(ws, as_of=D1)
    assert again.changes == first.changes


def test_undo_then_undo_again_goes_back_one_run_at_a_time(ws: Workspace) -> None:
    data(ws, day0())
    empty = digest(ws)
    run_day(ws, as_of=D0)
    data(ws, day1())
    run_day(ws, as_of=D1)
    store = Store(ws.state_url)
    try:
        assert undo_latest_run(store).as_of == D1
        with pytest.raises(UndoError, match="not the latest run"):
            undo_latest_run(store, run_id=2)
        assert undo_latest_run(store, run_id=1).as_of == D0
        assert digest(ws) == empty
        with pytest.raises(UndoError, match="no run to undo"):
            undo_latest_run(store)
    finally:
        store.close()


def test_undo_refuses_once_a_user_changed_an_item_of_the_run(ws: Workspace) -> None:
    data(ws, day0())
    run_day(ws, as_of=D0)
    store = Store(ws.state_url)
    try:
        with store.transaction() as s:
            item = s.scalars(select(WorkItem).where(WorkItem.status == "open")).first()
            assert item is not None
            close(s, item.id, reason="called them", actor="dana", today=D0)
        state = digest(ws)
        with pytest.raises(UndoError, match=r"work_items \[\d+\]: changed since the run"):
            undo_latest_run(store)
    finally:
        store.close()
    assert digest(ws) == state and statuses(ws) == [(D0, "completed")]


def test_undo_refuses_once_a_message_of_the_run_was_sent(ws: Workspace) -> None:
    with http_receiver() as hook:
        path = ws.root / "touchmodel.yaml"
        config = yaml.safe_load(path.read_text())
        config["delivery"] = {"webhook": {"url": hook.url}}
        path.write_text(yaml.safe_dump(config))
        w = load_workspace(ws.root)
        data(w, day0())
        day = run_day(w, as_of=D0)
        assert day.delivery is not None and day.delivery.sent > 0
    state = digest(w)
    store = Store(w.state_url)
    try:
        with pytest.raises(
            UndoError, match=r"outbox message \d+ \(work_item.created .*\) was sent"
        ):
            undo_latest_run(store)
    finally:
        store.close()
    assert digest(w) == state


def test_the_cli_refuses_dry_runs_and_undoes_as_a_user_sees_it(tmp_path: Path) -> None:
    import subprocess
    import sys

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "touchmodel.cli.app", *args],
            cwd=w.root, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    w = init_workspace(tmp_path / "ws")
    (w.root / "team.yaml").write_text(yaml.safe_dump(TEAM))
    data(w, day0(), usage_until=D0)
    r = cli("run", "--as-of", "2027-05-04")
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: --as-of 2027-05-04: 183 days after")
    assert len(r.stderr.strip().splitlines()) == 1
    assert cli("run", "--as-of", D0.isoformat()).returncode == 0
    state = digest(w)
    data(w, day1(), usage_until=D1)
    r = cli("run", "--as-of", D1.isoformat(), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "Dry run: nothing was written" in r.stdout and "work items" in r.stdout
    assert digest(w) == state and not (w.root / "runs" / D1.isoformat()).exists()
    assert cli("run", "--as-of", D1.isoformat()).returncode == 0
    r = cli("runs", "undo")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Run 2 ({D1}) undone: removed ")
    assert digest(w) == state
    r = cli("runs", "--json")
    assert [x["status"] for x in json.loads(r.stdout)] == ["undone", "completed"]


def test_only_the_latest_runs_keep_a_journal(
    ws: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import touchmodel.ops.daily as daily

    monkeypatch.setattr(daily, "UNDO_DEPTH", 1)
    data(ws, day0())
    run_day(ws, as_of=D0)
    data(ws, day1())
    run_day(ws, as_of=D1)
    store = Store(ws.state_url)
    try:
        assert undo_latest_run(store).as_of == D1
        with pytest.raises(UndoError, match=r"run 1 \(2026-11-02\) has no journal"):
            undo_latest_run(store)
    finally:
        store.close()

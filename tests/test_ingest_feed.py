"""Ingested events feed the next daily run: usage, account traits, what is reported."""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient
from sqlalchemy import select
from typer.testing import CliRunner

from tests.live_server import AS_OF, ServedWorkspace, build_workspace, copy_workspace, live_server
from touchmodel.cli.app import app as cli
from touchmodel.ops.daily import run_day
from touchmodel.state.db import Store
from touchmodel.state.tables import Snapshot

NEXT = AS_OF + dt.timedelta(days=7)
WHEN = dt.datetime(2026, 11, 5, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ServedWorkspace:
    return build_workspace(tmp_path_factory.mktemp("feed") / "ws", accounts=120)


def decided_accounts(ws: ServedWorkspace) -> list[str]:
    store = Store(ws.ws.state_url)
    try:
        with store.transaction() as s:
            return sorted(s.scalars(select(Snapshot.account_id).where(Snapshot.as_of == AS_OF)))
    finally:
        store.close()


def signals(ws: ServedWorkspace, as_of: dt.date) -> dict[str, dict[str, Any]]:
    table = pq.read_table(ws.ws.root / "runs" / as_of.isoformat() / "signals.parquet")
    return {r["account_id"]: r for r in table.to_pylist()}


def report(ws: ServedWorkspace, as_of: dt.date) -> list[dict[str, str]]:
    path = ws.ws.root / "runs" / as_of.isoformat() / "rejected_rows.csv"
    if not path.exists():
        return []
    with path.open() as f:
        return list(csv.DictReader(f))


def post(url: str, key: str, batch: list[dict[str, Any]]) -> None:
    auth = base64.b64encode(f"{key}:".encode()).decode()
    r = httpx.post(
        url + "/v1/batch", json={"batch": batch}, headers={"Authorization": f"Basic {auth}"}
    )
    assert r.status_code == 200, r.text


def test_real_clients_feed_the_next_run(built: ServedWorkspace, tmp_path: Path) -> None:
    plain = copy_workspace(built, tmp_path / "plain")
    ws = copy_workspace(built, tmp_path / "ws")
    first, second = decided_accounts(ws)[:2]
    with live_server(ws.ws) as server:
        seg = SegmentClient(ws.write_key, host=server.url, sync_mode=True, gzip=True)
        # Users only the ingested events know: one joins `first` by a group call
        # (its tracks carry no groupId), the other names `second` in its context.
        seg.identify("new-user-1", {"email": "new1@example.com"}, timestamp=WHEN)
        seg.group("new-user-1", first, {"plan": "enterprise", "arr": 123456.5}, timestamp=WHEN)
        for i in range(5):
            seg.track(
                "new-user-1",
                "report.exported",
                {"quantity": 2},
                timestamp=WHEN + dt.timedelta(hours=i),
            )
        seg.track("stranger", "report.exported", timestamp=WHEN)  # no account at all
        seg.track("ghost", "x", {"groupId": "NO-SUCH-ACCOUNT"}, timestamp=WHEN)
        seg.track(
            "late", "x", {"groupId": first}, timestamp=dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
        )
        seg.flush()
        rudder = RudderClient(ws.write_key, host=server.url, sync_mode=True, gzip=False)
        for u in ("rs-a", "rs-b", "rs-c"):
            rudder.track(u, "dashboard.viewed", context={"groupId": second}, timestamp=WHEN)
        rudder.flush()
    day = run_day(ws.ws, as_of=NEXT, dispatch_messages=False)
    base = run_day(plain.ws, as_of=NEXT, dispatch_messages=False)

    got, before = signals(ws, NEXT), signals(plain, NEXT)
    assert got[first]["active_users_30d"] == before[first]["active_users_30d"] + 1
    assert got[first]["usage_30d"] == before[first]["usage_30d"] + 10  # 5 events x quantity 2
    assert got[second]["active_users_30d"] == before[second]["active_users_30d"] + 3
    # The group traits replace the file's plan and ARR, typed like the contract.
    assert (got[first]["plan"], got[first]["arr"]) == ("enterprise", 123456.5)
    assert before[first]["arr"] != 123456.5
    store = Store(ws.ws.state_url)
    try:
        with store.transaction() as s:
            snap = s.scalars(
                select(Snapshot).where(Snapshot.account_id == first, Snapshot.as_of == NEXT)
            ).one()
            assert snap.arr == 123456.5
    finally:
        store.close()

    # 5 + 1 + 1 + 3 tracks on or before the date; the late one waits for its day.
    counts = day.result.rejects["ingested_events"]
    assert counts == {"rows_read": 10, "rejected": 2, "values_nulled": 0}
    assert day.result.counts["ingested_events"] == 10
    assert any("1 of 10 ingested events belong to no account" in w for w in day.warnings)
    rows = [r for r in report(ws, NEXT) if r["file"] == "ingested (/v1)"]
    assert len(rows) == 2
    assert any("NO-SUCH-ACCOUNT" in r["value"] for r in rows)
    assert any(json.loads(r["record"])["user_id"] == "stranger" for r in rows)
    run_json = json.loads((ws.ws.root / "runs" / NEXT.isoformat() / "run.json").read_text())
    assert run_json["rows_read"]["ingested_events"] == 10
    # A base run has no ingested input and says nothing about it.
    assert "ingested_events" not in base.result.counts


def test_a_data_folder_without_usage_events_runs_on_ingested_events(
    built: ServedWorkspace, tmp_path: Path
) -> None:
    ws = copy_workspace(built, tmp_path / "ws")
    data = ws.ws.data_path
    assert data is not None
    shutil.rmtree(data / "usage_events")
    account = decided_accounts(ws)[0]
    with live_server(ws.ws) as server:
        post(server.url, ws.write_key, [
            {"type": "track", "event": "login", "userId": f"u{i}", "messageId": f"m{i}",
             "timestamp": (WHEN + dt.timedelta(minutes=i)).isoformat(),
             "context": {"groupId": account}}
            for i in range(4)
        ] + [{"type": "page", "name": "Pricing", "userId": "u0", "messageId": "p",
              "timestamp": WHEN.isoformat(), "context": {"groupId": account}}])  # fmt: skip
    day = run_day(ws.ws, as_of=NEXT, dispatch_messages=False, allow_missing_accounts=True)
    assert "usage_events" not in day.result.missing_tables
    got = signals(ws, NEXT)
    assert got[account]["active_users_30d"] == 4
    assert got[account]["usage_30d"] == 5
    others = [a for a in got if a != account]
    assert all(got[a]["usage_30d"] in (0, None) for a in others)


def test_bad_traits_and_unknown_groups_are_reported_not_fatal(
    built: ServedWorkspace, tmp_path: Path
) -> None:
    ws = copy_workspace(built, tmp_path / "ws")
    account, other = decided_accounts(ws)[:2]
    file_row = signals(ws, AS_OF)[account]
    with live_server(ws.ws) as server:
        post(server.url, ws.write_key, [
            # An older group call, then the latest: merged key by key, latest value wins.
            {"type": "group", "userId": "a", "groupId": account, "messageId": "g0",
             "timestamp": (WHEN - dt.timedelta(days=1)).isoformat(),
             "traits": {"industry": "Old Industry", "seats": 5}},
            {"type": "group", "userId": "a", "groupId": account, "messageId": "g1",
             "timestamp": WHEN.isoformat(),
             "traits": {"employees": "lots", "industry": "Fintech", "unrelated": 1}},
            {"type": "group", "userId": "b", "groupId": "NOT-AN-ACCOUNT", "messageId": "g2",
             "timestamp": WHEN.isoformat(), "traits": {"plan": "pro"}},
            {"type": "group", "userId": "c", "groupId": other, "messageId": "g3",
             "timestamp": (NEXT + dt.timedelta(days=2)).isoformat(), "traits": {"plan": "later"}},
        ])  # fmt: skip
    day = run_day(ws.ws, as_of=NEXT, dispatch_messages=False)
    got = signals(ws, NEXT)
    assert got[account]["industry"] == "Fintech"
    # Issue 12.8: a bad value is reported as set to null, and null is what the run reads.
    assert file_row["employees"] is not None and got[account]["employees"] is None
    # An older call's trait that no later call sets still counts (Segment merges traits).
    assert file_row["seats"] != 5 and got[account]["seats"] == 5
    # A group call dated after the run date waits for a later run.
    assert got[other]["plan"] == signals(ws, AS_OF)[other]["plan"] != "later"
    groups = day.result.rejects["ingested_groups"]
    assert groups == {"rows_read": 2, "rejected": 1, "values_nulled": 1}
    rows = [r for r in report(ws, NEXT) if r["file"] == "ingested (/v1 group)"]
    assert {r["field"] for r in rows} == {"employees", "account_id"}
    (nulled,) = [r for r in rows if r["field"] == "employees"]
    assert nulled["value"] == "lots" and "null" in nulled["action"]
    (warning,) = [w for w in day.warnings if "group traits" in w]
    assert "1 trait values that are not the contract type were set to null" in warning


def test_group_traits_merge_per_key_across_calls_latest_value_wins(
    built: ServedWorkspace, tmp_path: Path
) -> None:
    """Issue 12.8: a later group call with {seats} alone kept no plan an earlier one set."""
    ws = copy_workspace(built, tmp_path / "ws")
    account = decided_accounts(ws)[0]
    file_row = signals(ws, AS_OF)[account]
    assert file_row["plan"] != "enterprise" and file_row["seats"] not in (40, 55)
    day = WHEN - dt.timedelta(days=2)
    with live_server(ws.ws) as server:
        post(server.url, ws.write_key, [
            {"type": "group", "userId": "a", "groupId": account, "messageId": "g1",
             "timestamp": day.isoformat(), "traits": {"plan": "enterprise", "seats": 40}},
            # Sent first, stamped last: the time stamp orders calls, not arrival.
            {"type": "group", "userId": "b", "groupId": account, "messageId": "g3",
             "timestamp": (day + dt.timedelta(days=2)).isoformat(),
             "traits": {"seats": 55, "industry": None}},
            {"type": "group", "userId": "a", "groupId": account, "messageId": "g2",
             "timestamp": (day + dt.timedelta(days=1)).isoformat(),
             "traits": {"seats": 50, "industry": "Retail"}},
        ])  # fmt: skip
    run_day(ws.ws, as_of=NEXT, dispatch_messages=False)
    got = signals(ws, NEXT)[account]
    # plan from g1 (no later call sets it), seats from g3 (latest), industry from g2
    # (g3's null sets nothing).
    assert (got["plan"], got["seats"], got["industry"]) == ("enterprise", 55, "Retail")


def test_touchmodel_run_says_how_many_ingested_events_it_used(
    built: ServedWorkspace, tmp_path: Path
) -> None:
    ws = copy_workspace(built, tmp_path / "ws")
    account = decided_accounts(ws)[0]
    with live_server(ws.ws) as server:
        post(server.url, ws.write_key, [
            {"type": "track", "event": "login", "userId": "u", "messageId": f"m{i}",
             "timestamp": WHEN.isoformat(), "context": {"groupId": account}}
            for i in range(3)
        ] + [{"type": "track", "event": "login", "userId": "nobody", "messageId": "x",
              "timestamp": WHEN.isoformat()}])  # fmt: skip
    result = CliRunner().invoke(
        cli, ["run", "--as-of", NEXT.isoformat(), "--workspace", str(ws.ws.root)]
    )
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "Ingested events (/v1): 3 of 4 used (stamped on or before 2026-11-08)" in out
    assert "account traits from 0 group calls" in out

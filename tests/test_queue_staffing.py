"""The work queue ordered by expected ARR kept, with the items beyond the week's capacity marked.

A daily run in a workspace values the open at-risk items and stores the
staffing; ``touchmodel tasks``, the API's work items and the dashboard queue
all read that order. On SQLite and PostgreSQL (the state part), and over HTTP.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from tests.live_server import live_server
from tests.test_ops_day import SETTLED, account, write_csv
from touchmodel.access.keys import create_key
from touchmodel.cli.app import app
from touchmodel.model.loader import preset_dict
from touchmodel.ops.daily import run_day
from touchmodel.ops.workitems import list_items
from touchmodel.state.db import Store
from touchmodel.views import queue
from touchmodel.workspace import Workspace, init_workspace

AS_OF = dt.date(2026, 11, 2)
# One CSM with 3 h x 0.5 = 90 minutes of outreach a week: two 45-minute items.
TEAM = {
    "csms": [{"name": "Cy", "tiers": ["high", "medium", "low"], "hours_per_week": 3}],
    "planning": {"allocation": {"outreach_share": 0.5}},
}
# ARR by account; no usage data, so no health score: the proxy's 0.5 for all.
ARR = {"A1": 30_000.0, "A2": 100_000.0, "A3": 60_000.0, "A4": 5_000.0}


def _workspace(root: Path, state_url: str) -> Workspace:
    ws = init_workspace(root, state=state_url)
    (ws.root / "team.yaml").write_text(yaml.safe_dump(TEAM))
    model = preset_dict("standard")
    model["triggers"].append(
        {"id": "risk.big_account", "when": "arr >= 20000", "route": "csm_outreach"}
    )
    (ws.root / "model.yaml").write_text(yaml.safe_dump(model, sort_keys=False))
    assert ws.data_path is not None
    write_csv(ws.data_path / "accounts.csv", [account(a, v, SETTLED) for a, v in ARR.items()])
    run_day(ws, as_of=AS_OF, model=str(ws.root / "model.yaml"), dispatch_messages=False)
    return ws


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Workspace:
    return _workspace(tmp_path / "ws", state_url)


def _risk(records: list[dict[str, Any]]) -> list[tuple[str, float | None, bool]]:
    return [
        (r["account_id"], r["expected_arr_kept"], r["over_capacity"])
        for r in records
        if r["trigger"] == "risk.big_account"
    ]


# 0.5 x ARR x 0.25 (csm_outreach's save rate), highest first; 90 minutes hold two.
EXPECTED = [("A2", 12_500.0, False), ("A3", 7_500.0, False), ("A1", 3_750.0, True)]


def test_the_run_values_the_risk_items_and_marks_those_over_capacity(ws: Workspace) -> None:
    store = Store(ws.state_url)
    try:
        with store.transaction() as s:
            from touchmodel.ops.workitems import item_record

            records = [item_record(i) for i in list_items(s, status="open")]
            page = queue.work_items(s, None, limit=1000).items
            today = queue.todays_work(s, None, owner=None, today=AS_OF).items
    finally:
        store.close()
    assert _risk(records) == EXPECTED
    # The at-risk items come first, in value order; the rest keep the old order after them.
    n = len(EXPECTED)
    assert [r["trigger"] for r in records[:n]] == ["risk.big_account"] * n
    assert all(r["expected_arr_kept"] is None for r in records[n:])
    assert [r["id"] for r in page] == [r["id"] for r in records]
    assert [r["id"] for r in today[:n]] == [r["id"] for r in records[:n]]


def test_tasks_lists_the_queue_in_that_order(ws: Workspace) -> None:
    res = CliRunner().invoke(
        app, ["tasks", "--json", "--workspace", str(ws.root)], env={"COLUMNS": "200"}
    )
    assert res.exit_code == 0, res.output
    records = json.loads(res.output)
    assert _risk(records) == EXPECTED
    text = CliRunner().invoke(app, ["tasks", "--workspace", str(ws.root)]).output
    assert text.count("over capacity this week") == 1
    assert "keeps ~$12,500" in text


def test_the_api_and_the_dashboard_queue_show_the_order_and_the_mark(tmp_path: Path) -> None:
    ws = _workspace(tmp_path / "ws", f"sqlite:///{tmp_path / 'state.db'}")
    store = Store(ws.state_url)
    try:
        token = create_key(store, "api", role="admin", label="test").secret
    finally:
        store.close()
    with live_server(ws) as server:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as c:
            items = c.get("/api/work-items", params={"limit": 1000}).json()["items"]
        assert _risk(items) == EXPECTED
        with httpx.Client(base_url=server.url, timeout=30) as c:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
            assert csrf is not None
            c.post("/login", data={"token": token, "csrf_token": csrf.group(1)})
            html = c.get("/queue").text
    rows = re.findall(r'<tr id="item-\d+".*?</tr>', html, flags=re.S)
    big = [r for r in rows if '<span class="muted">(risk.big_account)</span>' in r]
    assert [re.search(r">(A\d)<", r).group(1) for r in big] == ["A2", "A3", "A1"]  # type: ignore[union-attr]
    assert ["over capacity this week" in r for r in big] == [False, False, True]
    assert "keeps ~$12,500" in big[0]

"""Account ids are data: any text a CSV can hold opens on the dashboard and the API.

A workspace whose accounts have ids holding '/', '%', '?', '#', '&', '+',
spaces and non-Latin letters is run and served for real; every id is opened
over HTTP on each account route, and in the browser from the accounts list.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.browser import browser, signed_in  # noqa: F401  (the fixture)
from tests.live_server import LiveServer, live_server
from touchmodel.access.keys import create_key
from touchmodel.ops.daily import run_day
from touchmodel.state.db import Store
from touchmodel.workspace import init_workspace

AS_OF = dt.date(2026, 11, 2)
IDS = [
    "ACME/EU",
    "ACME/EU/history",  # looks like a sub-route once decoded
    "R&D 50%+",
    "a%2Fb",  # the text %2F itself, not a slash
    "Q?#1",
    "Zürich/東京 ☕",
    " padded ",
    "plain",
]


def segment(account: str) -> str:
    """An id as one URL path segment, as any HTTP client quotes it ('/' is %2F)."""
    return quote(account, safe="")


@dataclass
class Served:
    server: LiveServer
    token: str


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    ws = init_workspace(tmp_path_factory.mktemp("ids") / "ws")
    assert ws.data_path is not None
    renewal = (AS_OF + dt.timedelta(days=75)).isoformat()  # a renewal item for each account
    with (ws.data_path / "accounts.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["account_id", "name", "arr", "contract_start", "renewal_date"])
        for i, aid in enumerate(IDS):
            w.writerow([aid, f"Company {i}", 30000, "2025-09-05", renewal])
    run_day(ws, as_of=AS_OF, dispatch_messages=False)
    store = Store(ws.state_url)
    try:
        token = create_key(store, "api", role="admin", label="ids").secret
    finally:
        store.close()
    with live_server(ws) as server:
        yield Served(server, token)


def api(served: Served, path: str) -> httpx.Response:
    return httpx.get(served.server.url + path, headers={"Authorization": f"Bearer {served.token}"})


def test_the_csv_ids_are_stored_as_written(served: Served) -> None:
    page = api(served, "/api/accounts?limit=100").json()
    assert sorted(r["account_id"] for r in page["accounts"]) == sorted(IDS)


@pytest.mark.parametrize("account", IDS)
def test_every_api_account_route_takes_the_id(served: Served, account: str) -> None:
    one = api(served, f"/api/accounts/{segment(account)}")
    assert one.status_code == 200, one.text
    assert one.json()["account_id"] == account
    history = api(served, f"/api/accounts/{segment(account)}/history")
    assert history.status_code == 200, history.text
    assert history.json()["account_id"] == account
    events = api(served, f"/api/accounts/{segment(account)}/events")
    assert events.status_code == 200, events.text
    assert events.json()["account_id"] == account


def test_an_unknown_id_with_a_slash_is_a_json_404(served: Served) -> None:
    r = api(served, f"/api/accounts/{segment('ACME/US')}")
    assert r.status_code == 404 and "ACME/US" in r.json()["error"]["message"]


def test_the_dashboard_links_and_opens_every_account(browser: Any, served: Served) -> None:  # noqa: F811
    page: Any = signed_in(browser, served.server.url, served.token)
    errors: list[str] = []
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto("/accounts")
    links = page.locator("a.acct-link")
    assert sorted(links.all_inner_texts()) == sorted(a.strip() for a in IDS)
    for account in IDS:
        page.goto("/accounts")
        exact = re.compile(rf"^\s*{re.escape(account.strip())}\s*$")
        page.locator("a.acct-link").filter(has_text=exact).click()
        page.wait_for_load_state()
        assert page.url == f"{served.server.url}/accounts/{segment(account)}"
        # The page names the account it was opened for, not a neighbour.
        assert page.locator("h1#acct-name").inner_text() == f"Company {IDS.index(account)}"
        # Its queue link and the queue's link back lead to the same account.
        page.locator("a", has_text="This account's open items in the queue").click()
        page.wait_for_load_state()
        page.locator(f"a[href='/accounts/{segment(account)}']").first.click()
        page.wait_for_load_state()
        assert page.locator("h1#acct-name").inner_text() == f"Company {IDS.index(account)}"
    assert errors == []
    page.context.close()

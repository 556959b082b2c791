"""Issue 12, over real HTTP: CSV exports no spreadsheet can turn into formulas, snooze and
close as compare-and-set under concurrent requests (SQLite and PostgreSQL), and one
error shape on every path."""

from __future__ import annotations

import csv
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from tests.live_server import AS_OF, LiveServer, ServedWorkspace, build_workspace, live_server
from touchmodel.state.db import Store
from touchmodel.state.tables import Snapshot, WorkItem, WorkItemEvent

LATER = "2027-06-01"
# What the review put in a group trait `name` and in free-text reasons.
HOSTILE = [
    "Globex\r=cmd|' /C calc'!A0",
    "Initech\n@SUM(1+1)*cmd|' /C calc'!A0",
    'Hooli\r\n+HYPERLINK("http://evil.example")',
    " =1+1",
    '\uff1dHYPERLINK("http://evil.example")',
    "\u3000-2+3",
]
FORMULA_START = tuple("=+-@\uff1d\uff0b\uff0d\uff20\t")


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServedWorkspace, LiveServer]]:
    built = build_workspace(tmp_path_factory.mktemp("reliability") / "ws", accounts=80)
    with live_server(built.ws) as server:
        yield built, server


def one_shape(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.text
    error = r.json()["error"]
    assert set(error) == {"status", "code", "message", "details"} and error["status"] == status
    return dict(error)


def api(server: LiveServer, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )


@contextmanager
def signed_in(server: LiveServer, token: str) -> Iterator[httpx.Client]:
    """A dashboard session, signed in through the login form."""
    with httpx.Client(base_url=server.url, timeout=60) as client:
        csrf = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
        r = client.post("/login", data={"token": token, "csrf_token": csrf})
        assert r.status_code == 303
        yield client


def open_items(ws: ServedWorkspace, owner: str | None = None) -> list[int]:
    store = Store(ws.ws.state_url)
    try:
        with store.transaction() as s:
            q = select(WorkItem.id).where(WorkItem.status == "open").order_by(WorkItem.id)
            if owner:
                q = q.where(WorkItem.owner == owner)
            return list(s.scalars(q))
    finally:
        store.close()


# ---------------------------------------------------------------- 1. CSV formulas


def assert_spreadsheet_safe(text: str, rows: int) -> list[dict[str, str]]:
    """The export parses to ``rows`` rows, and no line a spreadsheet (or a reader that
    splits lines first) sees starts with a formula, leading blanks and quotes aside."""
    parsed = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(parsed) == rows
    for line in text.splitlines():  # splits on CR, LF and CRLF alike
        assert not line.lstrip(' "\u00a0\u3000').startswith(FORMULA_START), repr(line)
    return parsed


@pytest.fixture(scope="module")
def hostile(served: tuple[ServedWorkspace, LiveServer]) -> dict[str, str]:
    """Accounts named as the review named them, and open items whose why says the same."""
    ws, _server = served
    store = Store(ws.ws.state_url)
    named: dict[str, str] = {}
    try:
        with store.transaction() as s:
            accounts = list(
                s.scalars(
                    select(Snapshot.account_id)
                    .where(Snapshot.as_of == AS_OF)
                    .order_by(Snapshot.account_id)
                    .limit(len(HOSTILE))
                )
            )
            for account, name in zip(accounts, HOSTILE, strict=True):
                s.execute(update(Snapshot).where(Snapshot.account_id == account).values(name=name))
                named[account] = name
            item_ids = open_items(ws)[-len(HOSTILE) :]
            for item_id, why in zip(item_ids, HOSTILE, strict=True):
                s.execute(update(WorkItem).where(WorkItem.id == item_id).values(explanation=why))
    finally:
        store.close()
    return named


def test_account_exports_quote_line_breaks_and_guard_every_line(
    served: tuple[ServedWorkspace, LiveServer], hostile: dict[str, str]
) -> None:
    ws, server = served
    with api(server, ws.admin_token) as c:
        total = c.get("/api/accounts", params={"limit": 1}).json()["total"]
        from_api = c.get("/api/accounts", params={"format": "csv"})
    with signed_in(server, ws.admin_token) as c:
        from_dashboard = c.get("/accounts.csv")
    for r in (from_api, from_dashboard):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        names = {row["account_id"]: row["name"] for row in assert_spreadsheet_safe(r.text, total)}
        assert names[next(iter(hostile))] == "Globex\r'=cmd|' /C calc'!A0"
        for account, name in hostile.items():
            # Read back, the cell is the name with an apostrophe before each formula.
            assert names[account].replace("'", "") == name.replace("'", "")
            assert names[account] != name


def test_work_item_exports_quote_line_breaks_and_guard_every_line(
    served: tuple[ServedWorkspace, LiveServer], hostile: dict[str, str]
) -> None:
    ws, server = served
    snoozed = open_items(ws, ws.csm_name)[0]
    reason = "customer asked\r=cmd|' /C calc'!A0"
    with api(server, ws.csm_token) as c:
        r = c.post(f"/api/work-items/{snoozed}/snooze", json={"until": LATER, "reason": reason})
        assert r.status_code == 200, r.text
        total = c.get("/api/work-items", params={"status": "all", "limit": 1}).json()["total"]
        from_api = c.get("/api/work-items", params={"status": "all", "format": "csv"})
    rows = assert_spreadsheet_safe(from_api.text, total)
    (row,) = [x for x in rows if x["id"] == str(snoozed)]
    assert row["snooze_reason"] == "customer asked\r'=cmd|' /C calc'!A0"
    with api(server, ws.admin_token) as c:
        total = c.get("/api/work-items", params={"limit": 1}).json()["total"]
    with signed_in(server, ws.admin_token) as c:
        from_queue = c.get("/queue.csv")
    assert from_queue.status_code == 200
    whys = {x["why"] for x in assert_spreadsheet_safe(from_queue.text, total)}
    assert (
        "Globex\r'=cmd|' /C calc'!A0" in whys and '\'\uff1dHYPERLINK("http://evil.example")' in whys
    )


# ---------------------------------------------------------------- 2. concurrent actions


def _fire(url: str, token: str, calls: list[tuple[str, dict[str, str]]]) -> list[int]:
    """Send every call at the same moment, each on its own connection; their statuses."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int] = [0] * len(calls)

    def send(i: int, path: str, body: dict[str, str]) -> None:
        with httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        ) as c:
            c.get("/healthz")  # connected before the barrier
            barrier.wait()
            statuses[i] = c.post(path, json=body).status_code

    threads = [
        threading.Thread(target=send, args=(i, path, body)) for i, (path, body) in enumerate(calls)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return statuses


def _history(ws: ServedWorkspace, item_id: int) -> list[str]:
    store = Store(ws.ws.state_url)
    try:
        with store.transaction() as s:
            return list(
                s.scalars(
                    select(WorkItemEvent.action)
                    .where(WorkItemEvent.work_item_id == item_id)
                    .order_by(WorkItemEvent.id)
                )
            )
    finally:
        store.close()


def test_concurrent_snoozes_and_closes_one_wins_the_rest_are_409(
    state_url: str, tmp_path: Path
) -> None:
    """Issue 12.2: twelve closes at once, then twelve snoozes at once: one 200, eleven
    409s, one event. Three closes and three snoozes at once: no update is lost."""
    ws = build_workspace(tmp_path / "ws", accounts=40, state_url=state_url)
    items = open_items(ws)[:5]
    assert len(items) == 5
    close = {"reason": "done"}
    snooze = {"until": LATER, "reason": "later"}
    with live_server(ws.ws) as server:
        closed, snoozed, *mixed = items
        statuses = _fire(
            server.url, ws.admin_token, [(f"/api/work-items/{closed}/close", close)] * 12
        )
        assert sorted(statuses) == [200] + [409] * 11, statuses
        assert _history(ws, closed) == ["created", "closed"]
        statuses = _fire(
            server.url, ws.admin_token, [(f"/api/work-items/{snoozed}/snooze", snooze)] * 12
        )
        assert sorted(statuses) == [200] + [409] * 11, statuses
        assert _history(ws, snoozed) == ["created", "snoozed"]
        for item_id in mixed:
            calls = [(f"/api/work-items/{item_id}/close", close)] * 3
            calls += [(f"/api/work-items/{item_id}/snooze", snooze)] * 3
            statuses = _fire(server.url, ws.admin_token, calls)
            won = {"closed": statuses[:3].count(200), "snoozed": statuses[3:].count(200)}
            assert set(statuses) <= {200, 409} and won["closed"] <= 1 and won["snoozed"] <= 1
            history = _history(ws, item_id)
            # One event per 200, and a close that succeeded is never undone by a snooze
            # (a snooze that committed first may be closed after it: that is no race).
            assert history in (
                ["created", "closed"],
                ["created", "snoozed"],
                ["created", "snoozed", "closed"],
            ), history
            assert history[1:].count("closed") == won["closed"]
            assert history[1:].count("snoozed") == won["snoozed"]
            with api(server, ws.admin_token) as c:
                item = c.get(f"/api/work-items/{item_id}").json()
            assert item["status"] == history[-1]


# ---------------------------------------------------------------- 7. one error shape

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("POST", "/healthz", 405),
        ("POST", "/readyz", 405),
        ("DELETE", "/readyz", 405),
        ("GET", "/no-such-page", 404),
        ("GET", "/static/app/nothing.js", 404),
        ("POST", "/queue", 405),
    ],
)
def test_every_path_answers_errors_in_the_one_json_shape(
    served: tuple[ServedWorkspace, LiveServer], method: str, path: str, status: int
) -> None:
    _ws, server = served
    for headers in ({}, {"Accept": "*/*"}, {"Accept": "application/json"}):
        one_shape(httpx.request(method, server.url + path, headers=headers), status)
    # The health paths are for programs: JSON even for a browser.
    r = httpx.request(method, server.url + path, headers=BROWSER)
    if path in ("/healthz", "/readyz"):
        one_shape(r, status)
    else:  # a browser on the dashboard gets the error page
        assert r.status_code == status and r.headers["content-type"].startswith("text/html")
        assert "<html" in r.text.lower()


def test_a_browser_gets_the_error_page_and_a_program_json_on_dashboard_pages(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    with signed_in(server, ws.admin_token) as c:
        page = c.get("/accounts/NO-SUCH-ACCOUNT", headers=BROWSER)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        assert "NO-SUCH-ACCOUNT" in page.text
        one_shape(c.get("/accounts/NO-SUCH-ACCOUNT"), 404)
        one_shape(c.get("/accounts/NO-SUCH-ACCOUNT", headers={"HX-Request": "true"}), 404)


def test_dates_are_iso_only_and_an_empty_model_check_is_refused(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    with api(server, ws.admin_token) as c:
        for path in ("/api/work-items", "/api/touchpoints"):
            for param in ("due_to", "due_from"):
                for value in ("0", "1700000000", "2026-13-01", "tomorrow"):
                    e = one_shape(c.get(path, params={param: value}), 422)
                    assert e["details"][0]["field"] == param
                assert c.get(path, params={param: "2026-11-01"}).status_code == 200
        one_shape(c.get("/api/decisions", params={"as_of": "0"}), 422)
        item = open_items(ws)[0]
        e = one_shape(
            c.post(f"/api/work-items/{item}/snooze", json={"until": 0, "reason": "x"}), 422
        )
        assert e["details"][0]["field"] == "until"
        assert _history(ws, item) == ["created"]
        for body in (b"", b"  \n"):
            e = one_shape(
                c.post(
                    "/api/model/check", content=body, headers={"Content-Type": "application/yaml"}
                ),
                400,
            )
            assert "empty" in e["message"]
        r = c.post(
            "/api/model/check", content=b"name: x\n", headers={"Content-Type": "application/yaml"}
        )
        assert r.status_code == 200 and r.json()["valid"] is False


def test_openapi_lists_the_codes_the_routes_return(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    json_type = {"Content-Type": "application/json"}
    with api(server, ws.admin_token) as admin, api(server, ws.csm_token) as csm:
        spec = admin.get("/api/openapi.json").json()
        item = open_items(ws)[0]
        mine = {a["account_id"] for a in csm.get("/api/accounts").json()["accounts"]}
        everyone = [a["account_id"] for a in admin.get("/api/accounts").json()["accounts"]]
        other = next(a for a in everyone if a not in mine)
        seen: list[tuple[str, str, httpx.Response, int]] = []
        for action in ("snooze", "close"):
            path = f"/api/work-items/{{item_id}}/{action}"
            url = f"/api/work-items/{item}/{action}"
            # Not UTF-8: the framework cannot read the body at all (400); not JSON: 422.
            seen.append(
                (
                    path,
                    "post",
                    admin.post(url, content=b'{"reason": "\xff"}', headers=json_type),
                    400,
                )
            )
            seen.append(
                (path, "post", admin.post(url, content=b"{not json", headers=json_type), 422)
            )
        events = "/api/accounts/{account_id}/events"
        bad_cursor = {"before": "bm90IGEgY3Vyc29y"}
        seen += [
            (events, "get", admin.get(f"/api/accounts/{other}/events", params=bad_cursor), 400),
            (events, "get", csm.get(f"/api/accounts/{other}/events"), 403),
            (events, "get", admin.get("/api/accounts/NO-SUCH/events"), 404),
            ("/api/model/check", "post", admin.post("/api/model/check"), 400),
        ]
    for path, method, r, status in seen:
        one_shape(r, status)
        assert str(status) in spec["paths"][path][method]["responses"], (path, status)

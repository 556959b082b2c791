"""Dashboard pages for the queue, capacity, model choice and model, driven in Chromium.

Playwright drives Debian's /usr/bin/chromium against the real app on loopback:
pages open without console errors or failed requests, charts draw, a work
item is snoozed and closed from the queue in place, and the state store
records who did it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.browser import browser, signed_in  # noqa: F401  (the fixture)
from tests.live_server import (
    LiveServer,
    ServedWorkspace,
    build_workspace,
    copy_workspace,
    live_server,
)
from touchmodel.state.db import Store
from touchmodel.state.tables import WorkItem, WorkItemEvent

TODAY = dt.date.today()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ServedWorkspace:
    return build_workspace(tmp_path_factory.mktemp("dash-work") / "ws")


@pytest.fixture
def served(built: ServedWorkspace, tmp_path: Path) -> Iterator[tuple[ServedWorkspace, LiveServer]]:
    copy = copy_workspace(built, tmp_path / "ws")
    with live_server(copy.ws) as server:
        yield copy, server


class Watch:
    """Console errors, failed requests and 4xx/5xx answers seen by a page."""

    def __init__(self, page: Any) -> None:
        self.problems: list[str] = []
        page.on(
            "console",
            lambda m: self.problems.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on(
            "requestfailed",
            lambda r: self.problems.append(f"failed: {r.url} {r.failure}"),
        )
        page.on(
            "response",
            lambda r: self.problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None,
        )


def open_page(page: Any, path: str) -> None:
    page.goto(path)
    page.wait_for_load_state("networkidle")


def events(ws: ServedWorkspace, item_id: int) -> list[tuple[str, str, str]]:
    store = Store(ws.ws.state_url)
    try:
        with store.transaction() as s:
            return [
                (e.action, e.reason, e.actor)
                for e in s.scalars(
                    select(WorkItemEvent)
                    .where(WorkItemEvent.work_item_id == item_id)
                    .order_by(WorkItemEvent.id)
                )
            ]
    finally:
        store.close()


def item_status(ws: ServedWorkspace, item_id: int) -> tuple[str, dt.date | None]:
    store = Store(ws.ws.state_url)
    try:
        with store.transaction() as s:
            item = s.get(WorkItem, item_id)
            assert item is not None
            return item.status, item.snoozed_until
    finally:
        store.close()


def test_every_page_opens_and_the_charts_draw(
    browser: Any,  # noqa: F811
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    page = signed_in(browser, server.url, ws.admin_token)
    watch = Watch(page)
    for path, heading in (
        ("/queue", "Today's work"),
        ("/capacity", "Capacity and economics"),
        ("/model-choice", "Which post-sale model fits?"),
        ("/model", "Touch model: standard"),
    ):
        open_page(page, path)
        assert page.locator("h1").first.inner_text().startswith(heading), path
        assert page.locator(f'nav a[href="{path}"][aria-current="page"]').count() == 1
    open_page(page, "/capacity?growth=40%25")
    canvases = page.locator("canvas[data-chart]")
    assert canvases.count() == 3
    for i in range(3):
        canvas = canvases.nth(i)
        assert canvas.get_attribute("data-drawn") == "1"
        assert int(canvas.get_attribute("data-points") or 0) > 0
        box = canvas.bounding_box()
        assert box is not None and box["width"] > 100 and box["height"] > 100
    # 40% a year: more CSMs needed at 24 months than today, in the projection table.
    rows = page.locator("#projection-table tbody tr")
    assert rows.count() == 3
    target = [float(rows.nth(i).locator("td").nth(3).inner_text()) for i in range(3)]
    assert target[0] < target[1] < target[2]
    assert page.locator("#mistakes li").count() >= 4
    assert page.locator("#tiers-table tbody tr").count() == 4
    open_page(page, "/model")
    assert page.locator("#model-tiers thead th").count() == 5  # the row header + 4 tiers
    assert "dedicated_csm" in page.locator("#model-tiers").inner_text()
    assert watch.problems == []
    page.context.close()


def test_a_csm_snoozes_and_closes_work_in_place(
    browser: Any,  # noqa: F811
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    page = signed_in(browser, server.url, ws.csm_token)
    watch = Watch(page)
    open_page(page, "/queue")
    assert page.locator("h1").inner_text() == f"Today's work: {ws.csm_name}"
    rows = page.locator("tr.work-row")
    assert rows.count() >= 2
    owners = {rows.nth(i).locator("td").nth(4).inner_text() for i in range(rows.count())}
    assert owners == {ws.csm_name}
    first = rows.nth(0)
    first_id = int((first.get_attribute("id") or "").removeprefix("item-"))
    second_id = int((rows.nth(1).get_attribute("id") or "").removeprefix("item-"))
    until = (TODAY + dt.timedelta(days=14)).isoformat()
    # A marker on the page: a full reload would lose it, an in-place swap keeps it.
    page.evaluate("document.body.dataset.marker = 'kept'")

    row = page.locator(f"#item-{first_id}")
    row.locator("form.work-snooze input[name=until]").fill(until)
    row.locator("form.work-snooze input[name=reason]").fill("waiting for their <b>budget</b>")
    row.locator("form.work-snooze button").click()
    page.wait_for_selector(f'#item-{first_id}[data-status="snoozed"]')
    status = page.locator(f"#item-{first_id} .work-status").inner_text()
    assert f"snoozed until {until}" in status
    assert "waiting for their <b>budget</b>" in status  # escaped, shown as typed
    assert page.evaluate("document.body.dataset.marker") == "kept"
    assert page.url == server.url + "/queue"
    assert item_status(ws, first_id) == ("snoozed", dt.date.fromisoformat(until))
    assert events(ws, first_id)[-1] == (
        "snoozed",
        f"until {until}: waiting for their <b>budget</b>",
        ws.csm_name,
    )

    row = page.locator(f"#item-{second_id}")
    row.locator("form.work-close input[name=reason]").fill("spoke to the champion")
    row.locator("form.work-close button").click()
    page.wait_for_selector(f'#item-{second_id}[data-status="closed"]')
    assert "closed" in page.locator(f"#item-{second_id} .work-status").inner_text()
    assert item_status(ws, second_id)[0] == "closed"
    assert events(ws, second_id)[-1] == ("closed", "spoke to the champion", ws.csm_name)
    assert page.evaluate("document.body.dataset.marker") == "kept"
    assert watch.problems == []

    # A date the core refuses is shown in the row; nothing changes.
    open_page(page, "/queue")
    third = page.locator("tr.work-row").nth(0)
    third_id = int((third.get_attribute("id") or "").removeprefix("item-"))
    assert third_id not in (first_id, second_id)
    third.locator("form.work-snooze input[name=until]").evaluate("e => e.removeAttribute('min')")
    third.locator("form.work-snooze input[name=until]").fill("2020-01-01")
    third.locator("form.work-snooze input[name=reason]").fill("too late")
    third.locator("form.work-snooze button").click()
    page.wait_for_selector(f"#item-{third_id} .work-error")
    assert "after today" in page.locator(f"#item-{third_id} .work-error").inner_text()
    assert item_status(ws, third_id)[0] == "open"
    page.context.close()


def test_the_model_choice_form_shows_the_recommendation(
    browser: Any,  # noqa: F811
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    page = signed_in(browser, server.url, ws.admin_token)
    watch = Watch(page)
    open_page(page, "/model-choice")
    page.fill("#q-acv", "25000")
    page.fill("#q-complexity", "medium")
    page.fill("#q-segment", "mid-market")
    page.fill("#q-margin", "75%")
    page.fill("#q-positioning", "standard")
    page.fill("#q-ratio", "1:50")
    page.uncheck("input[name=from_data]")
    page.click("#model-choice-form button[type=submit]")
    page.wait_for_selector("#choice-result")
    assert page.locator("#choice-result").inner_text() == "Recommendation: high touch"
    assert "total 20" in page.locator("#choice-reasons").inner_text()
    # Blank answers filled from the data: the demo's accounts spread over ACV zones.
    page.fill("#q-acv", "")
    page.fill("#q-segment", "")
    page.fill("#q-ratio", "")
    page.check("input[name=from_data]")
    page.click("#model-choice-form button[type=submit]")
    page.locator("#choice-result", has_text="hybrid").wait_for()
    # A missing answer is said in place.
    page.fill("#q-complexity", "")
    page.click("#model-choice-form button[type=submit]")
    page.wait_for_selector("#choice-error")
    assert "complexity" in page.locator("#choice-error").inner_text()
    assert page.url == server.url + "/model-choice"
    assert watch.problems == []
    page.context.close()


def _session(server: LiveServer, token: str) -> tuple[httpx.Client, str]:
    c = httpx.Client(base_url=server.url)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
    assert csrf is not None
    c.post("/login", data={"token": token, "csrf_token": csrf.group(1)})
    page = c.get("/queue")
    assert page.status_code == 200
    token_now = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
    assert token_now is not None
    return c, token_now.group(1)


def test_posts_without_the_csrf_token_are_refused(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    c, csrf = _session(server, ws.csm_token)
    try:
        html = c.get("/queue").text
        item_id = int(re.findall(r'id="item-(\d+)"', html)[0])
        until = (TODAY + dt.timedelta(days=5)).isoformat()
        form = {"until": until, "reason": "x"}
        assert c.post(f"/queue/items/{item_id}/snooze", data=form).status_code == 403
        wrong = {**form, "csrf_token": "forged"}
        assert c.post(f"/queue/items/{item_id}/snooze", data=wrong).status_code == 403
        assert c.post(f"/queue/items/{item_id}/close", data={"reason": "x"}).status_code == 403
        r = c.post("/model-choice", data={"acv": "1"}, headers={"hx-request": "true"})
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert item_status(ws, item_id) == ("open", None)
        # With the token, the plain-form fallback works and redirects back to the queue.
        ok = c.post(f"/queue/items/{item_id}/snooze", data={**form, "csrf_token": csrf})
        assert ok.status_code == 303 and ok.headers["location"] == "/queue"
        assert item_status(ws, item_id) == ("snoozed", dt.date.fromisoformat(until))
        # The CSV of the queue is this CSM's own.
        csv = c.get("/queue.csv")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        owners = {line.split(",")[6] for line in csv.text.splitlines()[1:]}
        assert owners == {ws.csm_name}
    finally:
        c.close()


def test_a_csm_cannot_act_on_another_book_or_open_admin_pages(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    store = Store(ws.ws.state_url)
    try:
        with store.transaction() as s:
            other = s.scalars(
                select(WorkItem.id).where(
                    WorkItem.status == "open", WorkItem.owner != ws.csm_name, WorkItem.team == "csm"
                )
            ).first()
    finally:
        store.close()
    assert other is not None
    c, csrf = _session(server, ws.csm_token)
    try:
        r = c.post(f"/queue/items/{other}/close", data={"reason": "x", "csrf_token": csrf})
        assert r.status_code == 403
        # The owner filter is the admin's: a CSM's queue stays its own.
        assert f'id="item-{other}"' not in c.get("/queue", params={"owner": "csm"}).text
        for path in ("/capacity", "/model-choice"):
            page = c.get(path)
            assert page.status_code == 403 and "admin" in page.text
        assert c.get("/model").status_code == 200
    finally:
        c.close()
    assert item_status(ws, other)[0] == "open"


def test_an_invalid_model_file_shows_its_problems(
    browser: Any,  # noqa: F811
    built: ServedWorkspace,
    tmp_path: Path,
) -> None:
    copy = copy_workspace(built, tmp_path / "ws")
    model = copy.ws.root / "model.yaml"
    model.write_text(model.read_text().replace("weight:", "weigth:", 1))
    with live_server(copy.ws) as server:
        page = signed_in(browser, server.url, copy.admin_token)
        watch = Watch(page)
        open_page(page, "/model")
        assert page.locator("h1").inner_text() == "Touch model: invalid"
        problems = page.locator("#model-problems li").all_inner_texts()
        assert any("weigth" in p and "unknown key" in p for p in problems)
        assert watch.problems == []
        # The capacity page cannot plan with it, and says why instead of failing.
        page.goto("/capacity")
        assert "problem(s) in the touch-model file" in page.locator("#plan-error").inner_text()
        page.context.close()


def test_model_text_is_escaped(
    browser: Any,  # noqa: F811
    built: ServedWorkspace,
    tmp_path: Path,
) -> None:
    copy = copy_workspace(built, tmp_path / "ws")
    model = copy.ws.root / "model.yaml"
    evil = "<img src=x id=injected>"
    model.write_text(re.sub(r"(?m)^name: .*$", f'name: "{evil}"', model.read_text(), count=1))
    with live_server(copy.ws) as server:
        page = signed_in(browser, server.url, copy.csm_token)
        open_page(page, "/model")
        assert page.locator("h1").inner_text() == f"Touch model: {evil}"
        assert page.locator("#injected").count() == 0
        page.context.close()

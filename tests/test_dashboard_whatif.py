"""The dashboard's what-if form, over real HTTP and in Chromium: the table, errors, nothing saved."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.browser import browser, signed_in  # noqa: F401  (the fixture)
from tests.live_server import LiveServer, live_server
from tests.test_ops_day import SETTLED, account, write_csv
from touchmodel.access.keys import create_key
from touchmodel.state.db import Store
from touchmodel.state.tables import Run
from touchmodel.workspace import Workspace, init_workspace

# 4 accounts at $120K and 2 at $200K are high tier; high from $150K leaves 2 of 10.
ARR = [120_000.0] * 4 + [200_000.0] * 2 + [30_000.0] * 4


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Workspace, LiveServer, dict[str, str]]]:
    root = tmp_path_factory.mktemp("dash-whatif")
    ws = init_workspace(root / "ws")
    assert ws.data_path is not None
    write_csv(
        ws.data_path / "accounts.csv", [account(f"A{i}", a, SETTLED) for i, a in enumerate(ARR)]
    )
    store = Store(ws.state_url)
    try:
        tokens = {
            "admin": create_key(store, "api", role="admin", label="admin").secret,
            "csm": create_key(store, "api", role="csm", csm="Dana Reyes").secret,
        }
    finally:
        store.close()
    with live_server(ws) as server:
        yield ws, server, tokens


@contextmanager
def _signed_in(server: LiveServer, token: str) -> Iterator[tuple[httpx.Client, str]]:
    with httpx.Client(base_url=server.url, timeout=60) as c:
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text)
        assert csrf is not None
        c.post("/login", data={"token": token, "csrf_token": csrf.group(1)})
        found = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/whatif").text)
        yield c, found.group(1) if found else ""


def _files(ws: Workspace) -> dict[Path, bytes]:
    # The state database changes with every sign-in; what it holds is checked apart.
    return {
        p: p.read_bytes()
        for p in ws.root.rglob("*")
        if p.is_file() and not p.name.startswith("state.db")
    }


def _cells(html: str) -> dict[str, list[str]]:
    rows = re.findall(r"<tr><td>([^<]+)</td>((?:<td class=\"num\">[^<]*</td>)+)</tr>", html)
    return {k: re.findall(r'<td class="num">([^<]*)</td>', v) for k, v in rows}


def test_the_form_answers_with_the_before_after_table_and_saves_nothing(
    served: tuple[Workspace, LiveServer, dict[str, str]],
) -> None:
    ws, server, tokens = served
    files = _files(ws)
    with _signed_in(server, tokens["admin"]) as (c, csrf):
        page = c.get("/whatif")
        assert page.status_code == 200 and 'id="whatif-form"' in page.text
        r = c.post(
            "/whatif",
            data={"settings": "tiers[high].band.min=150000\n\n", "csrf_token": csrf},
        )
        assert r.status_code == 200, r.text
        cells = _cells(r.text)
        assert cells["tier mix: high"][:3] == ["60.0%", "20.0%", "-40.0 pts"]
        assert cells["tier mix: medium"][:2] == ["40.0%", "80.0%"]
        assert "tiers[medium].band.max" in r.text and "moved with it" in r.text
        # htmx gets the fragment only.
        frag = c.post(
            "/whatif",
            data={"settings": "tiers[high].band.min=150000", "csrf_token": csrf},
            headers={"HX-Request": "true"},
        )
        assert frag.status_code == 200 and "<html" not in frag.text and "whatif-table" in frag.text
    assert _files(ws) == files  # the model, team, data: as they were; no run folder
    store = Store(ws.state_url)
    try:
        with store.transaction() as s:
            assert s.scalar(select(func.count()).select_from(Run)) == 0  # no run recorded
    finally:
        store.close()


def test_a_bad_setting_is_shown_in_the_form_and_csms_are_refused(
    served: tuple[Workspace, LiveServer, dict[str, str]],
) -> None:
    _, server, tokens = served
    with _signed_in(server, tokens["admin"]) as (c, csrf):
        r = c.post("/whatif", data={"settings": "tiers[gold].band.min=1", "csrf_token": csrf})
        assert r.status_code == 400
        assert "tiers[gold] -- no such item" in r.text and 'id="whatif-error"' in r.text
        r = c.post("/whatif", data={"settings": "", "csrf_token": csrf})
        assert r.status_code == 400 and "give at least one PATH=VALUE" in r.text
        assert c.post("/whatif", data={"settings": "x=1"}).status_code == 403  # no CSRF token
    with _signed_in(server, tokens["csm"]) as (c, csrf):
        assert c.get("/whatif").status_code == 403
        assert c.post("/whatif", data={"settings": "x=1", "csrf_token": csrf}).status_code == 403


def test_the_form_in_chromium(
    served: tuple[Workspace, LiveServer, dict[str, str]],
    browser: object,  # noqa: F811
) -> None:
    _, server, tokens = served
    page = signed_in(browser, server.url, tokens["admin"])
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)  # type: ignore[attr-defined]
    page.goto("/whatif")  # type: ignore[attr-defined]
    page.fill("#settings", "tiers[high].band.min=150000")  # type: ignore[attr-defined]
    page.click("#whatif-form button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_selector("#whatif-table")  # type: ignore[attr-defined]
    row = page.locator("#whatif-table tr", has_text="tier mix: high").inner_text()  # type: ignore[attr-defined]
    assert "60.0%" in row and "20.0%" in row
    assert page.url.endswith("/whatif")  # type: ignore[attr-defined]  (swapped in place)
    assert problems == []

"""Inputs a fresh-eyes review found to reach a 500 or to outlive a sign-out: all refused now."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live_server import (
    LiveServer,
    ServedWorkspace,
    build_workspace,
    copy_workspace,
    live_server,
)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ServedWorkspace:
    return build_workspace(tmp_path_factory.mktemp("hardening") / "ws", accounts=80)


@pytest.fixture
def served(built: ServedWorkspace, tmp_path: Path) -> Iterator[tuple[ServedWorkspace, LiveServer]]:
    copy = copy_workspace(built, tmp_path / "ws")
    with live_server(copy.ws) as server:
        yield copy, server


def one_shape(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"status", "code", "message", "details"} and error["status"] == status
    return str(error["message"])


def csrf_of(client: httpx.Client, path: str = "/login") -> str:
    return client.get(path).text.split('name="csrf_token" value="')[1].split('"')[0]


def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    with httpx.Client(base_url=server.url) as client:
        csrf = csrf_of(client)
        assert (
            client.post("/login", data={"token": ws.csm_token, "csrf_token": csrf}).status_code
            == 303
        )
        stolen = dict(client.cookies)
        assert client.get("/queue").status_code == 200
        page_csrf = csrf_of(client, "/queue")
        assert client.post("/logout", data={"csrf_token": page_csrf}).status_code == 303
    with httpx.Client(base_url=server.url, cookies=stolen) as replay:
        r = replay.get("/queue")
        assert r.status_code == 303 and r.headers["location"] == "/login"


def test_a_non_ascii_csrf_token_is_a_403_not_a_500(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    with httpx.Client(base_url=server.url) as client:
        client.get("/login")
        r = client.post("/login", data={"token": ws.admin_token, "csrf_token": "é"})
        assert r.status_code == 403
        r = client.post(
            "/login",
            data={"token": ws.admin_token},
            headers={"X-CSRF-Token": b"\xe9"},
        )
        assert r.status_code == 403


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/work-items/99999999999999999999999"),
        ("GET", "/api/work-items/2147483648"),
        ("POST", "/api/work-items/2147483648/close"),
        ("GET", "/api/runs/2147483648"),
        ("GET", "/api/work-items?owner=%00"),
        ("GET", "/api/work-items?account_id=a%00"),
        ("GET", "/api/touchpoints?channel=%00"),
        ("GET", "/api/accounts/x%00y/events"),
    ],
)
def test_ids_past_the_columns_and_nul_in_filters_are_422(
    served: tuple[ServedWorkspace, LiveServer], method: str, path: str
) -> None:
    ws, server = served
    auth = {"Authorization": f"Bearer {ws.admin_token}"}
    r = httpx.request(method, server.url + path, headers=auth, json={"reason": "x"})
    one_shape(r, 422)


def test_a_cursor_out_of_range_is_a_400(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    auth = {"Authorization": f"Bearer {ws.admin_token}"}
    account = httpx.get(server.url + "/api/accounts?limit=1", headers=auth).json()["accounts"][0]
    for raw in ("2020-01-01T00:00:00|99999999999999999999999", "0001-01-01T00:00:00+01:00|1"):
        cursor = base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
        r = httpx.get(
            f"{server.url}/api/accounts/{account['account_id']}/events",
            params={"before": cursor},
            headers=auth,
        )
        one_shape(r, 400)


def test_nan_and_deep_nesting_are_refused_before_they_are_stored(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    auth = (ws.write_key, "")
    nan = b'{"userId": "u1", "event": "e", "properties": {"v": NaN}}'
    assert "NaN" in one_shape(httpx.post(server.url + "/v1/track", content=nan, auth=auth), 400)
    deep = (
        b'{"userId": "u1", "event": "e", "properties": {"groupId": "A", "x": '
        + b"[" * 400
        + b"]" * 400
        + b"}}"
    )
    message = one_shape(httpx.post(server.url + "/v1/track", content=deep, auth=auth), 400)
    assert "levels" in message


def test_deeply_nested_yaml_is_an_invalid_model_not_a_500(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    r = httpx.post(
        server.url + "/api/model/check",
        content=b"[" * 50_000,
        headers={"Authorization": f"Bearer {ws.csm_token}", "Content-Type": "application/yaml"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["valid"] is False and "nested too deeply" in r.json()["problems"][0]


def test_only_the_built_front_end_files_are_served_and_csm_runs_hide_server_paths(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    assert httpx.get(server.url + "/static/vendor/chart.js/dist/chart.umd.js").status_code == 200
    assert httpx.get(server.url + "/static/vendor/htmx.org/package.json").status_code == 404
    runs = httpx.get(
        server.url + "/api/runs", headers={"Authorization": f"Bearer {ws.admin_token}"}
    ).json()
    run_id = runs["runs"][0]["id"] if isinstance(runs, dict) else runs[0]["id"]
    for token, visible in ((ws.admin_token, True), (ws.csm_token, False)):
        detail = httpx.get(
            f"{server.url}/api/runs/{run_id}", headers={"Authorization": f"Bearer {token}"}
        ).json()
        assert bool(detail["data_path"]) is visible


def test_the_queue_shows_one_accounts_items_from_the_account_page_link(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    auth = {"Authorization": f"Bearer {ws.admin_token}"}
    items = httpx.get(server.url + "/api/work-items?limit=1000", headers=auth).json()["items"]
    account = items[0]["account_id"]
    mine = {i["id"] for i in items if i["account_id"] == account}
    with httpx.Client(base_url=server.url) as client:
        csrf = csrf_of(client)
        client.post("/login", data={"token": ws.admin_token, "csrf_token": csrf})
        assert f"/queue?account={account}" in client.get(f"/accounts/{account}").text
        page = client.get("/queue", params={"account": account}).text
    shown = {int(part.split('"')[0]) for part in page.split('id="item-')[1:]}
    assert shown == mine


def test_an_error_page_keeps_the_navigation_for_a_signed_in_user(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    auth = {"Authorization": f"Bearer {ws.admin_token}"}
    accounts = httpx.get(server.url + "/api/accounts?limit=1000", headers=auth).json()["accounts"]
    other = next(a["account_id"] for a in accounts if a.get("csm") != ws.csm_name)
    with httpx.Client(base_url=server.url) as client:
        anonymous = client.get(f"/accounts/{other}")
        assert anonymous.status_code == 303  # not signed in: to the login page
        csrf = csrf_of(client)
        client.post("/login", data={"token": ws.csm_token, "csrf_token": csrf})
        # A browser asks for HTML (a program asking for anything else gets JSON).
        page = client.get(f"/accounts/{other}", headers={"Accept": "text/html"})
    assert page.status_code == 403
    assert 'href="/queue"' in page.text and "Sign out" in page.text

"""The server's shared parts over real HTTP: health, keys, the one error shape, sessions."""

from __future__ import annotations

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
from touchmodel.access.keys import create_key, revoke_key
from touchmodel.state.db import Store


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ServedWorkspace:
    return build_workspace(tmp_path_factory.mktemp("served") / "ws")


@pytest.fixture
def served(built: ServedWorkspace, tmp_path: Path) -> Iterator[tuple[ServedWorkspace, LiveServer]]:
    copy = copy_workspace(built, tmp_path / "ws")
    with live_server(copy.ws) as server:
        yield copy, server


def test_health_needs_no_key(served: tuple[ServedWorkspace, LiveServer]) -> None:
    _ws, server = served
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    assert httpx.get(server.url + "/readyz").json() == {"status": "ok"}


def test_openapi_is_published(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    # Like every route but the health checks, the schema needs a key.
    assert httpx.get(server.url + "/api/openapi.json").status_code == 401
    auth = {"Authorization": f"Bearer {ws.admin_token}"}
    spec = httpx.get(server.url + "/api/openapi.json", headers=auth).json()
    assert spec["info"]["title"] == "touchmodel"
    assert httpx.get(server.url + "/api/docs", headers=auth).status_code == 404


def test_unknown_api_path_is_a_404_in_the_one_shape(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    _ws, server = served
    r = httpx.get(server.url + "/api/no-such-thing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "not_found"
    assert set(r.json()["error"]) == {"status", "code", "message", "details"}


def test_dashboard_redirects_to_login_and_a_token_signs_in(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    with httpx.Client(base_url=server.url) as client:
        login = client.get("/login")
        assert login.status_code == 200
        assert "default-src 'self'" in login.headers["content-security-policy"]
        token = login.text.split('name="csrf_token" value="')[1].split('"')[0]
        # Without the CSRF token the sign-in is refused.
        refused = client.post("/login", data={"token": ws.admin_token})
        assert refused.status_code == 403
        wrong = client.post("/login", data={"token": "tm_api_nope", "csrf_token": token})
        assert wrong.status_code == 401 and "not a live API token" in wrong.text
        ok = client.post("/login", data={"token": ws.admin_token, "csrf_token": token})
        assert ok.status_code == 303 and ok.headers["location"] == "/"


def test_a_write_key_is_not_an_api_token_and_a_revoked_key_stops_working(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    store = Store(ws.ws.state_url)
    try:
        new = create_key(store, "api", role="admin")
        revoke_key(store, new.id)
        with pytest.raises(Exception, match="write keys only send events"):
            create_key(store, "write", role="admin")
        with pytest.raises(Exception, match="needs the CSM"):
            create_key(store, "api", role="csm")
    finally:
        store.close()
    with httpx.Client(base_url=server.url) as client:
        for token, says in ((new.secret, "not a live API token"), (ws.write_key, "write key")):
            assert client.get("/login").status_code == 200
            csrf = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
            r = client.post("/login", data={"token": token, "csrf_token": csrf})
            assert r.status_code == 401 and says in r.text


def test_the_server_runs_on_either_state_database(state_url: str, tmp_path: Path) -> None:
    """PostgreSQL in production, SQLite by default: the same keys, sessions and answers."""
    built = build_workspace(tmp_path / "ws", accounts=60, state_url=state_url)
    with live_server(built.ws) as server:
        assert httpx.get(server.url + "/readyz").json() == {"status": "ok"}
        for token, status in ((built.csm_token, 303), (built.write_key, 401)):
            with httpx.Client(base_url=server.url) as client:
                page = client.get("/login").text
                csrf = page.split('name="csrf_token" value="')[1].split('"')[0]
                r = client.post("/login", data={"token": token, "csrf_token": csrf})
                assert r.status_code == status

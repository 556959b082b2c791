"""Ingestion over real HTTP: the real Segment and RudderStack clients, auth, bad bodies, dedupe."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rudderstack.analytics.client import Client as RudderClient
from segment.analytics.client import Client as SegmentClient
from sqlalchemy import func, select

from tests.live_server import (
    LiveServer,
    ServedWorkspace,
    build_workspace,
    copy_workspace,
    live_server,
)
from touchmodel.access.keys import create_key, revoke_key
from touchmodel.state.db import Store
from touchmodel.state.tables import IngestedMessage

WHEN = dt.datetime(2026, 11, 5, 10, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ServedWorkspace:
    return build_workspace(tmp_path_factory.mktemp("ingest") / "ws", accounts=120)


@pytest.fixture
def served(built: ServedWorkspace, tmp_path: Path) -> Iterator[tuple[ServedWorkspace, LiveServer]]:
    copy = copy_workspace(built, tmp_path / "ws")
    with live_server(copy.ws) as server:
        yield copy, server


def stored(ws: ServedWorkspace) -> list[IngestedMessage]:
    store = Store(ws.ws.state_url)
    try:
        with store.transaction() as s:
            rows = list(s.scalars(select(IngestedMessage).order_by(IngestedMessage.id)))
            s.expunge_all()
            return rows
    finally:
        store.close()


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def track(i: int, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Report Exported",
        "userId": f"u{i}",
        "messageId": f"m-{i}",
        "timestamp": WHEN.isoformat(),
        "context": {"groupId": "A00001"},
        **extra,
    }


def assert_error(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message", "details"}
    assert body["error"]["status"] == status
    return body["error"]


@pytest.mark.parametrize("use_gzip", [False, True])
def test_segment_client_delivers_identify_group_track(
    served: tuple[ServedWorkspace, LiveServer], use_gzip: bool
) -> None:
    ws, server = served
    errors: list[Exception] = []
    client = SegmentClient(
        ws.write_key,
        host=server.url,
        sync_mode=True,
        gzip=use_gzip,
        on_error=lambda e, _batch: errors.append(e),
    )
    client.identify("seg-user", {"email": "ann@example.com", "name": "Ann"}, timestamp=WHEN)
    client.group("seg-user", "A00002", {"plan": "Enterprise"}, timestamp=WHEN)
    client.track("seg-user", "Dashboard Viewed", {"quantity": 3}, timestamp=WHEN)
    client.flush()
    assert errors == []
    rows = stored(ws)
    assert [r.type for r in rows] == ["identify", "group", "track"]
    assert rows[1].group_id == "A00002"
    assert rows[2].event == "Dashboard Viewed"
    # The whole message is kept as sent, library context included.
    assert rows[2].payload["context"]["library"]["name"] == "analytics-python"
    assert rows[2].payload["properties"] == {"quantity": 3}


@pytest.mark.parametrize("use_gzip", [False, True])
def test_rudderstack_client_delivers_identify_group_track(
    served: tuple[ServedWorkspace, LiveServer], use_gzip: bool
) -> None:
    ws, server = served
    errors: list[Exception] = []
    client = RudderClient(
        ws.write_key,
        host=server.url,
        sync_mode=True,
        gzip=use_gzip,
        on_error=lambda e, _batch: errors.append(e),
    )
    client.identify("rs-user", {"email": "bo@example.com"}, timestamp=WHEN)
    client.group("rs-user", "A00003", {"seats": 40}, timestamp=WHEN)
    client.track("rs-user", "Seat Added", {"groupId": "A00003"}, timestamp=WHEN)
    client.flush()
    assert errors == []
    rows = stored(ws)
    assert sorted(r.type for r in rows) == ["group", "identify", "track"]
    assert {r.group_id for r in rows if r.type != "identify"} == {"A00003"}


def test_the_same_batch_twice_is_stored_once(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    body = {"batch": [track(1), track(2), track(2)], "writeKey": ws.write_key}
    for _ in range(2):
        r = httpx.post(server.url + "/v1/batch", json=body)
        assert r.status_code == 200, r.text
        assert r.json() == {"success": True}
    assert sorted(r.message_id for r in stored(ws)) == ["m-1", "m-2"]


def test_a_message_without_message_id_dedupes_by_its_content(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    message = {k: v for k, v in track(1).items() if k != "messageId"}
    for _ in range(2):
        r = httpx.post(server.url + "/v1/track", json=message, headers=basic(ws.write_key))
        assert r.status_code == 200, r.text
    other = {**message, "event": "Something Else"}
    assert httpx.post(server.url + "/v1/track", json=other, headers=basic(ws.write_key)).is_success
    rows = stored(ws)
    assert len(rows) == 2
    assert all(r.message_id.startswith("tm-") for r in rows)


def test_single_calls_take_their_type_from_the_path(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    for path, body in [
        ("page", {"userId": "u", "name": "Pricing", "messageId": "p1"}),
        ("screen", {"anonymousId": "anon", "name": "Home", "messageId": "s1"}),
        ("identify", {"userId": "u", "traits": {"email": "x@example.com"}, "messageId": "i1"}),
        ("group", {"userId": "u", "groupId": "A00004", "traits": {}, "messageId": "g1"}),
        ("alias", {"userId": "u", "previousId": "anon", "messageId": "a1"}),
    ]:
        r = httpx.post(f"{server.url}/v1/{path}", json={**body, "writeKey": ws.write_key})
        assert r.status_code == 200, (path, r.text)
    assert [(r.type, r.event) for r in stored(ws)] == [
        ("page", "Pricing"), ("screen", "Home"), ("identify", None), ("group", None),
        ("alias", None),
    ]  # fmt: skip


def test_auth_failures_are_401_and_403(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    url = server.url + "/v1/batch"
    body = {"batch": [track(1)]}
    e = assert_error(httpx.post(url, json=body), 401)
    assert "write key" in e["message"]
    assert_error(httpx.post(url, json=body, headers=basic("tm_write_nope")), 401)
    assert_error(httpx.post(url, json={**body, "writeKey": "tm_write_nope"}), 401)
    assert_error(httpx.post(url, json=body, headers={"Authorization": "Basic %%%"}), 401)
    e = assert_error(httpx.post(url, json=body, headers=basic(ws.admin_token)), 403)
    assert "API token" in e["message"]
    assert_error(httpx.post(url, json={**body, "writeKey": ws.csm_token}), 403)
    store = Store(ws.ws.state_url)
    try:
        spare = create_key(store, "write", label="spare")
        revoke_key(store, spare.id)
    finally:
        store.close()
    assert_error(httpx.post(url, json=body, headers=basic(spare.secret)), 401)
    assert stored(ws) == []


def test_bad_bodies_are_400_in_the_one_shape(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    url = server.url + "/v1/batch"
    auth = {**basic(ws.write_key), "Content-Type": "application/json"}
    e = assert_error(httpx.post(url, content=b"{not json", headers=auth), 400)
    assert "not valid JSON" in e["message"]
    e = assert_error(
        httpx.post(url, content=b"garbage", headers={**auth, "Content-Encoding": "gzip"}), 400
    )
    assert "gzip" in e["message"]
    truncated = gzip.compress(json.dumps({"batch": [track(1)]}).encode())[:-12]
    assert_error(
        httpx.post(url, content=truncated, headers={**auth, "Content-Encoding": "gzip"}), 400
    )
    assert_error(httpx.post(url, content=b"{}", headers={**auth, "Content-Encoding": "br"}), 415)
    assert_error(httpx.post(url, content=b"", headers=auth), 400)
    assert_error(httpx.post(url, json=[1, 2], headers=auth), 400)
    lone = b'{"batch": [{"type": "track", "event": "\\udc00", "userId": "u"}]}'
    e = assert_error(httpx.post(url, content=lone, headers=auth), 400)
    assert "surrogate" in e["message"]
    pair = b'{"batch": [{"type": "track", "event": "\\ud83d\\ude00", "userId": "u"}]}'
    assert httpx.post(url, content=pair, headers=auth).status_code == 200
    e = assert_error(httpx.post(url, json={"batch": "x"}, headers=auth), 400)
    assert e["details"][0]["field"] == "batch"
    assert [r.event for r in stored(ws)] == ["\U0001f600"]  # only the valid pair


def test_every_problem_of_a_batch_is_listed_with_its_path_and_nothing_is_stored(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    batch = [
        track(0),
        {"type": "track", "userId": "u", "messageId": "x1"},  # no event
        {"type": "group", "userId": "u", "messageId": "x2"},  # no groupId
        {"type": "track", "event": "E", "messageId": "x3"},  # no user
        track(4, timestamp="yesterday"),
        {"type": "launch", "userId": "u"},
        "not an object",
    ]
    e = assert_error(
        httpx.post(server.url + "/v1/batch", json={"batch": batch}, headers=basic(ws.write_key)),
        400,
    )
    fields = [d["field"] for d in e["details"]]
    assert fields == [
        "batch[1].event", "batch[2].groupId", "batch[3].userId", "batch[4].timestamp",
        "batch[5].type", "batch[6]",
    ]  # fmt: skip
    assert "nothing was stored" in e["message"]
    assert stored(ws) == []


def test_size_limits_like_segment(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    url = server.url + "/v1/batch"
    big = track(7, properties={"blob": "x" * (33 * 1024)})
    e = assert_error(
        httpx.post(url, json={"batch": [track(1), big]}, headers=basic(ws.write_key)), 400
    )
    assert e["details"][0]["field"] == "batch[1]"
    assert "32 KB" in e["details"][0]["reason"]
    # 520 KB of messages under 32 KB each: the batch is over 500 KB.
    many = [track(i, properties={"blob": "y" * 20_000}) for i in range(26)]
    e = assert_error(httpx.post(url, json={"batch": many}, headers=basic(ws.write_key)), 400)
    assert "500 KB" in e["message"]
    # A zip bomb stops at the limit: 50 MB of zeros is about 50 KB gzipped.
    bomb = gzip.compress(b'{"batch": ["' + b"0" * 50_000_000 + b'"]}')
    e = assert_error(
        httpx.post(url, content=bomb, headers={**basic(ws.write_key), "Content-Encoding": "gzip"}),
        400,
    )
    assert "decompressed" in e["message"]
    assert stored(ws) == []


def _close_after_forwarding(target_port: int, drops: int) -> tuple[int, list[int]]:
    """A loopback proxy that forwards each request but drops the first ``drops`` answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[int] = []

    def handle(conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(rest) < length:
                rest += conn.recv(65536)
            head = head.replace(b"keep-alive", b"close")
            with socket.create_connection(("127.0.0.1", target_port)) as up:
                up.sendall(head + b"\r\nConnection: close\r\n\r\n" + rest)
                answer = b""
                while chunk := up.recv(65536):
                    answer += chunk
            seen.append(len(seen))
            if len(seen) > drops:
                conn.sendall(answer)
            # else: the request reached the server and was stored, but the client never
            # hears back (a dropped connection), so it must retry.

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return port, seen


def test_a_real_client_retry_after_a_lost_answer_stores_nothing_twice(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    port, seen = _close_after_forwarding(server.port, drops=1)
    errors: list[Exception] = []
    client = SegmentClient(
        ws.write_key,
        host=f"http://127.0.0.1:{port}",
        # The consumer thread is what retries (sync_mode posts once); flush() waits for it.
        sync_mode=False,
        upload_interval=0.05,
        on_error=lambda e, _batch: errors.append(e),
    )
    client.track("retry-user", "Exported", {"n": 1}, timestamp=WHEN)
    client.track("retry-user", "Exported", {"n": 2}, timestamp=WHEN)
    client.flush()
    client.join()
    assert errors == []
    assert len(seen) >= 2, "the client retried after the dropped answer"
    rows = stored(ws)
    assert [r.payload["properties"]["n"] for r in rows] == [1, 2]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
message_like = st.fixed_dictionaries(
    {},
    optional={
        "type": st.sampled_from(["track", "identify", "group", "page", "screen", "alias", "x"])
        | json_values,
        "userId": st.text(max_size=5) | json_values,
        "anonymousId": json_values,
        "event": st.text(max_size=5) | json_values,
        "groupId": json_values,
        "messageId": st.text(max_size=5) | json_values,
        "timestamp": st.datetimes().map(lambda d: d.isoformat()) | json_values,
        "properties": json_values,
        "context": json_values,
    },
)
bodies = (
    json_values
    | st.fixed_dictionaries({"batch": st.lists(message_like | json_values, max_size=4)})
    | message_like
)


@pytest.fixture(scope="module")
def shared_server(
    built: ServedWorkspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServedWorkspace, LiveServer]]:
    copy = copy_workspace(built, tmp_path_factory.mktemp("prop") / "ws")
    with live_server(copy.ws) as server:
        yield copy, server


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, path=st.sampled_from(["batch", "track", "group", "page"]), zipped=st.booleans())
def test_arbitrary_json_never_gives_a_5xx(
    shared_server: tuple[ServedWorkspace, LiveServer], body: Any, path: str, zipped: bool
) -> None:
    ws, server = shared_server
    raw = json.dumps(body).encode()
    headers = {**basic(ws.write_key), "Content-Type": "application/json"}
    if zipped:
        raw = gzip.compress(raw)
        headers["Content-Encoding"] = "gzip"
    r = httpx.post(f"{server.url}/v1/{path}", content=raw, headers=headers)
    assert r.status_code < 500, r.text
    if r.status_code != 200:
        assert set(r.json()["error"]) == {"status", "code", "message", "details"}


def test_events_route_pages_newest_first_and_keeps_roles(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    store = Store(ws.ws.state_url)
    try:
        from touchmodel.state.tables import Assignment

        with store.transaction() as s:
            mine = s.scalars(
                select(Assignment.account_id).where(Assignment.csm == ws.csm_name)
            ).first()
            other = s.scalars(
                select(Assignment.account_id).where(Assignment.csm != ws.csm_name)
            ).first()
            assert s.scalar(select(func.count()).select_from(IngestedMessage)) == 0
    finally:
        store.close()
    assert mine and other
    batch = [
        {**track(i), "context": {"groupId": mine},
         "timestamp": (WHEN + dt.timedelta(minutes=i)).isoformat()}
        for i in range(7)
    ] + [{**track(99), "context": {"groupId": other}}]  # fmt: skip
    batch.append({"type": "group", "userId": "joiner", "groupId": mine, "messageId": "g",
                  "timestamp": WHEN.isoformat(), "traits": {"plan": "Pro"}})  # fmt: skip
    batch.append({"type": "track", "userId": "joiner", "event": "Joined", "messageId": "j",
                  "timestamp": (WHEN + dt.timedelta(hours=1)).isoformat()})  # fmt: skip
    assert httpx.post(
        server.url + "/v1/batch", json={"batch": batch}, headers=basic(ws.write_key)
    ).is_success

    admin = {"Authorization": f"Bearer {ws.admin_token}"}
    url = f"{server.url}/api/accounts/{mine}/events"
    seen: list[dict[str, Any]] = []
    before = None
    while True:
        params: dict[str, Any] = {"limit": 4}
        if before:
            params["before"] = before
        r = httpx.get(url, params=params, headers=admin)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += page["events"]
        before = page["next_before"]
        if before is None:
            break
    assert len(seen) == 9  # 7 tracks, the group call and the user's track without groupId
    stamps = [e["timestamp"] for e in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert seen[0]["event"] == "Joined" and seen[0]["userId"] == "joiner"
    assert {e["messageId"] for e in seen} >= {"m-0", "m-6", "g", "j"}
    assert seen[1]["properties"] == {} and seen[1]["receivedAt"]
    group_row = next(e for e in seen if e["type"] == "group")
    assert group_row["traits"] == {"plan": "Pro"}

    csm = {"Authorization": f"Bearer {ws.csm_token}"}
    assert httpx.get(url, headers=csm).status_code == 200
    assert_error(httpx.get(f"{server.url}/api/accounts/{other}/events", headers=csm), 403)
    assert_error(httpx.get(f"{server.url}/api/accounts/NOPE/events", headers=admin), 404)
    assert_error(httpx.get(url), 401)
    assert_error(httpx.get(url, headers={"Authorization": f"Bearer {ws.write_key}"}), 403)
    assert_error(httpx.get(url, params={"limit": 501}, headers=admin), 422)
    assert_error(httpx.get(url, params={"limit": 0}, headers=admin), 422)
    assert_error(httpx.get(url, params={"before": "!!notacursor"}, headers=admin), 400)

"""The keyed insert and the run feed on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from pathlib import Path
from typing import Any

import httpx
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from tests.live_server import build_workspace, live_server
from touchmodel.access.keys import create_key
from touchmodel.ingest.feed import ingested_input
from touchmodel.ingest.messages import IngestError, parse_batch
from touchmodel.ingest.store import store_messages
from touchmodel.state.db import Store
from touchmodel.state.tables import IngestedMessage, utcnow

WHEN = dt.datetime(2026, 11, 5, 12, tzinfo=dt.UTC)


def batch(n: int, prefix: str = "m", **extra: Any) -> dict[str, Any]:
    return {
        "batch": [
            {"type": "track", "event": "e", "userId": f"u{i}", "messageId": f"{prefix}{i}",
             "timestamp": (WHEN + dt.timedelta(minutes=i)).isoformat(), **extra}
            for i in range(n)
        ]
    }  # fmt: skip


def count(store: Store) -> int:
    with store.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(IngestedMessage)) or 0)


def test_a_resent_batch_stores_nothing_twice_even_concurrently(state_url: str) -> None:
    store = Store(state_url)
    try:
        key = create_key(store, "write")
        other = create_key(store, "write")
        messages = parse_batch(batch(50), single=None, received_at=utcnow())

        def send(key_id: int) -> None:
            with store.transaction() as s:
                store_messages(s, key_id, messages, utcnow())

        threads = [threading.Thread(target=send, args=(key.id,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert count(store) == 50
        # The same ids from another source are other messages.
        send(other.id)
        assert count(store) == 100
    finally:
        store.close()


def test_the_feed_reads_messages_up_to_the_run_date(state_url: str) -> None:
    store = Store(state_url)
    try:
        key = create_key(store, "write")
        body = batch(3, context={"groupId": "ACC-1"})
        body["batch"].append(
            {"type": "track", "event": "late", "userId": "u9", "messageId": "late",
             "timestamp": "2026-11-06T00:00:00Z", "context": {"groupId": "ACC-1"}}
        )  # fmt: skip
        body["batch"].append(
            {"type": "group", "userId": "u7", "groupId": "ACC-2", "messageId": "g",
             "timestamp": WHEN.isoformat(), "traits": {"plan": "pro", "seats": 9}}
        )  # fmt: skip
        body["batch"].append(
            {"type": "page", "userId": "u7", "messageId": "p", "timestamp": WHEN.isoformat(),
             "properties": {"quantity": 4}}
        )  # fmt: skip
        with store.transaction() as s:
            store_messages(
                s, key.id, parse_batch(body, single=None, received_at=utcnow()), utcnow()
            )
        fed = ingested_input(store, dt.date(2026, 11, 5))
    finally:
        store.close()
    rows = fed.usage.to_pylist()
    assert [r["account_id"] for r in rows] == ["ACC-1", "ACC-1", "ACC-1", "ACC-2"]
    assert rows[0]["timestamp"] == "2026-11-05 12:00:00.000000"
    assert (rows[3]["event"], rows[3]["quantity"], rows[3]["user_id"]) == ("page", "4", "u7")
    assert rows[0]["quantity"] == "1"
    assert fed.groups.to_pylist()[0]["plan"] == "pro"
    assert fed.groups.to_pylist()[0]["seats"] == "9"
    assert fed.unmapped == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
    max_leaves=15,
)


@settings(max_examples=300, deadline=None)
@given(
    body=json_values
    | st.fixed_dictionaries(
        {
            "batch": st.lists(
                st.dictionaries(
                    st.sampled_from(
                        [
                            "type",
                            "userId",
                            "anonymousId",
                            "event",
                            "groupId",
                            "messageId",
                            "timestamp",
                            "properties",
                            "traits",
                            "context",
                            "name",
                            "previousId",
                        ]
                    ),
                    json_values,
                ),
                max_size=4,
            )
        }
    ),
    single=st.sampled_from([None, "track", "group", "page", "identify"]),
)
def test_any_json_is_either_messages_or_an_ingest_error(body: Any, single: str | None) -> None:
    try:
        messages = parse_batch(body, single=single, received_at=WHEN)
    except IngestError as exc:
        assert exc.status == 400
        assert exc.details or exc.message
        return
    for m in messages:
        assert m.type in ("track", "identify", "group", "page", "screen", "alias")
        assert m.user_id or m.anonymous_id
        assert m.timestamp.tzinfo is not None
        assert 0 < len(m.message_id) <= 200


def test_ingestion_over_http_on_either_database(tmp_path: Path, state_url: str) -> None:
    ws = build_workspace(tmp_path / "ws", accounts=40, state_url=state_url)
    auth = {"Authorization": "Basic " + base64.b64encode(f"{ws.write_key}:".encode()).decode()}
    with live_server(ws.ws) as server:
        for _ in range(2):
            r = httpx.post(server.url + "/v1/batch", json=batch(30), headers=auth)
            assert r.status_code == 200, r.text
        # Text PostgreSQL cannot store is a 400, not a database error.
        for raw in (
            b'{"batch": [{"type": "track", "event": "a\\u0000b", "userId": "u"}]}',
            b'{"batch": [{"type": "track", "event": "e", "userId": "u",'
            b' "context": {"groupId": "x\\u0000"}}]}',
            b'{"batch": [{"type": "track", "event": "\\ud800", "userId": "u"}]}',
        ):
            r = httpx.post(server.url + "/v1/batch", content=raw, headers=auth)
            assert r.status_code == 400, r.text
        # NUL inside properties is fine in the JSON payload column.
        r = httpx.post(
            server.url + "/v1/batch",
            content=b'{"batch": [{"type": "track", "event": "e", "userId": "u", "messageId":'
            b' "nul", "properties": {"a": "x\\u0000y"}}]}',
            headers=auth,
        )
        assert r.status_code == 200, r.text
        r = httpx.get(
            server.url + "/api/accounts/NOPE/events",
            headers={"Authorization": f"Bearer {ws.admin_token}"},
        )
        assert r.status_code == 404
    store = Store(ws.ws.state_url)
    try:
        assert count(store) == 31
    finally:
        store.close()

"""/v1 bodies an outside review found stored wrongly or answered with a 500, over real HTTP.

Each test sends what the review sent: a batch context that multiplies every
message, lone surrogates as raw bytes or in a UTF-16 body, numbers too large
to be finite, and gzip bodies of several members or with garbage after them.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.live_server import LiveServer, ServedWorkspace, build_workspace, live_server
from touchmodel.state.db import Store
from touchmodel.state.tables import IngestedMessage


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServedWorkspace, LiveServer]]:
    built = build_workspace(tmp_path_factory.mktemp("ingest-hardening") / "ws", accounts=40)
    with live_server(built.ws) as server:
        yield built, server


def post(served: tuple[ServedWorkspace, LiveServer], body: bytes, **headers: str) -> httpx.Response:
    ws, server = served
    auth = base64.b64encode(f"{ws.write_key}:".encode()).decode()
    return httpx.post(
        server.url + "/v1/batch",
        content=body,
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json", **headers},
        timeout=30,
    )


def error_of(r: httpx.Response, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert set(error) == {"status", "code", "message", "details"} and error["status"] == status
    return dict(error)


def track(message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Report Exported",
        "userId": "u1",
        "messageId": message_id,
        "timestamp": "2026-11-05T10:00:00Z",
        **extra,
    }


def stored(ws: ServedWorkspace, *message_ids: str) -> list[IngestedMessage]:
    store = Store(ws.ws.state_url)
    try:
        with store.transaction() as s:
            rows = list(
                s.scalars(
                    select(IngestedMessage)
                    .where(IngestedMessage.message_id.in_(message_ids))
                    .order_by(IngestedMessage.id)
                )
            )
            s.expunge_all()
            return rows
    finally:
        store.close()


def test_a_batch_context_counts_towards_each_messages_size(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    """Issue 12.3: 400 KB of context and tiny messages would store 400 KB per message."""
    ids = [f"ctx-{i}" for i in range(20)]
    body = {"context": {"pad": "x" * 400_000}, "batch": [track(i) for i in ids]}
    e = error_of(post(served, json.dumps(body).encode()))
    assert len(e["details"]) == len(ids)
    assert e["details"][0]["field"] == "batch[0]"
    assert "with the batch's context" in e["details"][0]["reason"]
    assert "32 KB" in e["details"][0]["reason"]
    assert stored(served[0], *ids) == []
    # A small batch context is still merged into every message, as Segment does.
    body = {"context": {"library": {"name": "x"}, "groupId": "A1"}, "batch": [track("ctx-ok")]}
    assert post(served, json.dumps(body).encode()).status_code == 200
    (row,) = stored(served[0], "ctx-ok")
    assert row.payload["context"]["library"] == {"name": "x"} and row.group_id == "A1"


@pytest.mark.parametrize(
    ("body", "why"),
    [
        # A surrogate encoded as UTF-8 bytes (CESU-8): json.loads(bytes) would accept it.
        (b'{"batch": [{"type": "track", "event": "\xed\xa0\x80", "userId": "u"}]}', "UTF-8"),
        # The same JSON escape in a UTF-16 body: the escape check never saw "\ud800".
        (
            '{"batch": [{"type": "track", "event": "\\ud800", "userId": "u"}]}'.encode("utf-16"),
            "UTF-8",
        ),
        ('{"batch": [{"type": "track", "event": "é", "userId": "u"}]}'.encode("utf-16-le"), ""),
        (b'{"batch": [{"type": "track", "event": "caf\xe9", "userId": "u"}]}', "UTF-8"),
    ],
)
def test_lone_surrogates_and_bodies_not_in_utf8_are_400(
    served: tuple[ServedWorkspace, LiveServer], body: bytes, why: str
) -> None:
    """Issue 12.4: these were 500s, which Segment clients retry forever."""
    e = error_of(post(served, body))
    assert why in e["message"]


@pytest.mark.parametrize("number", ["1e999", "-1e999", "1E400", "NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["property", "messageId"])
def test_numbers_that_are_not_finite_are_refused_at_parse_time(
    served: tuple[ServedWorkspace, LiveServer], number: str, where: str
) -> None:
    """Issue 12.5: 1e999 was stored as Infinity, and a messageId of 1e999 as "inf"."""
    message_id = f"nonfinite-{where}-{number}"
    if where == "messageId":
        text = f'{{"batch": [{{"type": "track", "event": "e", "userId": "u", "messageId": {number}}}]}}'
    else:
        text = (
            f'{{"batch": [{{"type": "track", "event": "e", "userId": "u", '
            f'"messageId": "{message_id}", "properties": {{"v": {number}}}}}]}}'
        )
    e = error_of(post(served, text.encode()))
    assert "not valid JSON" in e["message"]
    assert stored(served[0], message_id, "inf", "-inf") == []
    # A large finite number is still a number.
    ok = track(f"finite-{where}-{number}", properties={"v": 1e308})
    assert post(served, json.dumps({"batch": [ok]}).encode()).status_code == 200


def test_every_gzip_member_is_read_and_trailing_garbage_refused(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    """Issue 12.6: a body split across members was a 400; garbage after one was ignored."""
    text = json.dumps({"batch": [track("gz-1"), track("gz-2")]}).encode()
    split = len(text) // 2
    members = gzip.compress(text[:split]) + gzip.compress(text[split:])
    r = post(served, members, **{"Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    assert [m.message_id for m in stored(served[0], "gz-1", "gz-2")] == ["gz-1", "gz-2"]

    whole = gzip.compress(json.dumps({"batch": [track("gz-3")]}).encode())
    for trailer in (gzip.compress(b"garbage")[:-4], b"garbage", b"\x1f\x8b\x08"):
        e = error_of(post(served, whole + trailer, **{"Content-Encoding": "gzip"}))
        assert "gzip" in e["message"]
    # A second member that is valid gzip but not JSON is read, and refused as JSON.
    e = error_of(post(served, whole + gzip.compress(b"garbage"), **{"Content-Encoding": "gzip"}))
    assert "not valid JSON" in e["message"]
    assert stored(served[0], "gz-3") == []
    # The size limit counts every member: two members of 300 KB are over 500 KB.
    pad = b" " * 300_000
    e = error_of(
        post(
            served,
            gzip.compress(text[:split] + pad) + gzip.compress(pad + text[split:]),
            **{"Content-Encoding": "gzip"},
        )
    )
    assert "decompressed" in e["message"]

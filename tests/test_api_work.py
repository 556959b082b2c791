"""REST API for work items, touchpoints, the plan, the model choice and the model, over real HTTP.

Every test talks to the real app under uvicorn on loopback (``live_server``)
on its own copy of a workspace with two completed daily runs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.live_server import (
    LiveServer,
    ServedWorkspace,
    build_workspace,
    copy_workspace,
    live_server,
)
from touchmodel.model.loader import preset_yaml
from touchmodel.state.db import Store
from touchmodel.state.tables import Assignment, Run, Touchpoint, WorkItem, WorkItemEvent

TODAY = dt.date.today()
LATER = (TODAY + dt.timedelta(days=10)).isoformat()


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ServedWorkspace:
    return build_workspace(tmp_path_factory.mktemp("api-work") / "ws")


@pytest.fixture
def served(built: ServedWorkspace, tmp_path: Path) -> Iterator[tuple[ServedWorkspace, LiveServer]]:
    copy = copy_workspace(built, tmp_path / "ws")
    with live_server(copy.ws) as server:
        yield copy, server


@pytest.fixture(scope="module")
def shared(
    built: ServedWorkspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServedWorkspace, LiveServer]]:
    """One server for the property tests (their examples share it)."""
    copy = copy_workspace(built, tmp_path_factory.mktemp("api-work-shared") / "ws")
    with live_server(copy.ws) as server:
        yield copy, server


def client(server: LiveServer, token: str | None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url, headers=headers, timeout=30)


def assert_error(r: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    """``r`` is a ``status`` answer in the one error shape."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    err = body["error"]
    assert set(err) == {"status", "code", "message", "details"}
    assert err["status"] == status and err["message"]
    if code is not None:
        assert err["code"] == code
    return err


def db(ws: ServedWorkspace) -> Store:
    return Store(ws.ws.state_url)


def book(ws: ServedWorkspace) -> set[str]:
    store = db(ws)
    try:
        with store.transaction() as s:
            return set(
                s.scalars(select(Assignment.account_id).where(Assignment.csm == ws.csm_name))
            )
    finally:
        store.close()


def foreign_open_item(ws: ServedWorkspace) -> int:
    """An open item of another CSM's account, owned by someone else."""
    mine = book(ws)
    store = db(ws)
    try:
        with store.transaction() as s:
            for item in s.scalars(select(WorkItem).where(WorkItem.status == "open")):
                if item.account_id not in mine and item.owner != ws.csm_name:
                    return item.id
    finally:
        store.close()
    raise AssertionError("the demo has items outside the CSM's book")


def own_open_items(ws: ServedWorkspace) -> list[int]:
    store = db(ws)
    try:
        with store.transaction() as s:
            return list(
                s.scalars(
                    select(WorkItem.id)
                    .where(WorkItem.status == "open", WorkItem.owner == ws.csm_name)
                    .order_by(WorkItem.id)
                )
            )
    finally:
        store.close()


# ---------------------------------------------------------------- auth

ROUTES = [
    ("GET", "/api/work-items", None),
    ("GET", "/api/work-items/1", None),
    ("POST", "/api/work-items/1/snooze", {"until": LATER, "reason": "x"}),
    ("POST", "/api/work-items/1/close", {"reason": "x"}),
    ("GET", "/api/touchpoints", None),
    ("GET", "/api/plan", None),
    ("POST", "/api/plan/model-choice", {"acv": 1}),
    ("GET", "/api/model", None),
]


def test_every_route_refuses_no_token_a_bad_token_and_a_write_key(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    for method, path, body in [*ROUTES, ("POST", "/api/model/check", None)]:
        for token, status in ((None, 401), ("tm_api_not-a-key", 401), (ws.write_key, 403)):
            with client(server, token) as c:
                r = c.request(method, path, json=body)
            err = assert_error(r, status)
            if status == 401:
                assert r.headers["www-authenticate"] == "Bearer"
            else:
                assert "write key" in err["message"]
    # Nothing changed on the way.
    store = db(ws)
    try:
        with store.transaction() as s:
            assert s.get(WorkItem, 1).status == "open"  # type: ignore[union-attr]
    finally:
        store.close()


def test_plan_and_model_choice_are_admin_only(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    with client(server, ws.csm_token) as c:
        assert_error(c.get("/api/plan"), 403, "forbidden")
        answers = {"acv": 25000, "complexity": "medium", "segment": "smb", "margin": 0.6}
        assert_error(c.post("/api/plan/model-choice", json=answers), 403, "forbidden")
        # Reading and checking the model is for both roles.
        assert c.get("/api/model").status_code == 200
        assert c.post("/api/model/check", content="name: x").status_code == 200


# ---------------------------------------------------------------- work items


def test_a_csm_lists_only_its_own_book_and_an_admin_everything(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    mine = book(ws)
    with client(server, ws.csm_token) as c:
        page = c.get("/api/work-items", params={"status": "all", "limit": 1000}).json()
    assert page["total"] == len(page["items"]) > 0
    for item in page["items"]:
        assert item["account_id"] in mine or item["owner"] == ws.csm_name
    with client(server, ws.admin_token) as c:
        everything = c.get("/api/work-items", params={"status": "all", "limit": 1000}).json()
    assert everything["total"] > page["total"]
    assert {i["owner"] for i in everything["items"]} - {
        ws.csm_name,
        *{i["owner"] for i in page["items"]},
    }


def test_list_filters_page_and_keep_the_queue_order(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    rank = {"urgent": 0, "high": 1, "normal": 2}
    with client(server, ws.admin_token) as c:
        whole = c.get("/api/work-items", params={"limit": 1000}).json()["items"]
        # Most expected ARR kept first (items without a value last), then priority, due, id.
        kept = [
            -(i["expected_arr_kept"] if i["expected_arr_kept"] is not None else -1) for i in whole
        ]
        keys = [
            (k, rank[i["priority"]], i["due"], i["id"]) for k, i in zip(kept, whole, strict=True)
        ]
        assert keys == sorted(keys)
        assert any(i["expected_arr_kept"] for i in whole)
        first = c.get("/api/work-items", params={"limit": 5}).json()
        second = c.get("/api/work-items", params={"limit": 5, "offset": 5}).json()
        assert [i["id"] for i in first["items"] + second["items"]] == [i["id"] for i in whole[:10]]
        assert first["total"] == len(whole)
        pick = whole[0]
        for name in ("owner", "account_id", "trigger"):
            got = c.get("/api/work-items", params={name: pick[name], "limit": 1000}).json()
            assert got["items"] and all(i[name] == pick[name] for i in got["items"])
            assert got["total"] == sum(1 for i in whole if i[name] == pick[name])
        due = pick["due"]
        window = c.get("/api/work-items", params={"due_from": due, "due_to": due}).json()
        assert window["total"] == sum(1 for i in whole if i["due"] == due)
        snoozed = c.get("/api/work-items", params={"status": "snoozed"}).json()
        assert all(i["status"] == "snoozed" for i in snoozed["items"])


def test_get_one_item_with_its_history(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    item_id = own_open_items(ws)[0]
    with client(server, ws.csm_token) as c:
        r = c.get(f"/api/work-items/{item_id}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == item_id and body["owner"] == ws.csm_name
    assert body["history"][0]["action"] == "created" and body["history"][0]["by"] == "touchmodel"


def test_a_csm_snoozes_and_closes_its_own_items_and_history_names_it(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    first, second = own_open_items(ws)[:2]
    with client(server, ws.csm_token) as c:
        r = c.post(f"/api/work-items/{first}/snooze", json={"until": LATER, "reason": "on leave"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["status"] == "snoozed" and body["snoozed_until"] == LATER
        assert body["history"][-1] == {
            "on": TODAY.isoformat(),
            "action": "snoozed",
            "reason": f"until {LATER}: on leave",
            "by": ws.csm_name,
        }
        r = c.post(f"/api/work-items/{second}/close", json={"reason": "called them"})
        assert r.status_code == 200 and r.json()["status"] == "closed"
        # A snoozed item can still be closed; a closed one can be neither.
        assert c.post(f"/api/work-items/{first}/close", json={"reason": "done"}).status_code == 200
        assert_error(c.post(f"/api/work-items/{first}/close", json={"reason": "x"}), 409)
        assert_error(
            c.post(f"/api/work-items/{first}/snooze", json={"until": LATER, "reason": "x"}), 409
        )
    store = db(ws)
    try:
        with store.transaction() as s:
            events = s.scalars(
                select(WorkItemEvent).where(WorkItemEvent.work_item_id.in_([first, second]))
            ).all()
            by_action = {(e.work_item_id, e.action): e.actor for e in events}
            assert by_action[(first, "snoozed")] == ws.csm_name
            assert by_action[(second, "closed")] == ws.csm_name
            assert s.get(WorkItem, second).closed_by == ws.csm_name  # type: ignore[union-attr]
    finally:
        store.close()


def test_a_csm_cannot_see_or_change_another_book(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    other = foreign_open_item(ws)
    with client(server, ws.csm_token) as c:
        assert_error(c.get(f"/api/work-items/{other}"), 403, "forbidden")
        assert_error(
            c.post(f"/api/work-items/{other}/snooze", json={"until": LATER, "reason": "x"}), 403
        )
        assert_error(c.post(f"/api/work-items/{other}/close", json={"reason": "x"}), 403)
    with client(server, ws.admin_token) as c:
        after = c.get(f"/api/work-items/{other}").json()
        assert after["status"] == "open" and len(after["history"]) >= 1
        # The admin may: its label is the actor.
        r = c.post(f"/api/work-items/{other}/close", json={"reason": "handled centrally"})
        assert r.status_code == 200 and r.json()["history"][-1]["by"] == "test admin"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("snooze", {"until": "2026-13-45", "reason": "x"}, 422, "until"),
        ("snooze", {"until": "next week", "reason": "x"}, 422, "until"),
        ("snooze", {"until": 20261201, "reason": "x"}, 422, "until"),
        ("snooze", {"until": TODAY.isoformat(), "reason": "x"}, 422, "until"),
        ("snooze", {"until": "2020-01-01", "reason": "x"}, 422, "until"),
        ("snooze", {"until": LATER}, 422, "reason"),
        ("snooze", {"until": LATER, "reason": "   "}, 422, "reason"),
        ("snooze", {"until": LATER, "reason": ["x"]}, 422, "reason"),
        ("snooze", {"until": LATER, "reason": "x", "by": "someone else"}, 422, "by"),
        ("close", {}, 422, "reason"),
        ("close", {"reason": ""}, 422, "reason"),
        ("close", {"reason": 7}, 422, "reason"),
        ("close", {"reason": "x" * 2001}, 422, "reason"),
    ],
)
def test_bad_payloads_are_4xx_in_the_one_shape(
    served: tuple[ServedWorkspace, LiveServer], path: str, body: Any, status: int, field: str
) -> None:
    ws, server = served
    item_id = own_open_items(ws)[0]
    with client(server, ws.csm_token) as c:
        err = assert_error(c.post(f"/api/work-items/{item_id}/{path}", json=body), status)
        assert field in {d["field"] for d in err["details"]}
        assert c.get(f"/api/work-items/{item_id}").json()["status"] == "open"


def test_malformed_requests_unknown_ids_and_bad_queries(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    with client(server, ws.admin_token) as c:
        assert_error(c.get("/api/work-items/999999"), 404, "not_found")
        assert_error(c.post("/api/work-items/999999/close", json={"reason": "x"}), 404)
        assert_error(c.get("/api/work-items/abc"), 422)
        assert_error(
            c.post(
                "/api/work-items/1/close",
                content="{not json",
                headers={"content-type": "application/json"},
            ),
            422,
        )
        assert_error(c.post("/api/work-items/1/close", json=["reason"]), 422)
        for params in (
            {"status": "bogus"},
            {"limit": 0},
            {"limit": 5000},
            {"offset": -1},
            {"due_from": "yesterday"},
            {"format": "xlsx"},
            {"owner": "x" * 500},
        ):
            assert_error(c.get("/api/work-items", params=params), 422)
        for params in ({"status": "gone"}, {"due_to": "2026-02-30"}):
            assert_error(c.get("/api/touchpoints", params=params), 422)
        assert_error(c.delete("/api/work-items/1"), 405)


def test_csv_export_is_guarded_against_formulas(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    item_id = own_open_items(ws)[0]
    evil = '=HYPERLINK("http://evil.example","click")'
    with client(server, ws.csm_token) as c:
        r = c.post(f"/api/work-items/{item_id}/snooze", json={"until": LATER, "reason": evil})
        assert r.status_code == 200
        r = c.get("/api/work-items", params={"status": "all", "format": "csv"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(r.text)))
    row = next(x for x in rows if x["id"] == str(item_id))
    assert row["snooze_reason"] == "'" + evil
    # Only the CSM's own book is exported, every item of it.
    with client(server, ws.csm_token) as c:
        total = c.get("/api/work-items", params={"status": "all"}).json()["total"]
    assert len(rows) == total
    for cell in (v for x in rows for v in x.values()):
        assert not cell.startswith(("=", "+", "@", "\t", "\r"))


# ---------------------------------------------------------------- touchpoints


def test_touchpoints_are_limited_to_the_book_and_filterable(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    mine = book(ws)
    with client(server, ws.csm_token) as c:
        own = c.get("/api/touchpoints", params={"status": "all", "limit": 1000}).json()
    assert own["total"] == len(own["items"]) > 0
    assert all(t["account_id"] in mine or t["owner"] == ws.csm_name for t in own["items"])
    with client(server, ws.admin_token) as c:
        everything = c.get("/api/touchpoints", params={"status": "all", "limit": 1000}).json()
        assert everything["total"] > own["total"]
        items = everything["items"]
        dues = [t["due"] for t in items]
        assert dues == sorted(dues)
        pick = items[len(items) // 2]
        for name in ("account_id", "owner", "channel", "status"):
            params = {"status": "all", name: pick[name], "limit": 1000}
            got = c.get("/api/touchpoints", params=params).json()
            assert got["total"] == sum(1 for t in items if t[name] == pick[name]) > 0
        window = c.get(
            "/api/touchpoints",
            params={"status": "all", "due_from": pick["due"], "due_to": pick["due"]},
        ).json()
        assert window["total"] == sum(1 for t in items if t["due"] == pick["due"])
        planned = c.get("/api/touchpoints").json()
        assert planned["items"] and all(t["status"] == "planned" for t in planned["items"])
    store = db(ws)
    try:
        with store.transaction() as s:
            assert everything["total"] == len(s.scalars(select(Touchpoint.id)).all())
    finally:
        store.close()


# ---------------------------------------------------------------- plan


def test_plan_today_and_projections_from_the_latest_run(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    with client(server, ws.admin_token) as c:
        flat = c.get("/api/plan").json()
        grown = c.get("/api/plan", params={"growth": "44%", "margin": "70%"}).json()
    assert flat["as_of"] == "2026-11-01" and flat["source"] == "decision files"
    assert [p["label"] for p in flat["plans"]] == ["today", "12 months", "24 months"]
    today, _in12, in24 = grown["plans"]
    assert today["accounts"] == flat["plans"][0]["accounts"] > 0
    # 44% a year compounds to 1.44^2 = 2.0736 times the accounts in 24 months (per tier, rounded).
    assert in24["accounts"] == pytest.approx(today["accounts"] * 1.44**2, abs=len(today["tiers"]))
    assert in24["csms_target"] > today["csms_target"]
    assert grown["gross_margin"] == 0.7 and grown["growth"] == 0.44
    assert {t["tier"] for t in today["tiers"]} == {"digital", "low", "medium", "high"}
    assert {h["level"] for h in today["hiring"]} == {"low", "medium", "high"}
    assert flat["team"] == "Demo customer success team"
    assert {m["id"] for m in flat["advice"]["mistakes"]} >= {"over_serving", "ignoring_scale"}
    assert flat["advice"]["phase"]["name"]


def test_plan_bad_parameters_and_no_run_yet(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    with client(server, ws.admin_token) as c:
        err = assert_error(c.get("/api/plan", params={"growth": "lots"}), 400)
        assert "growth" in err["message"] and "'lots'" in err["message"]
        assert_error(c.get("/api/plan", params={"growth": "5000%"}), 400)
        assert_error(c.get("/api/plan", params={"margin": "1.5"}), 400)
        store = db(ws)
        try:
            with store.transaction() as s:
                s.execute(update(Run).values(status="failed"))
        finally:
            store.close()
        err = assert_error(c.get("/api/plan"), 409, "conflict")
        assert "no completed run" in err["message"]


# ---------------------------------------------------------------- model choice

SIX = {
    "acv": 25000,
    "complexity": "medium",
    "segment": "mid-market",
    "margin": "75%",
    "positioning": "standard",
    "ratio": "1:50",
}


def test_model_choice_recommends_with_reasons(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    with client(server, ws.admin_token) as c:
        r = c.post("/api/plan/model-choice", json=SIX)
        assert r.status_code == 200, r.text
        sel = r.json()["selection"]
        # 3 + 3 + 3 + 5 + 3 + 3 = 20: on the edge, which goes to the more human model.
        assert sel["total"] == 20 and sel["recommendation"] == "high touch"
        assert "total 20" in sel["reasons"][0]
        low = c.post("/api/plan/model-choice", json={**SIX, "complexity": "high", "acv": 2000,
                                                      "segment": "smb", "margin": 0.3,
                                                      "positioning": "value", "ratio": 900})  # fmt: skip
        # 1+5+1+1+1+1 = 10 is tech touch by score; high complexity is never pure tech touch.
        assert low.json()["selection"]["recommendation"] == "low touch"
        assert any("never pure tech touch" in x for x in low.json()["selection"]["reasons"])
        # From the data: the demo's ACV spreads over zones, so the answer is hybrid.
        data = c.post(
            "/api/plan/model-choice",
            json={"complexity": "medium", "margin": 0.75, "positioning": "standard",
                  "from_data": True},
        )  # fmt: skip
        assert data.status_code == 200, data.text
        assert data.json()["selection"]["recommendation"] == "hybrid"
        assert any(n.startswith("acv: median ARR") for n in data.json()["from_data"])


def test_model_choice_bad_answers(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    with client(server, ws.admin_token) as c:
        err = assert_error(c.post("/api/plan/model-choice", json={"acv": 1000}), 400)
        assert "missing answer(s): complexity" in err["message"]
        assert_error(c.post("/api/plan/model-choice", json={**SIX, "complexity": "weird"}), 400)
        assert_error(c.post("/api/plan/model-choice", json={**SIX, "acv": -5}), 400)
        assert_error(c.post("/api/plan/model-choice", json={**SIX, "acv": [1]}), 422)
        assert_error(c.post("/api/plan/model-choice", json={**SIX, "color": "red"}), 422)
        assert_error(c.post("/api/plan/model-choice", json={**SIX, "scores": {"acv": 9}}), 400)
        assert_error(c.post("/api/plan/model-choice", json={**SIX, "scores": {"luck": 3}}), 422)
        assert_error(c.post("/api/plan/model-choice", json="high"), 422)


# ---------------------------------------------------------------- model


def test_model_as_five_answers_per_tier(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    with client(server, ws.csm_token) as c:
        body = c.get("/api/model").json()
    assert body["valid"] is True and body["name"] == "standard" and body["problems"] == []
    assert body["source"] == "model.yaml"  # as touchmodel.yaml names it, no server path
    assert [t["id"] for t in body["tiers"]] == ["digital", "low", "medium", "high"]
    high = body["tiers"][-1]
    assert high["owner"] == "dedicated_csm" and "advocacy" in high["outcomes"]
    for tier in body["tiers"]:
        assert tier["frequency"] and tier["channels"] and tier["interaction"] and tier["outcomes"]


def test_model_reports_an_invalid_workspace_model(built: ServedWorkspace, tmp_path: Path) -> None:
    copy = copy_workspace(built, tmp_path / "ws")
    model = copy.ws.root / "model.yaml"
    model.write_text(model.read_text().replace("weight:", "weigth:", 1))
    with live_server(copy.ws) as server, client(server, copy.admin_token) as c:
        r = c.get("/api/model")
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False and body["tiers"] == []
    assert any("weigth" in p and "unknown key" in p for p in body["problems"])


def test_model_check(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    with client(server, ws.csm_token) as c:
        ok = c.post(
            "/api/model/check",
            content=preset_yaml("hybrid"),
            headers={"content-type": "application/yaml"},
        )
        assert ok.status_code == 200
        assert ok.json()["valid"] is True and ok.json()["problems"] == []
        assert ok.json()["tiers"] >= 2
        bad_yaml = c.post("/api/model/check", content="tiers: [unclosed")
        assert bad_yaml.status_code == 200
        assert bad_yaml.json()["valid"] is False
        assert "line 1" in bad_yaml.json()["problems"][0]
        assert "not valid YAML" in bad_yaml.json()["problems"][0]
        broken = preset_yaml("standard").replace("min: 10000", "min: 9000", 1)
        meaning = c.post("/api/model/check", content=broken).json()
        assert meaning["valid"] is False and any("tiers[" in p for p in meaning["problems"])
        for body in ("just a string", "- a\n- list", "{}"):
            r = c.post("/api/model/check", content=body)
            assert r.status_code == 200 and r.json()["valid"] is False, body
        # No body is no model to check: a client error, not a result (issue 12.7).
        for body in ("", " \n"):
            assert "empty" in assert_error(c.post("/api/model/check", content=body), 400)["message"]
        r = c.post("/api/model/check", content=b"name: \xff\xfe")
        assert r.status_code == 200 and "UTF-8" in r.json()["problems"][0]
        r = c.post("/api/model/check", content="!!python/object:os.system {}")
        assert r.status_code == 200 and r.json()["valid"] is False
        assert_error(c.post("/api/model/check", content="a: 1\n" * 300_000), 413)


def test_model_check_refuses_an_alias_bomb_quickly(
    served: tuple[ServedWorkspace, LiveServer],
) -> None:
    ws, server = served
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    lines.append("name: *a9")
    with client(server, ws.csm_token) as c:
        r = c.post("/api/model/check", content="\n".join(lines))
    assert r.status_code == 200
    assert r.json()["valid"] is False and "aliases" in r.json()["problems"][0]
    assert r.elapsed.total_seconds() < 10


def test_openapi_documents_the_routes(served: tuple[ServedWorkspace, LiveServer]) -> None:
    ws, server = served
    assert httpx.get(server.url + "/api/openapi.json").status_code == 401
    with client(server, ws.csm_token) as c:
        spec = c.get("/api/openapi.json").json()
    paths = spec["paths"]
    expected = {
        "/api/work-items": ["get"],
        "/api/work-items/{item_id}": ["get"],
        "/api/work-items/{item_id}/snooze": ["post"],
        "/api/work-items/{item_id}/close": ["post"],
        "/api/touchpoints": ["get"],
        "/api/plan": ["get"],
        "/api/plan/model-choice": ["post"],
        "/api/model": ["get"],
        "/api/model/check": ["post"],
    }
    for path, methods in expected.items():
        for method in methods:
            op = paths[path][method]
            assert op["tags"] and op["summary"], path
    snooze = paths["/api/work-items/{item_id}/snooze"]["post"]
    ref = snooze["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert schema["examples"] and set(schema["required"]) == {"until", "reason"}
    assert "application/yaml" in paths["/api/model/check"]["post"]["requestBody"]["content"]
    # The dashboard pages are not API routes.
    assert not any(p.startswith(("/queue", "/capacity", "/model-choice")) for p in paths)


# ---------------------------------------------------------------- properties

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"until": st.one_of(JSON, st.dates().map(str)), "reason": st.one_of(JSON, st.text())}
        ),
    ),
    action=st.sampled_from(["snooze", "close"]),
    item_id=st.integers(min_value=-5, max_value=10**12),
)
def test_any_payload_is_answered_never_a_500(
    shared: tuple[ServedWorkspace, LiveServer], body: Any, action: str, item_id: int
) -> None:
    ws, server = shared
    with client(server, ws.csm_token) as c:
        r = c.post(f"/api/work-items/{item_id}/{action}", content=json.dumps(body),
                   headers={"content-type": "application/json"})  # fmt: skip
    if r.status_code == 200:
        assert r.json()["id"] == item_id
    else:
        assert 400 <= r.status_code < 500
        assert set(r.json()["error"]) == {"status", "code", "message", "details"}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300))
def test_any_model_text_is_a_result(shared: tuple[ServedWorkspace, LiveServer], text: str) -> None:
    ws, server = shared
    with client(server, ws.csm_token) as c:
        r = c.post("/api/model/check", content=text.encode("utf-8"))
    if not text.encode("utf-8").strip():
        assert_error(r, 400)  # no text at all
        return
    assert r.status_code == 200
    body = r.json()
    assert body["valid"] is False and body["problems"]


def test_plan_falls_back_to_the_state_snapshots(built: ServedWorkspace, tmp_path: Path) -> None:
    copy = copy_workspace(built, tmp_path / "ws")
    with live_server(copy.ws) as server, client(server, copy.admin_token) as c:
        from_files = c.get("/api/plan").json()
        (copy.ws.out_dir("2026-11-01") / "signals.parquet").unlink()
        from_state = c.get("/api/plan").json()
    assert from_files["source"] == "decision files"
    assert from_state["source"] == "state snapshots" and "is gone" in from_state["source_note"]
    # Same accounts and tiers either way; only strategic flags and employees are missing.
    today_files, today_state = from_files["plans"][0], from_state["plans"][0]
    assert today_state["accounts"] == today_files["accounts"]
    assert [t["accounts"] for t in today_state["tiers"]] == [
        t["accounts"] for t in today_files["tiers"]
    ]

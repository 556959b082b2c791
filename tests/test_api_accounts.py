"""REST API for the portfolio, accounts, decisions and runs, over real HTTP.

One workspace (demo data, two completed runs) is built per module and served
by the real app under uvicorn; the tests only read, so they share it. Before
it is served, two accounts get hostile names by a direct state write (a CSV
formula and a script tag) and a failed run is recorded after the last
completed one, so exports, escaping and "latest" are tested on real rows.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from tests.live_server import AS_OF, LiveServer, ServedWorkspace, build_workspace, live_server
from touchmodel.state.db import Store
from touchmodel.state.tables import Assignment, Run, Snapshot

FORMULA = '=HYPERLINK("http://evil.example","click")'
SCRIPT = "<script>alert(1)</script>"
FAILED_ON = AS_OF + dt.timedelta(days=7)

ROUTES = [
    "/api/portfolio",
    "/api/accounts",
    "/api/accounts/{own}",
    "/api/accounts/{own}/history",
    "/api/decisions",
    "/api/runs",
    "/api/runs/1",
]


class Setup:
    """The served workspace and the accounts the tests use."""

    def __init__(self, built: ServedWorkspace, server: LiveServer, ids: dict[str, str]) -> None:
        self.built = built
        self.server = server
        self.ids = ids

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.get(
            self.server.url + path.format(**self.ids), headers=headers, params=params, timeout=30
        )

    def admin(self, path: str, **params: Any) -> httpx.Response:
        return self.get(path, self.built.admin_token, **params)

    def csm(self, path: str, **params: Any) -> httpx.Response:
        return self.get(path, self.built.csm_token, **params)


def _prepare(built: ServedWorkspace, same_as: dict[str, str] | None = None) -> dict[str, str]:
    """Name two accounts hostilely, record a failed run; return the account ids the tests use.

    ``same_as``: rename these accounts instead of choosing (another database, same data).
    """
    store = Store(built.ws.state_url)
    try:
        with store.transaction() as s:
            book = {a: c for a, c in s.execute(select(Assignment.account_id, Assignment.csm)).all()}
            latest = list(
                s.scalars(
                    select(Snapshot.account_id)
                    .where(Snapshot.as_of == AS_OF)
                    .order_by(Snapshot.account_id)
                )
            )
            own = [a for a in latest if book.get(a) == built.csm_name]
            other = [a for a in latest if a in book and book[a] != built.csm_name]
            ids = same_as or {
                "own": own[0],
                "other": other[0],
                "formula": other[1],
                "script": own[1],
            }
            for key, name in (("formula", FORMULA), ("script", SCRIPT)):
                s.execute(update(Snapshot).where(Snapshot.account_id == ids[key]).values(name=name))
            s.add(
                Run(
                    as_of=FAILED_ON,
                    status="failed",
                    model_name="standard",
                    model_hash="x",
                    accounts=0,
                    error="accounts: 12% of rows rejected (limit 5%)",
                )
            )
    finally:
        store.close()
    return ids


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    built = build_workspace(tmp_path_factory.mktemp("api-accounts") / "ws")
    ids = _prepare(built)
    with live_server(built.ws) as server:
        yield Setup(built, server, ids)


def _one_shape(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"status", "code", "message", "details"}
    assert body["error"]["status"] == status
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


def _book(setup: Setup) -> set[str]:
    store = Store(setup.built.ws.state_url)
    try:
        with store.transaction() as s:
            return set(
                s.scalars(
                    select(Snapshot.account_id)
                    .join(Assignment, Assignment.account_id == Snapshot.account_id)
                    .where(Snapshot.as_of == AS_OF, Assignment.csm == setup.built.csm_name)
                )
            )
    finally:
        store.close()


# --- every route as admin -----------------------------------------------------------------


def test_portfolio_adds_up_and_matches_the_account_list(setup: Setup) -> None:
    p = setup.admin("/api/portfolio").json()
    # The failed run after the last completed one does not become "latest".
    assert p["as_of"] == AS_OF.isoformat() and p["book"] is None
    total = setup.admin("/api/accounts", limit=1).json()["total"]
    assert p["accounts"] == total > 0
    for group in ("by_tier", "by_level", "by_stage", "by_grade"):
        assert sum(s["accounts"] for s in p[group]) == total, group
        assert sum(s["arr"] for s in p[group]) == pytest.approx(p["arr"]), group
        assert sum(s["pct_accounts"] for s in p[group]) == pytest.approx(100, abs=0.5), group
    assert [s["key"] for s in p["by_level"]] == [
        lv for lv in ("high", "medium", "low", "tech") if lv in {s["key"] for s in p["by_level"]}
    ]
    hist = p["health_histogram"]
    assert [b["low"] for b in hist] == list(range(0, 100, 10))
    assert sum(b["accounts"] for b in hist) == total - p["unscored_accounts"]
    # The trend has one point per completed run, the last one equal to the portfolio.
    assert [t["as_of"] for t in p["trend"]] == ["2026-10-25", AS_OF.isoformat()]
    last = p["trend"][-1]
    assert last["accounts"] == total and last["mean_health"] == p["mean_health"]
    assert last["at_risk_arr"] == pytest.approx(p["at_risk_arr"])
    assert sum(last["by_level"].values()) == total
    at_risk = setup.admin("/api/accounts", stage="at_risk", limit=1).json()["total"]
    assert p["at_risk_accounts"] == at_risk


def test_account_detail_explains_the_decision(setup: Setup) -> None:
    r = setup.admin("/api/accounts/{own}")
    assert r.status_code == 200
    a = r.json()
    assert a["account_id"] == setup.ids["own"] and a["as_of"] == AS_OF.isoformat()
    assert a["csm"] == setup.built.csm_name and a["latest_run"] is True
    assert a["level_reasons"] and a["level_reasons"][0].startswith(f"tier '{a['tier']}'")
    health = a["health"]
    assert health["score"] == a["health_score"]
    scored = [m for m in health["measures"] if m["score"] is not None]
    # Points lost per measure add up to what the score is short of 100.
    assert sum(m["points_lost"] for m in scored) == pytest.approx(100 - a["health_score"], abs=0.3)
    assert sum(m["effective_weight"] for m in scored) == pytest.approx(100, abs=0.3)
    if a["health_top_factor"]:
        assert health["measures"][0]["label"] == a["health_top_factor"]
    for item in a["work_items"]:
        assert set(item) >= {"id", "trigger", "status", "due", "owner", "explanation"}
    for tp in a["upcoming_touchpoints"]:
        assert tp["status"] == "planned"
    assert [tp["due"] for tp in a["upcoming_touchpoints"]] == sorted(
        tp["due"] for tp in a["upcoming_touchpoints"]
    )
    fired = {t["id"] for t in a["triggers"]}
    assert {w["trigger"] for w in a["work_items"] if w["status"] == "open"} <= fired | {
        w["trigger"] for w in a["work_items"] if w["kind"] == "migration"
    }


def test_account_history_has_a_snapshot_per_completed_run(setup: Setup) -> None:
    h = setup.admin("/api/accounts/{own}/history").json()
    assert h["account_id"] == setup.ids["own"]
    dates = [s["as_of"] for s in h["snapshots"]]
    assert dates == sorted(dates) and dates[-1] == AS_OF.isoformat()
    for move in h["tier_changes"]:
        assert move["from_tier"] != move["to_tier"]
    assert h["book_changes"] and h["book_changes"][-1]["to_csm"] == setup.built.csm_name


def test_decisions_have_the_spec_columns_and_page(setup: Setup) -> None:
    first = setup.admin("/api/decisions", limit=10).json()
    assert first["as_of"] == AS_OF.isoformat() and len(first["decisions"]) == 10
    assert set(first["decisions"][0]) == {
        "account_id", "as_of", "tier", "tier_level", "lifecycle_stage", "touch_level",
        "level_reasons", "health_score", "health_grade", "health_top_factor", "triggers", "routes",
    }  # fmt: skip
    second = setup.admin("/api/decisions", limit=10, offset=10).json()
    ids = [d["account_id"] for d in first["decisions"] + second["decisions"]]
    assert ids == sorted(ids) and len(set(ids)) == 20
    earlier = setup.admin("/api/decisions", as_of="2026-10-25", limit=1).json()
    assert earlier["as_of"] == "2026-10-25" and earlier["total"] > 0


def test_runs_list_and_one_run_with_its_error(setup: Setup) -> None:
    runs = setup.admin("/api/runs").json()
    assert runs["total"] == 3
    newest = runs["runs"][0]
    assert newest["status"] == "failed" and newest["as_of"] == FAILED_ON.isoformat()
    failed = setup.admin(f"/api/runs/{newest['id']}").json()
    assert failed["error"] == "accounts: 12% of rows rejected (limit 5%)"
    done = setup.admin("/api/runs/2").json()
    assert done["status"] == "completed" and done["as_of"] == AS_OF.isoformat()
    assert done["changes"]["snapshots_written"] > 0
    assert done["input_counts"]["accounts"] == 300
    # Timestamps say they are UTC, on SQLite too.
    assert done["started_at"].endswith(("Z", "+00:00")) and done["finished_at"].endswith(
        ("Z", "+00:00")
    )
    paged = setup.admin("/api/runs", limit=1, offset=1).json()
    assert [r["id"] for r in paged["runs"]] == [runs["runs"][1]["id"]]


def test_accounts_filter_sort_and_page(setup: Setup) -> None:
    high = setup.admin("/api/accounts", level="high", limit=1000).json()
    assert high["total"] == len(high["accounts"]) > 0
    assert {a["touch_level"] for a in high["accounts"]} == {"high"}
    by_arr = [a["arr"] for a in high["accounts"]]
    assert by_arr == sorted(by_arr, reverse=True)
    # Pages of a sort are disjoint and together the whole sorted list.
    everything = setup.admin("/api/accounts", sort="health", order="asc", limit=1000).json()
    pages: list[str] = []
    for offset in range(0, everything["total"], 40):
        page = setup.admin("/api/accounts", sort="health", order="asc", limit=40, offset=offset)
        pages += [a["account_id"] for a in page.json()["accounts"]]
    assert pages == [a["account_id"] for a in everything["accounts"]]
    scores = [a["health_score"] for a in everything["accounts"] if a["health_score"] is not None]
    assert scores == sorted(scores)
    mine = setup.admin("/api/accounts", csm=setup.built.csm_name, limit=1000).json()
    assert {a["account_id"] for a in mine["accounts"]} == _book(setup)
    found = setup.admin("/api/accounts", q=setup.ids["own"].lower()).json()
    assert [a["account_id"] for a in found["accounts"]] == [setup.ids["own"]]
    # LIKE wildcards in a search are literal characters.
    assert setup.admin("/api/accounts", q="%").json()["total"] == 0
    assert setup.admin("/api/accounts", q="_").json()["total"] == 0


# --- roles --------------------------------------------------------------------------------


def test_a_csm_token_sees_and_lists_only_its_own_book(setup: Setup) -> None:
    book = _book(setup)
    listed = setup.csm("/api/accounts", limit=1000).json()
    assert {a["account_id"] for a in listed["accounts"]} == book
    assert {a["csm"] for a in listed["accounts"]} == {setup.built.csm_name}
    # Asking for another CSM's book cannot widen the view.
    other_csm = setup.admin("/api/accounts/{other}").json()["csm"]
    assert setup.csm("/api/accounts", csm=other_csm).json()["total"] == 0
    assert setup.csm("/api/accounts/{own}").status_code == 200
    assert setup.csm("/api/accounts/{own}/history").status_code == 200
    for path in ("/api/accounts/{other}", "/api/accounts/{other}/history"):
        error = _one_shape(setup.csm(path), 403)
        assert setup.ids["other"] in error["message"]
    _one_shape(setup.csm("/api/accounts/ACC-NOPE"), 404)
    p = setup.csm("/api/portfolio").json()
    assert p["book"] == setup.built.csm_name and p["accounts"] == len(book)
    decisions = setup.csm("/api/decisions", limit=1000).json()
    assert {d["account_id"] for d in decisions["decisions"]} == book
    # Runs are the workspace's: the same list for every token.
    assert setup.csm("/api/runs").json() == setup.admin("/api/runs").json()
    csv_rows = list(csv.DictReader(io.StringIO(setup.csm("/api/accounts", format="csv").text)))
    assert {r["account_id"] for r in csv_rows} == book


@pytest.mark.parametrize("route", ROUTES)
def test_no_token_a_bad_token_and_a_write_key_are_refused(setup: Setup, route: str) -> None:
    missing = setup.get(route)
    assert _one_shape(missing, 401)["code"] == "unauthorized"
    assert missing.headers["www-authenticate"] == "Bearer"
    _one_shape(setup.get(route, "tm_api_not-a-real-token"), 401)
    assert _one_shape(setup.get(route, setup.built.write_key), 403)["code"] == "forbidden"
    basic = httpx.get(
        setup.server.url + route.format(**setup.ids), auth=(setup.built.admin_token, "")
    )
    _one_shape(basic, 401)


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/accounts", {"level": "ultra"}, "level"),
        ("/api/accounts", {"stage": "dormant"}, "stage"),
        ("/api/accounts", {"limit": 0}, "limit"),
        ("/api/accounts", {"limit": 100000}, "limit"),
        ("/api/accounts", {"limit": "ten"}, "limit"),
        ("/api/accounts", {"offset": -1}, "offset"),
        ("/api/accounts", {"offset": 10**30}, "offset"),
        ("/api/accounts", {"sort": "password"}, "sort"),
        ("/api/accounts", {"order": "sideways"}, "order"),
        ("/api/accounts", {"format": "xlsx"}, "format"),
        ("/api/accounts", {"q": "x" * 201}, "q"),
        ("/api/accounts", {"q": "a\x00b"}, "q"),
        ("/api/decisions", {"as_of": "yesterday"}, "as_of"),
        ("/api/decisions", {"as_of": "2026-02-30"}, "as_of"),
        ("/api/runs", {"limit": -5}, "limit"),
        ("/api/runs/abc", {}, "run_id"),
        ("/api/runs/0", {}, "run_id"),
        ("/api/runs/99999999999999999999999", {}, "run_id"),
    ],
)
def test_bad_parameters_are_422_in_the_one_shape(
    setup: Setup, path: str, params: dict[str, Any], field: str
) -> None:
    error = _one_shape(setup.admin(path, **params), 422)
    assert error["code"] == "invalid"
    assert field in {d["field"] for d in error["details"]}


@pytest.mark.parametrize(
    "path",
    ["/api/accounts/ACC-NOPE", "/api/accounts/ACC-NOPE/history", "/api/runs/999"],
)
def test_unknown_things_are_404(setup: Setup, path: str) -> None:
    assert _one_shape(setup.admin(path), 404)["code"] == "not_found"


def test_an_as_of_without_a_completed_run_is_404(setup: Setup) -> None:
    # FAILED_ON has a run, but a failed one: its decisions are no result.
    for day in ("2020-01-01", FAILED_ON.isoformat()):
        error = _one_shape(setup.admin("/api/decisions", as_of=day), 404)
        assert day in error["message"] and AS_OF.isoformat() in error["message"]


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    q=st.text(max_size=30),
    tier=st.text(max_size=12),
    grade=st.text(max_size=12),
    sort=st.sampled_from(["arr", "name", "level", "csm", "renewal", "bogus"]),
    offset=st.integers(min_value=-3, max_value=400),
)
def test_any_filter_text_is_answered_never_a_500(
    setup: Setup, q: str, tier: str, grade: str, sort: str, offset: int
) -> None:
    r = setup.admin("/api/accounts", q=q, tier=tier, grade=grade, sort=sort, offset=offset)
    if "\x00" in q + tier + grade or sort == "bogus" or offset < 0:
        _one_shape(r, 422)
        return
    assert r.status_code == 200, r.text
    body = r.json()
    for a in body["accounts"]:
        if q.strip():
            needle = q.strip().lower()
            assert needle in a["account_id"].lower() or needle in (a["name"] or "").lower()
        if tier:
            assert a["tier"] == tier
        if grade:
            assert a["health_grade"] == grade
    assert len(body["accounts"]) <= max(0, body["total"] - offset)


# --- exports and escaping -----------------------------------------------------------------


def test_the_csv_export_neutralises_formulas(setup: Setup) -> None:
    r = setup.admin("/api/accounts", format="csv", q=setup.ids["formula"])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.headers["content-disposition"] == (
        f'attachment; filename="accounts-{AS_OF.isoformat()}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert len(rows) == 1
    assert rows[0]["name"] == "'" + FORMULA
    assert float(rows[0]["arr"]) >= 0  # numbers stay numbers
    # Every matching account, not one page: the export ignores limit/offset.
    full = setup.admin("/api/accounts", format="csv", limit=5, offset=5)
    total = setup.admin("/api/accounts", limit=1).json()["total"]
    assert len(list(csv.DictReader(io.StringIO(full.text)))) == total


def test_json_returns_hostile_names_as_data(setup: Setup) -> None:
    a = setup.admin("/api/accounts/{script}").json()
    assert a["name"] == SCRIPT
    f = setup.admin("/api/accounts/{formula}").json()
    assert f["name"] == FORMULA


@contextmanager
def _signed_in(setup: Setup, token: str) -> Iterator[httpx.Client]:
    """A client with a dashboard session, signed in through the real login form."""
    with httpx.Client(base_url=setup.server.url, timeout=30) as client:
        csrf = client.get("/login").text.split('name="csrf_token" value="')[1].split('"')[0]
        r = client.post("/login", data={"token": token, "csrf_token": csrf})
        assert r.status_code == 303
        yield client


def test_a_script_in_an_account_name_is_text_on_every_page(setup: Setup) -> None:
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    with _signed_in(setup, setup.built.admin_token) as client:
        pages = {
            "list": client.get("/accounts", params={"q": SCRIPT}),
            "fragment": client.get(
                "/accounts",
                params={"q": "script"},
                headers={"HX-Request": "true", "HX-Target": "acct-table"},
            ),
            "account": client.get(f"/accounts/{setup.ids['script']}"),
        }
        for name, page in pages.items():
            assert page.status_code == 200, name
            assert SCRIPT not in page.text, name
            assert escaped in page.text, name
        # The search box echoes the query escaped too.
        assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in pages["list"].text
        dashboard_csv = client.get("/accounts.csv", params={"q": "HYPERLINK"})
        rows = list(csv.DictReader(io.StringIO(dashboard_csv.text)))
        assert [r["name"] for r in rows] == ["'" + FORMULA]


def test_dashboard_pages_need_a_session_and_respect_the_book(setup: Setup) -> None:
    anonymous = httpx.get(setup.server.url + "/accounts", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/login"
    with _signed_in(setup, setup.built.csm_token) as client:
        assert client.get(f"/accounts/{setup.ids['own']}").status_code == 200
        other = client.get(f"/accounts/{setup.ids['other']}")
        assert other.status_code == 403 and "not in" in other.text
        assert client.get("/accounts/ACC-NOPE").status_code == 404
        exported = list(csv.DictReader(io.StringIO(client.get("/accounts.csv").text)))
        assert {r["account_id"] for r in exported} == _book(setup)


# --- OpenAPI ------------------------------------------------------------------------------


def test_openapi_documents_the_routes_and_their_models(setup: Setup) -> None:
    assert httpx.get(setup.server.url + "/api/openapi.json").status_code == 401
    spec = setup.get("/api/openapi.json", setup.built.admin_token).json()
    paths = spec["paths"]
    for route in (
        "/api/portfolio",
        "/api/accounts",
        "/api/accounts/{account_id}",
        "/api/accounts/{account_id}/history",
        "/api/decisions",
        "/api/runs",
        "/api/runs/{run_id}",
    ):
        op = paths[route]["get"]
        assert op["summary"] and op["tags"], route
        assert "401" in op["responses"] and "422" in op["responses"], route
    schemas = spec["components"]["schemas"]
    assert {"PortfolioOut", "AccountPageOut", "AccountOut", "ErrorOut", "RunDetailOut"} <= set(
        schemas
    )
    accounts = paths["/api/accounts"]["get"]
    assert "text/csv" in accounts["responses"]["200"]["content"]
    params = {p["name"] for p in accounts["parameters"]}
    assert {"tier", "level", "stage", "grade", "csm", "q", "sort", "order", "limit", "offset"} <= (
        params
    )
    assert schemas["PortfolioOut"].get("examples")
    # Dashboard pages are not API routes.
    assert "/accounts/{account_id}" not in paths and "/" not in paths


def test_a_workspace_without_runs_answers_empty_not_an_error(tmp_path: Path) -> None:
    from touchmodel.access.keys import create_key
    from touchmodel.workspace import init_workspace

    ws = init_workspace(tmp_path / "fresh")
    store = Store(ws.state_url)
    try:
        token = create_key(store, "api", role="admin").secret
    finally:
        store.close()
    with live_server(ws) as server:
        auth = {"Authorization": f"Bearer {token}"}
        p = httpx.get(server.url + "/api/portfolio", headers=auth).json()
        assert p["as_of"] is None and p["accounts"] == 0 and p["trend"] == []
        listed = httpx.get(server.url + "/api/accounts", headers=auth).json()
        assert listed == {"as_of": None, "total": 0, "limit": 50, "offset": 0, "accounts": []}
        _one_shape(httpx.get(server.url + "/api/decisions", headers=auth), 404)
        assert httpx.get(server.url + "/api/runs", headers=auth).json()["total"] == 0


def test_the_portfolio_page_shows_a_failed_run_but_counts_the_last_completed_one(
    setup: Setup,
) -> None:
    with _signed_in(setup, setup.built.admin_token) as client:
        page = client.get("/").text
    assert "Latest completed run: 2026-11-01" in page
    runs = page.split('id="acct-runs"')[1]
    assert "run-failed" in runs and "accounts: 12% of rows rejected (limit 5%)" in runs


@pytest.fixture(scope="module")
def on_postgresql(setup: Setup, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """The same workspace (same seed, same changes) with its state on PostgreSQL."""
    from tests.conftest import postgres_database

    with postgres_database() as url:
        built = build_workspace(tmp_path_factory.mktemp("api-accounts-pg") / "ws", state_url=url)
        ids = _prepare(built, same_as=setup.ids)
        with live_server(built.ws) as server:
            yield Setup(built, server, ids)


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/portfolio", {}),
        ("/api/accounts", {"limit": 1000}),
        ("/api/accounts", {"sort": "level", "order": "asc", "limit": 1000}),
        ("/api/accounts", {"sort": "renewal", "limit": 1000}),
        ("/api/accounts", {"q": "%lab", "limit": 1000}),
        ("/api/accounts", {"q": "LABS", "level": "high", "limit": 1000}),
        ("/api/accounts/{own}", {}),
        ("/api/accounts/{formula}/history", {}),
        ("/api/decisions", {"limit": 1000}),
    ],
)
def test_postgresql_gives_the_same_answers_as_sqlite(
    setup: Setup, on_postgresql: Setup, path: str, params: dict[str, Any]
) -> None:
    lite, pg = setup.admin(path, **params), on_postgresql.admin(path, **params)
    assert lite.status_code == pg.status_code == 200
    assert pg.json() == lite.json()

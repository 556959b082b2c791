"""Shared fixtures: small workspaces built from dicts, typed by the data contract."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd
import pytest

from touchmodel.engine import Decided, Engine
from touchmodel.sources.contract import IBIS_TYPES, TABLES

AS_OF = dt.date(2026, 11, 1)


# A settled, healthy account: past onboarding, far from renewal, steady usage.
BASE_ACCOUNT: dict[str, Any] = {
    "account_id": "A1",
    "name": "Acme",
    "arr": 30000.0,
    "contract_start": dt.date(2025, 5, 1),
    "renewal_date": dt.date(2027, 5, 1),
    "employees": 200,
    "plan": "growth",
    "plan_limit": 1000.0,
    "seats": 20,
    "industry": "software",
    "strategic": False,
    "csm": "Dana",
    "churned_on": None,
}


def days_ago(n: int, hour: int = 12) -> dt.datetime:
    """A timestamp ``n`` days before AS_OF (0 = the as-of day itself)."""
    return dt.datetime.combine(AS_OF - dt.timedelta(days=n), dt.time(hour))


def steady_usage(account_id: str = "A1", per_day: int = 10, days: int = 60) -> list[dict[str, Any]]:
    """Even usage of two core features over the last ``days`` days."""
    rows = []
    for d in range(days):
        for i in range(per_day):
            event = "report.created" if i % 2 else "dashboard.viewed"
            rows.append(
                {
                    "account_id": account_id,
                    "timestamp": days_ago(d),
                    "event": event,
                    "user_id": f"u{i % 3}",
                }
            )
    return rows


def make_table(
    name: str, rows: list[dict[str, Any]], extra: dict[str, str] | None = None
) -> ir.Table:
    """An Ibis memtable for contract table ``name`` with every contract column typed."""
    spec = TABLES[name]
    schema = {c.name: IBIS_TYPES[c.type] for c in spec.columns}
    schema.update(extra or {})
    defaults = {"quantity": 1.0} if name == "usage_events" else {}
    if name == "accounts":
        rows = [{**BASE_ACCOUNT, **r} for r in rows]
    frame = pd.DataFrame(
        [{col: r.get(col, defaults.get(col)) for col in schema} for r in rows], columns=list(schema)
    )
    return ibis.memtable(frame, schema=ibis.schema(schema))


def decide(
    accounts: list[dict[str, Any]],
    model: str | Engine = "standard",
    as_of: dt.date = AS_OF,
    **tables: list[dict[str, Any]],
) -> Decided:
    """Run the engine on in-memory tables; each keyword is a contract table name."""
    engine = model if isinstance(model, Engine) else Engine.from_spec(model)
    built = {"accounts": make_table("accounts", accounts)}
    for name, rows in tables.items():
        built[name] = make_table(name, rows)
    return engine.decide(built, as_of)


def row(decided: Decided, account_id: str = "A1") -> dict[str, Any]:
    """One account's decision merged with its signals, as a dict."""
    decisions = decided.decisions.to_pandas().set_index("account_id")
    detail = decided.accounts.to_pandas().set_index("account_id")
    out = {**detail.loc[account_id].to_dict(), **decisions.loc[account_id].to_dict()}
    out["triggers"] = [t for t in (out["triggers"] or "").split("; ") if t]
    out["routes"] = [t for t in (out["routes"] or "").split("; ") if t]
    return out


@pytest.fixture(scope="session")
def standard() -> Engine:
    return Engine.from_spec("standard")


# --- the state store on every supported database ----------------------------------
# SQLite always; PostgreSQL when TOUCHMODEL_TEST_POSTGRES_URL names a server
# (`.ci/run` starts one with scripts/postgres.sh and sets it). Each test gets
# its own database, so xdist workers never see each other's rows.
POSTGRES_URL_ENV = "TOUCHMODEL_TEST_POSTGRES_URL"


def _fresh_postgres_database(admin_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(admin_url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def _drop_postgres_database(admin_url: str, name: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(admin_url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database's URL, dropped afterwards.

    Without a server URL the test fails under CI (`.ci/run` starts one) and is
    skipped only on a developer machine that has none.
    """
    import os
    import uuid

    admin_url = os.environ.get(POSTGRES_URL_ENV)
    if not admin_url:
        if os.environ.get("CI"):
            pytest.fail(f"{POSTGRES_URL_ENV} is not set: .ci/run must start PostgreSQL")
        pytest.skip(f"set {POSTGRES_URL_ENV} (bash scripts/postgres.sh prints one)")
    name = f"tm_{uuid.uuid4().hex[:16]}"
    try:
        yield _fresh_postgres_database(admin_url, name)
    finally:
        _drop_postgres_database(admin_url, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A URL of an empty state database: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'state.db'}"
        return
    with postgres_database() as url:
        yield url

"""The daily run's operations on small, hand-made data: books, migrations, touchpoints, email.

Each test writes a data folder, runs ``run_day`` in a fresh workspace for one
or more dates, and reads the state back.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import select

from tests.delivery_servers import smtp_server
from touchmodel.ops.daily import run_day
from touchmodel.state.db import Store
from touchmodel.state.tables import (
    Assignment,
    AssignmentChange,
    OutboxMessage,
    Touchpoint,
    WorkItem,
)
from touchmodel.workspace import Workspace, init_workspace, load_workspace

D0 = dt.date(2026, 11, 2)  # a Monday
TEAM = {
    "name": "test team",
    "csms": [
        {"members": ["Ada", "Bo"], "tiers": ["medium"]},
        {"members": ["Cy"], "tiers": ["high"]},
        {"members": ["Pooled"], "tiers": ["low"]},
    ],
}


def account(aid: str, arr: float, start: dt.date, **extra: Any) -> dict[str, Any]:
    return {"account_id": aid, "name": f"Co {aid}", "arr": arr, "contract_start": start.isoformat(),
            "renewal_date": "", "csm": "", **extra}  # fmt: skip


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


@pytest.fixture
def ws(tmp_path: Path, state_url: str) -> Workspace:
    w = init_workspace(tmp_path / "ws", state=state_url)
    (w.root / "team.yaml").write_text(yaml.safe_dump(TEAM))
    return w


def configure(w: Workspace, **settings: Any) -> Workspace:
    path = w.root / "touchmodel.yaml"
    config = yaml.safe_load(path.read_text())
    config.update(settings)
    path.write_text(yaml.safe_dump(config))
    return load_workspace(w.root)


def run(
    w: Workspace,
    day: dt.date,
    accounts: list[dict[str, Any]],
    contacts: list[dict[str, Any]] | None = None,
) -> Any:
    data = w.root / "data"
    for old in data.glob("*.csv"):
        old.unlink()
    write_csv(data / "accounts.csv", accounts)
    if contacts:
        write_csv(data / "contacts.csv", contacts)
    return run_day(w, as_of=day)


def rows(w: Workspace, table: type) -> list[Any]:
    store = Store(w.state_url)
    try:
        with store.transaction() as s:
            return list(s.scalars(select(table)))
    finally:
        store.close()


SETTLED = dt.date(2025, 9, 5)  # past onboarding, renewal far away, a monthly date in the window


def test_books_are_sticky_and_least_loaded(ws: Workspace) -> None:
    accounts = [account(f"M{i}", 30000, SETTLED) for i in range(4)]
    run(ws, D0, accounts)
    books = Counter(a.csm for a in rows(ws, Assignment))
    assert books == {"Ada": 2, "Bo": 2}
    before = {a.account_id: a.csm for a in rows(ws, Assignment)}
    day = run(ws, D0 + dt.timedelta(days=1), [*accounts, account("M9", 30000, SETTLED)])
    after = {a.account_id: a.csm for a in rows(ws, Assignment)}
    assert {k: after[k] for k in before} == before  # nobody reshuffled
    assert day.changes["book_changes"] == 1


def test_a_move_into_a_dedicated_tier_creates_a_handover_for_the_new_csm(ws: Workspace) -> None:
    run(ws, D0, [account("A", 15000, SETTLED)])
    assert [a.csm for a in rows(ws, Assignment)] == ["Pooled"]
    run(ws, D0 + dt.timedelta(days=1), [account("A", 150000, SETTLED)])
    [book] = rows(ws, Assignment)
    assert (book.csm, book.tier) == ("Cy", "high")
    handover = [i for i in rows(ws, WorkItem) if i.kind == "migration"]
    assert [(i.trigger, i.owner) for i in handover] == [("migration.handover_to_dedicated", "Cy")]
    assert "low -> high" in handover[0].explanation
    moves = [(c.from_csm, c.to_csm) for c in rows(ws, AssignmentChange)]
    assert moves == [(None, "Pooled"), ("Pooled", "Cy")]
    [move] = migrations_of(ws)
    assert (move["from_tier"], move["to_tier"], move["on"]) == ("low", "high", "2026-11-03")
    # The same day again: nothing new.
    run(ws, D0 + dt.timedelta(days=1), [account("A", 150000, SETTLED)])
    assert len([i for i in rows(ws, WorkItem) if i.kind == "migration"]) == 1


def test_a_churned_account_leaves_its_book_and_its_items_close(ws: Workspace) -> None:
    renewal = (D0 + dt.timedelta(days=75)).isoformat()  # fires lifecycle.renewal_window
    run(ws, D0, [account("A", 30000, SETTLED, renewal_date=renewal)])
    assert rows(ws, Assignment) and any(i.status == "open" for i in rows(ws, WorkItem))
    gone = account("A", 30000, SETTLED, renewal_date=renewal, churned_on=D0.isoformat())
    run(ws, D0 + dt.timedelta(days=1), [gone])
    assert rows(ws, Assignment) == []
    trigger_items = [i for i in rows(ws, WorkItem) if i.kind == "trigger"]
    assert trigger_items and all(i.status == "closed" for i in trigger_items)
    assert all("not a customer" in (i.close_reason or "") for i in trigger_items)


def test_a_level_change_cancels_the_old_cadence_and_plans_the_new(ws: Workspace) -> None:
    run(ws, D0, [account("A", 30000, SETTLED)])
    medium = [
        t
        for t in rows(ws, Touchpoint)
        if t.sequence.startswith("calendar.") and t.status == "planned"
    ]
    assert medium and {t.level for t in medium} == {"medium"}
    run(ws, D0 + dt.timedelta(days=1), [account("A", 150000, SETTLED)])
    by_key = {t.key: t for t in rows(ws, Touchpoint)}
    for t in medium:
        if t.due > D0:
            assert by_key[t.key].status == "cancelled"
            assert "re-planned on 2026-11-03" in by_key[t.key].reason
            assert "touch level now high" in by_key[t.key].reason
    assert any(t.level == "high" and t.status == "planned" for t in by_key.values())


def new_account(aid: str, start: dt.date) -> dict[str, Any]:
    return account(aid, 5000, start)


def test_due_onboarding_emails_are_sent_once_with_the_template(ws: Workspace) -> None:
    contacts = [
        {"contact_id": "c1", "account_id": "N1", "email": "ana@n1.example", "title": "Ops", "created_at": "2026-10-01"},
        {"contact_id": "c2", "account_id": "N2", "email": "", "title": "Ops", "created_at": "2026-10-01"},
    ]  # fmt: skip
    accounts = [new_account("N1", D0), new_account("N2", D0)]
    with smtp_server() as mail:
        w = configure(
            ws,
            delivery={"email": {"host": mail.host, "port": mail.port, "sender": "cs@example.com"}},
        )
        day = run(w, D0, accounts, contacts)
        run(w, D0, accounts, contacts)  # the same day again sends nothing
    assert day.delivery is not None and day.delivery.sent == 1
    [msg] = mail.messages
    assert msg["To"] == "ana@n1.example"
    tps = {(t.account_id, t.key): t for t in rows(w, Touchpoint)}
    assert tps[("N1", "onboarding.day1")].status == "queued"
    skipped = tps[("N2", "onboarding.day1")]
    assert skipped.status == "skipped" and "no contact with an email" in skipped.reason
    [sent] = rows(w, OutboxMessage)
    assert sent.status == "sent" and sent.idempotency_key == "touchpoint:N1:onboarding.day1"


def test_without_email_configured_due_emails_are_skipped_with_the_reason(ws: Workspace) -> None:
    run(ws, D0, [new_account("N1", D0)])
    tp = next(t for t in rows(ws, Touchpoint) if t.key == "onboarding.day1")
    assert tp.status == "skipped" and "not configured" in tp.reason
    assert rows(ws, OutboxMessage) == []


def test_daily_runs_never_send_more_than_the_weekly_cap(ws: Workspace) -> None:
    """Three weeks of daily runs over accounts starting on every weekday of a week."""
    starts = [D0 - dt.timedelta(days=d) for d in range(0, 40, 3)]
    accounts = [new_account(f"N{i:02}", s) for i, s in enumerate(starts)]
    contacts = [
        {"contact_id": f"c{i}", "account_id": a["account_id"], "email": f"x{i}@example.com",
         "title": "", "created_at": "2026-01-01"}
        for i, a in enumerate(accounts)
    ]  # fmt: skip
    with smtp_server() as mail:
        w = configure(
            ws,
            delivery={"email": {"host": mail.host, "port": mail.port, "sender": "cs@example.com"}},
        )
        for day in range(21):
            run(w, D0 + dt.timedelta(days=day), accounts, contacts)
    weeks: Counter[tuple[str, int]] = Counter()
    for t in rows(w, Touchpoint):
        if t.automated and t.status == "queued":
            weeks[(t.account_id, t.due.isocalendar()[1])] += 1
    assert weeks and max(weeks.values()) <= w_cap(w)
    ids = [m["Message-ID"] for m in mail.messages]
    assert len(ids) == len(set(ids)) == sum(weeks.values())


def test_a_replan_that_adds_a_message_to_a_full_week_skips_it(ws: Workspace) -> None:
    """Onboarding days 1, 3 and 7 fill the week of 2026-11-02; a renewal date that
    moves into that week the next day must not make it four."""
    contacts = [
        {
            "contact_id": "c",
            "account_id": "T",
            "email": "t@example.com",
            "title": "",
            "created_at": "2026-01-01",
        }
    ]
    first = account("T", 5000, D0)
    moved = account("T", 5000, D0, renewal_date="2026-12-05")  # renewal.30 due 2026-11-05
    with smtp_server() as mail:
        w = configure(
            ws,
            delivery={"email": {"host": mail.host, "port": mail.port, "sender": "cs@example.com"}},
        )
        run(w, D0, [first], contacts)
        for day in range(1, 7):
            run(w, D0 + dt.timedelta(days=day), [moved], contacts)
    assert len(mail.messages) == w_cap(w) == 3
    renewal = next(t for t in rows(w, Touchpoint) if t.key.startswith("renewal.30"))
    assert renewal.status == "skipped" and "weekly cap" in renewal.reason


def test_a_dedicated_tier_takes_the_crm_owner_when_on_the_team(ws: Workspace) -> None:
    run(ws, D0, [account("H1", 150000, SETTLED, csm="Cy"), account("M1", 30000, SETTLED, csm="Bo")])
    books = {a.account_id: (a.csm, a.reason) for a in rows(ws, Assignment)}
    assert books["H1"][0] == "Cy" and books["M1"][0] == "Bo"
    assert "CRM" in books["M1"][1]


def w_cap(w: Workspace) -> int:
    from touchmodel.model.loader import load_model

    return load_model(w.model_spec).cadences.weekly_cap


def migrations_of(w: Workspace) -> list[dict[str, Any]]:
    from touchmodel.ops.snapshots import tier_migrations

    store = Store(w.state_url)
    try:
        with store.transaction() as s:
            return tier_migrations(s)
    finally:
        store.close()


def test_a_partial_export_stops_the_run_before_anything_changes(ws: Workspace) -> None:
    from touchmodel.errors import TouchmodelError
    from touchmodel.state.tables import Run

    base = [account(f"M{i:02}", 30000, SETTLED, renewal_date="2027-01-16") for i in range(30)]
    run(ws, D0, base)
    open_before = [i.id for i in rows(ws, WorkItem) if i.status == "open"]
    assert open_before
    with pytest.raises(
        TouchmodelError, match=r"25 of the 30 accounts decided on 2026-11-02 are missing"
    ):
        run(ws, D0 + dt.timedelta(days=1), base[:5])
    assert [i.id for i in rows(ws, WorkItem) if i.status == "open"] == open_before
    failed = [r for r in rows(ws, Run) if r.status == "failed"]
    assert len(failed) == 1 and "partial export" in (failed[0].error or "")
    data = ws.root / "data"
    write_csv(data / "accounts.csv", base[:5])
    run_day(ws, as_of=D0 + dt.timedelta(days=1), allow_missing_accounts=True)
    assert len([i for i in rows(ws, WorkItem) if i.status == "open"]) < len(open_before)


def test_leaving_closes_migration_items_and_cancels_touchpoints_without_a_cooldown(
    ws: Workspace,
) -> None:
    renewal = "2027-01-16"  # lifecycle.renewal_window fires (75 days ahead)
    run(ws, D0, [account("A", 15000, SETTLED, renewal_date=renewal)])
    run(ws, D0 + dt.timedelta(days=1), [account("A", 150000, SETTLED, renewal_date=renewal)])
    assert any(i.kind == "migration" and i.status == "open" for i in rows(ws, WorkItem))
    assert any(t.status == "planned" for t in rows(ws, Touchpoint))
    churned = account(
        "A",
        150000,
        SETTLED,
        renewal_date=renewal,
        churned_on=(D0 + dt.timedelta(days=1)).isoformat(),
    )
    run(ws, D0 + dt.timedelta(days=2), [churned])
    assert all(i.status == "closed" for i in rows(ws, WorkItem))
    assert not any(t.status == "planned" for t in rows(ws, Touchpoint))
    # Back as a customer the next day (a data fix): its trigger is news again at once.
    run(ws, D0 + dt.timedelta(days=3), [account("A", 150000, SETTLED, renewal_date=renewal)])
    assert any(i.status == "open" and i.kind == "trigger" for i in rows(ws, WorkItem))


def test_a_reopened_item_stays_open_until_a_user_closes_it(ws: Workspace) -> None:
    from touchmodel.ops import workitems as wi

    firing = account("A", 30000, SETTLED, renewal_date="2027-01-16")
    run(ws, D0, [firing])
    item = next(i for i in rows(ws, WorkItem) if i.trigger == "lifecycle.renewal_window")
    store = Store(ws.state_url)
    with store.transaction() as s:
        wi.close(s, item.id, reason="talked", actor="ada", today=D0)
        wi.reopen(s, item.id, reason="not settled yet", actor="ada", today=D0)
    store.close()
    run(ws, D0 + dt.timedelta(days=1), [account("A", 30000, SETTLED, renewal_date="2027-06-01")])
    again = next(i for i in rows(ws, WorkItem) if i.id == item.id)
    assert again.status == "open"


def test_a_snoozed_migration_item_wakes_on_its_date(ws: Workspace) -> None:
    from touchmodel.ops import workitems as wi

    run(ws, D0, [account("A", 15000, SETTLED)])
    run(ws, D0 + dt.timedelta(days=1), [account("A", 150000, SETTLED)])
    item = next(i for i in rows(ws, WorkItem) if i.kind == "migration")
    store = Store(ws.state_url)
    with store.transaction() as s:
        wi.snooze(
            s, item.id, until=D0 + dt.timedelta(days=3), reason="CSM away", actor="cy",
            today=D0 + dt.timedelta(days=1),
        )  # fmt: skip
    store.close()
    run(ws, D0 + dt.timedelta(days=2), [account("A", 150000, SETTLED)])
    assert next(i for i in rows(ws, WorkItem) if i.id == item.id).status == "snoozed"
    run(ws, D0 + dt.timedelta(days=3), [account("A", 150000, SETTLED)])
    assert next(i for i in rows(ws, WorkItem) if i.id == item.id).status == "open"


def test_a_failed_run_is_recorded_with_its_error(ws: Workspace) -> None:
    from touchmodel.errors import TouchmodelError
    from touchmodel.state.tables import Run

    bad = [account("A", 30000, SETTLED), {**account("B", 30000, SETTLED), "arr": "-5"}]
    with pytest.raises(TouchmodelError):
        run(ws, D0, bad)
    [failed] = rows(ws, Run)
    assert failed.status == "failed" and "reject" in (failed.error or "").lower()


def test_init_with_a_bad_database_hides_the_password_and_leaves_nothing(tmp_path: Path) -> None:
    from touchmodel.errors import TouchmodelError

    with pytest.raises(TouchmodelError) as err:
        init_workspace(tmp_path / "w", state="postgresql://nobody:s3cret@127.0.0.1:9/db")
    assert "s3cret" not in str(err.value) and "***" in str(err.value)
    assert not (tmp_path / "w" / "touchmodel.yaml").exists()


def test_a_failed_run_leaves_the_days_files_as_they_were(ws: Workspace) -> None:
    from touchmodel.errors import TouchmodelError

    good = [account(f"M{i:02}", 30000, SETTLED) for i in range(30)]
    run(ws, D0, good)
    day_dir = ws.out_dir(D0.isoformat())
    before = (day_dir / "decisions.csv").read_bytes()
    (ws.root / "team.yaml").write_text(
        yaml.safe_dump({"csms": [{"members": ["X", "X"], "tiers": ["low"]}]})
    )
    with pytest.raises(TouchmodelError):
        run(ws, D0, good[:29])
    assert (day_dir / "decisions.csv").read_bytes() == before
    assert (day_dir.parent / f"{D0.isoformat()}.incomplete" / "decisions.csv").is_file()


def test_a_partial_export_is_named_before_the_reject_rate(ws: Workspace) -> None:
    """Events of the dropped accounts would be rejected as unknown; the real cause is named."""
    from touchmodel.errors import TouchmodelError

    base = [account(f"M{i:02}", 30000, SETTLED) for i in range(30)]
    run(ws, D0, base)
    events = [
        {"account_id": a["account_id"], "timestamp": "2026-11-02T10:00:00", "event": "login"}
        for a in base
    ]
    write_csv(ws.root / "data" / "usage_events.csv", events)
    write_csv(ws.root / "data" / "accounts.csv", base[:10])
    with pytest.raises(TouchmodelError, match="partial export"):
        run_day(ws, as_of=D0 + dt.timedelta(days=1))

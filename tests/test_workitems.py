"""Work items: dedupe, cooldown, snooze, auto-close, user actions (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from touchmodel.model.loader import load_model
from touchmodel.ops import workitems as wi
from touchmodel.ops.books import MigrationTask
from touchmodel.ops.workitems import Fired, add_migration_items, sync_trigger_items
from touchmodel.state.db import Store
from touchmodel.state.tables import WorkItem, WorkItemEvent

MODEL = load_model("standard")
D0 = dt.date(2026, 11, 1)
NPS = Fired("A1", "risk.nps_detractor", "csm_immediate_followup", "Tier medium.")


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    s = Store(state_url)
    yield s
    s.close()


def sync(
    store: Store, day: dt.date, fired: list[Fired], ids: tuple[str, ...] = ("A1",)
) -> wi.SyncResult:
    with store.transaction() as s:
        return sync_trigger_items(
            s, MODEL, as_of=day, account_ids=ids, fired=fired, owners={"A1": "Dana"}, run_id=None
        )


def items(store: Store) -> list[dict[str, object]]:
    with store.transaction() as s:
        return [wi.item_record(i) for i in wi.list_items(s, status="all")]


def test_a_fired_trigger_creates_one_item_with_owner_due_priority_and_why(store: Store) -> None:
    result = sync(store, D0, [NPS])
    assert len(result.created) == 1
    [item] = items(store)
    assert item["owner"] == "Dana"  # csm team -> the account's own CSM
    assert item["priority"] == "urgent" and item["due"] == D0.isoformat()  # risk: same day
    assert item["why"].startswith("Latest NPS 0-6") and "Tier medium." in item["why"]


def test_a_non_csm_route_is_owned_by_its_team_and_due_after_its_sla(store: Store) -> None:
    sync(store, D0, [Fired("A1", "expansion.plan_capacity", "inside_sales", "")])
    [item] = items(store)
    assert item["owner"] == "inside_sales"
    assert item["due"] == (D0 + dt.timedelta(days=3)).isoformat()
    assert item["priority"] == "normal"


def test_a_trigger_that_keeps_firing_keeps_one_item(store: Store) -> None:
    for day in range(5):
        sync(store, D0 + dt.timedelta(days=day), [NPS])
    [item] = items(store)
    assert item["last_seen_on"] == (D0 + dt.timedelta(days=4)).isoformat()


def test_rerunning_a_day_changes_nothing(store: Store) -> None:
    sync(store, D0, [NPS])
    before = items(store)
    again = sync(store, D0, [NPS])
    assert again.counts() == {k: 0 for k in again.counts()}
    assert items(store) == before


def test_auto_close_when_the_condition_no_longer_holds(store: Store) -> None:
    sync(store, D0, [NPS])
    result = sync(store, D0 + dt.timedelta(days=1), [])
    [item] = items(store)
    assert len(result.auto_closed) == 1
    assert item["status"] == "closed"
    assert "condition no longer holds on 2026-11-02" in item["close_reason"]


def test_cooldown_after_close_then_a_new_item(store: Store) -> None:
    cooldown = next(t.cooldown_days for t in MODEL.triggers if t.id == NPS.trigger)
    sync(store, D0, [NPS])
    sync(store, D0 + dt.timedelta(days=1), [])  # auto-closed on day 1
    inside = sync(store, D0 + dt.timedelta(days=cooldown), [NPS])
    assert inside.cooled_down == 1 and not inside.created
    after = sync(store, D0 + dt.timedelta(days=1 + cooldown), [NPS])
    assert len(after.created) == 1
    assert sorted(i["status"] for i in items(store)) == ["closed", "open"]


def test_a_user_close_is_not_undone_by_a_rerun_of_the_same_day(store: Store) -> None:
    sync(store, D0, [NPS])
    with store.transaction() as s:
        wi.close(s, items(store)[0]["id"], reason="called them", actor="dana", today=D0)  # type: ignore[arg-type]
    assert not sync(store, D0, [NPS]).created


def test_snooze_stops_the_rule_until_the_date_then_wakes(store: Store) -> None:
    sync(store, D0, [NPS])
    item_id = items(store)[0]["id"]
    with store.transaction() as s:
        wi.snooze(
            s,
            item_id,
            until=D0 + dt.timedelta(days=10),
            reason="on holiday",
            actor="dana",
            today=D0,
        )  # type: ignore[arg-type]
    # Firing, or not, during the snooze: nothing changes.
    mid = sync(store, D0 + dt.timedelta(days=3), [NPS])
    assert mid.snoozed_skipped == 1
    assert not sync(store, D0 + dt.timedelta(days=4), []).auto_closed
    [item] = items(store)
    assert item["status"] == "snoozed"
    woke = sync(store, D0 + dt.timedelta(days=10), [NPS])
    assert len(woke.woken) == 1 and items(store)[0]["status"] == "open"


def test_a_snoozed_item_whose_condition_ended_closes_when_the_snooze_ends(store: Store) -> None:
    sync(store, D0, [NPS])
    with store.transaction() as s:
        wi.snooze(
            s,
            items(store)[0]["id"],
            until=D0 + dt.timedelta(days=5),
            reason="x",
            actor="d",
            today=D0,
        )  # type: ignore[arg-type]
    assert len(sync(store, D0 + dt.timedelta(days=5), []).auto_closed) == 1


def test_an_account_without_a_decision_has_its_items_closed_with_that_reason(store: Store) -> None:
    sync(store, D0, [NPS])
    with store.transaction() as s:
        sync_trigger_items(
            s, MODEL, as_of=D0 + dt.timedelta(days=1), account_ids=["A1"], fired=[], owners={},
            run_id=None, gone_reason="no decision: churned",
        )  # fmt: skip
    assert items(store)[0]["close_reason"] == "no decision: churned"


def test_a_route_change_is_a_new_reason(store: Store) -> None:
    sync(store, D0, [Fired("A1", "expansion.plan_capacity", "inside_sales", "")])
    sync(
        store,
        D0 + dt.timedelta(days=1),
        [Fired("A1", "expansion.plan_capacity", "account_executive", "")],
    )
    statuses = {(i["route"], i["status"]) for i in items(store)}
    assert statuses == {("inside_sales", "closed"), ("account_executive", "open")}


def test_only_the_given_accounts_are_touched(store: Store) -> None:
    sync(store, D0, [NPS])
    sync(store, D0 + dt.timedelta(days=1), [], ids=("B2",))
    assert items(store)[0]["status"] == "open"


def test_user_actions_validate_and_leave_a_trail(store: Store) -> None:
    sync(store, D0, [NPS])
    item_id = int(items(store)[0]["id"])  # type: ignore[call-overload]
    with store.transaction() as s:
        with pytest.raises(wi.WorkItemError, match="must be after"):
            wi.snooze(s, item_id, until=D0, reason="x", actor="d", today=D0)
        with pytest.raises(wi.WorkItemError, match="needs a --reason"):
            wi.close(s, item_id, reason=" ", actor="d", today=D0)
        with pytest.raises(wi.WorkItemError, match="not found"):
            wi.close(s, 999, reason="x", actor="d", today=D0)
        wi.close(s, item_id, reason="done", actor="dana", today=D0)
        with pytest.raises(wi.WorkItemError, match="already closed"):
            wi.close(s, item_id, reason="x", actor="d", today=D0)
        wi.reopen(s, item_id, reason="not done after all", actor="dana", today=D0)
        actions = s.scalars(
            select(WorkItemEvent.action)
            .where(WorkItemEvent.work_item_id == item_id)
            .order_by(WorkItemEvent.id)
        ).all()
    assert actions == ["created", "closed", "reopened"]


def test_reopen_refuses_when_another_item_is_open_for_the_same_reason(store: Store) -> None:
    sync(store, D0, [NPS])
    sync(store, D0 + dt.timedelta(days=1), [])
    sync(store, D0 + dt.timedelta(days=60), [NPS])
    closed = next(i for i in items(store) if i["status"] == "closed")
    with store.transaction() as s, pytest.raises(wi.WorkItemError, match="already open"):
        wi.reopen(s, closed["id"], reason="x", actor="d", today=D0)  # type: ignore[arg-type]


def test_the_database_refuses_a_second_open_item_with_the_same_key(store: Store) -> None:
    """The dedupe holds even against a second process, not only in this code path."""
    from sqlalchemy.exc import IntegrityError

    sync(store, D0, [NPS])
    with pytest.raises(IntegrityError), store.transaction() as s:
        first = s.scalars(select(WorkItem)).one()
        s.add(
            WorkItem(
                **{
                    c.key: getattr(first, c.key)
                    for c in WorkItem.__table__.columns
                    if c.key != "id"
                }
            )
        )


def test_migration_items_are_created_once(store: Store) -> None:
    task = MigrationTask("A1", "to_dedicated", "Handover", "Dana", "csm", 7, "low", "medium")
    for _ in range(2):
        with store.transaction() as s:
            add_migration_items(s, [task], as_of=D0, run_id=None)
    with store.transaction() as s:
        assert s.scalar(select(func.count()).select_from(WorkItem)) == 1
        item = s.scalars(select(WorkItem)).one()
    assert item.owner == "Dana" and item.due == D0 + dt.timedelta(days=7)


def test_a_snooze_silences_the_trigger_even_when_its_route_changes(store: Store) -> None:
    sync(store, D0, [Fired("A1", "expansion.plan_capacity", "inside_sales", "")])
    with store.transaction() as s:
        wi.snooze(
            s,
            items(store)[0]["id"],
            until=D0 + dt.timedelta(days=30),
            reason="budget freeze",
            actor="d",
            today=D0,
        )  # type: ignore[arg-type]
    moved = sync(
        store,
        D0 + dt.timedelta(days=2),
        [Fired("A1", "expansion.plan_capacity", "account_executive", "")],
    )
    assert not moved.created and moved.snoozed_skipped == 1
    assert [i["status"] for i in items(store)] == ["snoozed"]


def test_an_open_csm_item_follows_its_account_to_a_new_book(store: Store) -> None:
    sync(store, D0, [NPS])
    with store.transaction() as s:
        sync_trigger_items(
            s, MODEL, as_of=D0 + dt.timedelta(days=1), account_ids=["A1"], fired=[NPS],
            owners={"A1": "Eve"}, run_id=None,
        )  # fmt: skip
    [item] = items(store)
    assert item["owner"] == "Eve"
    with store.transaction() as s:
        assert wi.reassign_open_items(s, "A1", to_csm="Fay", on=D0, actor="rebalance") == 1
    assert items(store)[0]["owner"] == "Fay"


@pytest.mark.parametrize("loser", ["snooze", "close", "reopen"])
def test_a_user_action_on_an_item_changed_meanwhile_is_a_conflict(store: Store, loser: str) -> None:
    """Issue 12.2: the action checks the item as it read it, then writes only if it is
    still so (compare-and-set); here another session changes it in between."""
    sync(store, D0, [NPS])
    item_id = items(store)[0]["id"]
    assert isinstance(item_id, int)
    if loser == "reopen":
        with store.transaction() as s:
            wi.close(s, item_id, reason="done", actor="Dana", today=D0)
    later = D0 + dt.timedelta(days=9)
    with store.transaction() as slow:
        seen = wi.get_item(slow, item_id)  # read: the action's checks see this state
        with store.transaction() as fast:  # meanwhile, another user acts and commits
            if loser == "reopen":
                wi.reopen(fast, item_id, reason="not done", actor="Lee", today=D0)
            else:
                wi.close(fast, item_id, reason="handled", actor="Lee", today=D0)
        assert seen.status == ("closed" if loser == "reopen" else "open")  # stale
        with pytest.raises(wi.WorkItemConflict, match="changed by someone else"):
            if loser == "snooze":
                wi.snooze(slow, item_id, until=later, reason="later", actor="Dana", today=D0)
            elif loser == "close":
                wi.close(slow, item_id, reason="done", actor="Dana", today=D0)
            else:
                wi.reopen(slow, item_id, reason="again", actor="Dana", today=D0)
    with store.transaction() as s:
        history = [e["action"] for e in wi.item_history(s, item_id)]
        final = s.get(WorkItem, item_id)
        assert final is not None
        assert final.closed_by == ("Lee" if loser != "reopen" else None)
    assert history == (
        ["created", "closed", "reopened"] if loser == "reopen" else ["created", "closed"]
    )

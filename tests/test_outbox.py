"""The outbox on SQLite and PostgreSQL, against real HTTP and SMTP servers."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.delivery_servers import http_receiver, smtp_server
from touchmodel.ops import channels
from touchmodel.ops.channels import message_id
from touchmodel.ops.delivery_config import DeliveryConfig, EmailConfig, SlackConfig, WebhookConfig
from touchmodel.ops.outbox import (
    dispatch,
    enqueue,
    lease_seconds,
    list_messages,
    retry_dead,
    status_counts,
)
from touchmodel.state.db import Store
from touchmodel.state.tables import OutboxMessage, utcnow

SECRET = "s3cret"
ENV = {"TM_WEBHOOK_SECRET": SECRET}
FIELDS = {
    "account_id": "A1",
    "account_name": "Acme",
    "contact_email": "pat@acme.test",
    "touchpoint": "Renewal check-in",
    "due": "2026-12-01",
    "csm": "Dana",
}


@pytest.fixture
def store(state_url: str) -> Iterator[Store]:
    opened = Store(state_url)
    yield opened
    opened.close()


def soon() -> dt.datetime:
    """A fixed clock a minute ahead: every message queued so far is due."""
    return utcnow() + dt.timedelta(minutes=1)


def aware(value: dt.datetime) -> dt.datetime:
    """A stored timestamp as aware UTC (SQLite returns it naive)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def fast(**sections: Any) -> DeliveryConfig:
    """A config that retries quickly: the schedule is tested on its own."""
    options: dict[str, Any] = {"backoff_seconds": 0.01, "backoff_max_seconds": 0.05}
    options.update(sections)
    return DeliveryConfig(**options)


def webhook(url: str, **options: Any) -> DeliveryConfig:
    return fast(webhook=WebhookConfig(url=url, secret_env="TM_WEBHOOK_SECRET"), **options)


def queue_webhooks(store: Store, n: int, prefix: str = "wi") -> list[str]:
    keys = [f"{prefix}:{i}" for i in range(n)]
    with store.transaction() as session:
        for i, key in enumerate(keys):
            enqueue(
                session,
                channel="webhook",
                topic="work_item.created",
                idempotency_key=key,
                payload={"account_id": f"A{i}", "n": i},
            )
    return keys


def rows(store: Store) -> dict[str, OutboxMessage]:
    return {m.idempotency_key: m for m in list_messages(store, limit=10_000)}


# --- enqueue ------------------------------------------------------------------------


def test_enqueue_is_insert_if_absent(store: Store) -> None:
    with store.transaction() as session:
        first = enqueue(
            session, channel="webhook", topic="t", idempotency_key="k", payload={"v": 1}
        )
        assert first is not None and first.status == "pending" and first.attempts == 0
        again = enqueue(
            session, channel="webhook", topic="t", idempotency_key="k", payload={"v": 2}
        )
        assert again is None
    with store.transaction() as session:  # a later run, another transaction
        assert enqueue(session, channel="email", topic="t", idempotency_key="k", payload={}) is None
        count = session.scalar(select(func.count()).select_from(OutboxMessage))
    assert count == 1
    assert rows(store)["k"].payload == {"v": 1}  # the first write wins


def test_enqueue_commits_or_rolls_back_with_the_callers_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as session:
        enqueue(session, channel="slack", topic="t", idempotency_key="gone", payload={})
        raise RuntimeError("the work item failed, so its message must not exist")
    assert rows(store) == {}


def test_enqueue_rejects_what_the_columns_cannot_hold(store: Store) -> None:
    with store.transaction() as session:
        with pytest.raises(ValueError, match="channel 'sms'"):
            enqueue(session, channel="sms", topic="t", idempotency_key="k", payload={})
        with pytest.raises(ValueError, match="idempotency_key"):
            enqueue(session, channel="email", topic="t", idempotency_key="k" * 301, payload={})


# --- webhook: retries, signatures, once in effect -----------------------------------


def test_a_receiver_failing_every_third_request_still_gets_every_message_once(
    store: Store,
) -> None:
    keys = queue_webhooks(store, 30)
    with http_receiver(secret=SECRET, fail_every=3) as rx:
        report = dispatch(store, webhook(rx.url), wait=True, max_seconds=60, environ=ENV)
    assert rx.failed >= 10  # the failures really happened ...
    assert report.retrying == rx.failed and report.dead == 0
    assert rx.bad_signatures == 0
    assert set(rx.effects) == set(keys)  # ... and every message still arrived,
    assert all(rx.effects[k] == 1 for k in keys)  # applied once,
    assert all(rx.accepted[k] == 1 for k in keys)  # and never re-sent once accepted
    assert report.sent == 30 and report.pending == 0 and report.next_attempt_at is None
    saved = rows(store)
    assert {m.status for m in saved.values()} == {"sent"}
    assert all(m.sent_at is not None and m.last_error is None for m in saved.values())
    assert sum(m.attempts for m in saved.values()) == rx.requests
    assert status_counts(store) == {"pending": 0, "sent": 30, "dead": 0}


def test_webhook_body_and_headers(store: Store) -> None:
    queue_webhooks(store, 1)
    with http_receiver(secret=SECRET) as rx:
        dispatch(store, webhook(rx.url), environ=ENV)
    assert rx.bodies == [
        {
            "data": {"account_id": "A0", "n": 0},
            "idempotency_key": "wi:0",
            "topic": "work_item.created",
        }
    ]


def test_a_wrong_secret_fails_verification_and_is_dead_at_once(store: Store) -> None:
    queue_webhooks(store, 2)
    with http_receiver(secret="the receiver's secret") as rx:
        report = dispatch(store, webhook(rx.url), environ=ENV)
    assert rx.bad_signatures == 2 and rx.effects == {}
    assert report.dead == 2
    assert all("HTTP 401" in (m.last_error or "") for m in rows(store).values())


def test_dead_after_max_attempts_then_retry_dead_revives(store: Store) -> None:
    keys = queue_webhooks(store, 3)
    with http_receiver(status=503) as rx:
        report = dispatch(
            store, webhook(rx.url, max_attempts=4), wait=True, max_seconds=30, environ=ENV
        )
    assert rx.requests == 12  # 4 attempts each, then no more
    assert report.dead == 3 and report.sent == 0 and report.pending == 0
    dead = list_messages(store, status="dead")
    assert {m.idempotency_key for m in dead} == set(keys)
    assert all(m.attempts == 4 for m in dead)
    assert all(
        m.last_error and m.last_error.startswith("attempt 4: webhook answered HTTP 503")
        for m in dead
    )

    first = min(m.id for m in dead)
    assert retry_dead(store, [first]) == 1
    assert [m.id for m in list_messages(store, status="pending")] == [first]
    assert retry_dead(store) == 2
    with http_receiver(secret=SECRET) as rx:
        report = dispatch(store, webhook(rx.url), environ=ENV)
    assert report.sent == 3 and set(rx.effects) == set(keys)
    assert all(m.attempts == 1 for m in rows(store).values())  # attempts start over
    assert retry_dead(store) == 0


def test_a_permanent_4xx_is_dead_at_once(store: Store) -> None:
    queue_webhooks(store, 1)
    with http_receiver(status=422) as rx:
        report = dispatch(store, webhook(rx.url), wait=True, max_seconds=30, environ=ENV)
    assert rx.requests == 1 and report.dead == 1
    message = rows(store)["wi:0"]
    assert (message.status, message.attempts) == ("dead", 1)
    assert "HTTP 422" in (message.last_error or "")


def test_backoff_schedule_in_the_store(store: Store) -> None:
    queue_webhooks(store, 1)
    with http_receiver(status=500) as rx:
        config = DeliveryConfig(webhook=WebhookConfig(url=rx.url), max_attempts=3)
        at = soon()
        for attempt, wait_s in ((1, 30), (2, 60)):
            report = dispatch(store, config, now=at)
            assert report.attempted == 1 and report.retrying == 1
            message = rows(store)["wi:0"]
            assert message.attempts == attempt
            due = (
                message.next_attempt_at.replace(tzinfo=dt.UTC)
                if message.next_attempt_at.tzinfo is None
                else message.next_attempt_at
            )
            assert due == at + dt.timedelta(seconds=wait_s)
            # Not due a moment before: nothing is attempted.
            assert dispatch(store, config, now=due - dt.timedelta(seconds=1)).attempted == 0
            at = due
        report = dispatch(store, config, now=at)
    assert report.dead == 1 and rx.requests == 3
    assert dispatch(store, config, now=at + dt.timedelta(days=1)).attempted == 0


def test_retry_after_is_honoured(store: Store) -> None:
    queue_webhooks(store, 1)
    t0 = soon()
    with http_receiver(status=429, headers={"Retry-After": "600"}) as rx:
        dispatch(store, DeliveryConfig(webhook=WebhookConfig(url=rx.url)), now=t0)
    assert aware(rows(store)["wi:0"].next_attempt_at) == t0 + dt.timedelta(seconds=600)


def test_wait_cannot_be_combined_with_a_fixed_clock(store: Store) -> None:
    with pytest.raises(ValueError, match="cannot wait"):
        dispatch(store, DeliveryConfig(), now=soon(), wait=True)


# --- crashes and concurrent dispatchers ---------------------------------------------


class _Killed(BaseException):
    """The process dies: not an error a dispatcher could catch and record."""


def test_killed_between_send_and_record_resends_with_the_same_key(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_webhooks(store, 1)
    t0 = soon()
    send = channels.WebhookSender.__call__

    def send_then_die(self: channels.WebhookSender, envelope: channels.Envelope) -> None:
        send(self, envelope)
        raise _Killed

    with http_receiver(secret=SECRET) as rx:
        config = webhook(rx.url)
        with monkeypatch.context() as patch:
            patch.setattr(channels.WebhookSender, "__call__", send_then_die)
            with pytest.raises(_Killed):
                dispatch(store, config, now=t0, environ=ENV)
        message = rows(store)["wi:0"]
        assert (message.status, message.attempts) == ("pending", 1)
        # Kept from other dispatchers for the lease, then sent again.
        assert dispatch(store, config, now=t0 + dt.timedelta(seconds=1), environ=ENV).attempted == 0
        later = t0 + dt.timedelta(seconds=lease_seconds(config) + 1)
        assert dispatch(store, config, now=later, environ=ENV).sent == 1
    assert rx.accepted["wi:0"] == 2  # at least once: it really arrived twice ...
    assert rx.effects["wi:0"] == 1  # ... and the key made it count once
    assert rows(store)["wi:0"].status == "sent"


def test_an_interrupted_last_attempt_is_dead_and_says_so(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue_webhooks(store, 1)
    t0 = soon()
    config = DeliveryConfig(webhook=WebhookConfig(url="http://127.0.0.1:9/"), max_attempts=1)

    def die(self: channels.WebhookSender, envelope: channels.Envelope) -> None:
        raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr(channels.WebhookSender, "__call__", die)
        with pytest.raises(_Killed):
            dispatch(store, config, now=t0)
    report = dispatch(store, config, now=t0 + dt.timedelta(days=1))
    assert report.dead == 1 and report.attempted == 0
    message = rows(store)["wi:0"]
    assert message.status == "dead" and "interrupted" in (message.last_error or "")


def test_two_dispatchers_never_send_one_message_twice(state_url: str) -> None:
    stores = [Store(state_url), Store(state_url)]
    try:
        keys = queue_webhooks(stores[0], 40)
        with http_receiver(secret=SECRET, delay=0.005) as rx:
            config = webhook(rx.url)
            start = threading.Barrier(2)
            reports: list[Any] = []
            errors: list[BaseException] = []

            def run(store: Store) -> None:
                try:
                    start.wait()
                    reports.append(dispatch(store, config, environ=ENV))
                except BaseException as exc:  # surfaced below, not lost in the thread
                    errors.append(exc)

            threads = [threading.Thread(target=run, args=(s,)) for s in stores]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert errors == []
        assert all(rx.accepted[k] == 1 for k in keys) and set(rx.accepted) == set(keys)
        assert sum(r.sent for r in reports) == 40
        # Both really competed for the same messages (otherwise the test proves nothing).
        assert all(r.sent > 0 for r in reports)
        assert sum(r.lost_claims for r in reports) > 0
    finally:
        for s in stores:
            s.close()


# --- channels not configured --------------------------------------------------------


def test_an_unconfigured_channel_waits_pending_until_configured(store: Store) -> None:
    with store.transaction() as session:
        enqueue(
            session,
            channel="email",
            topic="touchpoint.email",
            idempotency_key="tp:1",
            payload=FIELDS,
            recipient="pat@acme.test",
        )
    report = dispatch(store, fast(), wait=True, max_seconds=30)
    assert report.waiting == {"email": 1} and report.attempted == 0
    assert report.pending == 0  # nothing usable is left, so wait=True returned
    message = rows(store)["tp:1"]
    assert (message.status, message.attempts) == ("pending", 0)
    assert message.last_error == "channel email is not configured in touchmodel.yaml delivery"

    with smtp_server() as box:
        config = fast(email=EmailConfig(host=box.host, port=box.port, sender="cs@vendor.test"))
        report = dispatch(store, config)
    assert report.sent == 1 and report.waiting == {}
    assert len(box.messages) == 1


# --- email and Slack ----------------------------------------------------------------


def _queue_email(store: Store, key: str, template: str, to: str = "pat@acme.test") -> None:
    with store.transaction() as session:
        enqueue(
            session,
            channel="email",
            topic="touchpoint.email",
            idempotency_key=key,
            payload={**FIELDS, "template": template},
            recipient=to,
        )


def test_email_through_a_real_smtp_server(store: Store, tmp_path: Path) -> None:
    _queue_email(store, "tp:A1:renewal_30", "renewal_30")
    _queue_email(store, "tp:A1:reengagement", "reengagement")
    _queue_email(store, "tp:A1:bad", "renewal_14", to="gone@acme.test")
    overrides = tmp_path / "templates" / "email"
    overrides.mkdir(parents=True)
    (overrides / "reengagement.txt").write_text(
        "Subject: We miss you at {{ account_name }}\n\nHello from {{ csm }}, due {{ due }}.\n"
    )
    with smtp_server(refuse={"gone@acme.test"}) as box:
        config = fast(email=EmailConfig(host=box.host, port=box.port, sender="cs@vendor.test"))
        report = dispatch(store, config, templates_dir=tmp_path / "templates", wait=True)
    assert (report.sent, report.dead) == (2, 1)
    by_subject = {m["Subject"]: m for m in box.messages}
    renewal = by_subject["Acme: your renewal in 30 days"]
    assert "renews in about a month" in renewal.get_content()
    assert renewal.get_content().rstrip().endswith("Dana")
    assert renewal["Message-ID"] == message_id("tp:A1:renewal_30", "cs@vendor.test")
    assert renewal["To"] == "pat@acme.test" and renewal["From"] == "cs@vendor.test"
    override = by_subject["We miss you at Acme"]
    assert override.get_content().replace("\r\n", "\n") == "Hello from Dana, due 2026-12-01.\n"
    assert box.envelopes[0] == ("cs@vendor.test", ["pat@acme.test"])
    bad = rows(store)["tp:A1:bad"]
    assert bad.status == "dead" and "550" in (bad.last_error or "")


def test_a_missing_template_field_is_dead_with_its_name(store: Store) -> None:
    with store.transaction() as session:
        enqueue(
            session,
            channel="email",
            topic="touchpoint.email",
            idempotency_key="tp:x",
            payload={"account_name": "Acme"},
            recipient="pat@acme.test",
        )
    with smtp_server() as box:
        config = fast(email=EmailConfig(host=box.host, port=box.port, sender="cs@vendor.test"))
        report = dispatch(store, config)
    assert report.dead == 1 and box.messages == []
    assert "'touchpoint' is undefined" in (rows(store)["tp:x"].last_error or "")


def test_slack_through_the_http_receiver(store: Store) -> None:
    with store.transaction() as session:
        enqueue(
            session,
            channel="slack",
            topic="work_item.created",
            idempotency_key="s:1",
            payload={**FIELDS, "action": "Call the champion"},
        )
        enqueue(
            session,
            channel="slack",
            topic="run.completed",
            idempotency_key="s:2",
            payload={"text": "Run finished: 1,204 accounts"},
        )
    with http_receiver(fail_every=2) as rx:
        config = fast(slack=SlackConfig(url_env="TM_SLACK_URL"))
        report = dispatch(
            store, config, wait=True, max_seconds=30, environ={"TM_SLACK_URL": rx.url}
        )
    assert report.sent == 2 and report.retrying >= 1
    texts = sorted(body["text"] for body in rx.bodies)
    assert texts[1] == "Run finished: 1,204 accounts"
    assert texts[0].startswith("*work_item.created* · Acme (A1)")
    assert "Call the champion" in texts[0]

"""Delivery without a database: config, signing, backoff, templates, HTTP answers."""

from __future__ import annotations

import hashlib
import hmac
import time
from pathlib import Path
from typing import get_args

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.delivery_servers import http_receiver, smtp_server
from touchmodel.errors import ModelFileError
from touchmodel.model.cadences import Template
from touchmodel.ops.channels import (
    Envelope,
    SendError,
    Templates,
    build_channels,
    message_id,
    sign,
    verify_signature,
    webhook_body,
)
from touchmodel.ops.delivery_config import (
    DeliveryConfig,
    EmailConfig,
    WebhookConfig,
    delivery_config_from_dict,
)
from touchmodel.ops.outbox import backoff_delay

FIELDS = {
    "account_id": "A1",
    "account_name": "Acme",
    "contact_email": "pat@acme.test",
    "touchpoint": "Kick-off call",
    "due": "2026-11-04",
    "csm": "Dana",
}
SHIPPED = list(get_args(Template))  # the names the model file may use, each shipped


def envelope(payload: dict[str, object] | None = None, **kw: object) -> Envelope:
    base: dict[str, object] = {
        "id": 1,
        "idempotency_key": "k1",
        "channel": "webhook",
        "topic": "touchpoint.email",
        "recipient": "pat@acme.test",
        "payload": payload if payload is not None else dict(FIELDS),
        "attempt": 1,
    }
    base.update(kw)
    return Envelope(**base)  # type: ignore[arg-type]


# --- configuration ------------------------------------------------------------------


def test_config_defaults_and_no_section() -> None:
    config = delivery_config_from_dict(None)
    assert (config.webhook, config.slack, config.email) == (None, None, None)
    assert config.max_attempts == 8
    assert (config.backoff_seconds, config.backoff_max_seconds) == (30.0, 3600.0)
    assert config.timeout_seconds == 10.0


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        (
            {"webhook": {"url": "https://x.test", "secret": "s"}},
            "delivery.webhook.secret: unknown key",
        ),
        ({"webhook": {"url": "ftp://x.test"}}, "delivery.webhook.url: value 'ftp://x.test'"),
        (
            {"slack": {"url": "https://x.test", "url_env": "S"}},
            "exactly one of `url` and `url_env`",
        ),
        (
            {"email": {"host": "h", "sender": "a@b.test", "ssl": True, "starttls": True}},
            "choose one",
        ),
        ({"email": {"host": "h", "sender": "nobody"}}, "delivery.email.sender"),
        ({"max_attempts": 0}, "delivery.max_attempts: value 0"),
    ],
)
def test_config_errors_name_the_dotted_path(section: dict[str, object], expected: str) -> None:
    with pytest.raises(ModelFileError) as err:
        delivery_config_from_dict(section, "ws/touchmodel.yaml")
    assert err.value.file == "ws/touchmodel.yaml"
    assert any(expected in p for p in err.value.problems), err.value.problems


def test_secrets_come_from_the_environment_and_a_missing_one_disables_the_channel() -> None:
    config = DeliveryConfig(
        webhook=WebhookConfig(url="http://127.0.0.1:9/h", secret_env="TM_SECRET"),
        email=EmailConfig(
            host="h", sender="cs@x.test", username_env="TM_USER", password_env="TM_PASS"
        ),
    )
    with httpx.Client() as client:
        none = build_channels(config, client, environ={})
        assert set(none.senders) == set()
        assert "TM_SECRET is not set" in none.unavailable["webhook"]
        assert "TM_USER is not set" in none.unavailable["email"]
        assert (
            none.unavailable["slack"]
            == "channel slack is not configured in touchmodel.yaml delivery"
        )
        env = {"TM_SECRET": "s3cret", "TM_USER": "u", "TM_PASS": "p"}
        full = build_channels(config, client, environ=env)
        assert set(full.senders) == {"webhook", "email"}


# --- signing ------------------------------------------------------------------------


def test_signature_verifies_and_rejects_tampering_and_replay() -> None:
    body = webhook_body(envelope())
    ts = str(int(time.time()))
    header = sign("s3cret", ts, body)
    mac = hmac.new(b"s3cret", f"{ts}.".encode() + body, hashlib.sha256)
    expected = "sha256=" + mac.hexdigest()
    assert header == expected
    assert verify_signature("s3cret", ts, body, header)
    assert verify_signature("s3cret", ts, body.decode(), header)
    assert not verify_signature("other", ts, body, header)
    assert not verify_signature("s3cret", ts, body.replace(b"A1", b"A2"), header)
    assert not verify_signature("s3cret", str(int(ts) + 1), body, header)
    old = str(int(time.time()) - 3600)
    assert not verify_signature("s3cret", old, body, sign("s3cret", old, body))
    assert verify_signature("s3cret", old, body, sign("s3cret", old, body), tolerance_seconds=None)
    assert not verify_signature("s3cret", "not-a-number", body, header)


def test_webhook_body_carries_key_and_topic_inside_the_signed_bytes() -> None:
    body = webhook_body(envelope())
    assert body.startswith(b'{"data":{')
    assert b'"idempotency_key":"k1"' in body and b'"topic":"touchpoint.email"' in body


# --- backoff ------------------------------------------------------------------------


def test_backoff_schedule() -> None:
    delays = [backoff_delay(n, 30, 3600) for n in range(1, 10)]
    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff_delay(10**6, 30, 3600) == 3600
    with pytest.raises(ValueError, match="attempts is 0"):
        backoff_delay(0, 30, 3600)


@given(
    attempts=st.integers(min_value=1, max_value=5000),
    base=st.floats(min_value=0, max_value=1e6, allow_nan=False),
    cap=st.floats(min_value=0, max_value=1e7, allow_nan=False),
)
def test_backoff_is_monotone_capped_and_starts_at_the_base(
    attempts: int, base: float, cap: float
) -> None:
    now, later = backoff_delay(attempts, base, cap), backoff_delay(attempts + 1, base, cap)
    assert 0 <= now <= later <= cap
    assert backoff_delay(1, base, cap) == min(base, cap)
    if base > 0 and now < cap:
        assert later == min(cap, 2 * now)  # doubles until it reaches the cap


# --- templates ----------------------------------------------------------------------


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_email_template_renders_from_the_documented_fields(name: str) -> None:
    subject, body = Templates().render_email(name, FIELDS)
    assert subject and "\n" not in subject and "{" not in subject
    assert "Acme" in subject + body
    assert "Dana" in body and "{{" not in body


def test_a_missing_field_is_a_permanent_error_naming_it() -> None:
    fields = {k: v for k, v in FIELDS.items() if k != "csm"}
    with pytest.raises(SendError) as err:
        Templates().render_email("renewal_30", fields)
    assert err.value.permanent
    assert "'csm' is undefined" in str(err.value)


def test_template_names_are_plain_and_must_exist(tmp_path: Path) -> None:
    for name, problem in (("../secrets", "not a plain name"), ("nope", "no email template")):
        with pytest.raises(SendError, match=problem) as err:
            Templates(tmp_path).render_email(name, FIELDS)
        assert err.value.permanent


def test_a_workspace_template_overrides_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "email").mkdir()
    (tmp_path / "email" / "renewal_30.txt").write_text(
        "Subject: Renewal for {{ account_name }} <b>\n\nDear {{ account_name }} & co, bye.\n"
    )
    templates = Templates(tmp_path)
    assert templates.render_email("renewal_30", FIELDS) == (
        "Renewal for Acme <b>",  # no HTML escaping in plain-text mail
        "Dear Acme & co, bye.\n",
    )
    # Templates the workspace does not override still come from the package.
    assert templates.render_email("touchpoint", FIELDS)[0] == "Acme: Kick-off call"


def test_a_subject_is_one_line_whatever_the_payload_holds() -> None:
    fields = {**FIELDS, "account_name": "Acme\r\nBcc: evil@x.test"}
    subject, _ = Templates().render_email("touchpoint", fields)
    assert subject == "Acme Bcc: evil@x.test: Kick-off call"


def test_message_id_is_derived_from_the_key() -> None:
    assert message_id("k1", "cs@vendor.test") == message_id("k1", "cs@vendor.test")
    assert message_id("k1", "cs@vendor.test") != message_id("k2", "cs@vendor.test")
    assert message_id("k1", "cs@vendor.test").endswith("@vendor.test>")


def test_slack_text_from_the_default_template_or_the_payload() -> None:
    text = Templates().render("slack", "default", {"topic": "work_item.created", **FIELDS})
    assert text.startswith("*work_item.created* · Acme (A1)")
    assert "Kick-off call" in text and "Due 2026-11-04" in text


# --- HTTP answers, against a real server --------------------------------------------


@pytest.mark.parametrize(
    ("status", "permanent"),
    [
        (400, True),
        (404, True),
        (410, True),
        (302, True),
        (408, False),
        (429, False),
        (500, False),
        (503, False),
    ],
)
def test_http_answers_decide_retry_or_dead(status: int, permanent: bool) -> None:
    extra = {"Location": "https://elsewhere.test"} if status == 302 else {}
    with http_receiver(status=status, headers=extra) as rx, httpx.Client(timeout=5) as client:
        config = DeliveryConfig(webhook=WebhookConfig(url=rx.url))
        sender = build_channels(config, client, environ={}).senders["webhook"]
        with pytest.raises(SendError) as err:
            sender(envelope())
    assert err.value.permanent is permanent
    assert f"HTTP {status}" in str(err.value)


def test_retry_after_seconds_are_passed_on() -> None:
    with (
        http_receiver(status=429, headers={"Retry-After": "120"}) as rx,
        httpx.Client(timeout=5) as client,
    ):
        sender = build_channels(
            DeliveryConfig(webhook=WebhookConfig(url=rx.url)), client, environ={}
        ).senders["webhook"]
        with pytest.raises(SendError) as err:
            sender(envelope())
    assert err.value.retry_after == 120.0 and not err.value.permanent


def test_connection_refused_is_retried() -> None:
    with http_receiver() as rx:
        url = rx.url  # the server is gone once the block ends
    with httpx.Client(timeout=2) as client:
        sender = build_channels(
            DeliveryConfig(webhook=WebhookConfig(url=url)), client, environ={}
        ).senders["webhook"]
        with pytest.raises(SendError, match="ConnectError") as err:
            sender(envelope())
    assert not err.value.permanent


def test_smtp_recipient_refused_is_permanent_and_a_dead_server_is_not() -> None:
    with smtp_server(refuse={"gone@acme.test"}) as box, httpx.Client() as client:
        config = DeliveryConfig(email=EmailConfig(host=box.host, port=box.port, sender="cs@v.test"))
        sender = build_channels(config, client, environ={}).senders["email"]
        with pytest.raises(SendError, match="recipient refused") as err:
            sender(envelope(recipient="gone@acme.test"))
        assert err.value.permanent
        with pytest.raises(SendError, match="no recipient") as err:
            sender(envelope(recipient=""))
        assert err.value.permanent
        port = box.port
    config = DeliveryConfig(email=EmailConfig(host="127.0.0.1", port=port, sender="cs@v.test"))
    with httpx.Client() as client:
        sender = build_channels(config, client, environ={}).senders["email"]
        with pytest.raises(SendError) as err:
            sender(envelope())
    assert not err.value.permanent

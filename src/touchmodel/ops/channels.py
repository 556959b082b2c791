"""Senders for the outbox's channels: signed webhooks, Slack, and templated email.

Every sender takes an :class:`Envelope` and either returns (delivered) or
raises :class:`SendError`, which says whether a retry could help
(``permanent=False``: 5xx, 408, 429, timeouts, refused connections, SMTP 4xx)
or not (``permanent=True``: other 4xx, SMTP 5xx for the recipient or the
content, a template that does not render). The dispatcher in
``touchmodel.ops.outbox`` turns that into a retry with backoff or a dead letter.

Webhook
-------
``POST <url>`` with the JSON body
``{"data": <payload>, "idempotency_key": "...", "topic": "..."}`` and headers

- ``Idempotency-Key``: the message's key; the same on every attempt,
- ``X-Touchmodel-Topic``: e.g. ``work_item.created``,
- ``X-Touchmodel-Timestamp``: Unix seconds when this attempt was signed,
- ``X-Touchmodel-Signature``: ``sha256=<hex>``, the HMAC-SHA256 of
  ``f"{timestamp}.{body}"`` (body as the exact bytes received) keyed with the
  secret from ``delivery.webhook.secret_env`` (absent when no secret is set).

A receiver verifies with :func:`verify_signature` (or the same four lines in
its own language): recompute the HMAC over the timestamp header, a ``.`` and
the raw body, compare in constant time, and reject timestamps older than a few
minutes so a captured request cannot be replayed later. Delivery is
*at least once*: a receiver must apply each ``idempotency_key`` once (the key
is inside the signed body, so it can be trusted) and answer 2xx to a repeat.

Slack
-----
``POST {"text": ...}`` to the incoming-webhook URL. The text is the payload's
``text`` field when present, otherwise ``templates/slack/default.txt``
rendered with the payload's fields and ``topic``. Slack does not deduplicate:
a repeat after a crash (see ``outbox``) posts twice.

Email
-----
One SMTP session per message to ``delivery.email``; ``To`` is the message's
``recipient``. The template is ``payload["template"]`` (default ``touchpoint``):
``templates/email/<template>.txt`` from the workspace's templates folder when it
has one, else the copy shipped in this package. Its first line is
``Subject: ...``, then a blank line, then the body. Templates are Jinja2 with
autoescaping off (plain text) and strict undefined variables, so a field that
is missing fails the message (dead, with the field's name) instead of mailing
a blank. Fields available to every template, from the payload:

- ``account_id``, ``account_name``: the account,
- ``contact_email``: the contact written to (normally also the recipient),
- ``touchpoint``: the touchpoint's title,
- ``due``: its due date (ISO text),
- ``csm``: the account's CSM (the signature of most templates),
- ``recipient``: the message's recipient,

plus any other key the payload carries. ``Message-ID`` is derived from the
idempotency key (:func:`message_id`), so a resend is recognisable as the same
message by the mail server and the reader's client.
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import jinja2

from touchmodel.ops.delivery_config import (
    ChannelUnavailable,
    DeliveryConfig,
    slack_url,
    smtp_login,
    webhook_secret,
)

SIGNATURE_HEADER = "X-Touchmodel-Signature"
TIMESTAMP_HEADER = "X-Touchmodel-Timestamp"
TOPIC_HEADER = "X-Touchmodel-Topic"
KEY_HEADER = "Idempotency-Key"
DEFAULT_EMAIL_TEMPLATE = "touchpoint"
_TEMPLATE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,100}$")


@dataclass(frozen=True)
class Envelope:
    """What a sender needs of an outbox message (a plain copy, no database session)."""

    id: int
    idempotency_key: str
    channel: str
    topic: str
    recipient: str
    payload: dict[str, Any]
    attempt: int  # 1 for the first attempt


class SendError(Exception):
    """A delivery attempt failed; ``permanent`` when retrying cannot help."""

    def __init__(
        self, message: str, *, permanent: bool = False, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        # Seconds the receiver asked us to wait (HTTP Retry-After), if any.
        self.retry_after = retry_after


Sender = Callable[[Envelope], None]


# --- signing ------------------------------------------------------------------------


def sign(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Touchmodel-Signature`` value for ``body`` sent at ``timestamp``."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_signature(
    secret: str | bytes,
    timestamp: str,
    body: bytes | str,
    header: str,
    *,
    tolerance_seconds: float | None = 300.0,
    now: float | None = None,
) -> bool:
    """True when ``header`` is our signature of ``body`` at ``timestamp``.

    ``body`` must be the raw request body, not a re-serialised parse of it.
    With ``tolerance_seconds`` (default five minutes; None turns it off) a
    timestamp further than that from ``now`` (default: the clock) is refused,
    which stops a captured request from being replayed later.
    """
    raw = body.encode() if isinstance(body, str) else body
    if tolerance_seconds is not None:
        try:
            sent = float(timestamp)
        except ValueError:
            return False
        if abs((time.time() if now is None else now) - sent) > tolerance_seconds:
            return False
    return hmac.compare_digest(sign(secret, timestamp, raw), header)


def webhook_body(envelope: Envelope) -> bytes:
    """The exact JSON bytes POSTed (and signed) for ``envelope``."""
    doc = {
        "data": envelope.payload,
        "idempotency_key": envelope.idempotency_key,
        "topic": envelope.topic,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- HTTP ---------------------------------------------------------------------------


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    # Only the seconds form; an HTTP-date falls back to our own backoff.
    return float(value) if value.strip().isdigit() else None


def _check_response(response: httpx.Response, what: str) -> None:
    code = response.status_code
    if 200 <= code < 300:
        return
    snippet = response.text[:200].strip()
    message = f"{what} answered HTTP {code}" + (f": {snippet}" if snippet else "")
    if code in (408, 429) or code >= 500:
        raise SendError(message, retry_after=_retry_after(response))
    if 300 <= code < 400:
        location = response.headers.get("location", "?")
        # We do not follow redirects: a signed POST should go to the configured URL.
        raise SendError(f"{message} (redirect to {location}; configure that URL)", permanent=True)
    raise SendError(message, permanent=True)


def _post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str], what: str) -> None:
    try:
        response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException as exc:
        raise SendError(f"{what}: timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise SendError(f"{what}: {type(exc).__name__}: {exc}") from exc
    _check_response(response, what)


class WebhookSender:
    """POSTs each message as signed JSON to the configured webhook URL."""

    def __init__(self, url: str, secret: str | None, client: httpx.Client) -> None:
        self.url = url
        self.secret = secret
        self.client = client

    def __call__(self, envelope: Envelope) -> None:
        """Deliver one message; raise SendError when the receiver does not take it."""
        body = webhook_body(envelope)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            KEY_HEADER: envelope.idempotency_key,
            TOPIC_HEADER: envelope.topic,
            TIMESTAMP_HEADER: timestamp,
            "X-Touchmodel-Attempt": str(envelope.attempt),
        }
        if self.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        _post(self.client, self.url, body, headers, "webhook")


class SlackSender:
    """POSTs ``{"text": ...}`` to a Slack incoming webhook."""

    def __init__(self, url: str, templates: Templates, client: httpx.Client) -> None:
        self.url = url
        self.templates = templates
        self.client = client

    def __call__(self, envelope: Envelope) -> None:
        """Deliver one message; raise SendError when Slack does not take it."""
        text = envelope.payload.get("text")
        if not isinstance(text, str):
            text = self.templates.render("slack", "default", _fields(envelope))
        body = json.dumps({"text": text}).encode()
        headers = {"Content-Type": "application/json"}
        _post(self.client, self.url, body, headers, "slack")


# --- templates ----------------------------------------------------------------------


def _fields(envelope: Envelope) -> dict[str, Any]:
    return {"topic": envelope.topic, "recipient": envelope.recipient, **envelope.payload}


class Templates:
    """Jinja2 templates: the workspace's ``templates/<kind>/`` first, then the package's."""

    def __init__(self, templates_dir: Path | None = None) -> None:
        self.templates_dir = templates_dir
        self._envs: dict[str, jinja2.Environment] = {}

    def _env(self, kind: str) -> jinja2.Environment:
        if kind not in self._envs:
            loaders: list[jinja2.BaseLoader] = []
            if self.templates_dir is not None:
                loaders.append(jinja2.FileSystemLoader(self.templates_dir / kind))
            loaders.append(jinja2.PackageLoader("touchmodel.ops", f"templates/{kind}"))
            self._envs[kind] = jinja2.Environment(
                loader=jinja2.ChoiceLoader(loaders),
                # Plain-text mail and Slack markdown: HTML escaping would garble names.
                autoescape=False,
                # A missing field fails loudly rather than mailing "Hi ,".
                undefined=jinja2.StrictUndefined,
                keep_trailing_newline=True,
            )
        return self._envs[kind]

    def render(self, kind: str, name: str, fields: Mapping[str, Any]) -> str:
        """Render ``<kind>/<name>.txt``; a missing template or field is a permanent SendError."""
        return self._render(kind, name, fields)[0]

    def render_email(self, name: str, fields: Mapping[str, Any]) -> tuple[str, str]:
        """(subject, body) of email template ``name``."""
        subject, body = self._render("email", name, fields, split_subject=True)
        # One line, whatever the payload held: a newline in a header is an injection.
        return " ".join(subject.split()), body

    def _render(
        self, kind: str, name: str, fields: Mapping[str, Any], *, split_subject: bool = False
    ) -> tuple[str, str]:
        if not _TEMPLATE_NAME.match(name):
            raise SendError(f"{kind} template name {name!r} is not a plain name", permanent=True)
        env = self._env(kind)
        try:
            if not split_subject:
                return env.get_template(f"{name}.txt").render(**fields), ""
            # The subject line is split off the *source*: rendered first, a newline
            # inside a field would move the rest of the subject into the body.
            assert env.loader is not None
            source, _, _ = env.loader.get_source(env, f"{name}.txt")
            head, _, body = source.partition("\n")
            if not head.startswith("Subject:"):
                raise SendError(
                    f"email template {name}.txt: the first line must be 'Subject: ...'",
                    permanent=True,
                )
            subject = env.from_string(head.removeprefix("Subject:")).render(**fields)
            return subject, env.from_string(body.removeprefix("\n")).render(**fields)
        except jinja2.TemplateNotFound as exc:
            raise SendError(f"no {kind} template {name}.txt", permanent=True) from exc
        except jinja2.TemplateSyntaxError as exc:
            where = f"{exc.filename or name + '.txt'}:{exc.lineno}"
            raise SendError(f"{kind} template {where}: {exc.message}", permanent=True) from exc
        except jinja2.UndefinedError as exc:
            raise SendError(
                f"{kind} template {name}.txt: {exc.message} (not in the message's payload)",
                permanent=True,
            ) from exc


# --- email --------------------------------------------------------------------------


def message_id(idempotency_key: str, sender: str) -> str:
    """The ``Message-ID`` of the mail for ``idempotency_key``: the same on every resend."""
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    domain = sender.rpartition("@")[2] or "touchmodel"
    return f"<{digest}.touchmodel@{domain}>"


class EmailSender:
    """Sends one templated mail per message through the configured SMTP server."""

    def __init__(
        self,
        config: DeliveryConfig,
        login: tuple[str, str] | None,
        templates: Templates,
    ) -> None:
        assert config.email is not None
        self.email = config.email
        self.timeout = config.timeout_seconds
        self.login = login
        self.templates = templates

    def build(self, envelope: Envelope) -> EmailMessage:
        """The mail for ``envelope`` (rendered, not sent)."""
        if not envelope.recipient:
            raise SendError("email message has no recipient", permanent=True)
        template = str(envelope.payload.get("template") or DEFAULT_EMAIL_TEMPLATE)
        subject, body = self.templates.render_email(template, _fields(envelope))
        msg = EmailMessage()
        msg["From"] = self.email.sender
        msg["To"] = envelope.recipient
        msg["Subject"] = subject
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = message_id(envelope.idempotency_key, self.email.sender)
        msg["X-Touchmodel-Topic"] = envelope.topic
        msg.set_content(body)
        return msg

    def __call__(self, envelope: Envelope) -> None:
        """Deliver one message; raise SendError when the server does not take it."""
        try:
            msg = self.build(envelope)
        except ValueError as exc:  # a header the email package refuses (bad address)
            raise SendError(f"email: {exc}", permanent=True) from exc
        cfg = self.email
        try:
            smtp: smtplib.SMTP
            if cfg.ssl:
                smtp = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=self.timeout)
            with smtp:
                if cfg.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.login is not None:
                    smtp.login(*self.login)
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            # 5xx for the recipient: the address will not start working by itself.
            raise SendError(
                f"email: recipient refused {exc.recipients}", permanent=all(c >= 500 for c in codes)
            ) from exc
        except smtplib.SMTPDataError as exc:
            # 5xx after DATA: the server rejects this content; 4xx: try later.
            raise SendError(
                f"email: message refused: {exc.smtp_code} {exc.smtp_error!r}",
                permanent=exc.smtp_code >= 500,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Connection, TLS, login and sender problems are the server's or the
            # configuration's, not this message's: retry (fixing them delivers it).
            raise SendError(f"email: {type(exc).__name__}: {exc}") from exc


# --- building the senders -----------------------------------------------------------


@dataclass
class Channels:
    """The usable senders by channel, and why each other channel is not usable."""

    senders: dict[str, Sender]
    unavailable: dict[str, str]


def build_channels(
    config: DeliveryConfig,
    client: httpx.Client,
    *,
    templates_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Channels:
    """Senders for every channel ``config`` makes usable, reading secrets from ``environ``."""
    env = os.environ if environ is None else environ
    templates = Templates(templates_dir)
    out = Channels({}, {})
    makers: dict[str, Callable[[], Sender]] = {
        "webhook": lambda: WebhookSender(
            config.webhook.url if config.webhook else "", webhook_secret(config, env), client
        ),
        "slack": lambda: SlackSender(slack_url(config, env), templates, client),
        "email": lambda: EmailSender(config, smtp_login(config, env), templates),
    }
    for channel, make in makers.items():
        try:
            out.senders[channel] = make()
        except ChannelUnavailable as exc:
            out.unavailable[channel] = str(exc)
    return out

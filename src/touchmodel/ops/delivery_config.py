"""The ``delivery:`` section of a workspace's ``touchmodel.yaml``.

Example::

    delivery:
      webhook:
        url: https://hooks.example.com/touchmodel
        secret_env: TOUCHMODEL_WEBHOOK_SECRET   # HMAC key, read from this env var
      slack:
        url_env: TOUCHMODEL_SLACK_WEBHOOK_URL   # or `url:` (the URL is itself a secret)
      email:
        host: smtp.example.com
        port: 587
        sender: success@example.com
        username_env: TOUCHMODEL_SMTP_USER
        password_env: TOUCHMODEL_SMTP_PASSWORD
        starttls: true
      max_attempts: 8          # then the message is dead (visible, retryable in the CLI)
      backoff_seconds: 30      # 30 s, 1 min, 2 min, ... after each failed attempt
      backoff_max_seconds: 3600
      timeout_seconds: 10

Secrets live in environment variables, never in the file: the file only names
them. A channel that is missing from this section, or whose named variable is
not set, is *unusable*: the dispatcher leaves its messages ``pending`` (never
attempted, attempts not spent) with ``last_error`` saying why, so configuring
the channel later delivers them. See ``touchmodel.ops.outbox``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from touchmodel.errors import ModelFileError
from touchmodel.model.loader import validation_problems

CHANNELS: tuple[str, ...] = ("webhook", "slack", "email")


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookConfig(_Section):
    """A generic webhook: every message POSTed as signed JSON."""

    url: str
    # Name of the env var holding the HMAC-SHA256 key; without it bodies go unsigned.
    secret_env: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        return _http_url(value)


class SlackConfig(_Section):
    """A Slack incoming webhook."""

    url: str | None = None
    url_env: str | None = None

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @model_validator(mode="after")
    def _one_url(self) -> Self:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of `url` and `url_env`")
        return self


class EmailConfig(_Section):
    """An SMTP server that relays mail from ``sender``."""

    host: str
    port: int = Field(default=25, ge=1, le=65535)
    sender: str
    username_env: str | None = None
    password_env: str | None = None
    starttls: bool = False
    ssl: bool = False

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        if "@" not in value:
            raise ValueError("expected an email address such as success@example.com")
        return value

    @model_validator(mode="after")
    def _tls_choice(self) -> Self:
        if self.starttls and self.ssl:
            raise ValueError("choose one of `starttls` (upgrade a plain connection) and `ssl`")
        if (self.username_env is None) != (self.password_env is None):
            raise ValueError("give both `username_env` and `password_env`, or neither")
        return self


class DeliveryConfig(_Section):
    """How and where outbox messages are delivered, and how hard to retry."""

    webhook: WebhookConfig | None = None
    slack: SlackConfig | None = None
    email: EmailConfig | None = None
    max_attempts: int = Field(default=8, ge=1)
    backoff_seconds: float = Field(default=30.0, ge=0)
    backoff_max_seconds: float = Field(default=3600.0, ge=0)
    timeout_seconds: float = Field(default=10.0, gt=0)


class ChannelUnavailable(Exception):
    """A channel cannot be used: not configured, or a named env var is not set."""


def _env(name: str, environ: Mapping[str, str], what: str) -> str:
    value = environ.get(name, "")
    if not value:
        raise ChannelUnavailable(f"{what}: environment variable {name} is not set")
    return value


def webhook_secret(config: DeliveryConfig, environ: Mapping[str, str] = os.environ) -> str | None:
    """The webhook's HMAC key (None when the webhook is configured unsigned)."""
    if config.webhook is None:
        raise ChannelUnavailable(_not_configured("webhook"))
    if config.webhook.secret_env is None:
        return None
    return _env(config.webhook.secret_env, environ, "delivery.webhook.secret_env")


def slack_url(config: DeliveryConfig, environ: Mapping[str, str] = os.environ) -> str:
    """The Slack incoming-webhook URL, from the file or its env var."""
    if config.slack is None:
        raise ChannelUnavailable(_not_configured("slack"))
    if config.slack.url is not None:
        return config.slack.url
    assert config.slack.url_env is not None  # the model allows exactly one
    return _http_url(_env(config.slack.url_env, environ, "delivery.slack.url_env"))


def smtp_login(
    config: DeliveryConfig, environ: Mapping[str, str] = os.environ
) -> tuple[str, str] | None:
    """The SMTP (username, password), or None when the server needs no login."""
    if config.email is None:
        raise ChannelUnavailable(_not_configured("email"))
    if config.email.username_env is None or config.email.password_env is None:
        return None
    return (
        _env(config.email.username_env, environ, "delivery.email.username_env"),
        _env(config.email.password_env, environ, "delivery.email.password_env"),
    )


def _not_configured(channel: str) -> str:
    return f"channel {channel} is not configured in touchmodel.yaml delivery"


def delivery_config_from_dict(data: Any, source: str = "touchmodel.yaml") -> DeliveryConfig:
    """Validate a parsed ``delivery:`` section; ModelFileError names ``delivery.<path>``.

    ``None`` (no section) is an empty configuration: nothing is delivered and
    every message waits, pending, for a channel to be configured.
    """
    if data is None:
        return DeliveryConfig()
    if not isinstance(data, dict):
        raise ModelFileError(
            source, [f"delivery: value {type(data).__name__} -- expected a mapping of keys"]
        )
    try:
        return DeliveryConfig.model_validate(data)
    except ValidationError as exc:
        raise ModelFileError(source, validation_problems(exc, "delivery")) from None

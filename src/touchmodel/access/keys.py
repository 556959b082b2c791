"""API tokens and write keys: created by the CLI, stored hashed, checked per request.

A key is ``tm_<kind>_<random>``: the kind is visible so a user can tell an
ingestion write key from a dashboard token at a glance; the random part is 32
bytes from :mod:`secrets`. Only its SHA-256 is stored. The key is printed once,
when it is created; a lost key is revoked and replaced, never recovered.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from touchmodel.errors import TouchmodelError, did_you_mean
from touchmodel.state.db import Store
from touchmodel.state.tables import ApiKey, WebSession, utcnow

KeyKind = Literal["api", "write"]
Role = Literal["admin", "csm"]
KINDS: tuple[str, ...] = ("api", "write")
ROLES: tuple[str, ...] = ("admin", "csm")
_PREFIX_CHARS = 12  # "tm_api_" + 5 chars of the random part: enough to tell keys apart


class AccessError(TouchmodelError):
    """A key cannot be created or revoked as asked."""


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: the key's id, kind and role, and a CSM key's CSM."""

    key_id: int
    kind: str
    role: str | None
    csm: str | None
    label: str

    @property
    def is_admin(self) -> bool:
        return self.kind == "api" and self.role == "admin"

    @property
    def actor(self) -> str:
        """How work-item history names this principal."""
        return self.csm or self.label or f"key {self.key_id}"


@dataclass(frozen=True)
class NewKey:
    """A key just created: the secret (shown once) and its stored record."""

    secret: str
    id: int
    kind: str
    role: str | None
    csm: str | None
    prefix: str


def hash_key(secret: str) -> str:
    """The stored form of a key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    store: Store,
    kind: str,
    *,
    role: str | None = None,
    csm: str | None = None,
    label: str = "",
    team: Sequence[str] | None = None,
) -> NewKey:
    """Create a key; returns the secret, which is not stored and cannot be shown again.

    ``api`` keys need a role: ``admin`` sees everything, ``csm`` needs ``csm``
    (the CSM's name in team.yaml) and sees and changes only that book.
    ``write`` keys only send events and take no role. With ``team`` (the
    names in the workspace's team file), a ``csm`` not on it is refused: a
    key for a name that owns no book would see nothing.
    """
    if kind not in KINDS:
        raise AccessError(f"--kind: found {kind!r}; expected one of {', '.join(KINDS)}")
    if kind == "write":
        if role is not None or csm is not None:
            raise AccessError("--role/--csm: write keys only send events and take no role")
    else:
        role = role or "admin"
        if role not in ROLES:
            raise AccessError(f"--role: found {role!r}; expected one of {', '.join(ROLES)}")
        if role == "csm" and not csm:
            raise AccessError("--csm: a csm key needs the CSM's name (as in team.yaml)")
        if role == "admin" and csm:
            raise AccessError("--csm: only csm keys belong to a CSM")
        if csm and team is not None and csm not in team:
            on_team = ", ".join(map(repr, team)) if team else "none (the team file names no one)"
            raise AccessError(
                f"--csm: {csm!r} is not on the team{did_you_mean(csm, team)}; the team's CSMs: "
                f"{on_team}"
            )
    secret = f"tm_{kind}_{secrets.token_urlsafe(32)}"
    with store.transaction() as session:
        row = ApiKey(
            kind=kind,
            role=role,
            csm=csm,
            label=label or (csm or ""),
            prefix=secret[:_PREFIX_CHARS],
            key_hash=hash_key(secret),
        )
        session.add(row)
        session.flush()
        return NewKey(secret, row.id, kind, role, csm, row.prefix)


# `keys list` shows when a key was last used; recording it at most once a minute
# keeps a busy ingestion client from turning every request into a write.
LAST_USED_EVERY = dt.timedelta(minutes=1)


def _aware(when: dt.datetime) -> dt.datetime:
    # SQLite hands timestamps back naive (they are UTC)
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when


def _mark_used(row: ApiKey, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    if row.last_used_at is None or now - _aware(row.last_used_at) >= LAST_USED_EVERY:
        row.last_used_at = now


def authenticate(
    session: Session, secret: str, kind: str | None = None, *, now: dt.datetime | None = None
) -> Principal | None:
    """The principal of ``secret`` if it is a live key (of ``kind`` when given), else None.

    A live key's ``last_used_at`` is brought up to date (to the minute).
    """
    if not secret:
        return None
    digest = hash_key(secret)
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == digest)).first()
    # compare_digest: the lookup is by hash already; this keeps the check constant-time too.
    if row is None or not hmac.compare_digest(row.key_hash, digest) or row.revoked_at is not None:
        return None
    if kind is not None and row.kind != kind:
        return None
    _mark_used(row, now)
    return Principal(row.id, row.kind, row.role, row.csm, row.label)


def principal_by_id(
    session: Session, key_id: int, *, now: dt.datetime | None = None
) -> Principal | None:
    """The principal of a live key by id (a dashboard session stores only the id)."""
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return None
    _mark_used(row, now)
    return Principal(row.id, row.kind, row.role, row.csm, row.label)


SESSION_HOURS = 12  # a dashboard sign-in lasts a working day


def start_session(session: Session, key_id: int, *, now: dt.datetime | None = None) -> str:
    """A new dashboard session for key ``key_id``; returns its id (for the signed cookie)."""
    sid = secrets.token_urlsafe(32)
    start = now or utcnow()
    session.add(
        WebSession(
            id_hash=hash_key(sid),
            key_id=key_id,
            created_at=start,
            expires_at=start + dt.timedelta(hours=SESSION_HOURS),
        )
    )
    return sid


def session_principal(
    session: Session, sid: str, *, now: dt.datetime | None = None
) -> Principal | None:
    """The principal of a live dashboard session: not ended, not expired, key not revoked."""
    row = session.get(WebSession, hash_key(sid))
    if row is None or row.ended_at is not None:
        return None
    if _aware(row.expires_at) <= (now or utcnow()):
        return None
    return principal_by_id(session, row.key_id, now=now)


def end_session(session: Session, sid: str) -> None:
    """Sign out: the session id is refused from now on, whoever holds a copy of it."""
    row = session.get(WebSession, hash_key(sid))
    if row is not None and row.ended_at is None:
        row.ended_at = utcnow()


def list_keys(store: Store) -> list[ApiKey]:
    """Every key, newest first (hashes only; secrets are never stored)."""
    with store.transaction() as session:
        return list(session.scalars(select(ApiKey).order_by(ApiKey.id.desc())))


def revoke_key(store: Store, key_id: int, *, now: dt.datetime | None = None) -> ApiKey:
    """Revoke a key: every later request with it is refused."""
    with store.transaction() as session:
        row = session.get(ApiKey, key_id)
        if row is None:
            raise AccessError(f"key {key_id}: no such key (see `touchmodel keys list`)")
        if row.revoked_at is None:
            row.revoked_at = now or utcnow()
        return row

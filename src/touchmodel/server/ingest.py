"""Segment-compatible ingestion (``/v1``) and an account's ingested events (``/api``).

``POST /v1/batch`` and the single calls ``/v1/track|identify|group|page|
screen|alias`` accept what Segment's HTTP tracking API accepts: the write key
as the HTTP Basic user (``base64(writeKey + ":")``) or ``writeKey`` in the
body, plain or gzipped JSON, 32 KB per message and 500 KB per request. A
request's messages are committed in one transaction *before* the 200 goes
out, so a client that saw ``{"success": true}`` can forget them; a client
that did not see it resends, and the ``(key, messageId)`` key makes the
resend store nothing twice.

Routes only translate HTTP: parsing is :mod:`touchmodel.ingest.messages`,
storing :mod:`touchmodel.ingest.store`, the events page
:mod:`touchmodel.views.events`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool

from touchmodel.access.keys import Principal, authenticate
from touchmodel.ingest.messages import MAX_BATCH_BYTES, IngestError, decode_body, parse_batch
from touchmodel.ingest.store import store_messages
from touchmodel.server.auth import ApiUser, DbSession, get_store
from touchmodel.server.errors import ApiError
from touchmodel.server.params import AccountIdPath
from touchmodel.state.tables import utcnow
from touchmodel.views.events import MAX_LIMIT, BadCursor, account_events, account_known
from touchmodel.views.scope import book_of, in_book

router = APIRouter(prefix="/v1", tags=["ingestion"])
events_router = APIRouter(prefix="/api", tags=["events"])

SUCCESS = {"success": True}  # Segment's answer; the clients only look at the status


def _basic_user(request: Request) -> str | None:
    """The HTTP Basic user name (Segment clients put the write key there), or None."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic" or not value.strip():
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise ApiError(401, "Authorization: not valid HTTP Basic credentials") from None
    return decoded.partition(":")[0]


async def _read_body(request: Request) -> bytes:
    """The raw body, refused past the limit without reading the rest into memory."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BATCH_BYTES:
        raise ApiError(
            400, f"body: {int(declared):,} bytes, over the {MAX_BATCH_BYTES // 1024} KB limit"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BATCH_BYTES:
            raise ApiError(400, f"body: over the {MAX_BATCH_BYTES // 1024} KB limit")
        chunks.append(chunk)
    return b"".join(chunks)


def _check_key(request: Request, secret: str) -> Principal:
    """The write key's principal: 401 unknown or revoked, 403 an API token."""
    with get_store(request).transaction() as session:
        principal = authenticate(session, secret)
    if principal is None:
        raise ApiError(401, "invalid or revoked write key", headers={"WWW-Authenticate": "Basic"})
    if principal.kind != "write":
        raise ApiError(
            403, "an API token cannot send events; use a write key (touchmodel keys create "
            "--kind write)",
        )  # fmt: skip
    return principal


def _store(request: Request, principal: Principal, body: Any, single: str | None) -> int:
    received_at = utcnow()
    try:
        messages = parse_batch(body, single=single, received_at=received_at)
    except IngestError as exc:
        raise ApiError(exc.status, exc.message, details=exc.details) from None
    # One transaction: committed (durable: WAL with synchronous=FULL, or PostgreSQL)
    # before the route returns, so the 200 is only sent for stored messages.
    with get_store(request).transaction() as session:
        return store_messages(session, principal.key_id, messages, received_at)


async def _ingest(request: Request, single: str | None) -> dict[str, Any]:
    user = _basic_user(request)
    principal = await run_in_threadpool(_check_key, request, user) if user else None
    raw = await _read_body(request)
    try:
        body = decode_body(raw, request.headers.get("content-encoding"), MAX_BATCH_BYTES)
    except IngestError as exc:
        raise ApiError(exc.status, exc.message, details=exc.details) from None
    if principal is None:
        key = body.get("writeKey") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise ApiError(
                401,
                "missing write key: send it as the HTTP Basic user or as writeKey in the body",
                headers={"WWW-Authenticate": "Basic"},
            )
        principal = await run_in_threadpool(_check_key, request, key)
    await run_in_threadpool(_store, request, principal, body, single)
    return SUCCESS


@router.post("/batch", summary="A batch of messages (what the Segment clients send)")
async def batch(request: Request) -> dict[str, Any]:
    """Store every message of ``{"batch": [...]}``, or none when any is invalid."""
    return await _ingest(request, None)


@router.post("/track", summary="One track call")
async def track(request: Request) -> dict[str, Any]:
    """Store one track message."""
    return await _ingest(request, "track")


@router.post("/identify", summary="One identify call")
async def identify(request: Request) -> dict[str, Any]:
    """Store one identify message (its traits are kept in the payload)."""
    return await _ingest(request, "identify")


@router.post("/group", summary="One group call: a user's account and its traits")
async def group(request: Request) -> dict[str, Any]:
    """Store one group message."""
    return await _ingest(request, "group")


@router.post("/page", summary="One page call")
async def page(request: Request) -> dict[str, Any]:
    """Store one page message."""
    return await _ingest(request, "page")


@router.post("/screen", summary="One screen call")
async def screen(request: Request) -> dict[str, Any]:
    """Store one screen message."""
    return await _ingest(request, "screen")


@router.post("/alias", summary="One alias call (stored; not used by runs)")
async def alias(request: Request) -> dict[str, Any]:
    """Store one alias message."""
    return await _ingest(request, "alias")


@events_router.get(
    "/accounts/{account_id}/events",
    summary="An account's ingested events, newest first",
    responses={
        400: {"description": "A `before` cursor this server did not give (one error shape)"},
        401: {"description": "Missing, invalid or revoked API token (one error shape)"},
        403: {"description": "A write key, or a csm token outside its book (one error shape)"},
        404: {"description": "No such account (one error shape)"},
        422: {"description": "Invalid parameters (one error shape, one detail per field)"},
    },
)
def events(
    account_id: AccountIdPath,
    principal: ApiUser,
    session: DbSession,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
    before: Annotated[str | None, Query(max_length=200)] = None,
) -> dict[str, Any]:
    """One page of the account's messages; pass ``next_before`` as ``before`` for the next."""
    if not account_known(session, account_id):
        raise ApiError(404, f"account {account_id!r}: no such account")
    if not in_book(session, account_id, book_of(principal)):
        raise ApiError(403, f"account {account_id!r} is not in your book")
    try:
        found = account_events(session, account_id, limit=limit, before=before)
    except BadCursor as exc:
        raise ApiError(400, str(exc)) from None
    return {
        "account_id": found.account_id,
        "events": found.events,
        "next_before": found.next_before,
    }

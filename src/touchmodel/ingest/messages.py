"""Parsing and validating Segment HTTP tracking API bodies.

What the real clients send (``segment-analytics-python``,
``rudder-sdk-python``): ``POST /v1/batch`` with ``{"batch": [...],
"sentAt": ..., "writeKey": ...}``, the write key also as the HTTP Basic
user, the body optionally gzipped (``Content-Encoding: gzip``). Each message
has ``type``, ``messageId``, ``timestamp``, ``context.library`` and
``userId`` or ``anonymousId``.

Nothing here touches the database: a body becomes a list of
:class:`Message` or an :class:`IngestError` listing every problem with its
path (``batch[3].event``), so a batch is stored whole or not at all.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
import zlib
from dataclasses import dataclass
from typing import Any

# Segment's documented limits: 32 KB per message, 500 KB per batch request.
MAX_MESSAGE_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
MAX_ID_CHARS = 200  # the width of the id columns in ingested_messages

TYPES = ("track", "identify", "group", "page", "screen", "alias")
# A JSON escape of a UTF-16 surrogate: valid JSON, but a lone one is no text a
# database can store, so such bodies get the full check below.
_SURROGATE_ESCAPE = re.compile(r"\\[uU][dD][89a-fA-F]")


class IngestError(Exception):
    """A body the server refuses: HTTP status, one message, one detail per problem."""

    def __init__(self, status: int, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details or []


@dataclass(frozen=True)
class Message:
    """One validated message, ready to store."""

    message_id: str
    type: str
    user_id: str | None
    anonymous_id: str | None
    group_id: str | None
    event: str | None
    timestamp: dt.datetime  # timezone-aware UTC
    payload: dict[str, Any]  # the whole message as sent (unknown fields kept)


def decode_body(raw: bytes, content_encoding: str | None, limit: int) -> Any:
    """The JSON document in ``raw``, gunzipped when the header says so.

    The decompressed size is capped at ``limit`` (a zip bomb stops there
    instead of filling memory) and an oversize body is a 400 naming the limit.
    The body must be UTF-8 JSON text with finite numbers and no lone UTF-16
    surrogate: anything else is a 400 here, never a 500 when it is stored.
    """
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        data = _gunzip(raw, limit)
    elif encoding in ("", "identity"):
        data = raw
        if len(data) > limit:
            raise IngestError(400, f"body: {len(data):,} bytes, over the {limit // 1024} KB limit")
    else:
        raise IngestError(
            415, f"Content-Encoding {encoding!r} is not supported; send gzip or plain JSON"
        )
    try:
        # Strict UTF-8 (what JSON over HTTP is): json.loads(bytes) would also take
        # UTF-16 and surrogates encoded as bytes (CESU-8), which no database stores.
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise IngestError(
            400, f"body: byte {exc.start} is not UTF-8 ({exc.reason}); send UTF-8 JSON"
        ) from None
    if not text.strip():
        raise IngestError(400, "body: empty; expected a JSON object")
    try:
        # NaN/Infinity (and 1e999, a float too large to be finite) are no JSON value
        # a database stores: PostgreSQL's json type refuses them, SQLite would store
        # null. A client error here, not a 500 or an "inf" later.
        body = json.loads(text, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise IngestError(400, f"body: not valid JSON ({exc})") from None
    depth = _depth(body)
    if depth > MAX_DEPTH:
        raise IngestError(
            400, f"body: nested {depth} levels deep; at most {MAX_DEPTH} levels are accepted"
        )
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise IngestError(
                400, "body: holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), not text"
            ) from None
    return body


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Every member of a gzip body, inflated (at most ``limit`` bytes in all).

    A gzip file may hold several members one after the other (``cat a.gz b.gz``
    is valid gzip); each is read. Bytes after the last member that are not a
    member of their own are refused, not ignored.
    """
    out = bytearray()
    rest = raw
    member = 0
    while True:
        member += 1
        inflater = zlib.decompressobj(wbits=31)  # 31: gzip header and trailer
        try:
            out += inflater.decompress(rest, limit + 1 - len(out))
            if len(out) <= limit and not inflater.eof:
                out += inflater.flush()
        except zlib.error as exc:
            where = "" if member == 1 else f" after member {member - 1} (trailing bytes)"
            raise IngestError(400, f"body: not valid gzip{where} ({exc})") from None
        if len(out) > limit:
            raise IngestError(400, f"body: over {limit // 1024} KB once decompressed (the limit)")
        if not inflater.eof:
            raise IngestError(400, "body: gzip stream is truncated")
        # unconsumed_tail: input held back by the size cap; unused_data: after the member.
        rest = inflater.unused_data
        if not rest:
            return bytes(out)


# Deeper JSON is no event data anyone sends, and it breaks serializing the
# message back out (GET /api/accounts/{id}/events) once stored.
MAX_DEPTH = 32


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is too large for a number (no finite value)")
    return value


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def _id(value: Any) -> str | None:
    """An id as text: Segment accepts strings and numbers for ids."""
    if value is None:
        return None
    if isinstance(value, bool):
        return None  # true/false is no id; the caller reports it
    if isinstance(value, int | float):
        return str(value)
    return value if isinstance(value, str) else None


def parse_time(value: Any) -> dt.datetime | None:
    """An ISO 8601 timestamp as aware UTC (no zone means UTC), or None if it is not one."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        return None


def _shown(value: Any) -> str:
    """A value as JSON (what the sender wrote), cut short for messages."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _size(message: Any) -> int:
    return len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())


def derived_message_id(message: dict[str, Any]) -> str:
    """A deterministic id for a message sent without one: a resent body dedupes too."""
    canonical = json.dumps(message, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "tm-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _first_id(*candidates: Any) -> str | None:
    for c in candidates:
        value = _id(c)
        if value:
            return value
    return None


def _sub(message: dict[str, Any], key: str) -> dict[str, Any]:
    value = message.get(key)
    return value if isinstance(value, dict) else {}


def group_of(message: dict[str, Any]) -> str | None:
    """The account a message belongs to, when it says so itself.

    ``groupId`` of a group call, else ``context.groupId``, else
    ``properties.groupId`` / ``traits.groupId``. A track without one is
    mapped later, through the user's latest group call (see feed).
    """
    return _first_id(
        message.get("groupId") if message.get("type") == "group" else None,
        _sub(message, "context").get("groupId"),
        _sub(message, "properties").get("groupId"),
        _sub(message, "traits").get("groupId"),
    )


def validate_message(
    message: Any, path: str, *, received_at: dt.datetime, batch_context: dict[str, Any] | None
) -> tuple[Message | None, list[dict[str, str]]]:
    """One message checked: the stored form, or the problems (each with its path)."""
    problems: list[dict[str, str]] = []

    def bad(field: str, reason: str) -> None:
        problems.append({"field": f"{path}.{field}" if path else field, "reason": reason})

    if not isinstance(message, dict):
        problems.append({"field": path or "body", "reason": "expected a JSON object"})
        return None, problems
    if batch_context:
        # Segment lets a batch carry context for all its messages; a message's own wins.
        context = {**batch_context, **_sub(message, "context")}
        message = {**message, "context": context}
    # Measured as stored, the batch's context included: a large context shared by
    # many small messages would otherwise be stored once per message.
    size = _size(message)
    if size > MAX_MESSAGE_BYTES:
        merged = " with the batch's context" if batch_context else ""
        problems.append(
            {
                "field": path or "body",
                "reason": f"message is {size:,} bytes{merged}; the limit is 32 KB "
                f"({MAX_MESSAGE_BYTES:,})",
            }
        )
        return None, problems
    kind = message.get("type")
    if kind not in TYPES:
        bad("type", f"found {_shown(kind)}; expected one of {', '.join(TYPES)}")
        return None, problems
    for key in ("userId", "anonymousId", "groupId", "previousId"):
        value = message.get(key)
        if value is not None and _id(value) is None:
            bad(key, f"found {_shown(value)}; expected a string or a number")
        elif value is not None and len(str(value)) > MAX_ID_CHARS:
            bad(key, f"longer than {MAX_ID_CHARS} characters")
    for key in ("userId", "anonymousId", "groupId", "messageId", "event", "name"):
        # Stored in text columns, which PostgreSQL refuses NUL characters in.
        if isinstance(message.get(key), str) and "\x00" in message[key]:
            bad(key, "holds a NUL character")
    user_id = _id(message.get("userId")) or None
    anonymous_id = _id(message.get("anonymousId")) or None
    if user_id is None and anonymous_id is None:
        bad("userId", "a message needs userId or anonymousId")
    event: str | None = None
    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name.strip():
            bad(
                "event",
                f"found {_shown(name)}; a track call needs the event name (a non-empty string)",
            )
        else:
            event = name
    elif kind in ("page", "screen"):
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            bad("name", f"found {_shown(name)}; expected a string")
        event = name if isinstance(name, str) and name else None
    elif kind == "group" and not _id(message.get("groupId")):
        bad("groupId", "a group call needs the groupId of the account")
    elif kind == "alias" and not _id(message.get("previousId")):
        bad("previousId", "an alias call needs previousId")
    for key in ("properties", "traits", "context", "integrations"):
        if key in message and message[key] is not None and not isinstance(message[key], dict):
            bad(key, f"found {type(message[key]).__name__}; expected an object")
    timestamp = received_at
    for key in ("timestamp", "originalTimestamp", "sentAt"):
        if message.get(key) is not None and parse_time(message[key]) is None:
            bad(key, f"found {_shown(message[key])}; expected an ISO 8601 timestamp")
    for key in ("timestamp", "originalTimestamp"):
        parsed = parse_time(message.get(key))
        if parsed is not None:
            timestamp = parsed
            break
    group_id = group_of(message)
    if group_id is not None and len(group_id) > MAX_ID_CHARS:
        bad("groupId", f"longer than {MAX_ID_CHARS} characters")
    elif group_id is not None and "\x00" in group_id:
        bad("context.groupId", "holds a NUL character")
    raw_id = message.get("messageId")
    if raw_id is not None and (_id(raw_id) is None or not str(raw_id).strip()):
        bad("messageId", f"found {_shown(raw_id)}; expected a non-empty string")
    elif raw_id is not None and len(str(raw_id)) > MAX_ID_CHARS:
        bad("messageId", f"longer than {MAX_ID_CHARS} characters")
    if problems:
        return None, problems
    message_id = _id(raw_id) if raw_id is not None else None
    return (
        Message(
            message_id=message_id or derived_message_id(message),
            type=kind,
            user_id=user_id,
            anonymous_id=anonymous_id,
            group_id=group_id,
            event=event,
            timestamp=timestamp,
            payload=message,
        ),
        [],
    )


def parse_batch(body: Any, *, single: str | None, received_at: dt.datetime) -> list[Message]:
    """Every message of a request body, validated; an IngestError lists all problems.

    ``single`` is the call type of ``/v1/track`` and friends (the body is one
    message, its ``type`` set from the path); None for ``/v1/batch``.
    """
    if not isinstance(body, dict):
        raise IngestError(400, f"body: found {type(body).__name__}; expected a JSON object")
    if single is not None:
        message = {**body, "type": single}
        message.pop("writeKey", None)
        one, wrong = validate_message(message, "", received_at=received_at, batch_context=None)
        if wrong or one is None:
            raise _invalid(wrong)
        return [one]
    batch = body.get("batch")
    if not isinstance(batch, list):
        raise IngestError(
            400,
            "batch: expected a list of messages",
            [
                {
                    "field": "batch",
                    "reason": 'missing; a /v1/batch body is {"batch": [messages]} '
                    "(one message goes to /v1/track, /v1/identify, ...)"
                    if batch is None
                    else f"found {type(batch).__name__}; expected a list",
                }
            ],
        )
    context = body.get("context") if isinstance(body.get("context"), dict) else None
    messages: list[Message] = []
    problems: list[dict[str, str]] = []
    for i, item in enumerate(batch):
        found, bad = validate_message(
            item, f"batch[{i}]", received_at=received_at, batch_context=context
        )
        problems += bad
        if found is not None:
            messages.append(found)
    if problems:
        raise _invalid(problems)
    return messages


def _invalid(problems: list[dict[str, str]]) -> IngestError:
    first = problems[0] if problems else {"field": "body", "reason": "invalid"}
    more = f" (and {len(problems) - 1} more; nothing was stored)" if len(problems) > 1 else ""
    return IngestError(400, f"{first['field']}: {first['reason']}{more}", list(problems))

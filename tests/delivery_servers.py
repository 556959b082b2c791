"""Real servers for the delivery tests: an HTTP receiver and an SMTP sink.

The HTTP receiver behaves like a careful webhook consumer: it verifies the
HMAC signature, applies each idempotency key once (a repeat is answered 200
without a second effect), and can be told to fail -- every n-th request, or
always with one status -- to exercise the dispatcher's retries.
"""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from touchmodel.ops.channels import (
    KEY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)


@dataclass
class Receiver:
    """What the HTTP receiver saw, and how it should answer."""

    url: str = ""
    secret: str | None = None
    fail_every: int = 0  # every n-th request answers 500 (0: never)
    status: int = 200  # answer for requests that do not fail by fail_every
    headers: dict[str, str] = field(default_factory=dict)  # extra response headers
    delay: float = 0.0  # seconds to take over each request
    requests: int = 0
    failed: int = 0
    bad_signatures: int = 0
    accepted: Counter[str] = field(default_factory=Counter)  # 2xx answers by key
    effects: Counter[str] = field(default_factory=Counter)  # applied, once per key
    bodies: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, headers: Any, body: bytes) -> int:
        """The status to answer; applies the message when it accepts it."""
        if self.delay:
            time.sleep(self.delay)
        with self.lock:
            self.requests += 1
            if self.fail_every and self.requests % self.fail_every == 0:
                self.failed += 1
                return 500
            if self.secret is not None and not verify_signature(
                self.secret,
                headers.get(TIMESTAMP_HEADER, ""),
                body,
                headers.get(SIGNATURE_HEADER, ""),
            ):
                self.bad_signatures += 1
                return 401
            if not 200 <= self.status < 300:
                return self.status
            doc = json.loads(body)
            self.bodies.append(doc)
            key = headers.get(KEY_HEADER) or doc.get("idempotency_key") or ""
            self.accepted[key] += 1
            if self.effects[key] == 0:  # a repeat is acknowledged, not applied again
                self.effects[key] += 1
            return self.status


@contextmanager
def http_receiver(**options: Any) -> Iterator[Receiver]:
    """A ThreadingHTTPServer on 127.0.0.1 (free port) that runs ``Receiver.handle``."""
    state = Receiver(**options)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            code = state.handle(self.headers, body)
            self.send_response(code)
            for name, value in state.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Mailbox:
    """Mail the SMTP sink accepted (parsed), and addresses it refuses."""

    host: str = "127.0.0.1"
    port: int = 0
    refuse: set[str] = field(default_factory=set)
    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


class _Handler:
    def __init__(self, box: Mailbox) -> None:
        self.box = box

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.box.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.box.messages.append(parsed)
        self.box.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    # aiosmtpd's Controller checks readiness by connecting, so it needs a real port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def smtp_server(refuse: set[str] | None = None) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 collecting mail in a Mailbox."""
    box = Mailbox(refuse=refuse or set(), port=_free_port())
    controller = Controller(_Handler(box), hostname=box.host, port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()

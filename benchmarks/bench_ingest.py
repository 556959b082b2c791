"""Benchmark: events per second through ``POST /v1/batch``, with nothing lost or doubled.

    .venv/bin/python benchmarks/bench_ingest.py --seconds 20 --connections 4 --batch 100

1. Makes a temp workspace (SQLite state store, or a fresh database on ``--postgres``)
   and a write key.
2. Starts ``touchmodel serve --no-scheduler`` in a subprocess (real uvicorn, loopback).
3. Starts a second process, the sender, that posts batches of ``--batch`` Segment
   track messages (unique messageIds, Basic auth, what the Segment client sends)
   over ``--connections`` keep-alive connections for ``--seconds``, then resends
   its first batches (as a client whose answers were lost would).
4. Counts the stored messages: must equal the messages sent (no loss, no duplicates).
5. Baseline, in this process: the same number of messages, in the same batches,
   validated and inserted straight into a fresh state store (no HTTP), for the ratio.

Prints events/s sustained, p50/p99 batch latency and the ratio; ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

RESENT_BATCHES = 20


def message(n: int, run: str) -> dict[str, Any]:
    """One track call like the Segment Python client's (about 450 bytes)."""
    stamp = dt.datetime(2026, 11, 5, tzinfo=dt.UTC) + dt.timedelta(seconds=n)
    return {
        "type": "track",
        "messageId": f"{run}-{n}",
        "userId": f"user-{n % 5000}",
        "event": "report.exported",
        "timestamp": stamp.isoformat(),
        "properties": {"quantity": 1, "format": "pdf", "pages": n % 40},
        "context": {
            "groupId": f"ACC-{n % 1000:06d}",
            "library": {"name": "analytics-python", "version": "2.3.5"},
        },
        "integrations": {},
    }


def sender(url: str, key: str, seconds: float, connections: int, batch: int, run: str) -> None:
    """The load generator (its own process): prints one JSON line of results."""
    import httpx

    auth = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    lock = threading.Lock()
    counter = [0]
    latencies: list[float] = []
    failures: list[str] = []
    bodies: list[bytes] = []
    deadline = time.monotonic() + seconds

    def next_batch() -> bytes:
        with lock:
            start = counter[0]
            counter[0] += batch
        return json.dumps(
            {"batch": [message(start + i, run) for i in range(batch)], "sentAt": "now"}
        ).encode()

    def work() -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            while time.monotonic() < deadline:
                body = next_batch()
                t0 = time.perf_counter()
                r = client.post("/v1/batch", content=body)
                took = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        latencies.append(took)
                        if len(bodies) < RESENT_BATCHES:
                            bodies.append(body)
                    else:
                        failures.append(f"{r.status_code} {r.text[:200]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    # Resend batches already stored: a client that never saw the 200 does this.
    with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
        resent_ok = sum(client.post("/v1/batch", content=b).status_code == 200 for b in bodies)
    print(
        json.dumps(
            {
                "sent_events": len(latencies) * batch,
                "batches": len(latencies),
                "failed_batches": len(failures),
                "failures": failures[:5],
                "seconds": elapsed,
                "latencies": latencies,
                "resent_batches": resent_ok,
            }
        )
    )


def wait_healthy(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"touchmodel serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit("touchmodel serve did not answer /healthz in time")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stored_count(state_url: str, key_id: int) -> int:
    from sqlalchemy import func, select

    from touchmodel.state.db import Store
    from touchmodel.state.tables import IngestedMessage

    store = Store(state_url)
    try:
        with store.transaction() as s:
            return int(
                s.scalar(
                    select(func.count())
                    .select_from(IngestedMessage)
                    .where(IngestedMessage.key_id == key_id)
                )
                or 0
            )
    finally:
        store.close()


def direct_baseline(
    root: Path, events: int, batch: int, threads: int, state_url: str | None
) -> float:
    """Seconds to validate and insert ``events`` messages straight into a fresh store.

    ``threads`` writers, as many as the sender's connections, so the ratio is
    the cost of HTTP (sockets, uvicorn, FastAPI, auth), not of concurrency.
    """
    from touchmodel.access.keys import create_key
    from touchmodel.ingest.messages import parse_batch
    from touchmodel.ingest.store import store_messages
    from touchmodel.state.db import Store
    from touchmodel.state.tables import utcnow
    from touchmodel.workspace import init_workspace

    ws = init_workspace(root, state=state_url)
    store = Store(ws.state_url)
    try:
        key = create_key(store, "write", label="baseline")
        bodies = [
            json.dumps({"batch": [message(s + i, "direct") for i in range(batch)]}).encode()
            for s in range(0, events, batch)
        ]
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not bodies:
                        return
                    body = bodies.pop()
                now = utcnow()
                # The same steps as the route, minus HTTP: parse, validate, one transaction.
                messages = parse_batch(json.loads(body), single=None, received_at=now)
                with store.transaction() as session:
                    store_messages(session, key.id, messages, now)

        started = time.perf_counter()
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for t in workers:
            t.start()
        for t in workers:
            t.join()
        return time.perf_counter() - started
    finally:
        store.close()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="ADMIN_URL",
        help="a PostgreSQL server URL: the state store goes into a fresh database there "
        "(dropped at the end); default: SQLite in the workspace",
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--sender", nargs=2, metavar=("URL", "KEY"), help=argparse.SUPPRESS)
    parser.add_argument("--run", default="bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sender:
        sender(args.sender[0], args.sender[1], args.seconds, args.connections, args.batch, args.run)
        return
    databases = (
        [fresh_postgres(args.postgres, f"tm_bench_{p}_{os.getpid()}") for p in ("http", "direct")]
        if args.postgres
        else [None, None]
    )
    try:
        result = measure(args, databases)
    finally:
        for url in databases:
            if url is not None:
                drop_postgres(args.postgres, url)
    sys.exit(0 if result["no_loss_no_duplicates"] else 1)


def fresh_postgres(admin_url: str, name: str) -> str:
    """A new empty database on the server of ``admin_url``; its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(admin_url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def drop_postgres(admin_url: str, db_url: str) -> None:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = make_url(db_url).database
    url = make_url(admin_url.replace("postgresql://", "postgresql+psycopg://", 1))
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def measure(args: argparse.Namespace, databases: list[str | None]) -> dict[str, Any]:
    """Serve, send, count, baseline; prints the report and returns its numbers."""
    from touchmodel.access.keys import create_key
    from touchmodel.state.db import Store
    from touchmodel.workspace import init_workspace

    with tempfile.TemporaryDirectory(prefix="tm-bench-ingest-") as tmp:
        root = Path(tmp) / "ws"
        ws = init_workspace(root, state=databases[0])
        store = Store(ws.state_url)
        try:
            key = create_key(store, "write", label="bench")
        finally:
            store.close()
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        tm = Path(sys.executable).with_name("touchmodel")
        server = subprocess.Popen(
            [str(tm), "serve", "-w", str(root), "--port", str(port), "--no-scheduler"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_healthy(url, server)
            run = f"r{os.getpid()}"
            out = subprocess.run(
                [sys.executable, __file__, "--seconds", str(args.seconds),
                 "--connections", str(args.connections), "--batch", str(args.batch),
                 "--run", run, "--sender", url, key.secret],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=30)
        sent = json.loads(out.stdout.strip().splitlines()[-1])
        stored = stored_count(ws.state_url, key.id)
        direct_seconds = direct_baseline(
            Path(tmp) / "direct", sent["sent_events"], args.batch, args.connections, databases[1]
        )

    lat = sent["latencies"]
    http_rate = sent["sent_events"] / sent["seconds"]
    direct_rate = sent["sent_events"] / direct_seconds if direct_seconds else float("nan")
    ok = stored == sent["sent_events"] and not sent["failed_batches"]
    result = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "state": "postgresql" if args.postgres else "sqlite",
        "seconds": round(sent["seconds"], 2),
        "connections": args.connections,
        "batch": args.batch,
        "sent_events": sent["sent_events"],
        "stored_events": stored,
        "failed_batches": sent["failed_batches"],
        "resent_batches": sent["resent_batches"],
        "events_per_second": round(http_rate),
        "batch_p50_ms": round(pct(lat, 0.50) * 1000, 1),
        "batch_p99_ms": round(pct(lat, 0.99) * 1000, 1),
        "direct_events_per_second": round(direct_rate),
        "http_over_direct": round(http_rate / direct_rate, 2),
        "no_loss_no_duplicates": ok,
    }
    print(
        f"POST /v1/batch ({result['state']}, {args.connections} connections, "
        f"{args.batch} events per batch, {result['seconds']}s):\n"
        f"  sent {result['sent_events']:,} events in {sent['batches']:,} batches, "
        f"stored {stored:,} (after resending {sent['resent_batches']} batches)\n"
        f"  {result['events_per_second']:,} events/s sustained; batch latency "
        f"p50 {result['batch_p50_ms']} ms, p99 {result['batch_p99_ms']} ms\n"
        f"  direct insert (same batches and threads, no HTTP): {result['direct_events_per_second']:,} events/s; "
        f"HTTP/direct = {result['http_over_direct']}\n"
        f"  no loss, no duplicates: {'PASS' if ok else 'FAIL'}"
    )
    if sent["failures"]:
        print("  failures: " + "; ".join(sent["failures"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()

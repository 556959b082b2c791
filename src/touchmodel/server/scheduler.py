"""What `touchmodel serve` does on its own: the daily run and outbox dispatch.

One background thread. Each tick it dispatches the outbox when that is due,
and starts the day's run once the local clock passes ``serve.run_at``, unless
a completed run of that day is already recorded (by the scheduler, by a cron
job or by hand: a run of the same day changes nothing anyway, so this only
saves the work). A workspace whose data folder holds nothing yet (a new
one) has nothing to run on: that day is skipped with one log line.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import select

from touchmodel.errors import TouchmodelError
from touchmodel.ops.outbox import dispatch
from touchmodel.state.db import Store
from touchmodel.state.tables import Run
from touchmodel.workspace import Workspace, holds_files

log = logging.getLogger("touchmodel.scheduler")

Clock = Callable[[], dt.datetime]


def _local_now() -> dt.datetime:
    return dt.datetime.now().astimezone()


class Scheduler:
    """The serve process's timer: call :meth:`tick` (the thread does, every few seconds)."""

    def __init__(self, ws: Workspace, store: Store, *, clock: Clock = _local_now) -> None:
        self.ws = ws
        self.store = store
        self.clock = clock
        self.config = ws.config.serve
        self._next_dispatch = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None
        # A failed run is retried, but not every tick: its data may need a fix first.
        self._retry_at: dict[dt.date, float] = {}
        self.retry_seconds = 900.0
        self._skipped: set[dt.date] = set()  # days already logged as having nothing to run on

    def run_due(self, now: dt.datetime) -> dt.date | None:
        """The as-of date to run now, or None (not time yet, or that day already ran)."""
        if self.config.run_at is None or now.time() < self.config.run_at:
            return None
        today = now.date()
        with self.store.transaction() as session:
            done = session.scalar(
                select(Run.id).where(Run.as_of == today, Run.status == "completed").limit(1)
            )
        return None if done is not None else today

    def tick(self) -> None:
        """One pass: the daily run when due, then the outbox when due."""
        now = self.clock()
        as_of = self.run_due(now)
        if as_of is not None and not self._has_data(as_of):
            as_of = None
        if as_of is not None and time.monotonic() >= self._retry_at.get(as_of, 0.0):
            from touchmodel.ops.daily import run_day

            log.info("scheduled run for %s", as_of)
            try:
                day = run_day(self.ws, as_of=as_of)
                self.last_error = None
                log.info(
                    "scheduled run %s for %s completed: %s accounts, %s warning(s)",
                    day.run_id,
                    as_of,
                    day.result.decisions.num_rows,
                    len(day.warnings),
                )
            except Exception as exc:  # recorded on the run; retried next tick
                self.last_error = f"run {as_of}: {exc}"
                self._retry_at[as_of] = time.monotonic() + self.retry_seconds
                if isinstance(exc, TouchmodelError):  # the data or the date: one line says why
                    log.error("scheduled run for %s failed: %s", as_of, exc)
                else:
                    log.exception("scheduled run for %s failed", as_of)
        mono = time.monotonic()
        if mono >= self._next_dispatch:
            self._next_dispatch = mono + self.config.dispatch_every
            try:
                dispatch(self.store, self.ws.config.delivery, templates_dir=self.ws.templates_dir)
            except Exception as exc:
                self.last_error = f"dispatch: {exc}"
                log.exception("outbox dispatch failed")

    def _has_data(self, as_of: dt.date) -> bool:
        """Whether the data folder holds anything; if not, say so once for the day."""
        folder = self.ws.data_path
        # A database URL always has something to read; a folder may be empty.
        if folder is not None and (isinstance(folder, str) or holds_files(folder)):
            self._skipped.discard(as_of)
            return True
        if as_of not in self._skipped:
            self._skipped.add(as_of)
            log.info(
                "scheduled run for %s skipped: the data folder %s holds no files yet "
                "(put the accounts and activity exports there)",
                as_of,
                folder if folder is not None else "(none set in touchmodel.yaml)",
            )
        return False

    def start(self, every: float = 5.0) -> None:
        """Tick every ``every`` seconds in a daemon thread until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.is_set():
                self.tick()
                self._stop.wait(every)

        self._thread = threading.Thread(target=loop, name="touchmodel-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop ticking; waits for a tick in progress to finish."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

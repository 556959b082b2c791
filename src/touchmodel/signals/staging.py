"""Compute one part of the decision query ahead, on a second DuckDB connection.

A run is mostly single-threaded Python (loading and checking the tables,
building and compiling the decision query) followed by one DuckDB query that
keeps every core busy. The biggest piece of that query, the usage aggregates
(:func:`touchmodel.signals.build.usage_part`, one grouped pass over every
event), depends on nothing but the usage events. Staged here as soon as
that table is loaded, it runs in DuckDB's threads while Python loads the
other tables and compiles the rest; the decision query then reads the
staged table, about 100 bytes per account, instead of the events.

Staging needs what the part reads to be visible to another connection of
the same database: views and tables outside DuckDB's ``temp`` schema (the
loader creates them there on an in-memory database). An Arrow table
registered on the connection (a CSV file, events sent to ``/v1``) is not,
and then :func:`stage` returns None and the part stays inline in the
decision query: the same result, without the overlap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import ibis
import ibis.expr.types as ir


class StagedTable:
    """A table being filled in the background; build on ``table``, then :meth:`wait`."""

    def __init__(self, table: ir.Table, run: Callable[[], Any], interrupt: Callable[[], Any]):
        self.table = table
        self._interrupt = interrupt
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(run,), daemon=True)
        self._thread.start()

    def _run(self, run: Callable[[], Any]) -> None:
        try:
            run()
        except BaseException as exc:  # re-raised in the caller's thread by wait()
            self._error = exc

    def wait(self) -> None:
        """Block until the table is filled; raise what filling it raised."""
        self._thread.join()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop the work if it still runs (a run that failed before needing it)."""
        if self._thread.is_alive():
            self._interrupt()
            self._thread.join()


def stage(con: ibis.BaseBackend, expr: ir.Table, name: str) -> StagedTable | None:
    """Start filling table ``name`` with ``expr`` on a second connection of ``con``.

    None when that is not possible: ``con`` is not DuckDB, or ``expr`` reads
    something only ``con`` itself can see (see the module docstring).
    """
    if getattr(con, "name", None) != "duckdb":
        return None
    # The same SQL the decision query would inline; compiled once, here.
    sql = con.compile(expr)
    cursor = con.con.cursor()  # type: ignore[attr-defined]
    target = '"' + name.replace('"', '""') + '"'
    try:
        # Binding on the second connection is the visibility test; the empty
        # table it creates carries DuckDB's own types for the INSERT below.
        cursor.execute(f"CREATE TABLE {target} AS SELECT * FROM ({sql}) LIMIT 0")
    except Exception as exc:
        cursor.close()
        if type(exc).__name__ == "CatalogException":
            return None
        raise
    table = con.table(name)

    def fill() -> None:
        try:
            cursor.execute(f"INSERT INTO {target} {sql}")
        finally:
            cursor.close()

    return StagedTable(table, fill, cursor.interrupt)

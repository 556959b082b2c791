"""Settings of the DuckDB connection that one query needs, and only that query."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


@contextmanager
def optimizers_off(con: Any, names: Sequence[str]) -> Iterator[None]:
    """Run the block with DuckDB's optimizers ``names`` disabled on ``con`` (a raw connection).

    ``disabled_optimizers`` is a global DuckDB setting: the names are added to
    the list the user may have set, and that list is put back after.
    """
    if not names:
        yield
        return
    before = con.execute("SELECT current_setting('disabled_optimizers')").fetchall()[0][0]
    con.execute("SET disabled_optimizers = $1", [",".join(x for x in (before, *names) if x)])
    try:
        yield
    finally:
        con.execute("SET disabled_optimizers = $1", [before])

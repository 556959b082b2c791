"""A seeded generator of demo data: a B2B SaaS customer base in the data contract.

The output folder follows the data contract (docs/data-contract.md) exactly: ``accounts.parquet``,
``usage_events/part-NNNNN.parquet`` (one part per chunk of accounts) and
``tickets.parquet``, ``nps_responses.parquet``, ``payments.parquet``,
``contacts.parquet`` (one row group per chunk). Column names and Arrow types
come from :mod:`touchmodel.sources.contract`.

Randomness is drawn per fixed block of :data:`BLOCK_ACCOUNTS` accounts from a
generator seeded with ``(seed, block index)``. The content therefore depends
only on ``seed``, ``as_of`` and ``accounts``, never on ``chunk_accounts``:
chunking only decides how rows are split into files, so a small chunk size to
save memory does not change the data set. Every step is vectorized over a
block; Python loops run per block or per chunk, never per row.

Accounts follow archetypes (healthy, declining, inactive, growing, at plan
capacity, churned) chosen so that every default trigger of the presets fires
for a realistic share of the base.

This module streams blocks into files; each table is drawn in its own module
(``_accounts``, ``_usage_events``, ``_contacts``, ``_tickets``, ``_nps``,
``_payments``) with the shared helpers of ``_common``. The draws of a block
run in a fixed order on one random generator (see :func:`_generate_block`):
reordering them changes the data.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from touchmodel.demo._accounts import ARCHETYPES, accounts_table, draw_accounts
from touchmodel.demo._common import BlockInputs, Counters, Days, contract_schema, numbered_ids
from touchmodel.demo._contacts import draw_contacts
from touchmodel.demo._nps import draw_nps_responses
from touchmodel.demo._payments import draw_payments
from touchmodel.demo._tickets import draw_tickets
from touchmodel.demo._usage_events import draw_usage_events

__all__ = [
    "ARCHETYPES",
    "BLOCK_ACCOUNTS",
    "PROGRESS_STEP",
    "DemoSummary",
    "contract_schema",
    "generate",
]

# Accounts per random-number block. Part of the data definition: changing it
# changes the generated data for every seed.
BLOCK_ACCOUNTS = 1000
# The step name passed to ``progress``; done/total count accounts.
PROGRESS_STEP = "accounts"

# Table order in DemoSummary.rows; usage_events is the only table written as parts.
TABLE_NAMES = ("accounts", "usage_events", "tickets", "nps_responses", "payments", "contacts")
PARTED_TABLES = frozenset({"usage_events"})


@dataclass(frozen=True)
class DemoSummary:
    """What :func:`generate` wrote."""

    folder: Path
    accounts: int
    rows: dict[str, int]  # rows written per table name


@dataclass
class _Rows:
    """Rows of one table for one block, with each row's global account index."""

    table: pa.Table
    account: np.ndarray  # non-decreasing

    def between(self, lo: int, hi: int) -> pa.Table:
        start, stop = np.searchsorted(self.account, [lo, hi], side="left")
        return self.table.slice(int(start), int(stop - start))


@dataclass
class _Block:
    """Every table for one block of accounts, plus the ground truth tests can check."""

    tables: dict[str, _Rows]
    attributes: dict[str, np.ndarray]  # per-account arrays, incl. "archetype"


# --- one block -------------------------------------------------------------


def _generate_block(
    seed: int, block: int, n: int, as_of: dt.date, width: int, counters: Counters
) -> _Block:
    """All tables for accounts ``block * BLOCK_ACCOUNTS`` .. ``+ n``, advancing ``counters``."""
    rng = np.random.default_rng([seed, block])
    days = Days(as_of, rng)
    first = block * BLOCK_ACCOUNTS
    glob = first + np.arange(n)
    acc = draw_accounts(rng, days, n)
    account_ids = numbered_ids("ACC-", glob + 1, width)
    inputs = BlockInputs(rng, days, acc, account_ids, counters)
    tables: dict[str, _Rows] = {}

    tables["accounts"] = _Rows(accounts_table(inputs), glob)
    local, events = draw_usage_events(inputs)
    tables["usage_events"] = _Rows(events, first + local)
    contacts, contact_local, n_contacts = draw_contacts(inputs)
    tables["contacts"] = _Rows(contacts, first + contact_local)
    local, tickets = draw_tickets(inputs)
    tables["tickets"] = _Rows(tickets, first + local)
    local, nps = draw_nps_responses(inputs, n_contacts)
    tables["nps_responses"] = _Rows(nps, first + local)
    local, payments = draw_payments(inputs)
    tables["payments"] = _Rows(payments, first + local)
    counters.contacts += int(n_contacts.sum())
    return _Block(tables=tables, attributes=acc)


# --- streaming into files --------------------------------------------------


def _clear_previous(out_dir: Path) -> None:
    """Remove files a previous run wrote, so no stale part survives a smaller run."""
    for name in TABLE_NAMES:
        (out_dir / f"{name}.parquet").unlink(missing_ok=True)
        folder = out_dir / name
        if folder.is_dir():
            for part in folder.glob("part-*.parquet"):
                part.unlink()
            if not any(folder.iterdir()):
                folder.rmdir()


def generate(
    out_dir: Path,
    *,
    accounts: int = 2000,
    as_of: dt.date,
    seed: int = 7,
    chunk_accounts: int = 20_000,
    progress: Callable[[str, int, int], None] | None = None,
) -> DemoSummary:
    """Write a demo data folder for ``accounts`` accounts as of ``as_of``.

    The same ``seed``, ``as_of`` and ``accounts`` give the same data whatever
    ``chunk_accounts`` is, and byte-identical files for the same
    ``chunk_accounts``. At most one chunk of rows (plus one block of
    :data:`BLOCK_ACCOUNTS` accounts) is held in memory. Files of a previous run
    in ``out_dir`` (the contract tables only) are replaced.

    ``progress(PROGRESS_STEP, done, total)`` is called with the number of
    accounts written so far, once at the start and after every chunk.
    """
    if accounts < 1:
        raise ValueError("accounts must be at least 1")
    if chunk_accounts < 1:
        raise ValueError("chunk_accounts must be at least 1")
    if seed < 0:
        raise ValueError("seed must be non-negative")
    if isinstance(as_of, dt.datetime):
        as_of = as_of.date()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _clear_previous(out_dir)
    (out_dir / "usage_events").mkdir(exist_ok=True)

    width = max(6, len(str(accounts)))
    schemas = {name: contract_schema(name) for name in TABLE_NAMES}
    rows = dict.fromkeys(TABLE_NAMES, 0)
    buffers: dict[str, list[pa.Table]] = {name: [] for name in TABLE_NAMES}
    writers = {
        name: pq.ParquetWriter(out_dir / f"{name}.parquet", schemas[name])
        for name in TABLE_NAMES
        if name not in PARTED_TABLES
    }
    counters = Counters()
    part = 0

    def flush() -> None:
        nonlocal part
        for name in TABLE_NAMES:
            pieces = buffers[name]
            table = pa.concat_tables(pieces) if pieces else schemas[name].empty_table()
            buffers[name] = []
            rows[name] += table.num_rows
            if name in PARTED_TABLES:
                pq.write_table(table, out_dir / name / f"part-{part:05d}.parquet")
            elif table.num_rows:
                writers[name].write_table(table)
        part += 1

    if progress:
        progress(PROGRESS_STEP, 0, accounts)
    chunk_end = min(chunk_accounts, accounts)
    try:
        for block in range(math.ceil(accounts / BLOCK_ACCOUNTS)):
            first = block * BLOCK_ACCOUNTS
            last = min(first + BLOCK_ACCOUNTS, accounts)
            generated = _generate_block(seed, block, last - first, as_of, width, counters)
            pos = first
            while pos < last:
                stop = min(chunk_end, last)
                for name, block_rows in generated.tables.items():
                    buffers[name].append(block_rows.between(pos, stop))
                pos = stop
                if pos == chunk_end:
                    flush()
                    if progress:
                        progress(PROGRESS_STEP, chunk_end, accounts)
                    chunk_end = min(chunk_end + chunk_accounts, accounts)
    finally:
        for writer in writers.values():
            writer.close()
    return DemoSummary(folder=out_dir, accounts=accounts, rows=rows)

"""What every demo table is built with: day arithmetic, ids, draws and Arrow columns."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from touchmodel.sources.contract import TABLES

_ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "date": pa.date32(),
    "timestamp": pa.timestamp("us"),
    "bool": pa.bool_(),
}

US_PER_DAY = 86_400 * 1_000_000


def contract_schema(table: str) -> pa.Schema:
    """The Arrow schema of a contract table, in contract column order."""
    return pa.schema([(c.name, _ARROW_TYPES[c.type]) for c in TABLES[table].columns])


@dataclass
class Counters:
    """Running numbers for ids that are sequential across the whole data set."""

    tickets: int = 0
    invoices: int = 0
    contacts: int = 0


class Days:
    """Day arithmetic relative to the as-of date, on epoch-day integers."""

    def __init__(self, as_of: dt.date, rng: np.random.Generator) -> None:
        self.as_of = int(np.datetime64(as_of, "D").astype(np.int64))
        self.rng = rng

    def is_weekend(self, age: np.ndarray) -> np.ndarray:
        # 1970-01-01 was a Thursday: (day + 3) % 7 is 0 on Mondays.
        return (self.as_of - age + 3) % 7 >= 5

    def ages(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """A day age in [lo, hi] per row; weekends are rarer (B2B activity)."""
        rng = self.rng
        lo = np.asarray(lo, dtype=np.int64)
        span = np.asarray(hi, dtype=np.int64) - lo + 1
        age = lo + (rng.random(lo.size) * span).astype(np.int64)
        redo = self.is_weekend(age) & (rng.random(lo.size) > 0.3)
        for _ in range(64):
            idx = np.flatnonzero(redo)
            if idx.size == 0:
                break
            age[idx] = lo[idx] + (rng.random(idx.size) * span[idx]).astype(np.int64)
            redo[idx] = self.is_weekend(age[idx]) & (rng.random(idx.size) > 0.3)
        return age

    def timestamps(self, age: np.ndarray) -> np.ndarray:
        """Microsecond timestamps on the given day ages, mostly in working hours."""
        rng = self.rng
        office = rng.normal(13.5 * 3600, 2.6 * 3600, age.size)
        anytime = rng.random(age.size) * 86_400
        seconds = np.where(rng.random(age.size) < 0.85, office, anytime).clip(0, 86_399)
        millis = rng.integers(0, 1000, age.size)
        day = self.as_of - age.astype(np.int64)
        return day * US_PER_DAY + seconds.astype(np.int64) * 1_000_000 + millis * 1000

    def anniversary(self, start: np.ndarray, years: np.ndarray) -> np.ndarray:
        """``start`` plus whole years as epoch days; Feb 29 falls back to Feb 28."""
        d = start.astype("datetime64[D]")
        month = d.astype("datetime64[M]")
        dom = (d - month.astype("datetime64[D]")).astype(np.int64)
        target = month + (12 * years).astype("timedelta64[M]")
        return month_day(target, dom)

    def next_anniversary(self, start: np.ndarray) -> np.ndarray:
        """First anniversary of ``start`` on/after as-of: the default signals use if it is null."""
        as_of_year = np.datetime64(self.as_of, "D").astype("datetime64[Y]").astype(np.int64)
        years = as_of_year - start.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64)
        cand = self.anniversary(start, years)
        return np.where(cand < self.as_of, self.anniversary(start, years + 1), cand)


@dataclass
class BlockInputs:
    """What every table of one block of accounts is drawn from."""

    # The block's one random generator: each table's draws follow the previous
    # table's, so the order of the draws is part of the data definition.
    rng: np.random.Generator
    days: Days
    acc: dict[str, np.ndarray]  # per-account attributes (``draw_accounts``)
    ids: pa.Array  # the block's account ids
    counters: Counters


def month_day(month: np.ndarray, dom: np.ndarray) -> np.ndarray:
    """Epoch day of day-of-month ``dom`` (0-based) in ``month``, clamped to its last day."""
    first = month.astype("datetime64[D]").astype(np.int64)
    length = (month + 1).astype("datetime64[D]").astype(np.int64) - first
    return first + np.minimum(dom, length - 1)


def numbered_ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Ids like ``ACC-000042``: ``prefix`` and each number zero-padded to ``width``."""
    digits = pc.utf8_lpad(pa.array(numbers, pa.int64()).cast(pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def pick(values: tuple[str, ...] | list[str], idx: np.ndarray) -> pa.Array:
    """``values[i]`` for each index ``i`` in ``idx``, as an Arrow string array."""
    return pa.array(values, pa.string()).take(pa.array(idx, pa.int64()))


def categorical(rng: np.random.Generator, p: np.ndarray, size: int) -> np.ndarray:
    """``size`` draws of a category index with probabilities ``p``."""
    return np.minimum(np.searchsorted(np.cumsum(p), rng.random(size), side="right"), len(p) - 1)


def repeat_index(counts: np.ndarray) -> np.ndarray:
    """Row index ``i`` repeated ``counts[i]`` times."""
    return np.repeat(np.arange(counts.size), counts)


def date_array(days: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Epoch days as an Arrow date32 array, null where ``null`` is true."""
    return pa.array(days.astype("datetime64[D]"), pa.date32(), mask=null)


def timestamp_array(us: np.ndarray, null: np.ndarray | None = None) -> pa.Array:
    """Epoch microseconds as an Arrow timestamp array, null where ``null`` is true."""
    return pa.array(us.astype(np.int64).view("datetime64[us]"), pa.timestamp("us"), mask=null)


def contract_table(name: str, columns: dict[str, pa.Array]) -> pa.Table:
    """Contract table ``name`` from its columns, in contract order and types."""
    schema = contract_schema(name)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def words(text: str) -> tuple[str, ...]:
    """The whitespace-separated words of ``text``."""
    return tuple(text.split())

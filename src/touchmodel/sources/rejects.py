"""The rejected-rows report: every row or value the loader could not use.

Nothing a user hands us is silently dropped. Each problem becomes one line of
``rejected_rows.csv``::

    file, row, field, value, reason, action, record

``row`` counts like a spreadsheet (the header is row 1; for Parquet the
1-based row in the file), ``action`` is ``row rejected`` or ``value set to
null`` and ``record`` is the whole original record as JSON.

The problem rows are kept as lazy Ibis expressions over the loaded sources
and written by DuckDB in one query, so a large report never passes through
Python; only the per-table counts are computed at load time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchmodel.errors import DataError

REJECTED = "row rejected"
NULLED = "value set to null"
REPORT_FILE = "rejected_rows.csv"
REPORT_COLUMNS = ("file", "row", "field", "value", "reason", "action", "record")

# Column types of a report row; every table's problem expression has this schema.
REPORT_SCHEMA = ibis.schema(
    {
        "file": "string",
        "row": "int64",
        "field": "string",
        "value": "string",
        "reason": "string",
        "action": "string",
        "record": "string",
        # Sort keys: problems of one record stay together, in check order.
        "_check": "int64",
    }
)


@dataclass
class TableRejects:
    """Problems found in one table."""

    table: str
    source: str  # the file(s) as the user names them, for messages
    rows_read: int = 0
    rejected: int = 0
    values_nulled: int = 0
    # Lazy problem rows (REPORT_SCHEMA), None when the table had no problems.
    rows: ir.Table | None = None
    # Problems found while reading (e.g. CSV lines with the wrong field count).
    parse_rows: pa.Table | None = None
    # False for input the user's files do not hold (ingested events): reported,
    # but not a reason to stop the run at the reject-rate limit.
    counts_towards_rate: bool = True


@dataclass
class RejectReport:
    """Rejected rows and nulled values of one load, per table."""

    con: ibis.BaseBackend | None = None
    tables: dict[str, TableRejects] = field(default_factory=dict)
    # Where write() put the report, for check_rate's message.
    path: Path | None = None

    def add(self, rejects: TableRejects) -> None:
        """Record the problems of one table (tables keep the order they are added in)."""
        self.tables[rejects.table] = rejects

    def summary(self) -> dict[str, dict[str, int]]:
        """Per table: rows read, rows rejected and values set to null."""
        return {
            name: {
                "rows_read": t.rows_read,
                "rejected": t.rejected,
                "values_nulled": t.values_nulled,
            }
            for name, t in self.tables.items()
        }

    @property
    def has_problems(self) -> bool:
        """True when any row was rejected or any value set to null."""
        return any(t.rejected or t.values_nulled for t in self.tables.values())

    def expression(self) -> ir.Table | None:
        """All problem rows as one Ibis table in report order, or None if there are none."""
        parts: list[ir.Table] = []
        for order, t in enumerate(self.tables.values()):
            pieces = []
            if t.rows is not None:
                pieces.append(t.rows)
            if t.parse_rows is not None and t.parse_rows.num_rows:
                pieces.append(ibis.memtable(t.parse_rows, schema=REPORT_SCHEMA))
            for piece in pieces:
                parts.append(piece.mutate(_table=ibis.literal(order, type="int64")))
        if not parts:
            return None
        union = parts[0] if len(parts) == 1 else ibis.union(*parts, distinct=False)
        union = union.order_by(["_table", "file", "row", "_check"])
        return union.select(*REPORT_COLUMNS)

    def to_pyarrow(self) -> pa.Table:
        """The report rows in memory (for tests and small reports)."""
        expr = self.expression()
        if expr is None:
            return pa.table({c: pa.array([], type=_arrow_type(c)) for c in REPORT_COLUMNS})
        return self._backend().to_pyarrow(expr)

    def write(self, out_dir: Path) -> Path | None:
        """Write ``out_dir/rejected_rows.csv``; None (and no file) if nothing was rejected.

        A report left over from an earlier run in ``out_dir`` is removed, so
        the folder never shows problems this run did not have.
        """
        out_dir = Path(out_dir)
        path = out_dir / REPORT_FILE
        expr = self.expression() if self.has_problems else None
        if expr is None:
            path.unlink(missing_ok=True)
            self.path = None
            return None
        out_dir.mkdir(parents=True, exist_ok=True)
        self._backend().to_csv(expr, path)
        self.path = path
        return path

    def check_rate(self, max_reject_rate: float) -> None:
        """Raise DataError if any table rejected more than ``max_reject_rate`` of its rows."""
        over = []
        first = ""
        for t in self.tables.values():
            if not t.counts_towards_rate:
                continue
            if t.rows_read and t.rejected / t.rows_read > max_reject_rate:
                over.append(
                    f"{t.table}: {t.rejected:,} of {t.rows_read:,} rows rejected "
                    f"({t.rejected / t.rows_read:.1%}) from {t.source}"
                )
                first = first or self._first_problem(t)
        if not over:
            return
        where = (
            f"see {self.path} for every rejected row and why"
            if self.path is not None
            else "the rejected-rows report was not written (give an output folder to get it)"
        )
        raise DataError(
            f"too many rejected rows (limit {max_reject_rate:.1%}): "
            + "; ".join(over)
            + f"; {where}. {first}Fix the data or the mapping file, or raise the limit "
            "(max_reject_rate in the mapping file, or --max-reject-rate)."
        )

    def _first_problem(self, t: TableRejects) -> str:
        """``The first: <file> row <n>, <field> <value>: <reason>. `` ('' if unknown).

        The reason often says what to change (a delimiter, ``format: money``),
        so the message that stops the run shows one.
        """
        if t.rows is not None and self.con is not None:
            top = self.con.to_pyarrow(t.rows.order_by(["file", "row", "_check"]).limit(1))
        elif t.parse_rows is not None and t.parse_rows.num_rows:
            top = t.parse_rows.slice(0, 1)
        else:
            return ""
        if not top.num_rows:
            return ""
        r = top.to_pylist()[0]
        value = r["value"] if len(r["value"] or "") <= 60 else r["value"][:57] + "..."
        field = f", {r['field']} {value!r}" if r["field"] else ""
        return f"The first: {r['file']} row {r['row']}{field}: {r['reason']}. "

    def _backend(self) -> ibis.BaseBackend:
        if self.con is None:
            raise RuntimeError("this report is not bound to a backend")
        return self.con


def _arrow_type(column: str) -> pa.DataType:
    return pa.int64() if column == "row" else pa.string()


def parse_problem_rows(
    file: str, rows: list[int], values: list[str], reasons: list[str], records: list[str]
) -> pa.Table:
    """Report rows for records the reader could not split into fields."""
    n = len(rows)
    return pa.table(
        {
            "file": pa.array([file] * n, pa.string()),
            "row": pa.array(rows, pa.int64()),
            "field": pa.array([""] * n, pa.string()),
            "value": pa.array(values, pa.string()),
            "reason": pa.array(reasons, pa.string()),
            "action": pa.array([REJECTED] * n, pa.string()),
            "record": pa.array(records, pa.string()),
            "_check": pa.array([-1] * n, pa.int64()),
        }
    )

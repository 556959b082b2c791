"""Reading a table's CSV or Parquet file(s) onto DuckDB, with file labels and row numbers."""

from __future__ import annotations

import csv
import json
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from touchmodel.errors import DataError
from touchmodel.sources._discovery import FoundTable, file_label
from touchmodel.sources.mapping import TableMapping
from touchmodel.sources.rejects import parse_problem_rows

FILE_COL = "__tm_file"
ROW_COL = "__tm_row"
_INTERNAL = (FILE_COL, ROW_COL)


@dataclass
class SourceTable:
    """One table as read from its file(s), before mapping and typing."""

    table: ir.Table  # source columns + FILE_COL (label) + ROW_COL (spreadsheet row)
    columns: list[str]  # source columns, in file order
    label: str
    parse_problems: pa.Table | None = None


def _csv_header(path: Path, tmap: TableMapping) -> list[str]:
    try:
        with path.open(
            encoding="utf-8-sig" if tmap.encoding.lower() in ("utf-8", "utf8") else tmap.encoding,
            newline="",
        ) as fh:
            header = next(csv.reader(fh, delimiter=tmap.delimiter), None)
    except (UnicodeDecodeError, LookupError) as exc:
        raise DataError(
            f"{path}: cannot read the header with encoding {tmap.encoding!r} ({exc}); "
            "set 'encoding' for this table in the mapping file"
        ) from None
    if not header or not any(h.strip() for h in header):
        raise DataError(f"{path}: no header row; the first line must name the columns")
    names = [h.strip() for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(
            f"{path}: the header names these columns more than once: {', '.join(dupes)}"
        )
    if "" in names:
        raise DataError(f"{path}: column {names.index('') + 1} of the header has no name")
    return names


def _read_csv_file(path: Path, label: str, tmap: TableMapping) -> tuple[pa.Table, pa.Table | None]:
    """One CSV file as text columns plus its spreadsheet row numbers, and unreadable lines."""
    names = _csv_header(path, tmap)
    bad: list[Any] = []

    def on_invalid(row: Any) -> str:
        bad.append(row)
        return "skip"

    def read(threads: bool) -> pa.Table:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                column_names=names, skip_rows=1, encoding=tmap.encoding, use_threads=threads
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=tmap.delimiter,
                newlines_in_values=True,
                # Blank lines are read (as empty records) so row numbers stay
                # those of a spreadsheet; they are dropped below.
                ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            # Everything as text: the contract decides types, and '' stays
            # distinguishable from a missing value until we decide.
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )

    try:
        data = read(threads=True)
        if bad and any(r.number is None for r in bad):
            # Only the single-threaded reader knows where a bad line was; it
            # is slower, so it is used only for files that have bad lines.
            bad.clear()
            data = read(threads=False)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DataError(
            f"{path}: cannot be read as CSV ({exc}); check the delimiter and encoding "
            "('delimiter', 'encoding' for this table in the mapping file)"
        ) from None

    # Record numbers: the header is record 1; skipped bad lines keep their numbers.
    total = data.num_rows + len(bad)
    bad_rows = np.array(sorted(r.number for r in bad), dtype=np.int64)
    rows = np.arange(2, total + 2, dtype=np.int64)
    if len(bad_rows):
        rows = np.setdiff1d(rows, bad_rows, assume_unique=True)
    data = data.append_column(ROW_COL, pa.array(rows, pa.int64()))
    if names and data.num_rows:
        # A blank line (or one with only delimiters) is not a record.
        empty = pc.equal(data.column(names[0]), "")
        for n in names[1:]:
            empty = pc.and_(empty, pc.equal(data.column(n), ""))
        data = data.filter(pc.invert(empty))
    data = data.append_column(FILE_COL, pa.array([label] * data.num_rows, pa.string()))

    problems = None
    if bad:
        ordered = sorted(bad, key=lambda r: r.number)
        problems = parse_problem_rows(
            label,
            [r.number for r in ordered],
            [r.text for r in ordered],
            [
                f"the line has {r.actual_columns} field(s); the header has {r.expected_columns}"
                for r in ordered
            ],
            [
                json.dumps({"line": r.text}, ensure_ascii=False, separators=(",", ":"))
                for r in ordered
            ],
        )
    return data, problems


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# A connection's database never changes; asked once per connection, not per table.
_IN_MEMORY: weakref.WeakKeyDictionary[ibis.BaseBackend, bool] = weakref.WeakKeyDictionary()


def in_memory(con: ibis.BaseBackend) -> bool:
    """Whether ``con``'s database is in memory (nothing written to it outlives the run)."""
    known = _IN_MEMORY.get(con)
    if known is None:
        raw = con.con  # type: ignore[attr-defined]
        rows = raw.execute(
            "SELECT path FROM duckdb_databases() WHERE database_name = current_database()"
        ).fetchall()
        known = _IN_MEMORY[con] = bool(rows) and not rows[0][0]
    return known


def scratch_kind(con: ibis.BaseBackend) -> str:
    """``TEMP`` for the loader's views and tables, except on an in-memory database.

    There they go to the main schema, where a second connection of the same
    database sees them (see :mod:`touchmodel.signals.staging`); in a database
    file, the temp schema keeps them out of the file.
    """
    return "" if in_memory(con) else "TEMP"


def scratch_table(con: ibis.BaseBackend, name: str, expr: ir.Table) -> ir.Table:
    """Materialize ``expr`` as the loader's table ``name`` (where: see scratch_kind)."""
    return con.create_table(name, expr, temp=scratch_kind(con) == "TEMP")


def read_source(
    con: ibis.BaseBackend,
    name: str,
    found: FoundTable,
    folder: Path,
    tmap: TableMapping,
    token: str,
) -> SourceTable:
    """Register ``found`` on ``con`` as a view with file labels and row numbers.

    Parquet is read lazily by DuckDB; CSV is read as text by Arrow (lines that
    cannot be parsed become ``parse_problems``) and registered in memory.
    """
    view = f"__tm_src_{name}_{token}"
    raw = con.con  # type: ignore[attr-defined]
    if found.kind == "parquet":
        files = "[" + ", ".join(_sql_str(str(p.resolve())) for p in found.paths) + "]"
        labels = [file_label(p, folder) for p in found.paths]
        # File labels as the user sees them; DuckDB only computes this column
        # when a query (the report) asks for it.
        case = " ".join(
            f"WHEN {_sql_str(str(p.resolve()))} THEN {_sql_str(lab)}"
            for p, lab in zip(found.paths, labels, strict=True)
        )
        try:
            raw.execute(
                f"CREATE OR REPLACE {scratch_kind(con)} VIEW {_quote(view)} AS "
                f"SELECT * EXCLUDE ({_quote(FILE_COL)}, file_row_number), "
                f"CASE {_quote(FILE_COL)} {case} END AS {_quote(FILE_COL)}, "
                f"file_row_number + 1 AS {_quote(ROW_COL)} "
                f"FROM read_parquet({files}, filename={_sql_str(FILE_COL)}, "
                f"file_row_number=true, union_by_name=true)"
            )
        except Exception as exc:  # duckdb.Error subclasses; message names the file
            raise DataError(f"{found.label}: cannot be read as Parquet: {exc}") from None
        table = con.table(view)
        columns = [c for c in table.columns if c not in _INTERNAL]
        return SourceTable(table, columns, found.label)

    pieces, problems = [], []
    for p in found.paths:
        data, bad = _read_csv_file(p, file_label(p, folder), tmap)
        pieces.append(data)
        if bad is not None:
            problems.append(bad)
    data = pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces, promote_options="default")
    # Keep the source columns first, in file order.
    columns = [c for c in data.column_names if c not in _INTERNAL]
    data = data.select([*columns, FILE_COL, ROW_COL])
    raw.register(view, data)
    return SourceTable(
        con.table(view),
        columns,
        found.label,
        pa.concat_tables(problems) if problems else None,
    )

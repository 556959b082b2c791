"""Contract tables defined by a SQL query in the mapping file (``tables.<name>.sql``).

The query runs on the loader's DuckDB connection. Every file of the data
folder is a view named after it (``subscriptions.csv`` -> ``subscriptions``,
a folder ``events/`` of parts -> ``events``), and ``$as_of`` is the run's
as-of date (a DATE parameter). The result is materialized once, with its
1-based result row as the row number and ``tables.<name>.sql`` as the file
label, and then goes through the same mapping, typing, checks and
rejected-rows report as a file.

An error in the query is a mapping-file error naming the table and the line
and column of the query where DuckDB found it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import ibis

from touchmodel.errors import DataError
from touchmodel.sources._discovery import FoundTable, file_label
from touchmodel.sources._discovery import _parts as table_parts
from touchmodel.sources._reading import FILE_COL, ROW_COL, SourceTable, scratch_kind
from touchmodel.sources._reading import _quote as quote
from touchmodel.sources._reading import _sql_str as sql_str
from touchmodel.sources.mapping import Mapping, mapping_error

_DATA_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
_AS_OF = re.compile(r"\$as_of\b")


def folder_views(con: ibis.BaseBackend, folder: Path) -> dict[str, str]:
    """Create a temporary view per data file of ``folder``, named after it.

    ``x.csv``, ``x.parquet`` and a folder ``x/`` of Parquet or CSV parts all
    become view ``x``; CSV columns get the types DuckDB detects. Returns the
    view names with the file(s) each reads. Two files with the same name
    (``x.csv`` and ``x.parquet``) are an error: the query could not tell them
    apart.
    """
    raw = con.con  # type: ignore[attr-defined]
    found: dict[str, list[Path]] = {}
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            parts = table_parts(entry)
            if parts:
                found.setdefault(entry.name, []).append(entry)
        elif entry.suffix.lower() in _DATA_SUFFIXES:
            found.setdefault(entry.stem, []).append(entry)
    views: dict[str, str] = {}
    for view, entries in found.items():
        if len(entries) > 1:
            shown = ", ".join(file_label(e, folder) for e in entries)
            raise DataError(
                f"{folder}: the SQL view {view!r} would read {shown}; keep one file of that name"
            )
        entry = entries[0]
        paths = table_parts(entry) if entry.is_dir() else [entry]
        kind = _DATA_SUFFIXES.get(paths[0].suffix.lower(), "csv")
        files = "[" + ", ".join(sql_str(str(p.resolve())) for p in paths) + "]"
        reader = (
            f"read_parquet({files}, union_by_name=true)"
            if kind == "parquet"
            else f"read_csv({files}, header=true, union_by_name=true)"
        )
        raw.execute(f"CREATE OR REPLACE TEMP VIEW {quote(view)} AS SELECT * FROM {reader}")
        views[view] = file_label(entry, folder) + ("/" if entry.is_dir() else "")
    return views


def _position(sql: str, offset: int) -> str:
    """``line L, column C`` of character ``offset`` of ``sql`` (both 1-based)."""
    offset = max(0, min(offset, len(sql)))
    before = sql[:offset]
    line = before.count("\n") + 1
    column = offset - (before.rfind("\n") + 1) + 1
    return f"line {line}, column {column}"


def _sql_problem(label: str, sql: str, exc: Exception, prefix: int) -> str:
    """One mapping-file problem for DuckDB's error ``exc`` on the query ``label``.

    ``prefix`` is how many characters the executed statement had before the
    user's query, so that DuckDB's position becomes a position in the query.
    """
    text = str(exc)
    kind, _, rest = text.partition(": ")
    where, message = "", text
    start = rest.find("{")
    if start >= 0:
        try:
            info = json.loads(rest[start:])
        except ValueError:
            info = None
        if isinstance(info, dict):
            message = f"{kind}: {info.get('exception_message', rest)}"
            pos = info.get("position")
            if pos is not None and str(pos).isdigit() and int(pos) >= prefix:
                where = f" at {_position(sql, int(pos) - prefix)}"
    message = " ".join(message.split())
    if " Possible solutions:" in message:
        # DuckDB's CSV reader appends advice for its own API and every option it
        # detected; the file is what a user of the mapping file needs from it.
        source = re.search(r" file = (\S+)", message)
        message = message.split(" Possible solutions:")[0]
        message += f" (in {source.group(1)})" if source else ""
    if "parameter" in message.lower():
        message += " (the query may use one parameter: $as_of, the run's as-of date)"
    return f"{label}{where}: {message}"


def read_sql_source(
    con: ibis.BaseBackend,
    name: str,
    found: FoundTable,
    folder: Path | None,
    mapping: Mapping,
    as_of: dt.date,
    token: str,
) -> SourceTable:
    """Run the query of table ``name`` and register its result as the table's source.

    Raises MappingFileError (naming ``tables.<name>.sql`` and the position in
    the query) when the query is not one SELECT or DuckDB rejects it.
    """
    sql = found.sql or ""
    if folder is not None:  # a database source made its views when it was opened
        folder_views(con, folder)
    raw = con.con  # type: ignore[attr-defined]
    label = found.label
    result = f"__tm_sql_{name}_{token}"
    kind = scratch_kind(con)
    head = f"CREATE OR REPLACE {kind} TABLE {quote(result)} AS "
    params = {"as_of": as_of} if _AS_OF.search(sql) else None
    raw.execute("SET errors_as_json = true")
    try:
        try:
            statements = raw.extract_statements(sql)
        except duckdb.Error as exc:
            raise mapping_error(mapping.source, [_sql_problem(label, sql, exc, 0)]) from None
        if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
            raise mapping_error(
                mapping.source,
                [
                    f"{label}: found {len(statements)} statement(s)"
                    f"{'' if len(statements) != 1 else ' of type ' + statements[0].type.name}; "
                    "expected one SELECT query (WITH ... SELECT is fine)"
                ],
            )
        # Leading text is kept, so DuckDB's positions are positions in ``sql``.
        body = sql.rstrip().rstrip(";")
        try:
            raw.execute(head + body, params)
        except duckdb.Error as exc:
            raise mapping_error(
                mapping.source, [_sql_problem(label, body, exc, len(head))]
            ) from None
    finally:
        raw.execute("RESET errors_as_json")
    view = f"__tm_src_{name}_{token}"
    # rowid is the table's insertion order: the query's result order.
    raw.execute(
        f"CREATE OR REPLACE {kind} VIEW {quote(view)} AS SELECT *, "
        f"{sql_str(label)} AS {quote(FILE_COL)}, rowid + 1 AS {quote(ROW_COL)} "
        f"FROM {quote(result)}"
    )
    table = con.table(view)
    columns = [c for c in table.columns if c not in (FILE_COL, ROW_COL)]
    return SourceTable(table, columns, label)

"""Load a user's data folder into validated canonical tables.

For each table of the data contract the loader finds the file(s), reads them
onto the DuckDB backend, applies the mapping file (renames, value maps, date
formats, derived expressions), casts every contract column to its contract
type and validates the rows. Problems are never fatal on their own: a
problem on a required column or a row rule rejects the row, a problem on an
optional column sets that value to null, and both are listed in the
rejected-rows report (:mod:`touchmodel.sources.rejects`).

Everything per row runs inside DuckDB as Ibis expressions. Per table there
is one *staged* expression (source columns + converted values + one problem
flag per check) and from it:

* one aggregate query counting rows read, rejected and nulled (the only
  extra pass over a big table),
* the clean table, a lazy expression the engine reads; filters and null-outs
  are only added when the count found something to filter or null, so clean
  Parquet is read as cheaply as a plain ``read_parquet``,
* the report rows, only computed when the report is written.

``accounts`` is materialized (it is small and every other table checks its
``account_id`` against it); the other tables stay lazy views.
"""

from __future__ import annotations

import csv
import datetime as dt
import glob as globlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.datatypes as idt
import ibis.expr.operations as ops
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from touchmodel.errors import DataError, ExpressionError
from touchmodel.expr import Scope, compile_expr, referenced_names
from touchmodel.sources.contract import IBIS_TYPES, TABLES, TableSpec
from touchmodel.sources.mapping import (
    ColumnMapping,
    Mapping,
    TableMapping,
    mapping_error,
    mapping_problems,
)
from touchmodel.sources.rejects import (
    NULLED,
    REJECTED,
    REPORT_SCHEMA,
    RejectReport,
    TableRejects,
    parse_problem_rows,
)

Progress = Callable[[str], None]

FILE_COL = "__tm_file"
ROW_COL = "__tm_row"
_INTERNAL = (FILE_COL, ROW_COL)

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_PARQUET_EXT = (".parquet", ".pq")
_EXPR_NAMES = {"as_of", "true", "false", "null"}
# Past this, a float cannot hold an int64 exactly; such values are rejected.
_INT64_LIMIT = 9.2e18


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, fmt: str) -> dt.datetime:  # type: ignore[empty-body]
    """DuckDB's try_strptime: NULL instead of an error for a value not in the format."""


@dataclass
class LoadedData:
    """Validated canonical tables of one data folder, plus what was missing or rejected."""

    tables: dict[str, ir.Table]  # validated canonical tables, only those present
    missing: list[str]  # optional tables absent from the folder
    rejects: RejectReport
    counts: dict[str, int]  # rows read per table (before rejects)
    files: dict[str, str] = field(default_factory=dict)  # table -> file(s) read


# --- discovery ------------------------------------------------------------------


@dataclass
class _Found:
    paths: list[Path]
    kind: str  # "csv" or "parquet"
    label: str  # how messages name the file(s), relative to the data folder


def _label(path: Path, folder: Path) -> str:
    try:
        return path.resolve().relative_to(folder.resolve()).as_posix()
    except ValueError:
        return str(path)


def _kind_of(paths: list[Path]) -> str | None:
    kinds = {"parquet" if p.suffix.lower() in _PARQUET_EXT else "csv" for p in paths}
    return kinds.pop() if len(kinds) == 1 else None


def _parts(directory: Path) -> list[Path]:
    parquet = sorted(
        p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in _PARQUET_EXT
    )
    csvs = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() == ".csv")
    if parquet and csvs:
        raise DataError(
            f"{directory}: holds both .parquet and .csv parts; keep one format per table folder"
        )
    return parquet or csvs


def _discover(folder: Path, name: str, tmap: TableMapping, mapping: Mapping) -> _Found | None:
    if tmap.file is not None:
        pattern = str(folder / tmap.file)
        matches = sorted(Path(p) for p in globlib.glob(pattern, recursive=True))
        paths: list[Path] = []
        for m in matches:
            paths.extend(_parts(m) if m.is_dir() else [m])
        if not paths:
            raise mapping_error(
                mapping.source,
                [
                    f"tables.{name}.file: found {tmap.file!r}; expected a file (or glob) that "
                    f"matches files in {folder}, but nothing matches"
                ],
            )
        kind = _kind_of(paths)
        if kind is None:
            raise mapping_error(
                mapping.source,
                [
                    f"tables.{name}.file: found {tmap.file!r}; expected files of one format, but it "
                    f"matches both Parquet and CSV: {', '.join(_label(p, folder) for p in paths)}"
                ],
            )
        return _Found(paths, kind, tmap.file)

    candidates = [folder / f"{name}.csv", folder / f"{name}.parquet", folder / name]
    present = [c for c in candidates if c.exists()]
    if len(present) > 1:
        shown = ", ".join(_label(p, folder) + ("/" if p.is_dir() else "") for p in present)
        raise DataError(
            f"{folder}: table '{name}' is there more than once ({shown}); keep one, "
            f"or name the file in a mapping file (tables.{name}.file)"
        )
    if not present:
        return None
    hit = present[0]
    if hit.is_dir():
        parts = _parts(hit)
        if not parts:
            return None
        return _Found(parts, _kind_of(parts) or "csv", f"{name}/")
    return _Found([hit], _kind_of([hit]) or "csv", hit.name)


# --- reading --------------------------------------------------------------------


@dataclass
class _Source:
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


def _read(
    con: ibis.BaseBackend, name: str, found: _Found, folder: Path, tmap: TableMapping, token: str
) -> _Source:
    view = f"__tm_src_{name}_{token}"
    raw = con.con  # type: ignore[attr-defined]
    if found.kind == "parquet":
        files = "[" + ", ".join(_sql_str(str(p.resolve())) for p in found.paths) + "]"
        labels = [_label(p, folder) for p in found.paths]
        # File labels as the user sees them; DuckDB only computes this column
        # when a query (the report) asks for it.
        case = " ".join(
            f"WHEN {_sql_str(str(p.resolve()))} THEN {_sql_str(lab)}"
            for p, lab in zip(found.paths, labels, strict=True)
        )
        try:
            raw.execute(
                f"CREATE OR REPLACE TEMP VIEW {_quote(view)} AS "
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
        return _Source(table, columns, found.label)

    pieces, problems = [], []
    for p in found.paths:
        data, bad = _read_csv_file(p, _label(p, folder), tmap)
        pieces.append(data)
        if bad is not None:
            problems.append(bad)
    data = pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces, promote_options="default")
    # Keep the source columns first, in file order.
    columns = [c for c in data.column_names if c not in _INTERNAL]
    data = data.select([*columns, FILE_COL, ROW_COL])
    raw.register(view, data)
    return _Source(
        con.table(view),
        columns,
        found.label,
        pa.concat_tables(problems) if problems else None,
    )


# --- converting values ----------------------------------------------------------


@dataclass
class _Conv:
    """A value converted to a target type.

    ``value`` is right for every row without a problem (it is what the clean
    table reads, so it is kept cheap); ``bad`` flags rows whose source value
    could not be used (None: cannot happen), ``reason`` says why.
    """

    value: ir.Value
    bad: ir.BooleanValue | None = None
    reason: ir.StringValue | None = None


def _or(a: ir.BooleanValue | None, b: ir.BooleanValue | None) -> ir.BooleanValue | None:
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def _null(type_name: str) -> ir.Value:
    return ibis.null().cast(type_name)


_EXPECTED = {
    "number": "a number",
    "integer": "a whole number",
    "bool": "true/false (yes/no, 1/0, y/n)",
    "date": "a date (YYYY-MM-DD)",
    "timestamp": "a timestamp (YYYY-MM-DD HH:MM:SS)",
    "string": "text",
}


def _expected(target: str, formats: list[str]) -> str:
    if formats and target in ("date", "timestamp"):
        return f"a {target} in the format {' or '.join(formats)}"
    return _EXPECTED[target]


def _from_text(text: ir.StringValue, target: str, formats: list[str]) -> _Conv:
    """Text -> target type. '' is a missing value; anything else unreadable is a problem."""
    given = text != ""
    # Whitespace-only: only a value starting with a control or space character
    # can be, so the costly trim runs on those alone (CASE evaluates lazily).
    blank = ibis.cases((text.ascii_str() <= 32, given & (text.strip() == "")), else_=False)
    expected = _expected(target, formats)

    def reason(other: str) -> ir.StringValue:
        return ibis.ifelse(blank, f"blank (only whitespace); expected {expected}", other)

    if target == "string":
        # A blank string is a problem; the value itself is read as is.
        return _Conv(
            text.nullif(""), blank, ibis.literal(f"blank (only whitespace); expected {expected}")
        )
    if target == "number":
        v = text.try_cast("float64")
        bad = given & (v.isnull() | v.isnan() | v.isinf())
        return _Conv(v, bad, reason(f"not {expected}"))
    if target == "integer":
        f = text.try_cast("float64")
        ok = f.notnull() & ~f.isnan() & ~f.isinf() & (f.abs() < _INT64_LIMIT) & (f == f.floor())
        v = ibis.ifelse(ok, ibis.coalesce(text.try_cast("int64"), f.cast("int64")), _null("int64"))
        why = ibis.ifelse(
            f.notnull(), f"not a whole number; expected {expected}", f"not {expected}"
        )
        return _Conv(v, given & ~ok, reason(why))
    if target == "bool":
        s = text.strip().lower()
        is_true, is_false = s.isin(list(_TRUE)), s.isin(list(_FALSE))
        v = ibis.ifelse(is_true, True, ibis.ifelse(is_false, False, _null("boolean")))
        return _Conv(v, given & ~(is_true | is_false), reason(f"not {expected}"))
    if target in ("date", "timestamp"):
        if formats:
            stripped = text.strip()
            parsed = [_try_strptime(stripped, f) for f in formats]
            ts = parsed[0] if len(parsed) == 1 else ibis.coalesce(*parsed)
            v = ts.cast(target)
        else:
            v = text.try_cast(target)
        return _Conv(v, given & v.isnull(), reason(f"not {expected}"))
    raise AssertionError(target)


def _convert(raw: ir.Value, target: str, formats: list[str]) -> _Conv:
    """Any source value -> target contract type, without casting what already fits."""
    dtype = raw.type()
    if dtype.is_string():
        return _from_text(raw, target, formats)  # type: ignore[arg-type]
    want = idt.dtype(IBIS_TYPES[target])
    if target == "string":
        return _Conv(raw.cast("string"))
    if target == "number" and dtype.is_numeric():
        v = raw if dtype == want else raw.cast("float64")
        if dtype.is_floating() or dtype.is_decimal():
            fv = v
            return _Conv(v, fv.isnan() | fv.isinf(), ibis.literal("not a finite number"))
        return _Conv(v)
    if target == "integer" and dtype.is_integer():
        return _Conv(raw if dtype == want else raw.cast("int64"))
    if target == "integer" and (dtype.is_floating() or dtype.is_decimal()):
        f = raw.cast("float64")
        ok = ~f.isnan() & ~f.isinf() & (f.abs() < _INT64_LIMIT) & (f == f.floor())
        return _Conv(
            ibis.ifelse(ok, f.cast("int64"), _null("int64")),
            raw.notnull() & ~ok,
            ibis.literal("not a whole number"),
        )
    if target == "date" and (dtype.is_date() or dtype.is_timestamp()):
        return _Conv(raw if dtype.is_date() else raw.cast("date"))
    if target == "timestamp" and (dtype.is_date() or dtype.is_timestamp()):
        return _Conv(raw if _has_type(raw, "timestamp") else raw.cast("timestamp"))
    if target == "bool" and dtype.is_boolean():
        return _Conv(raw)
    if target == "bool" and dtype.is_integer():
        v = ibis.ifelse(raw == 1, True, ibis.ifelse(raw == 0, False, _null("boolean")))
        return _Conv(v, raw.notnull() & v.isnull(), ibis.literal(f"not {_EXPECTED['bool']}"))
    # Anything else: try, and report what did not fit.
    v = raw.try_cast(IBIS_TYPES[target])
    return _Conv(
        v, raw.notnull() & v.isnull(), ibis.literal(f"cannot be read as {_EXPECTED[target]}")
    )


def _has_type(v: ir.Value, target: str) -> bool:
    dtype = v.type()
    if target == "timestamp":
        # Any precision will do; a time zone would shift days, so it is cast away.
        return dtype.is_timestamp() and dtype.timezone is None  # type: ignore[attr-defined]
    return dtype == idt.dtype(IBIS_TYPES[target])


def _as_text(raw: ir.Value) -> ir.StringValue:
    return raw if raw.type().is_string() else raw.cast("string")  # type: ignore[return-value]


def _apply_values(raw: ir.Value, values: dict[str, Any]) -> ir.StringValue:
    """Value map on the source text; values not listed pass through unchanged."""
    text = _as_text(raw)
    key = text.strip()
    branches = []
    for src, out in values.items():
        if out is None:
            target: ir.Value = _null("string")
        elif isinstance(out, bool):
            target = ibis.literal("true" if out else "false")
        else:
            target = ibis.literal(str(out))
        branches.append((key == src, target))
    return ibis.cases(*branches, else_=text)  # type: ignore[return-value]


# --- planning one table ---------------------------------------------------------


@dataclass
class _Out:
    """One output column: its value for good rows and how it can go wrong."""

    name: str
    type: str | None  # contract type, or None for an untyped extra column
    value: ir.Value
    required: bool = False
    bad: ir.BooleanValue | None = None
    reason: ir.StringValue | None = None
    field: ir.StringValue | None = None  # column named in the report
    shown: ir.StringValue | None = None  # value shown in the report
    default: Any = None
    # Cheaper expression that is right for every row that is not rejected.
    kept_value: ir.Value | None = None

    @property
    def clean_value(self) -> ir.Value:
        """What the clean table reads for this column."""
        return self.kept_value if self.kept_value is not None else self.value


@dataclass
class _Check:
    """One report-able problem: rows where ``flag`` is true get one report line."""

    flag: str  # boolean column of the staged table
    action: str
    # Expressions over the source or staged table; only the report computes them,
    # so the count query and the clean table never carry them.
    field: ir.Value
    shown: ir.Value
    reason: ir.Value


class _Planner:
    """Builds the output columns of one table from its source and mapping."""

    def __init__(
        self, src: _Source, spec: TableSpec, tmap: TableMapping, mapping: Mapping, as_of: dt.date
    ) -> None:
        self.src = src
        self.t = src.table
        self.spec = spec
        self.tmap = tmap
        self.mapping = mapping
        self.as_of = ibis.literal(as_of, type="date")
        self.typed: dict[str, _Conv] = {}
        self.outs: dict[str, _Out] = {}
        self.building: list[str] = []
        self.consumed: set[str] = set()
        self.specs: dict[str, ColumnMapping] = {}

    # Paths and errors ---------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return ".".join(["tables", self.spec.name, *parts])

    def _available(self) -> str:
        return ", ".join(self.src.columns)

    def check_references(self) -> None:
        """Every source column the mapping names must exist; report all that do not."""
        problems = []
        cols = set(self.src.columns)
        for s in self.tmap.types:
            if s not in cols:
                problems.append(
                    f"{self._path('types', s)}: found {s!r}; expected a column of {self.src.label} "
                    f"(columns: {self._available()})"
                )
        outputs = set(self.tmap.columns) | {c.name for c in self.spec.columns}
        for name, cmap in self.tmap.columns.items():
            if cmap.expr is not None:
                try:
                    unknown = sorted(referenced_names(cmap.expr) - cols - outputs - _EXPR_NAMES)
                except ExpressionError:
                    unknown = []  # a syntax error: the mapping check reports it
                if unknown:
                    problems.append(
                        f"{self._path('columns', name, 'expr')}: found {cmap.expr!r}; it uses "
                        f"{', '.join(map(repr, unknown))}, expected columns of {self.src.label} "
                        f"(columns: {self._available()}) or as_of"
                    )
                continue
            source = cmap.source or name
            if source not in cols:
                where = "from" if cmap.source is not None else None
                path = self._path("columns", name, *([where] if where else []))
                problems.append(
                    f"{path}: found {source!r}; expected a column of {self.src.label} "
                    f"(columns: {self._available()})"
                )
        if problems:
            raise mapping_error(self.mapping.source, problems)

    # Source columns -----------------------------------------------------------

    def source_value(self, name: str) -> _Conv:
        """A source column as declared under ``types`` (or as read, '' meaning missing)."""
        if name in self.typed:
            return self.typed[name]
        raw = self.t[name]
        declared = self.tmap.types.get(name)
        if declared is not None:
            conv = _convert(raw, declared, [])
            if conv.bad is not None:
                conv.value = ibis.ifelse(conv.bad, _null(IBIS_TYPES[declared]), conv.value)
        elif raw.type().is_string():
            conv = _Conv(raw.nullif(""))
        else:
            conv = _Conv(raw)
        self.typed[name] = conv
        return conv

    # Output columns -----------------------------------------------------------

    def output(self, name: str) -> _Out:
        """The output column ``name`` (contract or extra), built on first use."""
        if name in self.outs:
            return self.outs[name]
        if name in self.building:
            cycle = " -> ".join([*self.building[self.building.index(name) :], name])
            raise mapping_error(
                self.mapping.source,
                [
                    f"{self._path('columns', name, 'expr')}: expressions refer to each other in a "
                    f"circle ({cycle}); expected each column to be computable"
                ],
            )
        self.building.append(name)
        try:
            out = self._build(name)
        finally:
            self.building.pop()
        self.outs[name] = out
        return out

    def _build(self, name: str) -> _Out:
        col = self.spec.column(name)
        cmap = self.specs.get(name)
        target = col.type if col is not None else (cmap.type if cmap else None)
        required = bool(col and col.required)
        default = self.spec.defaults.get(name)

        if cmap is None and name not in self.src.columns:
            # A contract column nobody provides: typed nulls (the checks in
            # plan() have already failed the load if it is required).
            return _Out(
                name, target, _null(IBIS_TYPES[target or "string"]), required, default=default
            )

        formats = cmap.formats if cmap else []
        source_bad: ir.BooleanValue | None = None
        source_reason: ir.StringValue | None = None
        field: ir.StringValue
        shown: ir.StringValue
        if cmap is not None and cmap.expr is not None:
            value, source_bad, source_reason, bad_field, bad_shown = self._expression(
                name, cmap.expr
            )
            field = (
                ibis.ifelse(source_bad, bad_field, name)
                if source_bad is not None
                else ibis.literal(name)
            )
            shown_value = _as_text(value)
            shown = (
                ibis.ifelse(source_bad, bad_shown, shown_value)
                if source_bad is not None
                else shown_value
            )
            if cmap.values:
                value = _apply_values(value, cmap.values)
        else:
            source = (cmap.source if cmap else None) or name
            self.consumed.add(source)
            raw = self.t[source]
            field = ibis.literal(source)
            shown = _as_text(raw)
            if cmap is not None and cmap.values:
                value = _apply_values(raw, cmap.values)
            elif source in self.tmap.types:
                typed = self.source_value(source)
                value, source_bad, source_reason = typed.value, typed.bad, typed.reason
            else:
                value = raw

        if target is None:
            # An untyped extra column: as the source gives it ('' is missing).
            if value.type().is_string():
                value = value.nullif("")  # type: ignore[attr-defined]
            bad = None if source_bad is None else source_bad & value.isnull()
            return _Out(name, None, value, False, bad, source_reason, field, shown)

        conv = _convert(value, target, formats)
        v = conv.value
        # Rows with a blank required text value are rejected, so for the rows
        # that stay the source column is already right: reading it unchanged
        # keeps DuckDB's fast paths for raw string columns (e.g. group by).
        plain = (
            required
            and target == "string"
            and value.type().is_string()
            and not (col and col.choices)
        )
        kept_value = value if plain else None
        bad = conv.bad
        reasons: list[tuple[ir.BooleanValue, ir.Value]] = []
        if source_bad is not None and source_reason is not None:
            # A source value that could not be read only matters if the result is missing.
            src_bad = source_bad & v.isnull()
            bad = _or(bad, src_bad)
            reasons.append((src_bad, source_reason))
        if conv.bad is not None and conv.reason is not None:
            reasons.append((conv.bad, conv.reason))
        if cmap is not None and cmap.scale is not None:
            v = (v * cmap.scale).cast(IBIS_TYPES[target])
        if col is not None and col.choices:
            norm = v.strip().lower()  # type: ignore[attr-defined]
            choice_bad = norm.notnull() & ~norm.isin(list(col.choices))
            v = norm
            bad = _or(bad, choice_bad)
            reasons.append((choice_bad, ibis.literal(f"not one of: {', '.join(col.choices)}")))
        if col is not None and (col.min is not None or col.max is not None):
            low = v < col.min if col.min is not None else None
            high = v > col.max if col.max is not None else None
            if low is not None:
                reasons.append((low, f"{name} is below the minimum {col.min:g}"))
            if high is not None:
                reasons.append((high, f"{name} is above the maximum {col.max:g}"))
            bad = _or(bad, _or(low, high))
        if required:
            missing = v.isnull()
            bad = _or(bad, missing)
            reasons.append((missing, ibis.literal(f"{name} is missing")))
        reason = None
        if reasons:
            reason = ibis.cases(
                *[(c.fill_null(False), r) for c, r in reasons], else_=ibis.null().cast("string")
            )
        return _Out(name, target, v, required, bad, reason, field, shown, default, kept_value)

    def _expression(self, name: str, text: str) -> tuple[ir.Value, Any, Any, Any, Any]:
        """Compile a derived field; also which source values it read could not be read."""
        used_bad: list[tuple[ir.BooleanValue, ir.Value, ir.Value, ir.Value]] = []
        cols = set(self.src.columns)

        def resolve(ref: str) -> ir.Value:
            if ref == "as_of":
                return self.as_of
            if ref in cols:
                conv = self.source_value(ref)
                if conv.bad is not None and conv.reason is not None:
                    used_bad.append(
                        (conv.bad, conv.reason, ibis.literal(ref), _as_text(self.t[ref]))
                    )
                return conv.value
            if ref in self.specs or self.spec.column(ref) is not None:
                other = self.output(ref)
                if other.bad is None:
                    return other.value
                assert other.field is not None and other.shown is not None
                if other.reason is not None:
                    used_bad.append((other.bad, other.reason, other.field, other.shown))
                # Derive from the value the clean table will hold: null if it had a problem.
                return ibis.ifelse(
                    other.bad.fill_null(False), ibis.null().cast(other.value.type()), other.value
                )
            raise KeyError(ref)

        functions = {
            # The record's row in its file (header = row 1): an id for files without one.
            "row_number": lambda: self.t[ROW_COL],
            "file_name": lambda: self.t[FILE_COL],
        }
        hint = (
            f" (CSV columns are text: declare numeric or date source columns under "
            f"{self._path('types')}, e.g. types: {{MonthlyCharges: number}})"
        )
        try:
            value = compile_expr(text, Scope(resolve=resolve, functions=functions))
            # Text times a number is string repetition in Ibis: never what a
            # mapping means, and silently wrong ('10' * 12 = '1010...').
            if isinstance(value, ir.Value) and value.op().find(ops.Repeat):
                raise ExpressionError(text, "it multiplies text by a number")
        except ExpressionError as exc:
            text_problem = "string" in exc.reason.lower() or "text" in exc.reason
            raise mapping_error(
                self.mapping.source,
                [
                    f"{self._path('columns', name, 'expr')}: found {text!r}; expected an expression "
                    f"that can be computed: {exc.reason}{hint if text_problem else ''}"
                ],
            ) from None
        if not isinstance(value, ir.Value):
            value = ibis.literal(value)
        if not used_bad:
            return value, None, None, None, None
        bad = used_bad[0][0]
        for b, *_ in used_bad[1:]:
            bad = bad | b
        pick = lambda i: ibis.cases(*[(u[0], u[i]) for u in used_bad], else_=used_bad[0][i])  # noqa: E731
        reason = ibis.cases(
            *[(u[0], u[2].concat(": ", u[1])) for u in used_bad], else_=ibis.null().cast("string")
        )
        return value, bad, reason, pick(2), pick(3)


@dataclass
class _Plan:
    source: ir.Table  # what the outputs' expressions are built on
    staged: ir.Table  # source + converted values + one flag per check
    outputs: list[_Out]
    checks: list[_Check]
    source_cols: list[str]


def _plan(
    src: _Source,
    spec: TableSpec,
    tmap: TableMapping,
    mapping: Mapping,
    as_of: dt.date,
    account_ids: ir.Column | None,
) -> _Plan:
    """The staged expression of one table: source, converted outputs, one flag per check."""
    planner = _Planner(src, spec, tmap, mapping, as_of)
    planner.check_references()
    planner.specs = dict(tmap.columns)

    missing = [
        c.name
        for c in spec.columns
        if c.required and c.name not in tmap.columns and c.name not in src.columns
    ]
    if missing:
        raise DataError(
            f"{src.label}: required column(s) {', '.join(missing)} of table '{spec.name}' not found "
            f"(columns: {', '.join(src.columns)}); rename them in the file or map them in a mapping "
            f"file (tables.{spec.name}.columns.<name>: <your column>)"
        )

    outputs = [planner.output(c.name) for c in spec.columns]
    outputs += [planner.output(n) for n in tmap.columns if spec.column(n) is None]
    taken = {o.name for o in outputs}
    # Unmapped source columns pass through under their own names (SPEC: extra
    # columns are kept for rules); a declared type is applied and checked.
    for s in src.columns:
        if s in planner.consumed or s in taken:
            continue
        conv = planner.source_value(s)
        declared = tmap.types.get(s)
        outputs.append(
            _Out(
                s,
                declared,
                conv.value,
                False,
                conv.bad,
                conv.reason,
                ibis.literal(s),
                _as_text(src.table[s]),
            )
        )
        taken.add(s)

    t = src.table
    cols: dict[str, ir.Value] = {}
    checks: list[_Check] = []
    reject_flags: list[str] = []
    null_flags: list[tuple[str, _Out]] = []
    for i, o in enumerate(outputs):
        cols[f"__v{i}"] = o.clean_value
        if o.bad is None:
            continue
        cols[f"__b{i}"] = o.bad.fill_null(False)
        action = REJECTED if o.required else NULLED
        checks.append(
            _Check(
                f"__b{i}",
                action,
                o.field if o.field is not None else ibis.literal(o.name),
                o.shown if o.shown is not None else _as_text(o.value),
                o.reason if o.reason is not None else ibis.literal(f"{o.name}: invalid value"),
            )
        )
        if o.required:
            reject_flags.append(f"__b{i}")
        else:
            null_flags.append((f"__b{i}", o))
    staged = t.mutate(**cols)

    index = {o.name: i for i, o in enumerate(outputs)}
    if account_ids is not None and spec.references_accounts:
        i = index["account_id"]
        aid = staged[f"__v{i}"]
        # A missing or blank id is reported as such, not as an unknown account.
        known_bad = staged[f"__b{i}"] if f"__b{i}" in staged.columns else ibis.literal(False)
        staged = staged.mutate(__unknown=(~known_bad & ~aid.isin(account_ids)).fill_null(False))
        aid_text = staged[f"__v{i}"].cast("string")
        checks.append(
            _Check(
                "__unknown",
                REJECTED,
                ibis.literal("account_id"),
                aid_text,
                ibis.literal("unknown account '").concat(aid_text, "'"),
            )
        )
        reject_flags.append("__unknown")

    base = _any(staged, reject_flags)
    staged = staged.mutate(__rj0=base)
    rj0 = staged["__rj0"]
    if spec.key:
        keys = [staged[f"__v{index[k]}"] for k in spec.key]
        # Rows rejected for other reasons do not count as the first occurrence:
        # partitioning by that flag ranks the good rows among themselves.
        w = ibis.window(group_by=[*keys, rj0], order_by=[staged[FILE_COL], staged[ROW_COL]])
        first_row = staged[ROW_COL].first().over(w)
        first_file = staged[FILE_COL].first().over(w)
        key_text = ", ".join(spec.key)
        shown = (
            keys[0].cast("string")
            if len(keys) == 1
            else ibis.literal(" / ").join([k.cast("string") for k in keys])
        )
        staged = staged.mutate(
            __dup=(~rj0 & (ibis.row_number().over(w) > 0)).fill_null(False),
            # For the report's reason; DuckDB drops them from queries that do not ask.
            __dup_row=first_row,
            __dup_file=first_file,
        )
        reason = ibis.literal(f"duplicate {key_text}: the first occurrence, row ").concat(
            staged["__dup_row"].cast("string"),
            ibis.ifelse(
                staged["__dup_file"] == staged[FILE_COL],
                "",
                ibis.literal(" of ").concat(staged["__dup_file"]),
            ),
            ", is kept",
        )
        checks.append(_Check("__dup", REJECTED, ibis.literal(key_text), shown, reason))
        staged = staged.mutate(__reject=staged["__rj0"] | staged["__dup"])
    else:
        staged = staged.mutate(__reject=staged["__rj0"])

    if null_flags:
        # Values of rejected rows are not "set to null": the whole row is in the report.
        staged = staged.mutate(
            **{f"{flag}n": staged[flag] & ~staged["__reject"] for flag, _o in null_flags}
        )
    checks = [
        _Check(f"{c.flag}n", c.action, c.field, c.shown, c.reason) if c.action == NULLED else c
        for c in checks
    ]
    return _Plan(t, staged, outputs, checks, list(src.columns))


def _any(t: ir.Table, flags: list[str]) -> ir.BooleanValue:
    if not flags:
        return ibis.literal(False)
    out = t[flags[0]]
    for f in flags[1:]:
        out = out | t[f]
    return out


def _record(t: ir.Table, columns: list[str]) -> ir.StringValue:
    if not columns:
        return ibis.literal("{}")
    return ibis.struct({c: t[c] for c in columns}).cast("json").cast("string")  # type: ignore[return-value]


def _report_rows(plan: _Plan, hits: list[_Check]) -> ir.Table | None:
    """One report line per (row, check that flagged it), for the checks that found something.

    Built as one scan: each flagged row carries an array with one entry per
    check, which is unnested and filtered (no per-check union of scans).
    """
    if not hits:
        return None
    s = plan.staged
    entries = ibis.array(
        [
            ibis.struct(
                {
                    "hit": s[c.flag],
                    "field": c.field.cast("string"),
                    "value": c.shown.cast("string"),
                    "reason": c.reason.cast("string"),
                    "action": ibis.literal(c.action),
                    "check": ibis.literal(i, type="int64"),
                }
            )
            for i, c in enumerate(hits)
        ]
    )
    flagged = s.filter(_any(s, [c.flag for c in hits]))
    lines = flagged.select(
        file=s[FILE_COL],
        row=s[ROW_COL].cast("int64"),
        record=_record(s, plan.source_cols),
        _entry=entries,
    ).unnest("_entry")
    lines = lines.filter(lines["_entry"]["hit"])
    entry = lines["_entry"]
    return lines.select(
        file=lines["file"],
        row=lines["row"],
        field=entry["field"],
        value=entry["value"],
        reason=entry["reason"],
        action=entry["action"],
        record=lines["record"],
        _check=entry["check"],
    ).cast(REPORT_SCHEMA)


def _clean(plan: _Plan, nulled: dict[str, int], rejected: int, ordered: bool = False) -> ir.Table:
    """The validated table. Filters and null-outs are added only where the
    count found rows to filter or values to null: clean data pays nothing
    for checks that found nothing (nor for the account lookup)."""
    if rejected:
        s = plan.staged.filter(~plan.staged["__reject"])
        value = lambda i, o: s[f"__v{i}"]  # noqa: E731
        flag = lambda i, o: s[f"__b{i}"]  # noqa: E731
    else:
        s = plan.source
        value = lambda i, o: o.clean_value  # noqa: E731
        flag = lambda i, o: o.bad.fill_null(False)  # noqa: E731
    cols: dict[str, ir.Value] = {}
    for i, o in enumerate(plan.outputs):
        v = value(i, o)
        if not o.required and nulled.get(f"__b{i}n", 0):
            v = ibis.ifelse(flag(i, o), ibis.null().cast(v.type()), v)
        if o.default is not None:
            v = v.fill_null(o.default)
        if o.type is not None and not _has_type(v, o.type):
            v = v.cast(IBIS_TYPES[o.type])
        cols[o.name] = v
    if ordered:
        # File order, for a materialized table (the dedup window reorders rows).
        s = s.order_by([s[FILE_COL], s[ROW_COL]])
    return s.select(**cols)


# --- the whole folder -----------------------------------------------------------


def load_folder(
    con: ibis.BaseBackend,
    folder: Path,
    *,
    mapping: Mapping | None,
    as_of: dt.date,
    progress: Progress | None = None,
) -> LoadedData:
    """Find, read, map, type and validate every contract table in ``folder``.

    Returns the clean tables on ``con`` (a DuckDB backend), the optional tables
    that are absent, the rejected-rows report and the rows read per table.
    Raises DataError if ``accounts`` or a required column is missing, and
    MappingFileError if the mapping names columns or files that do not exist.
    """
    step = progress or (lambda _msg: None)
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist or is not a folder")
    if getattr(con, "name", None) != "duckdb":
        raise TypeError("load_folder needs an Ibis DuckDB backend (ibis.duckdb.connect())")
    mapping = mapping if mapping is not None else Mapping()
    problems = mapping_problems(mapping)
    if problems:
        raise mapping_error(mapping.source, problems)

    token = uuid.uuid4().hex[:8]
    report = RejectReport(con)
    tables: dict[str, ir.Table] = {}
    missing: list[str] = []
    counts: dict[str, int] = {}
    files: dict[str, str] = {}
    account_ids: ir.Column | None = None

    for name, spec in TABLES.items():
        tmap = mapping.table(name)
        found = _discover(folder, name, tmap, mapping)
        if found is None:
            if spec.required:
                raise DataError(
                    f"{folder}: no '{name}' table; looked for {name}.csv, {name}.parquet and a "
                    f"folder {name}/ of .parquet or .csv parts (or name the file in a mapping file: "
                    f"tables.{name}.file)"
                )
            missing.append(name)
            continue
        step(f"reading {name} from {found.label}")
        src = _read(con, name, found, folder, tmap, token)
        plan = _plan(src, spec, tmap, mapping, as_of, account_ids)

        # The one extra pass: how many rows, rejects and nulls per check.
        staged = plan.staged
        aggs: dict[str, ir.Value] = {
            "__rows": staged.count(),
            "__rejected": staged.count(where=staged["__reject"]),
        }
        for c in plan.checks:
            aggs[c.flag] = staged.count(where=staged[c.flag])
        row = staged.aggregate(**aggs).to_pyarrow().to_pylist()[0]
        parse_bad = src.parse_problems.num_rows if src.parse_problems is not None else 0
        rows_read = int(row["__rows"]) + parse_bad
        rejected = int(row["__rejected"]) + parse_bad
        hits = [c for c in plan.checks if row[c.flag]]
        nulled = {c.flag: int(row[c.flag]) for c in plan.checks if c.action == NULLED}

        clean = _clean(plan, nulled, int(row["__rejected"]), ordered=name == "accounts")
        if name == "accounts":
            # Small, and every other table checks its account ids against it.
            clean = con.create_table(f"__tm_accounts_{token}", clean, temp=True)
            account_ids = clean.account_id
        tables[name] = clean
        counts[name] = rows_read
        files[name] = found.label
        report.add(
            TableRejects(
                table=name,
                source=found.label,
                rows_read=rows_read,
                rejected=rejected,
                values_nulled=sum(nulled.values()),
                rows=_report_rows(plan, hits),
                parse_rows=src.parse_problems,
            )
        )
        if rejected or sum(nulled.values()):
            step(
                f"{name}: {rows_read:,} rows, {rejected:,} rejected, {sum(nulled.values()):,} values set to null"
            )
    return LoadedData(tables=tables, missing=missing, rejects=report, counts=counts, files=files)

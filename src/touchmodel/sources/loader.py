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
  extra pass over a big table); a Parquet table whose *screens* (cheap
  supersets of the checks, mostly answered from row-group statistics) are
  all empty skips it, since every count would be zero,
* the clean table, a lazy expression the engine reads; filters and null-outs
  are only added when the count found something to filter or null, so clean
  Parquet is read as cheaply as a plain ``read_parquet``,
* the report rows, only computed when the report is written.

``accounts`` is materialized (it is small and every other table checks its
``account_id`` against it); the other tables stay lazy views.

This module runs the steps per table; each step lives in its own module:
``_discovery`` (find the file(s)), ``_reading`` (CSV/Parquet with row
numbers), ``_sql_tables`` (a table defined by a query in the mapping file),
``_casting`` (values to contract types), ``_columns`` (mapping and per-value
checks), ``_row_rules`` (rejects, nulls, unknown accounts, duplicate keys)
and ``_outputs`` (the clean table and the report rows).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import ibis
import ibis.expr.types as ir
import pyarrow as pa

from touchmodel.backend_settings import optimizers_off
from touchmodel.errors import DataError
from touchmodel.sources._discovery import discover_table
from touchmodel.sources._outputs import clean_table, report_rows
from touchmodel.sources._reading import (
    FILE_COL,
    ROW_COL,
    SourceTable,
    read_source,
    scratch_table,
)
from touchmodel.sources._row_rules import Check, TablePlan, plan_table
from touchmodel.sources._screens import screen_sql
from touchmodel.sources._sql_tables import read_sql_source
from touchmodel.sources._warehouse import is_url, open_warehouse
from touchmodel.sources.contract import TABLES, Column, TableSpec
from touchmodel.sources.mapping import Mapping, TableMapping, mapping_error, mapping_problems
from touchmodel.sources.rejects import NULLED, RejectReport, TableRejects

if TYPE_CHECKING:
    from touchmodel.ingest.feed import IngestedInput

Progress = Callable[[str], None]

# How ingested messages appear in counts and in the rejected-rows report
# (as the table and as its "file"; the report's row is the message's id).
INGESTED_EVENTS = "ingested_events"
INGESTED_GROUPS = "ingested_groups"
USAGE_LABEL = "ingested (/v1)"
GROUPS_LABEL = "ingested (/v1 group)"
MESSAGE_ID_COL = "__tm_message"


@dataclass
class LoadedData:
    """Validated canonical tables of one data folder, plus what was missing or rejected."""

    tables: dict[str, ir.Table]  # validated canonical tables, only those present
    missing: list[str]  # optional tables absent from the folder
    rejects: RejectReport
    counts: dict[str, int]  # rows read per table (before rejects)
    files: dict[str, str] = field(default_factory=dict)  # table -> file(s) read
    # Contract columns (without a default) that the source lacked entirely:
    # rules reading them must be inactive, not see NULL as "no".
    absent_columns: dict[str, list[str]] = field(default_factory=dict)


def load_folder(
    con: ibis.BaseBackend,
    folder: Path | str,
    *,
    mapping: Mapping | None,
    as_of: dt.date,
    progress: Progress | None = None,
    ingested: IngestedInput | None = None,
    on_table: Callable[[str, ir.Table, bool], None] | None = None,
    ahead: Collection[str] = (),
) -> LoadedData:
    """Find, read, map, type and validate every contract table in ``folder``.

    ``folder`` may also be a database URL (``duckdb:///file``,
    ``postgresql://user@host/db``): the tables are then read from it, by name
    or by the mapping's ``sql:`` (see :mod:`touchmodel.sources._warehouse`).

    Returns the clean tables on ``con`` (a DuckDB backend), the optional tables
    that are absent, the rejected-rows report and the rows read per table.
    Raises DataError if ``accounts`` or a required column is missing, and
    MappingFileError if the mapping names columns or files that do not exist.

    ``ingested`` (messages sent to ``/v1``, see :mod:`touchmodel.ingest.feed`)
    adds usage events to the folder's, checked by the same rules, and lets
    the latest group call of an account override its contract columns. Their
    problems are reported as ``ingested_events`` / ``ingested_groups`` and do
    not count towards the reject-rate limit (the sender's data quality should
    not stop the run over the user's files).

    ``on_table(name, table, True)`` is called with each clean table as soon
    as it is final, before the next table is read. For the Parquet tables
    named in ``ahead`` it is first called with ``False`` and the table as it
    will be if its checks find nothing, before any table is checked: the
    engine starts the usage aggregates on that forecast (see
    :mod:`touchmodel.signals.staging`) and compares it with the final table.
    """
    step = progress or (lambda _msg: None)
    if getattr(con, "name", None) != "duckdb":
        raise TypeError("load_folder needs an Ibis DuckDB backend (ibis.duckdb.connect())")
    mapping = mapping if mapping is not None else Mapping()
    problems = mapping_problems(mapping)
    if problems:
        raise mapping_error(mapping.source, problems)
    # ``folder`` may be a database URL (see _warehouse): then tables are found in it.
    warehouse = open_warehouse(con, str(folder), mapping) if is_url(folder) else None
    folder = Path(folder)
    if warehouse is None and not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist or is not a folder")

    token = uuid.uuid4().hex[:8]
    report = RejectReport(con)
    tables: dict[str, ir.Table] = {}
    missing: list[str] = []
    counts: dict[str, int] = {}
    files: dict[str, str] = {}
    absent: dict[str, list[str]] = {}
    account_ids: ir.Column | None = None
    rejected_account_ids: ir.Column | None = None
    # Reports of ingested input, added right after the table they belong to.
    later_reports: list[TableRejects] = []
    later_counts: dict[str, int] = {}

    read_ahead = {} if warehouse else _forecast(con, folder, mapping, as_of, token, ahead, on_table)
    for name, spec in TABLES.items():
        tmap = mapping.table(name)
        if warehouse is not None:
            found = warehouse.find(name, tmap, mapping, as_of, token)
        else:
            found = discover_table(folder, name, tmap, mapping)
        extra_usage = (
            name == "usage_events" and ingested is not None and ingested.usage.num_rows > 0
        )
        if found is None and extra_usage:
            assert ingested is not None
            # Ingested events alone: no usage_events file is needed.
            step(f"reading {name} from {USAGE_LABEL}")
            clean, rej, absent_cols = _load_ingested(
                con, spec, ingested.usage, token, as_of, account_ids, rejected_account_ids
            )
            tables[name] = clean
            if on_table is not None:
                on_table(name, clean, True)
            absent[name] = absent_cols
            counts[INGESTED_EVENTS] = rej.rows_read
            files[INGESTED_EVENTS] = rej.source
            report.add(rej)
            continue
        if found is None:
            if spec.required and warehouse is not None:
                raise DataError(
                    f"{warehouse.url}: no 'accounts' table (or define it in the mapping file: "
                    "tables.accounts.sql)"
                )
            if spec.required:
                raise DataError(
                    f"{folder}: no '{name}' table; looked for {name}.csv, {name}.parquet and a "
                    f"folder {name}/ of .parquet or .csv parts (or name the file in a mapping file: "
                    f"tables.{name}.file)"
                )
            missing.append(name)
            continue
        step(f"reading {name} from {found.label}")
        if found.kind == "sql":
            views = None if warehouse else folder
            src = read_sql_source(con, name, found, views, mapping, as_of, token)
        else:
            src = read_ahead.get(name) or read_source(con, name, found, folder, tmap, token)
        plan = plan_table(src, spec, tmap, mapping, as_of, account_ids, rejected_account_ids)

        # Parquet that the screens show to be clean needs no counting pass
        # (nor the checks' expressions: no check fires).
        row = screened_counts(plan) if found.kind == "parquet" else None
        hits: list[Check] = []
        nulled: dict[str, int] = {}
        if row is None:
            row, hits, nulled = _counted(plan)
        parse_bad = src.parse_problems.num_rows if src.parse_problems is not None else 0
        rows_read = int(row["__rows"]) + parse_bad
        rejected = int(row["__rejected"]) + parse_bad

        order = "account_id" if name == "accounts" else None
        clean = clean_table(plan, nulled, int(row["__rejected"]), order_by=order)
        # The accounts are small, and every other table checks its account
        # ids against them: always materialized, in account order (the order
        # of the decisions).
        clean = _settled(con, f"__tm_{name}_{token}", clean, hits, materialize=name == "accounts")
        if name == "accounts":
            account_ids = clean.account_id
            if row["__rejected"]:
                rejected_account_ids = _rejected_ids(con, plan, token, hits)
            if ingested is not None and ingested.groups.num_rows:
                step(f"applying account traits from {GROUPS_LABEL}")
                clean, traits_rej = _apply_traits(
                    con, clean, ingested.groups, token, as_of, rejected_account_ids
                )
                account_ids = clean.account_id
                later_counts[INGESTED_GROUPS] = traits_rej.rows_read
                later_reports.append(traits_rej)
        if extra_usage:
            assert ingested is not None
            step(f"reading {name} from {USAGE_LABEL}")
            extra, extra_rej, _ = _load_ingested(
                con, spec, ingested.usage, token, as_of, account_ids, rejected_account_ids
            )
            clean = _union_by_name(clean, extra)
            later_counts[INGESTED_EVENTS] = extra_rej.rows_read
            files[INGESTED_EVENTS] = extra_rej.source
            later_reports.append(extra_rej)
        tables[name] = clean
        if on_table is not None:
            on_table(name, clean, True)
        absent[name] = [o.name for o in plan.outputs if not o.provided and o.default is None]
        counts[name] = rows_read
        counts.update(later_counts)
        later_counts.clear()
        files[name] = found.label
        report.add(
            TableRejects(
                table=name,
                source=found.label,
                rows_read=rows_read,
                rejected=rejected,
                values_nulled=sum(nulled.values()),
                rows=_report(con, f"__tm_report_{name}_{token}", plan, hits),
                parse_rows=src.parse_problems,
            )
        )
        for extra_report in later_reports:
            report.add(extra_report)
        later_reports.clear()
        if rejected or sum(nulled.values()):
            step(
                f"{name}: {rows_read:,} rows, {rejected:,} rejected, {sum(nulled.values()):,} values set to null"
            )
    return LoadedData(
        tables=tables,
        missing=missing,
        rejects=report,
        counts=counts,
        files=files,
        absent_columns=absent,
    )


def _forecast(
    con: ibis.BaseBackend,
    folder: Path,
    mapping: Mapping,
    as_of: dt.date,
    token: str,
    names: Collection[str],
    on_table: Callable[[str, ir.Table, bool], None] | None,
) -> dict[str, SourceTable]:
    """Read the Parquet tables ``names`` now and pass each, as it is if clean, to ``on_table``.

    Returns the sources read, which the checks then reuse (the forecast and
    the final table read the same view, so they compare equal when no check
    fires). A table that cannot be read or planned is left to the main pass,
    which reports it in its turn.
    """
    sources: dict[str, SourceTable] = {}
    for name in names:
        spec, tmap = TABLES[name], mapping.table(name)
        found = discover_table(folder, name, tmap, mapping)
        if found is None or found.kind != "parquet":
            continue
        try:
            src = read_source(con, name, found, folder, tmap, token)
            plan = plan_table(src, spec, tmap, mapping, as_of, None)
        except DataError:
            continue
        sources[name] = src
        if on_table is not None:
            on_table(name, clean_table(plan, {}, 0), False)
    return sources


def count_checks(plan: TablePlan) -> dict[str, int]:
    """The counting pass: rows, rejected rows and rows per check (``__rows``, ``__rejected``, flags)."""
    staged = plan.staged
    aggs: dict[str, ir.Value] = {
        "__rows": staged.count(),
        "__rejected": staged.count(where=staged["__reject"]),
    }
    for c in plan.checks:
        aggs[c.flag] = staged.count(where=staged[c.flag])
    query = staged.aggregate(**aggs)
    with optimizers_off(query.get_backend().con, _NO_FOLDING):  # type: ignore[attr-defined]
        row: dict[str, int] = query.to_pyarrow().to_pylist()[0]
    return row


def _counted(plan: TablePlan) -> tuple[dict[str, int], list[Check], dict[str, int]]:
    """The counting pass and what it found: the checks with rows, and values nulled per check."""
    row = count_checks(plan)
    hits = [c for c in plan.checks if row[c.flag]]
    nulled = {c.flag: int(row[c.flag]) for c in plan.checks if c.action == NULLED}
    return row, hits, nulled


# DuckDB's statistics propagation takes a Parquet float column's min/max,
# which leave NaN out, as proof that isnan() is false, and folds the checks
# for NaN away. The counting pass, and a clean table whose float values a
# check changed, are computed without it (see _settled).
_NO_FOLDING = ["statistics_propagation"]


def _settled(
    con: ibis.BaseBackend, name: str, clean: ir.Table, hits: list[Check], materialize: bool
) -> ir.Table:
    """``clean``, materialized (as ``name``) when ``materialize`` or a float check changed it.

    A table whose NaNs a check rejected or set to null is computed once with
    the folding off; the queries that read it afterwards read the result.
    """
    floats = any(c.floats for c in hits)
    if not (materialize or floats):
        return clean
    with optimizers_off(con.con, _NO_FOLDING if floats else []):  # type: ignore[attr-defined]
        return scratch_table(con, name, clean)


def screened_counts(plan: TablePlan) -> dict[str, int] | None:
    """Rows and rejected rows (``__rows``, ``__rejected``: 0), when the screens prove no check fires.

    One query counts the rows and the rows every screen matches. The
    screens are supersets of the checks, so when all are empty every check
    count is zero; for a Parquet file DuckDB answers most of them from the
    row-group statistics without reading the data. None when a screen is not
    empty (something may be rejected or nulled) or the table has no screens:
    then the full pass counts, so the report is exactly what it would be.
    """
    sql = None if plan.screens is None else screen_sql(plan.screens)
    if plan.screens is None or sql is None:
        return None
    # Plain rows, not Arrow: a few numbers, and the loader runs on DuckDB only.
    con = plan.source.get_backend().con  # type: ignore[attr-defined]
    counts = dict(con.execute(sql).fetchall())
    if any(counts[i] for i in range(plan.screens.count)):
        return None
    return {"__rows": counts[-1], "__rejected": 0}


def _report(
    con: ibis.BaseBackend, name: str, plan: TablePlan, hits: list[Check]
) -> ir.Table | None:
    """The report rows of ``hits``; materialized (few rows) when a float check is among them."""
    rows = report_rows(plan, hits)
    return None if rows is None else _settled(con, name, rows, hits, materialize=False)


def _rejected_ids(
    con: ibis.BaseBackend, plan: TablePlan, token: str, hits: list[Check]
) -> ir.Column:
    """Ids of the account rows that were rejected (small; only made when there are any)."""
    staged = plan.staged
    index = next(i for i, o in enumerate(plan.outputs) if o.name == "account_id")
    ids = staged.filter(staged["__reject"] & staged[f"__v{index}"].notnull()).select(
        account_id=staged[f"__v{index}"].cast("string")
    )
    return _settled(con, f"__tm_rejected_accounts_{token}", ids, hits, materialize=True).account_id


def _register(con: ibis.BaseBackend, data: pa.Table, label: str, view: str) -> SourceTable:
    """Ingested rows as a source: text columns, the label as file, message id as row."""
    columns = [c for c in data.column_names if c != MESSAGE_ID_COL]
    table = data.select(columns).append_column(
        FILE_COL, pa.array([label] * data.num_rows, pa.string())
    )
    table = table.append_column(ROW_COL, data[MESSAGE_ID_COL].cast(pa.int64()))
    con.con.register(view, table)  # type: ignore[attr-defined]
    return SourceTable(con.table(view), columns, label)


def _checked(
    con: ibis.BaseBackend,
    report_name: str,
    spec: TableSpec,
    src: SourceTable,
    as_of: dt.date,
    account_ids: ir.Column | None,
    rejected_account_ids: ir.Column | None,
    token: str,
) -> tuple[ir.Table, TableRejects, list[str]]:
    """One ingested source through the loader's own checks: clean table and its report."""
    plan = plan_table(
        src, spec, TableMapping(), Mapping(), as_of, account_ids, rejected_account_ids
    )
    row, hits, nulled = _counted(plan)
    clean = _settled(
        con, f"__tm_{report_name}_clean_{token}", clean_table(plan, nulled, int(row["__rejected"])),
        hits, materialize=False,
    )  # fmt: skip
    rejects = TableRejects(
        table=report_name,
        source=src.label,
        rows_read=int(row["__rows"]),
        rejected=int(row["__rejected"]),
        values_nulled=sum(nulled.values()),
        rows=_report(con, f"__tm_report_{report_name}_{token}", plan, hits),
        counts_towards_rate=False,
    )
    absent = [o.name for o in plan.outputs if not o.provided and o.default is None]
    return clean, rejects, absent


def _load_ingested(
    con: ibis.BaseBackend,
    spec: TableSpec,
    usage: pa.Table,
    token: str,
    as_of: dt.date,
    account_ids: ir.Column | None,
    rejected_account_ids: ir.Column | None,
) -> tuple[ir.Table, TableRejects, list[str]]:
    """Ingested usage events, typed and checked like a usage_events file."""
    src = _register(con, usage, USAGE_LABEL, f"__tm_ingested_usage_{token}")
    return _checked(
        con, INGESTED_EVENTS, spec, src, as_of, account_ids, rejected_account_ids, token
    )


def _union_by_name(first: ir.Table, second: ir.Table) -> ir.Table:
    """``first`` and ``second`` stacked; columns only one side has are null on the other."""
    schema = first.schema()
    cols = {
        name: (second[name].cast(dtype) if name in second.columns else ibis.null().cast(dtype))
        for name, dtype in schema.items()
    }
    return ibis.union(first, second.select(**cols), distinct=False)


def _apply_traits(
    con: ibis.BaseBackend,
    accounts: ir.Table,
    groups: pa.Table,
    token: str,
    as_of: dt.date,
    rejected_account_ids: ir.Column | None,
) -> tuple[ir.Table, TableRejects]:
    """Accounts with each account's group traits over the file's values.

    The traits are typed and checked with the accounts contract. A trait that
    was sent replaces the file's value; a bad one is reported as set to null
    and is null (the sender said the value changed; the file's is no longer
    known to hold). A group call for an account the file does not have is
    reported, never invented.
    """
    names = [c for c in groups.column_names if c not in ("account_id", MESSAGE_ID_COL)]
    base = TABLES["accounts"]
    columns: list[Column] = [Column("account_id", "string", required=True)]
    columns += [replace(c, required=False) for c in base.columns if c.name in names]
    spec = TableSpec(name="accounts", columns=tuple(columns), references_accounts=True)
    src = _register(con, groups, GROUPS_LABEL, f"__tm_ingested_groups_{token}")
    traits, rejects, _ = _checked(
        con, INGESTED_GROUPS, spec, src, as_of, accounts.account_id, rejected_account_ids, token
    )
    traits = traits.select("account_id", *names).rename({f"__trait_{n}": n for n in names})
    # Which traits each account's calls sent (one row per account, see ingest.feed).
    raw = src.table
    sent = raw.select(
        __sent_id=raw.account_id,
        **{
            f"__sent_{n}": raw[n].notnull() & (raw[n] != "")
            if raw[n].type().is_string()
            else raw[n].notnull()
            for n in names
        },
    )
    joined = accounts.left_join(traits, accounts.account_id == traits.account_id)
    joined = joined.left_join(sent, joined.account_id == sent.__sent_id)
    cols: dict[str, ir.Value] = {}
    for name, dtype in accounts.schema().items():
        value = joined[name]
        if name in names:
            was_sent = joined[f"__sent_{name}"].fill_null(False)
            value = ibis.ifelse(was_sent, joined[f"__trait_{name}"].cast(dtype), value)
        cols[name] = value
    merged = joined.select(**cols).order_by("account_id")
    return scratch_table(con, f"__tm_accounts_traits_{token}", merged), rejects

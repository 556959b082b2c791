"""Row rules of one table: which rows are rejected, which values set to null, and why.

Every check becomes one boolean flag column of the *staged* table; the
loader counts the flags in one pass and builds the clean table and the
report from them (:mod:`touchmodel.sources._outputs`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from touchmodel.errors import DataError
from touchmodel.sources._casting import as_text
from touchmodel.sources._columns import ColumnPlanner, OutputColumn
from touchmodel.sources._reading import FILE_COL, ROW_COL, SourceTable
from touchmodel.sources.contract import TableSpec
from touchmodel.sources.mapping import Mapping, TableMapping
from touchmodel.sources.rejects import NULLED, REJECTED


@dataclass
class Check:
    """One report-able problem: rows where ``flag`` is true get one report line."""

    flag: str  # boolean column of the staged table
    action: str
    # Expressions over the source or staged table; only the report computes them,
    # so the count query and the clean table never carry them.
    field: ir.Value
    shown: ir.Value
    reason: ir.Value


@dataclass
class TablePlan:
    """One table planned: its output columns and the checks its staged table flags."""

    source: ir.Table  # what the outputs' expressions are built on
    staged: ir.Table  # source + converted values + one flag per check
    outputs: list[OutputColumn]
    checks: list[Check]
    source_cols: list[str]
    # Small relations that are all empty when no check can flag any row (see
    # :func:`screen_relations`); None when some check has no cheap screen.
    screens: list[ir.Table] | None = None


def plan_table(
    src: SourceTable,
    spec: TableSpec,
    tmap: TableMapping,
    mapping: Mapping,
    as_of: dt.date,
    account_ids: ir.Column | None,
    rejected_account_ids: ir.Column | None = None,
) -> TablePlan:
    """The staged expression of one table: source, converted outputs, one flag per check."""
    planner = ColumnPlanner(src, spec, tmap, mapping, as_of)
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
            OutputColumn(
                s,
                declared,
                conv.value,
                False,
                conv.bad,
                conv.reason,
                ibis.literal(s),
                as_text(src.table[s]),
            )
        )
        taken.add(s)

    t = src.table
    cols: dict[str, ir.Value] = {}
    checks: list[Check] = []
    reject_flags: list[str] = []
    null_flags: list[tuple[str, OutputColumn]] = []
    for i, o in enumerate(outputs):
        cols[f"__v{i}"] = o.clean_value
        if o.bad is None:
            continue
        cols[f"__b{i}"] = o.bad.fill_null(False)
        action = REJECTED if o.required else NULLED
        checks.append(
            Check(
                f"__b{i}",
                action,
                o.field if o.field is not None else ibis.literal(o.name),
                o.shown if o.shown is not None else as_text(o.value),
                o.reason if o.reason is not None else ibis.literal(f"{o.name}: invalid value"),
            )
        )
        if o.required:
            reject_flags.append(f"__b{i}")
        else:
            null_flags.append((f"__b{i}", o))
    staged = t.mutate(**cols)

    index = {o.name: i for i, o in enumerate(outputs)}
    screens = screen_relations(t, spec, outputs, index, account_ids)
    if account_ids is not None and spec.references_accounts:
        i = index["account_id"]
        aid = staged[f"__v{i}"]
        # A missing or blank id is reported as such, not as an unknown account.
        known_bad = staged[f"__b{i}"] if f"__b{i}" in staged.columns else ibis.literal(False)
        staged = staged.mutate(__unknown=(~known_bad & ~aid.isin(account_ids)).fill_null(False))
        was_rejected: ir.BooleanValue | None = None
        if rejected_account_ids is not None:
            # A column of its own: only report rows read it, and a subquery
            # inside the report's array of checks does not compile on DuckDB.
            staged = staged.mutate(
                __acct_rejected=aid.cast("string").isin(rejected_account_ids).fill_null(False)
            )
            was_rejected = staged["__acct_rejected"]
        aid_text = staged[f"__v{i}"].cast("string")
        checks.append(
            Check(
                "__unknown",
                REJECTED,
                ibis.literal("account_id"),
                aid_text,
                _unknown_reason(aid_text, was_rejected),
            )
        )
        reject_flags.append("__unknown")

    base = any_flag(staged, reject_flags)
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
        checks.append(Check("__dup", REJECTED, ibis.literal(key_text), shown, reason))
        staged = staged.mutate(__reject=staged["__rj0"] | staged["__dup"])
    else:
        staged = staged.mutate(__reject=staged["__rj0"])

    if null_flags:
        # Values of rejected rows are not "set to null": the whole row is in the report.
        staged = staged.mutate(
            **{f"{flag}n": staged[flag] & ~staged["__reject"] for flag, _o in null_flags}
        )
    checks = [
        Check(f"{c.flag}n", c.action, c.field, c.shown, c.reason) if c.action == NULLED else c
        for c in checks
    ]
    return TablePlan(t, staged, outputs, checks, list(src.columns), screens)


def screen_relations(
    t: ir.Table,
    spec: TableSpec,
    outputs: list[OutputColumn],
    index: dict[str, int],
    account_ids: ir.Column | None,
) -> list[ir.Table] | None:
    """Relations over the source ``t`` that are all empty when no check of the table can fire.

    Each is a superset test of one check (or one part of it): a row that a
    check would flag makes at least one of them non-empty. The column
    screens are plain comparisons and null tests, each filtered on its own so
    that DuckDB can skip whole Parquet row groups by their statistics; the
    account lookup and the duplicate-key test are small aggregates. None when
    a check has no screen: then only the full counting pass can tell.
    Screens on floating-point columns are counted row by row instead (see below).
    """
    relations: list[ir.Table] = []
    per_row: list[ir.BooleanValue] = []
    for o in outputs:
        if o.bad is None:
            continue
        if o.screens is None:
            return None
        for s in o.screens:
            if _reads_floats(s):
                per_row.append(s)
            else:
                relations.append(t.filter(s))
    # Per-row screens are counted, not filtered: DuckDB would prune row groups
    # by Parquet statistics, which leave NaN out, and so miss the NaNs (and
    # NaN > max) they look for. A counted condition is evaluated on every row.
    counted = any_of(per_row) if per_row else None
    if account_ids is not None and spec.references_accounts:
        # Unknown accounts (the full check leaves out rows whose id is itself
        # missing or blank, so this may match more, never fewer), grouped by
        # id; the per-row screens are counted in the same scan.
        aid = outputs[index["account_id"]].clean_value
        if counted is None:
            ids = t.select(__aid=aid).distinct()
            relations.append(ids.filter(~ids["__aid"].isin(account_ids)))
        else:
            by_id = t.group_by(__aid=aid).aggregate(__m=t.count(where=counted))
            relations.append(by_id.filter(~by_id["__aid"].isin(account_ids) | (by_id["__m"] > 0)))
    elif counted is not None:
        rows = t.aggregate(__m=t.count(where=counted))
        relations.append(rows.filter(rows["__m"] > 0))
    if spec.key:
        # A duplicate needs two rows with the same key (NULLs group together,
        # as they partition together in the full check's window).
        keys = t.select(
            **{f"__k{j}": outputs[index[k]].clean_value for j, k in enumerate(spec.key)}
        )
        groups = keys.group_by(keys.columns).aggregate(__n=keys.count())
        relations.append(groups.filter(groups["__n"] > 1))
    return relations


def _reads_floats(value: ir.Value) -> bool:
    """Whether ``value`` reads a floating-point column."""
    return any(f.dtype.is_floating() for f in value.op().find(ops.Field))


def any_of(conditions: list[ir.BooleanValue]) -> ir.BooleanValue:
    """True where any of ``conditions`` is true."""
    out = conditions[0]
    for c in conditions[1:]:
        out = out | c
    return out


def any_flag(t: ir.Table, flags: list[str]) -> ir.BooleanValue:
    """True where any of the boolean columns ``flags`` of ``t`` is true."""
    if not flags:
        return ibis.literal(False)
    out = t[flags[0]]
    for f in flags[1:]:
        out = out | t[f]
    return out


def _unknown_reason(aid: ir.StringValue, was_rejected: ir.BooleanValue | None) -> ir.StringValue:
    """Why a child row's account is unknown: never seen, or its own row was rejected.

    Saying "unknown" for an account that is in the accounts file but was
    rejected there sends the user looking in the wrong place.
    """
    unknown = ibis.literal("unknown account '").concat(aid, "'")
    if was_rejected is None:
        return unknown
    rejected = ibis.literal("account '").concat(
        aid, "' was rejected in the accounts table (see its rows in this report)"
    )
    return ibis.ifelse(was_rejected, rejected, unknown)

"""Row rules of one table: which rows are rejected, which values set to null, and why.

Every check becomes one boolean flag column of the *staged* table; the
loader counts the flags in one pass and builds the clean table and the
report from them (:mod:`touchmodel.sources._outputs`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from functools import cached_property

import ibis
import ibis.expr.types as ir

from touchmodel.errors import DataError, did_you_mean
from touchmodel.sources._casting import as_text
from touchmodel.sources._columns import ColumnPlanner, OutputColumn
from touchmodel.sources._reading import FILE_COL, ROW_COL, SourceTable
from touchmodel.sources._screens import Screens, plan_screens, reads_floats
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
    # Whether the check reads a floating-point column (see count_checks).
    floats: bool = False


@dataclass
class TablePlan:
    """One table planned: its output columns and the checks its staged table flags.

    The staged table and the checks are built on first use: a table whose
    screens show it clean needs neither (nor their report expressions), and
    building them is most of the planning time.
    """

    source: ir.Table  # what the outputs' expressions are built on
    outputs: list[OutputColumn]
    source_cols: list[str]
    # Tests that all come out empty when no check can flag any row (see
    # :mod:`touchmodel.sources._screens`); None when some check has no cheap screen.
    screens: Screens | None
    spec: TableSpec
    account_ids: ir.Column | None
    rejected_account_ids: ir.Column | None

    @cached_property
    def _checked(self) -> tuple[ir.Table, list[Check]]:
        return _stage(self)

    @property
    def staged(self) -> ir.Table:
        """Source + converted values + one flag per check."""
        return self._checked[0]

    @property
    def checks(self) -> list[Check]:
        """Every check of the table, each a boolean column of :attr:`staged`."""
        return self._checked[1]


# Separators a CSV export may use instead of a comma, as written in a mapping file.
_OTHER_DELIMITERS = {";": ";", "\t": "\\t", "|": "|"}


def _missing_hints(missing: list[str], src: SourceTable, tmap: TableMapping, table: str) -> str:
    """Why required columns may look missing: another delimiter, or a near-miss name."""
    hints = []
    if len(src.columns) == 1:  # the whole header read as one column
        for sep, written in _OTHER_DELIMITERS.items():
            if sep in src.columns[0] and sep != tmap.delimiter:
                hints.append(
                    f"the header looks separated by {written!r}, not {tmap.delimiter!r}: set "
                    f'delimiter: "{written}" under tables.{table} in a mapping file (--mapping)'
                )
                break
    for name in missing:
        hint = did_you_mean(name, [*src.columns, *tmap.columns])
        if hint:
            hints.append(f"{name}{hint}")
    return "".join(f"; {h}" for h in hints)


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
            + _missing_hints(missing, src, tmap, spec.name)
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

    index = {o.name: i for i, o in enumerate(outputs)}
    screens = plan_screens(src.table, spec, outputs, index, account_ids)
    return TablePlan(
        src.table,
        outputs,
        list(src.columns),
        screens,
        spec,
        account_ids,
        rejected_account_ids,
    )


def _stage(plan: TablePlan) -> tuple[ir.Table, list[Check]]:
    """The staged table of ``plan`` (one flag column per check) and its checks."""
    t, outputs, spec = plan.source, plan.outputs, plan.spec
    account_ids, rejected_account_ids = plan.account_ids, plan.rejected_account_ids
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
                reads_floats(o.bad),
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
    checks = [replace(c, flag=f"{c.flag}n") if c.action == NULLED else c for c in checks]
    return staged, checks


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

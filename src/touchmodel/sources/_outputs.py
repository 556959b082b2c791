"""What a staged table yields: the clean table and the rejected-rows report lines."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from touchmodel.sources._casting import has_type
from touchmodel.sources._reading import FILE_COL, ROW_COL
from touchmodel.sources._row_rules import Check, TablePlan, any_flag
from touchmodel.sources.contract import IBIS_TYPES
from touchmodel.sources.rejects import REPORT_SCHEMA


def _record(t: ir.Table, columns: list[str]) -> ir.StringValue:
    if not columns:
        return ibis.literal("{}")
    return ibis.struct({c: t[c] for c in columns}).cast("json").cast("string")  # type: ignore[return-value]


def report_rows(plan: TablePlan, hits: list[Check]) -> ir.Table | None:
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
    flagged = s.filter(any_flag(s, [c.flag for c in hits]))
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


def clean_table(
    plan: TablePlan, nulled: dict[str, int], rejected: int, order_by: str | None = None
) -> ir.Table:
    """The validated table. Filters and null-outs are added only where the
    count found rows to filter or values to null: clean data pays nothing
    for checks that found nothing (nor for the account lookup).

    ``order_by``: a column to sort by, for a table to be materialized."""
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
        if o.type is not None and not has_type(v, o.type):
            v = v.cast(IBIS_TYPES[o.type])
        cols[o.name] = v
    out = s.select(**cols)
    return out if order_by is None else out.order_by(order_by)

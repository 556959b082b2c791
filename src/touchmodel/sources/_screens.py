"""Screens: cheap tests that prove a Parquet table has nothing to reject or null.

Each screen is a superset test of one check (or one part of it): a row that
a check would flag makes at least one screen match. When none matches, the
loader skips the counting pass and the checks' expressions altogether.

The column screens are plain comparisons and null tests. Each is counted
with its own ``WHERE``, so that DuckDB answers it from the Parquet
row-group statistics, mostly without reading the data. The account lookup
and the duplicate-key test are small aggregates.

The query is written here as SQL from the conditions compiled once, as
columns of one projection, rather than as one Ibis relation per screen:
building and compiling those relations cost more than running them.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from touchmodel.sources._casting import or_flags
from touchmodel.sources._columns import OutputColumn
from touchmodel.sources.contract import TableSpec


@dataclass
class Screens:
    """The screens of one table, as conditions and values over its source."""

    source: ir.Table
    # Each counted on its own (row-group statistics can answer it).
    filters: list[ir.BooleanValue]
    # Conditions on floating-point columns, evaluated on every row: Parquet
    # statistics leave NaN out, so a pruned scan would miss the NaNs (and
    # NaN > max) they look for.
    counted: ir.BooleanValue | None
    # The account id to look up, and the ids to look it up in.
    account_id: ir.Value | None
    account_ids: ir.Column | None
    # The table's key: a duplicate needs two rows with the same key.
    keys: list[ir.Value]

    @property
    def count(self) -> int:
        """How many screens the query counts (besides the total)."""
        lookup = self.account_id is not None or self.counted is not None
        return len(self.filters) + int(lookup) + int(bool(self.keys))


def plan_screens(
    t: ir.Table,
    spec: TableSpec,
    outputs: list[OutputColumn],
    index: dict[str, int],
    account_ids: ir.Column | None,
) -> Screens | None:
    """The screens of the table ``t``; None when a check has no screen.

    Then only the full counting pass can tell whether it fires.
    """
    filters: list[ir.BooleanValue] = []
    per_row: list[ir.BooleanValue] = []
    for o in outputs:
        if o.bad is None:
            continue
        if o.screens is None:
            return None
        for s in o.screens:
            (per_row if reads_floats(s) else filters).append(s)
    counted: ir.BooleanValue | None = None
    for s in per_row:
        counted = or_flags(counted, s)
    account_id = None
    if account_ids is not None and spec.references_accounts:
        # The full check leaves out rows whose id is itself missing or blank,
        # so looking up every id may match more, never fewer.
        account_id = outputs[index["account_id"]].clean_value
    else:
        account_ids = None
    keys = [outputs[index[k]].clean_value for k in spec.key]
    return Screens(t, filters, counted, account_id, account_ids, keys)


def screen_sql(screens: Screens) -> str | None:
    """One DuckDB query of ``(i, n)`` rows: ``i = -1`` the table's rows, then each screen's.

    A screen is empty when its ``n`` is 0. None when the source does not
    compile to a plain ``SELECT ... FROM`` (the conditions could not be
    taken apart); the loader then counts in full.
    """
    cols: dict[str, ir.Value] = {f"__p{i}": f for i, f in enumerate(screens.filters)}
    if screens.account_id is not None:
        cols["__aid"] = screens.account_id
    if screens.counted is not None:
        cols["__m"] = screens.counted
    cols.update({f"__k{j}": k for j, k in enumerate(screens.keys)})
    if not cols:
        cols["__one"] = ibis.literal(1)
    backend = screens.source.get_backend()
    # One compile for every condition; each is then placed where it must be.
    # Counted conditions stay inside their aggregate: from a projection,
    # DuckDB's statistics propagation would take the Parquet min/max (which
    # leave NaN out) as proof that isnan() is false.
    select = backend.compiler.to_sqlglot(screens.source.select(**cols))  # type: ignore[attr-defined]
    if any(v for k, v in select.args.items() if k not in ("expressions", "from_", "from")):
        return None
    sql = {e.alias: e.this.sql(dialect="duckdb") for e in select.expressions}
    source = (select.args.get("from_") or select.args["from"]).sql(dialect="duckdb")

    parts = [f"SELECT -1 AS i, count(*) AS n {source}"]
    parts += [
        f"SELECT {i}, count(*) {source} WHERE {sql[f'__p{i}']}" for i in range(len(screens.filters))
    ]
    n = len(screens.filters)
    if screens.account_id is not None:
        assert screens.account_ids is not None
        ids = backend.compile(screens.account_ids.name("__id").as_table())  # type: ignore[attr-defined]
        unknown = f"NOT (__aid IN (SELECT __id FROM ({ids})))"
        if screens.counted is None:
            by_id = f"SELECT DISTINCT {sql['__aid']} AS __aid {source}"
        else:
            # The per-row screens are counted in the same scan.
            by_id = (
                f"SELECT {sql['__aid']} AS __aid, count(*) FILTER (WHERE {sql['__m']}) AS __m "
                f"{source} GROUP BY 1"
            )
            unknown += " OR __m > 0"
        parts.append(f"SELECT {n}, count(*) FROM ({by_id}) WHERE {unknown}")
        n += 1
    elif screens.counted is not None:
        parts.append(f"SELECT {n}, count(*) FILTER (WHERE {sql['__m']}) {source}")
        n += 1
    if screens.keys:
        # NULLs group together, as they partition together in the full check's window.
        keys = ", ".join(f"{sql[f'__k{j}']} AS __k{j}" for j in range(len(screens.keys)))
        parts.append(
            f"SELECT {n}, count(*) FROM (SELECT {keys} {source} GROUP BY ALL HAVING count(*) > 1)"
        )
    return "\nUNION ALL\n".join(parts)


def reads_floats(value: ir.Value) -> bool:
    """Whether ``value`` reads a floating-point column."""
    return any(f.dtype.is_floating() for f in value.op().find(ops.Field))

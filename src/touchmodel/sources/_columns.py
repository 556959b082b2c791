"""The output columns of one table: mapping, typing and the per-value checks."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.operations as ops
import ibis.expr.types as ir

from touchmodel.errors import ExpressionError, did_you_mean
from touchmodel.expr import Scope, compile_expr, referenced_names
from touchmodel.sources._casting import (
    Converted,
    apply_value_map,
    as_text,
    convert_value,
    or_flags,
    typed_null,
)
from touchmodel.sources._reading import FILE_COL, ROW_COL, SourceTable
from touchmodel.sources.contract import IBIS_TYPES, TableSpec
from touchmodel.sources.mapping import ColumnMapping, Mapping, TableMapping, mapping_error

_EXPR_NAMES = {"as_of", "true", "false", "null"}


@dataclass
class OutputColumn:
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
    # False when neither the source nor the mapping has this column at all.
    provided: bool = True
    # Simple filters on the source columns (a comparison or null test each, so
    # DuckDB can answer them from Parquet row-group statistics): a row where
    # ``bad`` is true matches at least one of them. None: no such filters are
    # known, and only the full counting pass can tell whether ``bad`` is ever true.
    screens: list[ir.BooleanValue] | None = None

    @property
    def clean_value(self) -> ir.Value:
        """What the clean table reads for this column."""
        return self.kept_value if self.kept_value is not None else self.value


class ColumnPlanner:
    """Builds the output columns of one table from its source and mapping."""

    def __init__(
        self,
        src: SourceTable,
        spec: TableSpec,
        tmap: TableMapping,
        mapping: Mapping,
        as_of: dt.date,
    ) -> None:
        self.src = src
        self.t = src.table
        self.spec = spec
        self.tmap = tmap
        self.mapping = mapping
        self.as_of = ibis.literal(as_of, type="date")
        self.typed: dict[str, Converted] = {}
        self.outs: dict[str, OutputColumn] = {}
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
                    f"{self._path('types', s)}: found {s!r}{did_you_mean(s, cols)}; expected a "
                    f"column of {self.src.label} (columns: {self._available()})"
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
                    f"{path}: found {source!r}{did_you_mean(source, cols)}; expected a column "
                    f"of {self.src.label} (columns: {self._available()})"
                )
        if problems:
            raise mapping_error(self.mapping.source, problems)

    # Source columns -----------------------------------------------------------

    def source_value(self, name: str) -> Converted:
        """A source column as declared under ``types`` (or as read, '' meaning missing)."""
        if name in self.typed:
            return self.typed[name]
        raw = self.t[name]
        declared = self.tmap.types.get(name)
        if declared is not None:
            conv = convert_value(raw, declared, [])
            if conv.bad is not None:
                conv.value = ibis.ifelse(conv.bad, typed_null(IBIS_TYPES[declared]), conv.value)
        elif raw.type().is_string():
            conv = Converted(raw.nullif(""))
        else:
            conv = Converted(raw)
        self.typed[name] = conv
        return conv

    # Output columns -----------------------------------------------------------

    def output(self, name: str) -> OutputColumn:
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

    def _build(self, name: str) -> OutputColumn:
        col = self.spec.column(name)
        cmap = self.specs.get(name)
        target = col.type if col is not None else (cmap.type if cmap else None)
        required = bool(col and col.required)
        default = self.spec.defaults.get(name)

        if cmap is None and name not in self.src.columns:
            # A contract column nobody provides: typed nulls (the checks in
            # plan() have already failed the load if it is required).
            return OutputColumn(
                name,
                target,
                typed_null(IBIS_TYPES[target or "string"]),
                required,
                default=default,
                provided=False,
            )

        formats = cmap.formats if cmap else []
        source_bad: ir.BooleanValue | None = None
        source_reason: ir.StringValue | None = None
        field: ir.StringValue
        shown: ir.StringValue
        direct = False
        raw = None
        if cmap is not None and cmap.expr is not None:
            value, source_bad, source_reason, bad_field, bad_shown = self._expression(
                name, cmap.expr
            )
            field = (
                ibis.ifelse(source_bad, bad_field, name)
                if source_bad is not None
                else ibis.literal(name)
            )
            shown_value = as_text(value)
            shown = (
                ibis.ifelse(source_bad, bad_shown, shown_value)
                if source_bad is not None
                else shown_value
            )
            if cmap.values:
                value = apply_value_map(value, cmap.values)
        else:
            source = (cmap.source if cmap else None) or name
            self.consumed.add(source)
            raw = self.t[source]
            # The column as stored, with no mapping: its checks have cheap screens.
            direct = cmap is None and source not in self.tmap.types
            field = ibis.literal(source)
            shown = as_text(raw)
            if cmap is not None and cmap.values:
                value = apply_value_map(raw, cmap.values)
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
            return OutputColumn(name, None, value, False, bad, source_reason, field, shown)

        conv = convert_value(value, target, formats)
        screens = _value_screens(raw, target, conv) if direct and raw is not None else None
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
            bad = or_flags(bad, src_bad)
            reasons.append((src_bad, source_reason))
        if conv.bad is not None and conv.reason is not None:
            reasons.append((conv.bad, conv.reason))
        if cmap is not None and cmap.scale is not None:
            v = (v * cmap.scale).cast(IBIS_TYPES[target])
            if target == "number":
                # A finite value can overflow to infinity once scaled.
                overflow = v.isinf()  # type: ignore[attr-defined]
                bad = or_flags(bad, overflow)
                reasons.append(
                    (overflow, ibis.literal(f"not a finite number once scaled by {cmap.scale:g}"))
                )
        if col is not None and col.choices:
            norm = v.strip().lower()  # type: ignore[attr-defined]
            choice_bad = norm.notnull() & ~norm.isin(list(col.choices))
            v = norm
            bad = or_flags(bad, choice_bad)
            if screens is not None and raw is not None and raw.type().is_string():
                # A stored value that is already a choice is one after normalizing.
                plain_choices = [c for c in col.choices if c == c.strip().lower()]
                screens.append(~raw.isin(plain_choices))
            else:
                screens = None
            reasons.append((choice_bad, ibis.literal(f"not one of: {', '.join(col.choices)}")))
        if col is not None and (col.min is not None or col.max is not None):
            low = v < col.min if col.min is not None else None
            high = v > col.max if col.max is not None else None
            if low is not None:
                reasons.append((low, f"{name} is below the minimum {col.min:g}"))
            if high is not None:
                reasons.append((high, f"{name} is above the maximum {col.max:g}"))
            bad = or_flags(bad, or_flags(low, high))
            if screens is not None:
                screens += [c for c in (low, high) if c is not None]
        if required:
            missing = v.isnull()
            bad = or_flags(bad, missing)
            if screens is not None and raw is not None:
                # Screened conversions keep every stored value, so only a null
                # or '' (which sorts before '!') can be missing.
                screens.append(raw.isnull())
                if raw.type().is_string():
                    screens.append(raw < "!")  # type: ignore[operator]
            reasons.append((missing, ibis.literal(f"{name} is missing")))
        reason = None
        if reasons:
            reason = ibis.cases(
                *[(c.fill_null(False), r) for c, r in reasons], else_=ibis.null().cast("string")
            )
        return OutputColumn(
            name, target, v, required, bad, reason, field, shown, default, kept_value,
            screens=screens,
        )  # fmt: skip

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
                        (conv.bad, conv.reason, ibis.literal(ref), as_text(self.t[ref]))
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


def _value_screens(raw: ir.Value, target: str, conv: Converted) -> list[ir.BooleanValue] | None:
    """Screens for ``conv.bad`` of a stored column read as ``target`` (see OutputColumn.screens).

    Only the conversions whose problems a simple filter can cover; None for
    the others (text read as a number or a date, an integer read as a bool, ...).
    """
    if conv.bad is None:
        return []
    dtype = raw.type()
    if dtype.is_string() and target == "string":
        # Blank (only whitespace) starts with a byte <= 32, so it sorts before
        # '!' (DuckDB compares text byte by byte); '' itself is not a problem here.
        return [(raw < "!") & (raw != "")]  # type: ignore[operator]
    if dtype.is_floating() and target == "number":
        return [raw.isnan() | raw.isinf()]  # type: ignore[attr-defined]
    return None

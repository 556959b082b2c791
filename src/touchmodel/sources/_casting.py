"""Converting source values to their contract types, flagging what cannot be read."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.datatypes as idt
import ibis.expr.types as ir

from touchmodel.sources.contract import IBIS_TYPES

_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
# Past this, a float cannot hold an int64 exactly; such values are rejected.
_INT64_LIMIT = 9.2e18


def _whole(f: ir.FloatingValue) -> ir.BooleanValue:
    """Whether ``f`` is a whole number (NULL for NaN; false for infinities).

    Not ``f == f.floor()``: Ibis casts the floor to BIGINT, and DuckDB
    evaluates that cast for every row, failing the whole load on a NaN, an
    infinity or a huge value that the guards beside it would have rejected.
    """
    return f % 1 == 0  # type: ignore[no-any-return]


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, fmt: str) -> dt.datetime:  # type: ignore[empty-body]
    """DuckDB's try_strptime: NULL instead of an error for a value not in the format."""


@ibis.udf.scalar.builtin(name="timezone")
def _wall_clock(zone: str, value: dt.datetime) -> dt.datetime:  # type: ignore[empty-body]
    """DuckDB's timezone(zone, timestamptz): the wall-clock time there, without a zone."""


# A time followed by a UTC offset (Z, +05:30, -0500, +05): such text names an
# instant, read in UTC; a plain cast to TIMESTAMP would drop the offset.
_UTC_OFFSET = r"\d:\d\d(:\d\d(\.\d+)?)?\s*([zZ]|[+-]\d\d(:?\d\d)?)$"


def _timestamp_from_text(text: ir.StringValue) -> ir.TimestampValue:
    """Text -> timestamp (UTC, no zone); NULL where it is not one."""
    instant = text.try_cast(idt.Timestamp(timezone="UTC"))
    naive = text.try_cast("timestamp")
    return ibis.cases(  # type: ignore[no-any-return]
        # "YYYY-MM-DD HH:MM:SS" has 19 characters: an offset makes it longer, so
        # the pattern runs on longer values only (CASE evaluates lazily).
        (text.length() <= 19, naive),
        (text.re_search(_UTC_OFFSET), _wall_clock("UTC", instant)),
        else_=naive,
    )


@dataclass
class Converted:
    """A value converted to a target type.

    ``value`` is right for every row without a problem (it is what the clean
    table reads, so it is kept cheap); ``bad`` flags rows whose source value
    could not be used (None: cannot happen), ``reason`` says why.
    """

    value: ir.Value
    bad: ir.BooleanValue | None = None
    reason: ir.StringValue | None = None


def or_flags(a: ir.BooleanValue | None, b: ir.BooleanValue | None) -> ir.BooleanValue | None:
    """``a | b``, where None means a flag that cannot be true."""
    if a is None:
        return b
    if b is None:
        return a
    return a | b


def typed_null(type_name: str) -> ir.Value:
    """A null literal of an Ibis type."""
    return ibis.null().cast(type_name)


_EXPECTED = {
    "number": "a number",
    "integer": "a whole number",
    "bool": "true/false (yes/no, 1/0, y/n)",
    "date": "a real calendar date (YYYY-MM-DD)",
    "timestamp": "a timestamp (YYYY-MM-DD HH:MM:SS)",
    "string": "text",
}


def _expected(target: str, formats: list[str]) -> str:
    if formats and target in ("date", "timestamp"):
        return f"a {target} in the format {' or '.join(formats)}"
    if formats == [MONEY] and target in ("number", "integer"):
        return f"{_EXPECTED[target]}, written as money (1200, $1,200.50, -€5)"
    return _EXPECTED[target]


# `format: money` on a number column: currency signs, spaces and thousands
# separators are dropped before the value is read ("$1,200.50" -> 1200.5).
MONEY = "money"
_MONEY_NOISE = r"[\s$€£¥,]"
_MONEY_LIKE = r"^\s*[-+]?\s*[$€£¥]?\s*[-+]?[0-9][0-9,]*(\.[0-9]+)?\s*[$€£¥]?\s*$"
_HINT_MONEY = (
    "; it looks like money or a number with thousands separators: add format: money "
    "to this column in the mapping file"
)
# A date written day/month or month/day: which format it needs, by its separator.
_DATE_LIKE = {
    "/": "'%m/%d/%Y' (or '%d/%m/%Y')",
    ".": "'%d.%m.%Y'",
    "-": "'%d-%m-%Y' (or '%m-%d-%Y')",
}


def _hint(text: ir.StringValue, target: str, formats: list[str]) -> ir.StringValue | str:
    """What to add to the mapping file for a value written in a common other way ('' if none)."""
    if formats:
        return ""  # the user chose a format already; the reason says which
    if target in ("number", "integer"):
        return ibis.ifelse(
            text.re_search(_MONEY_LIKE) & text.re_search(r"[$€£¥,]"), _HINT_MONEY, ""
        )
    if target in ("date", "timestamp"):
        cases = [
            (
                text.re_search(rf"^\s*[0-9]{{1,2}}\{sep}[0-9]{{1,2}}\{sep}[0-9]{{2,4}}(\s|$)"),
                f"; for a date written like {'03' + sep + '11' + sep + '2026'}, add "
                f"format: {fmt} to this column in the mapping file",
            )
            for sep, fmt in _DATE_LIKE.items()
        ]
        return ibis.cases(*cases, else_="")
    return ""


def _from_text(text: ir.StringValue, target: str, formats: list[str]) -> Converted:
    """Text -> target type. '' is a missing value; anything else unreadable is a problem."""
    given = text != ""
    # Whitespace-only: only a value starting with a control or space character
    # can be, so the costly trim runs on those alone (CASE evaluates lazily).
    blank = ibis.cases((text.ascii_str() <= 32, given & (text.strip() == "")), else_=False)
    expected = _expected(target, formats)

    hint = _hint(text, target, formats)

    def reason(other: str | ir.StringValue) -> ir.StringValue:
        explained = ibis.literal(other) if isinstance(other, str) else other
        if not isinstance(hint, str):
            explained = explained + hint
        return ibis.ifelse(blank, f"blank (only whitespace); expected {expected}", explained)

    if target == "string":
        # A blank string is a problem; the value itself is read as is.
        return Converted(
            text.nullif(""), blank, ibis.literal(f"blank (only whitespace); expected {expected}")
        )
    if formats == [MONEY] and target in ("number", "integer"):
        text = text.re_replace(_MONEY_NOISE, "")
    if target == "number":
        v = text.try_cast("float64")
        bad = given & (v.isnull() | v.isnan() | v.isinf())
        return Converted(v, bad, reason(f"not {expected}"))
    if target == "integer":
        f = text.try_cast("float64")
        ok = f.notnull() & ~f.isnan() & ~f.isinf() & (f.abs() < _INT64_LIMIT) & _whole(f)
        v = ibis.ifelse(
            ok, ibis.coalesce(text.try_cast("int64"), f.cast("int64")), typed_null("int64")
        )
        why = ibis.ifelse(
            f.notnull(), f"not a whole number; expected {expected}", f"not {expected}"
        )
        return Converted(v, given & ~ok, reason(why))
    if target == "bool":
        s = text.strip().lower()
        is_true, is_false = s.isin(list(_TRUE)), s.isin(list(_FALSE))
        v = ibis.ifelse(is_true, True, ibis.ifelse(is_false, False, typed_null("boolean")))
        return Converted(v, given & ~(is_true | is_false), reason(f"not {expected}"))
    if target in ("date", "timestamp"):
        if formats:
            stripped = text.strip()
            parsed = [_try_strptime(stripped, f) for f in formats]
            ts = parsed[0] if len(parsed) == 1 else ibis.coalesce(*parsed)
            v = ts.cast(target)
        elif target == "timestamp":
            v = _timestamp_from_text(text)
        else:
            v = text.try_cast(target)
        return Converted(v, given & v.isnull(), reason(f"not {expected}"))
    raise AssertionError(target)


def convert_value(raw: ir.Value, target: str, formats: list[str]) -> Converted:
    """Any source value -> target contract type, without casting what already fits."""
    dtype = raw.type()
    if dtype.is_string():
        return _from_text(raw, target, formats)  # type: ignore[arg-type]
    want = idt.dtype(IBIS_TYPES[target])
    if target == "string":
        return Converted(raw.cast("string"))
    if target == "number" and dtype.is_numeric():
        v = raw if dtype == want else raw.cast("float64")
        if dtype.is_floating() or dtype.is_decimal():
            fv = v
            return Converted(v, fv.isnan() | fv.isinf(), ibis.literal("not a finite number"))
        return Converted(v)
    if target == "integer" and dtype.is_integer():
        return Converted(raw if dtype == want else raw.cast("int64"))
    if target == "integer" and (dtype.is_floating() or dtype.is_decimal()):
        f = raw.cast("float64")
        ok = ~f.isnan() & ~f.isinf() & (f.abs() < _INT64_LIMIT) & _whole(f)
        return Converted(
            ibis.ifelse(ok, f.cast("int64"), typed_null("int64")),
            raw.notnull() & ~ok,
            ibis.literal("not a whole number"),
        )
    if dtype.is_timestamp() and dtype.timezone is not None:  # type: ignore[attr-defined]
        # An instant: read in UTC, whatever the session's time zone (a plain cast
        # would give the wall clock of the machine running the load).
        raw = _wall_clock("UTC", raw)
        dtype = raw.type()
    if target == "date" and (dtype.is_date() or dtype.is_timestamp()):
        return Converted(raw if dtype.is_date() else raw.cast("date"))
    if target == "timestamp" and (dtype.is_date() or dtype.is_timestamp()):
        return Converted(raw if has_type(raw, "timestamp") else raw.cast("timestamp"))
    if target == "bool" and dtype.is_boolean():
        return Converted(raw)
    if target == "bool" and dtype.is_integer():
        v = ibis.ifelse(raw == 1, True, ibis.ifelse(raw == 0, False, typed_null("boolean")))
        return Converted(v, raw.notnull() & v.isnull(), ibis.literal(f"not {_EXPECTED['bool']}"))
    # Anything else: try, and report what did not fit.
    v = raw.try_cast(IBIS_TYPES[target])
    return Converted(
        v, raw.notnull() & v.isnull(), ibis.literal(f"cannot be read as {_EXPECTED[target]}")
    )


def has_type(v: ir.Value, target: str) -> bool:
    """Whether ``v`` already has the Ibis type of contract type ``target``."""
    dtype = v.type()
    if target == "timestamp":
        # Any precision will do; a time zone would shift days, so it is cast away.
        return dtype.is_timestamp() and dtype.timezone is None  # type: ignore[attr-defined]
    return dtype == idt.dtype(IBIS_TYPES[target])


def as_text(raw: ir.Value) -> ir.StringValue:
    """``raw`` as text (as the report shows it), without casting text."""
    return raw if raw.type().is_string() else raw.cast("string")  # type: ignore[return-value]


def apply_value_map(raw: ir.Value, values: dict[str, Any]) -> ir.StringValue:
    """Value map on the source text; values not listed pass through unchanged."""
    text = as_text(raw)
    key = text.strip()
    branches = []
    for src, out in values.items():
        if out is None:
            target: ir.Value = typed_null("string")
        elif isinstance(out, bool):
            target = ibis.literal("true" if out else "false")
        else:
            target = ibis.literal(str(out))
        branches.append((key == src, target))
    return ibis.cases(*branches, else_=text)  # type: ignore[return-value]

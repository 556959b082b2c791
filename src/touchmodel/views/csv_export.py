"""CSV exports that are safe to open in a spreadsheet.

A cell starting with ``=``, ``+``, ``-``, ``@`` (or their full-width forms,
which some spreadsheets read as the same), tab or carriage return is a
formula to Excel, LibreOffice and Google Sheets (CSV injection, OWASP), and
so is one whose text only starts so after leading spaces. Such text gets a
leading apostrophe, which the spreadsheet shows as text. A cell holding a
line break is quoted (CR included: rows end in CRLF, as RFC 4180 has it, so
the writer quotes any cell holding either), and every line after a break is
guarded too, for readers that split lines before they parse quotes.
Numbers are written as numbers, so a negative ARR stays a number.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from typing import Any

# Formula starts: ASCII, their full-width forms (U+FF1D = + - @), tab and CR.
_FORMULA_START = "=+-@\uff1d\uff0b\uff0d\uff20\t\r"
# The start of the text or of any line, then leading blanks (incl. the
# ideographic and no-break spaces), then a formula start: guarded there.
_UNSAFE_LINE = re.compile(rf"(^|\r\n|\r|\n)(?=[ \u00a0\u3000]*[{re.escape(_FORMULA_START)}])")


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet evaluates."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float):
        return value
    return _UNSAFE_LINE.sub(r"\1'", str(value))


def to_csv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A whole CSV document, every cell passed through :func:`safe_cell`."""
    buf = io.StringIO()
    # CRLF line ends: the writer quotes a cell holding any character of the line
    # terminator, so a lone CR inside a cell cannot start a row of its own.
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
    return buf.getvalue()

"""Request parameters every router bounds the same way, so bad input is a 422, not a 500.

* Row ids are 32-bit ``integer`` columns on PostgreSQL (and SQLite refuses
  Python ints past 64 bits): a larger id cannot exist, and must not reach
  the database.
* PostgreSQL text cannot hold NUL: a filter holding one is refused up front.
* A date is written YYYY-MM-DD: pydantic alone would read ``0`` or
  ``1700000000`` as seconds since 1970 and answer for a date nobody asked.
* An account id may hold any character, '/' and '%' included (see
  :mod:`touchmodel.server.paths`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import Depends, Path, Query
from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from touchmodel.server.paths import account_id as _decoded

MAX_ROW_ID = 2**31 - 1
NO_NUL = r"^[^\x00]*$"

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A row id")]


def _account_id(
    account_id: Annotated[
        str,
        Path(
            min_length=1,
            max_length=600,  # 200 characters, some of them %-encoded
            pattern=NO_NUL,
            examples=["ACC-000095"],
            description="An account id as one path segment: '/' as %2F, '%' as %25, ...",
        ),
    ],
) -> str:
    return _decoded(account_id)


# An account id from the path, decoded (see touchmodel.server.paths).
AccountIdPath = Annotated[str, Depends(_account_id)]
TextQuery = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_date(value: Any) -> Any:
    """Only YYYY-MM-DD text (or a date) goes on to be read as a date."""
    if isinstance(value, dt.date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise PydanticCustomError("date_format", "expected a date written YYYY-MM-DD, e.g. 2026-12-01")


IsoDate = Annotated[dt.date, BeforeValidator(_iso_date)]

"""Request parameters every router bounds the same way, so bad input is a 422, not a 500.

* Row ids are 32-bit ``integer`` columns on PostgreSQL (and SQLite refuses
  Python ints past 64 bits): a larger id cannot exist, and must not reach
  the database.
* PostgreSQL text cannot hold NUL: a filter holding one is refused up front.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

MAX_ROW_ID = 2**31 - 1
NO_NUL = r"^[^\x00]*$"

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID, description="A row id")]
AccountIdPath = Annotated[
    str, Path(min_length=1, max_length=200, pattern=NO_NUL, examples=["ACC-000095"])
]
TextQuery = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]

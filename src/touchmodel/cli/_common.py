"""What every command shares: user errors at the edge, and the --as-of date."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from touchmodel.errors import TouchmodelError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(fn: F) -> F:
    """Turn user errors into one line on stderr and exit code 2; bugs keep their traceback.

    A multi-problem error (a model or mapping file) is folded into the one
    line, problems separated by ``; ``, so scripts can grep it.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TouchmodelError as exc:
            lines = [ln.strip().removeprefix("- ") for ln in str(exc).splitlines() if ln.strip()]
            typer.echo("error: " + "; ".join(lines), err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def parse_as_of(value: str | None, flag: str = "--as-of") -> dt.date:
    """An ISO date, or today when None; ``flag`` names the option in the error."""
    if value is None:
        return dt.date.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise TouchmodelError(
            f"{flag}: value {value!r} -- expected a date like 2026-11-01"
        ) from None

"""What every command shares: user errors at the edge, the --as-of date, and help that reads right."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperArgument, TyperCommand, TyperGroup

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


# --- help texts -------------------------------------------------------------------------


def _no_value_shown(params: list[Any]) -> None:
    """Flags take no value, so their help shows no ``<bool>`` after them."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""


class _Flags:
    """Flags (the command's own and ``--help``) show no value type: ``--json``, not ``--json <bool>``."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _no_value_shown(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        if option is not None:
            _no_value_shown([option])
        return option


class Command(_Flags, TyperCommand):
    """A command whose flags show no value type and whose usage line names its arguments
    in capitals (``ITEM_ID``, not ``{item_id}``)."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                name = (param.metavar or param.name or "").upper()
                name = name if param.required else f"[{name}]"
                pieces.append(name + ("..." if param.nargs != 1 else ""))
        return pieces


class Group(_Flags, TyperGroup):
    """A command group whose flags (its own, e.g. ``runs --json``, and ``--help``) show no value type."""


class CliApp(typer.Typer):
    """``typer.Typer`` whose commands and groups use :class:`Command` and :class:`Group`."""

    def __init__(self, *args: Any, cls: type[TyperGroup] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, cls=cls or Group, **kwargs)

    def command(  # type: ignore[override]
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Any:
        return super().command(name, cls=cls or Command, **kwargs)

"""Errors a user can cause and fix. The CLI prints them as one line, never a traceback."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest known name, or ``""``.

    A name that differs only in case is the closest of all (``Arr`` for ``arr``).
    """
    names = list(known)
    same = [k for k in names if k.lower() == name.lower() and k != name]
    close = same or difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    return f" (did you mean {close[0]!r}?)" if close else ""


class TouchmodelError(Exception):
    """Base class for every error caused by user input (files, flags, data)."""


class ModelFileError(TouchmodelError):
    """A touch-model file is invalid.

    ``problems`` holds one line per problem, each naming the file, the dotted
    path inside it, the value found and what was expected.
    """

    def __init__(self, file: str, problems: list[str]) -> None:
        self.file = file
        self.problems = problems
        head = f"{file}: {len(problems)} problem(s) in the touch-model file"
        super().__init__(head + "\n" + "\n".join(f"  - {p}" for p in problems))


class ExpressionError(TouchmodelError):
    """An expression in a model or mapping file cannot be compiled."""

    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"expression {expression!r}: {reason}")


class DataError(TouchmodelError):
    """Input data cannot be used (missing required table or column, too many rejects)."""


class MappingFileError(TouchmodelError):
    """A mapping file is invalid; the message names the file and the dotted path."""

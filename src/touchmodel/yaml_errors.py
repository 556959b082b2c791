"""A YAML syntax error as one plain line: ``file:line:column: not valid YAML: what is wrong``.

PyYAML's own text ("while parsing a block mapping ... expected <block end>,
but found '<block mapping start>'") names parser states, not what the user
typed. The common mistakes are named here in the user's terms; anything else
keeps PyYAML's one-line problem, without the parser context.
"""

from __future__ import annotations

import re

import yaml

# (PyYAML's problem text, as a regex) -> what it means in a hand-written file.
_PLAIN: tuple[tuple[str, str], ...] = (
    (
        r"mapping values are not allowed here",
        "a ':' where no key can start: quote a value that holds ': ', "
        "or check the indentation and the line above",
    ),
    (r"could not find expected ':'", "a line with no 'key: value' (check it and the line above)"),
    (r"found character '\\t' that cannot start any token", "a tab: YAML indents with spaces only"),
    (
        r"expected <block end>, but found|did not find expected key|"
        r"expected '<document start>', but found",
        "the indentation does not line up with the lines above",
    ),
    (r"expected ',' or '\]'", "a '[' list that is not closed with ']' (or a missing comma)"),
    (r"expected ',' or '}'", "a '{' mapping that is not closed with '}' (or a missing comma)"),
    (r"found unexpected end of stream", "the file ends inside a quoted value"),
    (r"found undefined alias '([^']*)'", "*{0} refers to an anchor &{0} defined nowhere above"),
    (
        r"found unknown escape character '([^']*)'",
        "\\{0} is not an escape YAML knows in double quotes (use single quotes)",
    ),
    (
        r"could not determine a constructor for the tag '([^']*)'",
        "the tag {0} is not allowed (plain values only)",
    ),
)


def plain_problem(exc: yaml.YAMLError) -> str:
    """What is wrong, in a hand-written file's terms (one line)."""
    problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
    for pattern, text in _PLAIN:
        found = re.search(pattern, problem)
        if found:
            return text.format(*found.groups())
    return problem


def yaml_error_text(file: str, exc: yaml.YAMLError) -> str:
    """``file:line:column: not valid YAML: <plain problem>`` (line and column 1-based)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{file}:{mark.line + 1}:{mark.column + 1}" if mark is not None else file
    return f"{where}: not valid YAML: {plain_problem(exc)}"

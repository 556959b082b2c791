"""A small, safe expression language compiled to Ibis expressions.

Trigger rules, lifecycle overrides, custom signals and derived mapping fields
are all written as Python-like expressions, for example::

    usage_prev_30d > 0 and usage_change_pct <= -40
    'gold' if arr >= 100000 else 'silver'
    MonthlyCharges * 12

The text is parsed with :mod:`ast` and only a whitelist of node types is
accepted, so a model file can never run arbitrary code. Each name is resolved
by the caller (a column, a signal, a constant) and the result is an Ibis
expression: one vectorized column over all rows, never a per-row Python call.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir

from touchmodel.errors import ExpressionError

Resolver = Callable[[str], ir.Value]
MAX_LENGTH = 2000
Function = Callable[..., ir.Value]

_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}

_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Mod: operator.mod,
}


def _safe_div(a: ir.Value, b: ir.Value) -> ir.Value:
    # Backends disagree on x/0 (NULL, inf or an error); NULL is the one that
    # composes with the "missing input" rules everywhere else.
    return ibis.ifelse(b == 0, ibis.null(), a / b)


def _days_between(start: ir.Value, end: ir.Value) -> ir.Value:
    return end.cast("date").delta(start.cast("date"), unit="day")


def _add_days(d: ir.Value, n: ir.Value) -> ir.Value:
    if isinstance(n, int):
        return d.cast("date") + ibis.interval(days=n)
    return d.cast("date") + n.cast("int32").as_interval("D")


def _add_months(d: ir.Value, n: ir.Value) -> ir.Value:
    if isinstance(n, int):
        return d.cast("date") + ibis.interval(months=n)
    return d.cast("date") + n.cast("int32").as_interval("M")


def _to_value(x: Any) -> ir.Value:
    return x if isinstance(x, ir.Value) else ibis.literal(x)


BUILTIN_FUNCTIONS: dict[str, Function] = {
    "coalesce": lambda *xs: ibis.coalesce(*[_to_value(x) for x in xs]),
    "abs": lambda x: _to_value(x).abs(),
    "min": lambda *xs: ibis.least(*[_to_value(x) for x in xs]),
    "max": lambda *xs: ibis.greatest(*[_to_value(x) for x in xs]),
    "round": lambda x, n=0: _to_value(x).round(n),
    "is_null": lambda x: _to_value(x).isnull(),
    "not_null": lambda x: _to_value(x).notnull(),
    "lower": lambda x: _to_value(x).lower(),
    "upper": lambda x: _to_value(x).upper(),
    "strip": lambda x: _to_value(x).strip(),
    "contains": lambda x, s: _to_value(x).contains(s),
    "matches": lambda x, pattern: _to_value(x).re_search(pattern),
    "number": lambda x: _to_value(x).try_cast("float64"),
    "integer": lambda x: _to_value(x).try_cast("int64"),
    "text": lambda x: _to_value(x).cast("string"),
    "date": lambda x: _to_value(x).try_cast("date"),
    "days_between": lambda a, b: _days_between(_to_value(a), _to_value(b)),
    "add_days": lambda d, n: _add_days(_to_value(d), n),
    "add_months": lambda d, n: _add_months(_to_value(d), n),
}


@dataclass
class Scope:
    """What an expression may refer to: names and functions beyond the built-ins."""

    resolve: Resolver
    functions: Mapping[str, Function] = field(default_factory=dict)


def parse(text: str) -> ast.expr:
    """Parse ``text`` into an AST, rejecting anything outside the whitelist."""
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(str(text), "an expression must be a non-empty string")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(text[:60] + "...", f"longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(text, f"syntax error at column {exc.offset}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(text[:60] + "...", "nested too deeply") from None
    allowed = (
        ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
        ast.Compare, ast.BinOp, ast.IfExp, ast.Call, ast.Name, ast.Load, ast.Constant,
        ast.List, ast.Tuple, ast.In, ast.NotIn, ast.Div, ast.FloorDiv,
        *_COMPARE, *_ARITH,
    )  # fmt: skip
    for node in ast.walk(tree):
        if not isinstance(node, allowed):
            raise ExpressionError(text, f"{type(node).__name__} is not allowed in expressions")
        if isinstance(node, ast.Call) and (node.keywords or not isinstance(node.func, ast.Name)):
            raise ExpressionError(text, "only plain calls like coalesce(a, b) are allowed")
    return tree.body


def referenced_names(text: str) -> set[str]:
    """Names (not function names) an expression refers to, for static checks."""
    tree = parse(text)
    called = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call)}  # type: ignore[attr-defined]
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return names - called


def called_functions(text: str) -> list[tuple[str, list[Any]]]:
    """Function calls with their constant arguments, e.g. ``[('fired', ['risk.*'])]``."""
    out = []
    for node in ast.walk(parse(text)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            args = [a.value if isinstance(a, ast.Constant) else None for a in node.args]
            out.append((node.func.id, args))
    return out


def compile_expr(text: str, scope: Scope) -> ir.Value:
    """Compile ``text`` into an Ibis value expression within ``scope``."""
    tree = parse(text)
    functions = {**BUILTIN_FUNCTIONS, **scope.functions}

    def ev(node: ast.expr) -> Any:
        if isinstance(node, ast.Constant):
            if node.value is None:
                return ibis.null()
            return ibis.literal(node.value)
        if isinstance(node, ast.Name):
            if node.id in ("true", "false"):
                return ibis.literal(node.id == "true")
            if node.id == "null":
                return ibis.null()
            return scope.resolve(node.id)
        if isinstance(node, ast.BoolOp):
            values = [ev(v) for v in node.values]
            out = values[0]
            for v in values[1:]:
                out = (out & v) if isinstance(node.op, ast.And) else (out | v)
            return out
        if isinstance(node, ast.UnaryOp):
            v = ev(node.operand)
            if isinstance(node.op, ast.Not):
                return ~v
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            a, b = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Div):
                return _safe_div(a, b)
            if isinstance(node.op, ast.FloorDiv):
                return _safe_div(a, b).floor()
            return _ARITH[type(node.op)](a, b)
        if isinstance(node, ast.Compare):
            left = ev(node.left)
            result = None
            for op, comp in zip(node.ops, node.comparators, strict=True):
                if isinstance(op, ast.In | ast.NotIn):
                    if not isinstance(comp, ast.List | ast.Tuple):
                        raise ExpressionError(
                            text, "'in' needs a literal list, e.g. x in ['a', 'b']"
                        )
                    options = [c.value for c in comp.elts if isinstance(c, ast.Constant)]
                    if len(options) != len(comp.elts):
                        raise ExpressionError(text, "'in' lists may hold constants only")
                    part = left.isin(options)
                    part = ~part if isinstance(op, ast.NotIn) else part
                    right = None
                else:
                    right = ev(comp)
                    part = _COMPARE[type(op)](left, right)
                result = part if result is None else (result & part)
                left = right if right is not None else left
            return result
        if isinstance(node, ast.IfExp):
            return ibis.ifelse(ev(node.test), ev(node.body), ev(node.orelse))
        if isinstance(node, ast.Call):
            name = node.func.id  # type: ignore[attr-defined]
            fn = functions.get(name)
            if fn is None:
                known = ", ".join(sorted(functions))
                raise ExpressionError(text, f"unknown function {name!r} (known: {known})")
            args = []
            for a in node.args:
                # Plain ints stay Python ints: interval arithmetic needs them literal.
                if isinstance(a, ast.Constant) and isinstance(a.value, int | str):
                    args.append(a.value)
                else:
                    args.append(ev(a))
            try:
                return fn(*args)
            except ExpressionError:
                raise
            except Exception as exc:  # ibis type errors, wrong arity
                raise ExpressionError(text, f"{name}(): {exc}") from None
        if isinstance(node, ast.List | ast.Tuple):
            raise ExpressionError(text, "lists are only allowed after 'in'")
        raise ExpressionError(text, f"{type(node).__name__} is not supported")

    try:
        return ev(tree)
    except ExpressionError:
        raise
    except KeyError as exc:
        raise ExpressionError(text, f"unknown name {exc.args[0]!r}") from None
    except Exception as exc:  # ibis refuses e.g. comparing a date with a number
        raise ExpressionError(text, f"{type(exc).__name__}: {exc}") from None

"""Safe arithmetic: numbers, + - * / // % ** and parentheses, and nothing else.

The expression is parsed with ``ast`` and walked by hand; no name, call,
attribute or subscript is ever evaluated. Powers and results are bounded so an
expression cannot exhaust memory or CPU (``9**9**9``).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

MAX_EXPRESSION = 1000
MAX_EXPONENT = 1000
MAX_INT_BITS = 4096

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


class CalculationError(ValueError):
    pass


def _walk(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _walk(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        if isinstance(node.value, bool):
            raise CalculationError("booleans are not numbers here")
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _checked(_UNARY[type(node.op)](_walk(node.operand)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _walk(node.left), _walk(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT and abs(left) > 1:
            raise CalculationError("exponent too large")
        return _checked(_BINARY[type(node.op)](left, right))
    raise CalculationError(f"unsupported element: {type(node).__name__}")


def _checked(value: Any) -> Number:
    if isinstance(value, complex):
        raise CalculationError("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculationError("the result is too large")
    if isinstance(value, float) and (math.isinf(value) or math.isnan(value)):
        raise CalculationError("the result is too large")
    result: Number = value
    return result


def calculate(expression: str) -> Number:
    """Evaluate ``expression``; raise ``CalculationError`` with a reason on failure."""
    text = expression.strip()
    if not text:
        raise CalculationError("the expression is empty")
    if len(text) > MAX_EXPRESSION:
        raise CalculationError("the expression is too long")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError as exc:
        raise CalculationError("invalid syntax") from exc
    try:
        return _walk(tree)
    except ZeroDivisionError as exc:
        raise CalculationError("division by zero") from exc
    except OverflowError as exc:
        raise CalculationError("the result is too large") from exc


def format_number(value: Number) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value:.6f}".rstrip("0").rstrip(".")


def evaluate(expression: str) -> str:
    """The text an agent sees: the result, or ``Error: <reason>``."""
    try:
        return format_number(calculate(expression))
    except CalculationError as exc:
        return f"Error: {exc}"

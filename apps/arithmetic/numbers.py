"""Exact arithmetic on query-string operands, for calc (/sum, /sub) and mult (/mult).

An operand written without a point or exponent ("42", "-7") is a Python `int`, so integer
results stay integers of any size. Anything else ("1.5", "2e3") is a `Decimal`, so 0.1 + 0.2
is 0.3 exactly. Results are computed in a decimal context that refuses to round: a result
that would need more than `PRECISION` significant digits, or an exponent beyond `MAX_EXPONENT`,
raises `ResultError` (a 400), never a silently rounded number and never a 500.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Callable
from decimal import Decimal

Number = int | Decimal
Operation = Callable[[Number, Number], Number]

#: Longest operand accepted, in characters (a longer one is refused before any parsing).
MAX_OPERAND_CHARS = 64
#: Significant digits a decimal result may have. Two 63-digit operands multiply into at most
#: 126 digits, so every product fits; a sum of operands with far-apart exponents may not.
PRECISION = 200
#: Largest (and, negated, smallest) adjusted exponent of a decimal result.
MAX_EXPONENT = 999_999

# ASCII digits only: `int()` and `Decimal()` also accept other scripts' digits, spaces and "_".
_INTEGER = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NOT_FINITE = re.compile(r"[+-]?(?:nan|snan|inf|infinity)", re.IGNORECASE)

_EXACT = decimal.Context(
    prec=PRECISION,
    Emax=MAX_EXPONENT,
    Emin=-MAX_EXPONENT,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow,
           decimal.Underflow, decimal.Inexact],
)


class OperandError(ValueError):
    """An operand is missing or is not a finite number we accept; `operand` names it."""

    def __init__(self, operand: str, problem: str) -> None:
        super().__init__(f"{operand}: {problem}")
        self.operand = operand
        self.problem = problem


class ResultError(ValueError):
    """The result cannot be given exactly (too many digits, or an exponent out of range)."""


def parse_operand(name: str, raw: str | None) -> Number:
    """`raw` as an int (no point, no exponent) or an exact Decimal; OperandError otherwise."""
    if raw is None:
        raise OperandError(name, "missing")
    if raw == "":
        raise OperandError(name, "empty")
    if len(raw) > MAX_OPERAND_CHARS:
        raise OperandError(name, f"longer than {MAX_OPERAND_CHARS} characters")
    if _INTEGER.fullmatch(raw):
        return int(raw)
    if _DECIMAL.fullmatch(raw):
        value = Decimal(raw)
        if abs(value.adjusted()) > MAX_EXPONENT:
            raise OperandError(name, f"exponent out of range (at most {MAX_EXPONENT})")
        return value
    if _NOT_FINITE.fullmatch(raw):
        raise OperandError(name, "not a finite number")
    raise OperandError(name, "not a number")


def exact(operation: Operation, left: Number, right: Number) -> Number:
    """`operation(left, right)`, exact: ints stay ints, decimals are never rounded."""
    if isinstance(left, int) and isinstance(right, int):
        return operation(left, right)
    out_of_range = ResultError(f"result exponent out of range (at most {MAX_EXPONENT})")
    try:
        with decimal.localcontext(_EXACT):
            result = Decimal(operation(Decimal(left), Decimal(right)))
    # Overflow and underflow are also inexact: they must be told apart first.
    except (decimal.Overflow, decimal.Underflow):
        raise out_of_range from None
    except decimal.Inexact:
        raise ResultError(f"result needs more than {PRECISION} significant digits") from None
    # An exact result may still fall below Emin without underflowing: a subnormal
    # (1e-999999 * 1e-10) or a zero with a tiny exponent (1.0e-999999 - 1e-999999).
    exponent = result.as_tuple().exponent if result.is_zero() else result.adjusted()
    if not isinstance(exponent, int) or abs(exponent) > MAX_EXPONENT:
        raise out_of_range
    return result


def json_number(value: Number) -> str:
    """`value` as a JSON number token, with every digit it has ("6", "0.30", "1E+3")."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"not a finite number: {value}")
    # str() of an int or a finite Decimal is always valid JSON number syntax.
    return str(value)

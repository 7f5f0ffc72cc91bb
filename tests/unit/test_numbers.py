"""Operand parsing and exact arithmetic shared by calc and mult."""

import operator
from decimal import Decimal

import pytest

from apps.arithmetic.numbers import (
    MAX_OPERAND_CHARS,
    OperandError,
    ResultError,
    exact,
    json_number,
    parse_operand,
)


@pytest.mark.parametrize(("raw", "expected"), [
    ("42", 42), ("-7", -7), ("+3", 3), ("007", 7), ("-0", 0),
    ("1.5", Decimal("1.5")), ("-.5", Decimal("-0.5")), ("5.", Decimal("5")),
    ("2e3", Decimal("2E+3")), ("1E-2", Decimal("0.01")),
    ("9" * MAX_OPERAND_CHARS, int("9" * MAX_OPERAND_CHARS)),
])
def test_parse_keeps_integers_as_int_and_the_rest_as_exact_decimal(raw, expected):
    value = parse_operand("op1", raw)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("raw", "problem"), [
    (None, "missing"),
    ("", "empty"),
    ("abc", "not a number"),
    ("1,5", "not a number"),
    ("0x10", "not a number"),
    ("1_000", "not a number"),  # int() would accept it
    (" 1", "not a number"),  # so would Decimal()
    ("١٢", "not a number"),  # Arabic-Indic digits: int() accepts them too
    (".", "not a number"),
    ("1e", "not a number"),
    ("NaN", "not a finite number"),
    ("-Infinity", "not a finite number"),
    ("inf", "not a finite number"),
    ("sNaN", "not a finite number"),
    ("1" * (MAX_OPERAND_CHARS + 1), f"longer than {MAX_OPERAND_CHARS} characters"),
    ("1e1000000", "exponent out of range (at most 999999)"),
])
def test_parse_refuses_with_the_operand_named(raw, problem):
    with pytest.raises(OperandError) as caught:
        parse_operand("op2", raw)
    assert caught.value.operand == "op2"
    assert caught.value.problem == problem


@pytest.mark.parametrize(("op", "left", "right", "expected"), [
    (operator.mul, 2, 3, "6"),
    (operator.add, Decimal("0.1"), Decimal("0.2"), "0.3"),
    (operator.sub, Decimal("0.3"), Decimal("0.1"), "0.2"),
    (operator.mul, Decimal("2.0"), 3, "6.0"),
    (operator.mul, Decimal("1.1"), Decimal("1.1"), "1.21"),
    (operator.add, 10**63, 1, "1" + "0" * 62 + "1"),
    (operator.mul, 10**63 - 1, 10**63 - 1, str((10**63 - 1) ** 2)),
    (operator.mul, Decimal("9" * 31 + "." + "9" * 31), Decimal("9" * 31 + "." + "9" * 31),
     "9" * 61 + "8." + "0" * 61 + "1"),  # the default context would round it to 28 digits
])
def test_results_are_exact(op, left, right, expected):
    result = exact(op, left, right)
    assert json_number(result) == expected
    assert isinstance(result, int) == (isinstance(left, int) and isinstance(right, int))


@pytest.mark.parametrize(("op", "left", "right", "problem"), [
    (operator.mul, Decimal("1e999999"), Decimal("10"), "exponent out of range"),
    (operator.mul, Decimal("1e-999999"), Decimal("1e-999999"), "exponent out of range"),
    (operator.add, Decimal("1e500"), Decimal("1e-500"), "more than 200 significant digits"),
    (operator.mul, Decimal("1e-999999"), Decimal("1e-10"), "exponent out of range"),  # subnormal
    (operator.sub, Decimal("1.0e-999999"), Decimal("1e-999999"), "exponent out of range"),  # 0E-1000000
])
def test_a_result_that_cannot_be_exact_is_refused(op, left, right, problem):
    with pytest.raises(ResultError, match=problem):
        exact(op, left, right)


def test_json_number_refuses_what_is_not_a_finite_number():
    for bad in (True, 1.5, "1", Decimal("NaN"), Decimal("Infinity")):
        with pytest.raises((TypeError, ValueError)):
            json_number(bad)  # type: ignore[arg-type]

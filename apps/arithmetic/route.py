"""One arithmetic route: read op1 and op2 from the query string, answer exactly or 400.

calc's /sum and /sub and mult's /mult parse, refuse and answer alike: this is that answer,
written once for both.
"""

from __future__ import annotations

import json

from pydantic import BaseModel
from quart import Response, request

from apps.arithmetic.numbers import (
    Number,
    OperandError,
    Operation,
    ResultError,
    exact,
    json_number,
    parse_operand,
)
from apps.kit.app import error, service_app
from apps.kit.openapi import query_param

OPERANDS = ("op1", "op2")

_OPERAND = ("an integer of any size, or a decimal (1.5, 2e3) computed exactly; at most 64 "
            "characters, given once")


class Operands(BaseModel):
    """The query string of an arithmetic route (documentation: `_operand` reads it)."""

    op1: str = query_param(_OPERAND, examples=["6"])
    op2: str = query_param(_OPERAND, examples=["7"])


class Result(BaseModel):
    """An arithmetic answer: integers stay integers, decimals keep every digit."""

    op1: int | float
    op2: int | float
    result: int | float
    served_by: str


def _operand(name: str) -> Number:
    values = request.args.getlist(name)
    if len(values) > 1:
        raise OperandError(name, "given more than once")
    return parse_operand(name, values[0] if values else None)


def answer(operation: Operation) -> Response:
    """`{"op1", "op2", "result", "served_by"}` for this request, or a JSON 400 naming the problem.

    The body is written by hand because json.dumps has no way to write a Decimal as a number
    with all its digits; strings still go through json.dumps.
    """
    try:
        op1, op2 = (_operand(name) for name in OPERANDS)
        result = exact(operation, op1, op2)
    except OperandError as exc:
        return error(400, f"invalid operand {exc.operand}: {exc.problem}", operand=exc.operand)
    except ResultError as exc:
        return error(400, str(exc), operand="result")
    served_by = json.dumps(service_app().settings.instance_id)
    body = (f'{{"op1": {json_number(op1)}, "op2": {json_number(op2)}, '
            f'"result": {json_number(result)}, "served_by": {served_by}}}')
    return Response(body, content_type="application/json")

"""calc's and mult's routes, in-process on fakeredis."""

import json
from decimal import Decimal

import pytest

from apps.calc.app import create_app as create_calc
from apps.calc.settings import CalcSettings
from apps.mult.app import create_app as create_mult
from apps.mult.settings import MultSettings


@pytest.fixture
async def calc(redis, started):
    async with started(create_calc(CalcSettings(instance_id="calc-1"), redis=redis)) as client:
        yield client


@pytest.fixture
async def mult(redis, started):
    async with started(create_mult(MultSettings(instance_id="mult-a"), redis=redis)) as client:
        yield client


async def body_of(response):
    """The JSON body with decimals read exactly (json.loads would make them floats)."""
    return json.loads(await response.get_data(as_text=True), parse_float=Decimal)


@pytest.mark.parametrize(("path", "expected"), [
    ("/sum?op1=2&op2=3", {"op1": 2, "op2": 3, "result": 5}),
    ("/sub?op1=2&op2=3", {"op1": 2, "op2": 3, "result": -1}),
    ("/sum?op1=0.1&op2=0.2", {"op1": Decimal("0.1"), "op2": Decimal("0.2"), "result": Decimal("0.3")}),
    ("/sub?op1=1.50&op2=1", {"op1": Decimal("1.50"), "op2": 1, "result": Decimal("0.50")}),
    ("/sum?op1=99999999999999999999&op2=1", {"op1": 10**20 - 1, "op2": 1, "result": 10**20}),
])
async def test_calc_answers_exactly_and_says_who_served(calc, path, expected):
    response = await calc.get(path)
    assert response.status_code == 200
    assert response.content_type == "application/json"
    body = await body_of(response)
    assert body == {**expected, "served_by": "calc-1"}
    assert type(body["result"]) is type(expected["result"])


async def test_integers_stay_integers_on_the_wire(mult):
    response = await mult.get("/mult?op1=2&op2=3")
    assert await response.get_data(as_text=True) == (
        '{"op1": 2, "op2": 3, "result": 6, "served_by": "mult-a"}')


async def test_mult_is_exact_on_decimals_and_big_integers(mult):
    body = await body_of(await mult.get("/mult?op1=0.1&op2=3"))
    assert body["result"] == Decimal("0.3")
    big = "9" * 64
    body = await body_of(await mult.get(f"/mult?op1={big}&op2={big}"))
    assert body["result"] == int(big) ** 2


async def test_calc_says_it_is_working(calc):
    body = await (await calc.get("/calc")).get_json()
    assert body == {"status": "calc is working", "service": "calc", "version": "0.1.0",
                    "instance": "calc-1"}


@pytest.mark.parametrize(("query", "operand", "problem"), [
    ("op2=1", "op1", "missing"),
    ("op1=1", "op2", "missing"),
    ("", "op1", "missing"),
    ("op1=&op2=1", "op1", "empty"),
    ("op1=1&op2=abc", "op2", "not a number"),
    ("op1=NaN&op2=1", "op1", "not a finite number"),
    ("op1=1&op2=Infinity", "op2", "not a finite number"),
    ("op1=-inf&op2=1", "op1", "not a finite number"),
    ("op1=1&op2=" + "1" * 65, "op2", "longer than 64 characters"),
    ("op1=1&op1=2&op2=3", "op1", "given more than once"),
])
@pytest.mark.parametrize("path", ["/sum", "/sub", "/mult"])
async def test_bad_operands_are_a_400_naming_them(calc, mult, path, query, operand, problem):
    client = mult if path == "/mult" else calc
    response = await client.get(f"{path}?{query}")
    assert response.status_code == 400
    body = await response.get_json()
    assert body == {"error": f"invalid operand {operand}: {problem}", "operand": operand, "status": 400}


@pytest.mark.parametrize(("path", "problem"), [
    ("/mult?op1=1e999999&op2=1e999999", "result exponent out of range (at most 999999)"),
    ("/sum?op1=1e500&op2=1e-500", "result needs more than 200 significant digits"),
])
async def test_a_result_that_cannot_be_exact_is_a_400_not_a_500(calc, mult, path, problem):
    client = mult if path.startswith("/mult") else calc
    response = await client.get(path)
    assert response.status_code == 400
    assert (await response.get_json())["error"] == problem


async def test_only_get(calc):
    response = await calc.post("/sum?op1=1&op2=2")
    assert response.status_code == 405
    assert (await response.get_json())["status"] == 405

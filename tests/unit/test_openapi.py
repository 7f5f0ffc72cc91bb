"""Every service's /openapi.json describes its parameters and answers, and the answers match."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import TypeAdapter

from apps.aggregator.app import create_app as create_aggregator
from apps.arithmetic.route import Result
from apps.broker.app import create_app as create_broker
from apps.calc.app import create_app as create_calc
from apps.directory.app import create_app as create_directory
from apps.jokes.app import create_app as create_jokes
from apps.kit.app import ServiceApp
from apps.kit.openapi import ErrorBody
from apps.messages.app import create_app as create_messages
from apps.mult.app import create_app as create_mult
from apps.player.app import create_app as create_player
from apps.users.app import create_app as create_users
from apps.weather.app import create_app as create_weather
from apps.weather.report import Report

#: Every service with a JSON API (the web front serves HTML pages and an event stream).
FACTORIES: dict[str, Callable[..., ServiceApp]] = {
    "aggregator": create_aggregator, "broker": create_broker, "calc": create_calc,
    "directory": create_directory, "jokes": create_jokes, "messages": create_messages,
    "mult": create_mult, "ping": create_player, "users": create_users, "weather": create_weather,
}
HISTORY = {"limit": False, "before": False, "after": False}
SEARCH = {"q": True, "limit": False, "before": False}
#: Routes and the query parameters they must list (name: required).
QUERIES = {"/fullinfo": {"city": True}, "/weather": {"city": True},
           "/sum": {"op1": True, "op2": True}, "/sub": {"op1": True, "op2": True},
           "/mult": {"op1": True, "op2": True}, "/api/messages/{channel}": HISTORY,
           "/internal/history/{channel}": HISTORY,
           "/internal/history/private/{first}/{second}": HISTORY,
           "/api/messages/search/{channel}": SEARCH, "/api/messages/search/private/{party}": SEARCH,
           "/internal/history/search/{channel}": {**SEARCH, "method": False}}
UNDESCRIBED = {"/metrics"}  # Prometheus text, not JSON
NO_CONTENT = {"/api/users/logout"}  # 204


async def openapi(name: str, redis) -> dict:
    app = FACTORIES[name](redis=redis)
    response = await app.test_client().get("/openapi.json")
    assert response.status_code == 200
    return await response.get_json()


@pytest.mark.parametrize("name", sorted(FACTORIES))
async def test_every_route_describes_its_answers_and_query(name, redis):
    spec = await openapi(name, redis)
    assert spec["info"]["title"] == ("ping" if name == "ping" else name)
    for path, methods in spec["paths"].items():
        if path in UNDESCRIBED:
            continue
        for method, operation in methods.items():
            responses = operation.get("responses", {})
            ok = [status for status in responses if status.startswith("2")]
            assert ok or path in NO_CONTENT, f"{method.upper()} {path} describes no success answer"
            for status, answer in responses.items():
                assert "schema" in answer["content"]["application/json"], (path, status)
            listed = {p["name"]: bool(p.get("required")) for p in operation.get("parameters", [])
                      if p["in"] == "query"}
            assert listed == QUERIES.get(path, {}), path


async def test_fullinfo_lists_its_errors_and_the_body_of_an_error(redis):
    operation = (await openapi("aggregator", redis))["paths"]["/fullinfo"]["get"]
    assert set(operation["responses"]) == {"200", "400", "404", "502"}
    assert operation["responses"]["400"]["content"]["application/json"]["schema"]["required"] == [
        "error", "status"]


async def test_a_json_body_is_described(redis):
    spec = await openapi("broker", redis)
    body = spec["paths"]["/messages"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"to", "kind"} <= set(body.get("properties", {})) or "$ref" in body


async def test_the_swagger_ui_is_served_at_docs(redis):
    response = await create_calc(redis=redis).test_client().get("/docs")
    assert response.status_code == 200 and "swagger" in (await response.get_data(as_text=True)).lower()


# What the description says is what the routes answer.

async def test_arithmetic_answers_and_errors_match_their_models(redis, started):
    for factory, path in ((create_calc, "/sum?op1=2&op2=0.5"), (create_mult, "/mult?op1=6&op2=7")):
        async with started(factory(redis=redis)) as client:
            Result.model_validate(await (await client.get(path)).get_json())
            bad = await client.get(path.replace("op1=", "op1=x"))
            assert bad.status_code == 400
            ErrorBody.model_validate(await bad.get_json())


async def test_weather_answers_match_their_models(redis, started):
    async with started(create_weather(redis=redis)) as client:
        TypeAdapter(Report).validate_python(await (await client.get("/weather?city=Rodez")).get_json())
        ErrorBody.model_validate(await (await client.get("/weather")).get_json())


async def test_directory_and_kit_answers_match_their_models(redis, started):
    from apps.directory.app import ServiceInstances, Services
    from apps.kit.app import Health, Readiness

    async with started(create_directory(redis=redis)) as client:
        Services.model_validate(await (await client.get("/directory")).get_json())
        ServiceInstances.model_validate(await (await client.get("/directory/directory")).get_json())
        Health.model_validate(await (await client.get("/health")).get_json())
        Readiness.model_validate(await (await client.get("/ready")).get_json())

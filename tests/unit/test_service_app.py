"""The kit's app factory: the plumbing every service gets."""

import asyncio
import json

import pytest
from pydantic import BaseModel, Field
from quart import abort
from quart_schema import validate_querystring

from apps.kit.app import create_app
from apps.kit.settings import KitSettings


class SquareQuery(BaseModel):
    n: int = Field(ge=0, le=1000)


def make_app(redis, **settings):
    app = create_app(KitSettings(service_name="calc", instance_id="calc-1", port=5101, **settings),
                     import_name=__name__, redis=redis)

    @app.get("/boom")
    async def boom():
        raise RuntimeError("secret internals")

    @app.get("/counter")
    async def counter():
        return {"n": await app.runtime.redis.incr("canaduck:test:counter")}

    @app.get("/teapot")
    async def teapot():
        abort(418)

    @app.get("/square")
    @validate_querystring(SquareQuery)
    async def square(query_args: SquareQuery):
        return {"square": query_args.n ** 2}

    @app.post("/keys")
    async def keys():
        from quart import request
        return {"keys": sorted(await request.get_json())}

    @app.websocket("/live")
    async def live():
        from quart import websocket
        await websocket.accept()
        await websocket.send("hello")

    @app.post("/echo")
    async def echo():
        from quart import request
        return {"size": len(await request.get_data())}

    return app


async def test_health_and_ready_once_registered(redis, started):
    async with started(make_app(redis)) as client:
        health = await client.get("/health")
        assert health.status_code == 200
        assert (await health.get_json())["service"] == "calc"
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert (await ready.get_json())["registered"] is True
        assert await redis.hexists("canaduck:directory:calc", "calc-1")


async def test_ready_is_503_before_registration_and_after_withdrawal(redis, started):
    app = make_app(redis)
    client = app.test_client()  # not started: never registered
    response = await client.get("/ready")
    assert response.status_code == 503
    assert (await response.get_json())["error"] == "not ready"
    async with started(app) as client:
        await app.runtime.withdraw()
        assert (await client.get("/ready")).status_code == 503
        assert not await redis.hexists("canaduck:directory:calc", "calc-1")


async def test_stop_deregisters(redis, started):
    async with started(make_app(redis)):
        assert await redis.hexists("canaduck:directory:calc", "calc-1")
    assert not await redis.hexists("canaduck:directory:calc", "calc-1")


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nowhere", 404), ("DELETE", "/health", 405), ("GET", "/teapot", 418)],
)
async def test_http_errors_are_json(redis, method, path, status):
    response = await make_app(redis).test_client().open(path, method=method)
    assert response.status_code == status
    assert response.content_type == "application/json"
    body = await response.get_json()
    assert body["status"] == status and body["error"]


async def test_405_says_which_methods_are_allowed(redis):
    response = await make_app(redis).test_client().delete("/health")
    assert "GET" in response.headers["Allow"]


async def test_a_plain_request_to_a_websocket_route_is_a_json_426_naming_the_upgrade(redis):
    client = make_app(redis).test_client()
    response = await client.get("/live")
    assert response.status_code == 426
    assert (response.headers["Upgrade"], response.headers["Connection"]) == ("websocket", "Upgrade")
    body = await response.get_json()
    assert body["error"] == "upgrade required" and "/live" in body["detail"]
    async with client.websocket("/live") as socket:  # the WebSocket itself still works
        assert await socket.receive() == "hello"


async def test_unexpected_error_is_a_json_500_without_the_traceback(redis):
    response = await make_app(redis).test_client().get("/boom")
    assert response.status_code == 500
    text = await response.get_data(as_text=True)
    assert json.loads(text)["error"] == "internal error"
    assert "secret internals" not in text and "Traceback" not in text


async def test_redis_down_is_a_json_503_naming_it_not_a_500(redis, fake_server):
    client = make_app(redis).test_client()
    assert (await client.get("/counter")).status_code == 200
    fake_server.connected = False
    response = await client.get("/counter")
    assert response.status_code == 503
    assert (await response.get_json())["error"] == "Redis unavailable"
    assert response.headers["Retry-After"] == "1"


async def test_body_over_the_limit_is_a_json_413(redis):
    client = make_app(redis, max_body_bytes=1024).test_client()
    assert (await client.post("/echo", data=b"x" * 1000)).status_code == 200
    response = await client.post("/echo", data=b"x" * 2000)
    assert response.status_code == 413
    assert (await response.get_json())["status"] == 413


async def test_request_id_is_kept_or_made_and_returned(redis):
    client = make_app(redis).test_client()
    kept = await client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    made = await client.get("/health")
    assert len(made.headers["X-Request-ID"]) == 32
    forged = await client.get("/health", headers={"X-Request-ID": "<script>"})
    assert forged.headers["X-Request-ID"] != "<script>"


async def test_request_id_is_in_the_log_line(redis, caplog):
    from apps.kit.logs import JsonFormatter

    caplog.set_level("INFO", logger="canaduck.http")
    await make_app(redis).test_client().get("/nowhere", headers={"X-Request-ID": "trace-me"})
    record = next(r for r in caplog.records if r.name == "canaduck.http")
    line = json.loads(JsonFormatter("calc", "calc-1").format(record))
    assert line["request_id"] == "trace-me" and line["status"] == 404


async def test_metrics_count_requests_per_route(redis):
    client = make_app(redis).test_client()
    for _ in range(3):
        await client.get("/health")
    await client.get("/nowhere")
    text = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'http_requests_total{method="GET",route="/health",status="200"} 3.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "http_request_duration_seconds_bucket" in text


@pytest.mark.parametrize("query", ["", "?n=abc", "?n=-1"])
async def test_validation_errors_are_400s_naming_the_field(redis, query):
    response = await make_app(redis).test_client().get(f"/square{query}")
    assert response.status_code == 400
    body = await response.get_json()
    assert body["problems"][0]["field"] == "n"
    assert body["error"].startswith("invalid n:")


async def test_valid_query_passes(redis):
    response = await make_app(redis).test_client().get("/square?n=12&unknown=ignored")
    assert (await response.get_json()) == {"square": 144}


async def test_openapi_is_served(redis):
    spec = await (await make_app(redis).test_client().get("/openapi.json")).get_json()
    assert "/square" in spec["paths"]


@pytest.mark.parametrize("body, problem", [
    ('{"a": "\\ud800"}', "hex escape"),          # a lone surrogate: valid to json, not to UTF-8
    ("[" * 300 + "]" * 300, "recursion limit"),    # deeper than anything could write back
    ('{"a": NaN}', "expected value"),
    ("{'a': 1}", "key must be a string"),
    ("", "EOF"),
])
async def test_a_body_that_is_not_strict_json_is_a_400_saying_why(redis, body, problem):
    client = make_app(redis).test_client()
    response = await client.post("/keys", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    answer = await response.get_json()
    assert answer["error"] == "bad request"
    assert answer["detail"].startswith("body is not valid JSON") and problem in answer["detail"]


@pytest.mark.parametrize("body", [b'{"a": "caf\xe9"}', b"\xff\xfe{}", b'{"a": "\xed\xa0\x80"}'])
async def test_a_json_body_that_is_not_utf8_is_a_400_saying_so(redis, body):
    client = make_app(redis).test_client()
    response = await client.post("/keys", data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    answer = await response.get_json()
    assert answer["detail"].startswith("body is not valid JSON: not UTF-8")


async def test_a_strict_json_body_passes(redis):
    client = make_app(redis).test_client()
    response = await client.post("/keys", json={"b": 1, "a": {"deep": [1, 2.5, "é"]}})
    assert (await response.get_json())["keys"] == ["a", "b"]


def test_redis_credentials_come_from_one_place():
    from pydantic import ValidationError

    KitSettings(redis_url="redis://redis:6379/0", redis_username="calc", redis_password="a/b#c")
    KitSettings(redis_url="redis://calc:secret@redis:6379/0")
    with pytest.raises(ValidationError, match="give one"):
        KitSettings(redis_url="redis://calc:secret@redis:6379/0", redis_password="other")
    assert "a/b#c" not in repr(KitSettings(redis_password="a/b#c"))


@pytest.mark.parametrize("name", ["x" * 300, "a/" * 3000])
async def test_a_static_file_name_no_file_system_holds_is_a_json_404(redis, name):
    response = await make_app(redis).test_client().get(f"/static/{name}")
    assert response.status_code == 404
    assert (await response.get_json())["status"] == 404


async def test_every_service_shows_its_event_loop_lag_on_metrics(redis, started):
    async with started(make_app(redis, loop_lag_interval=0.01)) as client:
        await asyncio.sleep(0.1)
        text = await (await client.get("/metrics")).get_data(as_text=True)
    samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if not line.startswith("#"))
    assert float(samples["canaduck_event_loop_lag_seconds_count"]) >= 3

"""The aggregator on fakeredis, with weather and jokes mocked through an httpx MockTransport."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import pytest

from apps.aggregator.app import create_app
from apps.aggregator.settings import AggregatorSettings
from apps.kit.clock import SYSTEM_CLOCK
from apps.kit.directory import Directory, Entry
from apps.kit.names import Keys
from scripts.devkit import wait_until_async
from scripts.devkit.clock import ManualClock

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]
WEATHER_KEY = "canaduck:cache:weather:rodez"


async def weather_ok(request: httpx.Request) -> httpx.Response:
    city = request.url.params["city"]
    return httpx.Response(200, json={"city": city, "temperature": 12.5, "condition": "nuageux",
                                     "source": "synthetic"})


async def joke_ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"id": "0123456789ab", "joke": "Coin-coin !"})


async def refused(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def answering(status: int, **kwargs) -> Handler:
    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, **kwargs)
    return handler


def slow(handler: Handler, seconds: float) -> Handler:
    async def delayed(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(seconds)
        return await handler(request)
    return delayed


class Upstreams:
    """Fake weather and jokes services, by host name; counts the calls each gets."""

    def __init__(self) -> None:
        self.handlers: dict[str, Handler] = {"weather.test": weather_ok, "jokes.test": joke_ok}
        self.calls: Counter[str] = Counter()
        self.cities: list[str] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.calls[host] += 1
        if "city" in request.url.params:
            self.cities.append(request.url.params["city"])
        return await self.handlers[host](request)


@pytest.fixture
def upstreams() -> Upstreams:
    return Upstreams()


def make_app(redis, upstreams, clock=SYSTEM_CLOCK, **settings):
    defaults = {"instance_id": "aggregator-1", "weather_url": "http://weather.test",
                "jokes_url": "http://jokes.test", "upstream_timeout": 1.0}
    return create_app(AggregatorSettings(**{**defaults, **settings}), redis=redis,
                      http_transport=httpx.MockTransport(upstreams), clock=clock)


def pin_clock(app) -> ManualClock:
    clock = ManualClock()
    app.extensions["aggregator"].cache.clock = clock
    return clock


async def test_miss_then_hit(redis, started, upstreams):
    async with started(make_app(redis, upstreams)) as client:
        first = await client.get("/fullinfo?city=Rodez")
        assert first.status_code == 200 and first.headers["X-Cache"] == "MISS"
        assert await first.get_json() == {
            "city": "Rodez",
            "weather": {"temperature": 12.5, "condition": "nuageux", "source": "synthetic"},
            "joke": "Coin-coin !",
        }
        second = await client.get("/fullinfo?city=rodez")  # same city, folded
        assert second.headers["X-Cache"] == "HIT" and "Age" in second.headers
        assert (await second.get_json())["weather"] == (await first.get_json())["weather"]
    assert upstreams.calls == {"weather.test": 1, "jokes.test": 1}


async def test_cache_keys_are_readable_json_with_the_stale_ttl(redis, started, upstreams):
    async with started(make_app(redis, upstreams, weather_ttl=600, stale_ttl=86_400)) as client:
        await client.get("/fullinfo?city=Rodez")
    entry = json.loads(await redis.get(WEATHER_KEY))
    assert entry["body"]["city"] == "Rodez"
    assert entry["fresh_until"] - entry["stored_at"] == pytest.approx(600, abs=0.01)
    assert 86_000 < await redis.ttl(WEATHER_KEY) <= 86_400
    assert json.loads(await redis.get("canaduck:cache:joke"))["body"]["joke"] == "Coin-coin !"


async def test_an_expired_entry_is_refreshed(redis, started, upstreams):
    app = make_app(redis, upstreams, weather_ttl=600, joke_ttl=30)
    clock = pin_clock(app)
    async with started(app) as client:
        await client.get("/fullinfo?city=Rodez")
        clock.jump(31)  # the joke is no longer fresh, the weather still is
        response = await client.get("/fullinfo?city=Rodez")
        assert response.headers["X-Cache"] == "MISS"
    assert upstreams.calls == {"weather.test": 1, "jokes.test": 2}


async def test_stale_if_error(redis, started, upstreams):
    app = make_app(redis, upstreams, weather_ttl=600)
    clock = pin_clock(app)
    async with started(app) as client:
        await client.get("/fullinfo?city=Rodez")
        clock.jump(3600)
        upstreams.handlers["weather.test"] = refused
        upstreams.handlers["jokes.test"] = answering(500)
        response = await client.get("/fullinfo?city=Rodez")
        assert response.status_code == 200 and response.headers["X-Cache"] == "STALE"
        body = await response.get_json()
        assert body["weather"]["temperature"] == 12.5 and body["joke"] == "Coin-coin !"
        assert body["errors"] == {"weather": "unreachable (ConnectError)", "joke": "answered 500"}
        assert body["stale"] == {"weather": 3600.0, "joke": 3600.0}
        passed = await client.get("/weather?city=Rodez")
        assert passed.status_code == 200 and passed.headers["X-Cache"] == "STALE"
        assert passed.headers["Age"] == "3600"
        assert (await passed.get_json())["city"] == "Rodez"


async def test_fifty_concurrent_misses_make_one_upstream_call(redis, started, upstreams):
    upstreams.handlers["weather.test"] = slow(weather_ok, 0.05)
    async with started(make_app(redis, upstreams)) as client:
        responses = await asyncio.gather(*(client.get("/weather?city=Rodez") for _ in range(50)))
        assert {r.status_code for r in responses} == {200}
        assert upstreams.calls["weather.test"] == 1
        full = await asyncio.gather(*(client.get("/fullinfo?city=Albi") for _ in range(50)))
        assert {r.status_code for r in full} == {200}
    assert upstreams.calls == {"weather.test": 2, "jokes.test": 1}


async def test_fifty_concurrent_misses_with_an_instant_upstream_still_make_one_call(redis, started,
                                                                                   upstreams):
    async with started(make_app(redis, upstreams)) as client:
        await asyncio.gather(*(client.get("/weather?city=Rodez") for _ in range(50)))
    assert upstreams.calls["weather.test"] == 1


@pytest.mark.parametrize(("down", "kept", "error_key"), [
    ("weather.test", "joke", "weather"), ("jokes.test", "weather", "joke")])
async def test_one_upstream_down_gives_a_partial_200(redis, started, upstreams, down, kept, error_key):
    upstreams.handlers[down] = refused
    async with started(make_app(redis, upstreams)) as client:
        response = await client.get("/fullinfo?city=Rodez")
        assert response.status_code == 200 and response.headers["X-Cache"] == "MISS"
        body = await response.get_json()
        assert body[error_key] is None and body[kept] is not None
        assert body["errors"] == {error_key: "unreachable (ConnectError)"}


@pytest.mark.parametrize("answer", [
    answering(500, text="Internal Server Error"),
    answering(503, json={"error": "overloaded"}),
    answering(200, text="<html>oops</html>"),
    answering(200, json=["not", "an", "object"]),
    answering(200, json={"city": "Rodez", "temperature": "warm", "condition": "x", "source": "y"}),
    answering(200, json={"temperature": 12}),
    answering(302, headers={"Location": "/elsewhere"}),
])
async def test_an_upstream_answering_garbage_counts_as_down(redis, started, upstreams, answer):
    upstreams.handlers["weather.test"] = answer
    async with started(make_app(redis, upstreams)) as client:
        response = await client.get("/fullinfo?city=Rodez")
        assert response.status_code == 200
        body = await response.get_json()
        assert body["weather"] is None and body["joke"] == "Coin-coin !"
        assert body["errors"]["weather"].startswith("answered")
        passed = await client.get("/weather?city=Rodez")
        assert passed.status_code == 502 and (await passed.get_json())["upstream"] == "weather"
    assert not await redis.exists(WEATHER_KEY)


async def test_both_down_with_nothing_stale_is_a_502(redis, started, upstreams):
    upstreams.handlers = {"weather.test": refused, "jokes.test": answering(200, text="garbage")}
    async with started(make_app(redis, upstreams)) as client:
        response = await client.get("/fullinfo?city=Rodez")
        assert response.status_code == 502
        body = await response.get_json()
        assert body["error"] == "weather and jokes unavailable" and body["status"] == 502
        assert set(body["errors"]) == {"weather", "joke"}
        joke = await client.get("/joke")
        assert joke.status_code == 502 and (await joke.get_json())["upstream"] == "jokes"


async def test_a_sleeping_upstream_is_cut_at_the_timeout(redis, started, upstreams):
    upstreams.handlers["weather.test"] = slow(weather_ok, 5)
    async with started(make_app(redis, upstreams, upstream_timeout=0.3)) as client:
        response = await client.get("/fullinfo?city=Rodez")
        body = await response.get_json()
        # Cut at the timeout (the answer says so), not after the upstream's 5 s.
        assert response.status_code == 200
        assert body["weather"] is None and body["joke"] == "Coin-coin !"
        assert body["errors"] == {"weather": "no answer within 0.3 s"}


async def test_pass_through_keeps_status_and_body(redis, started, upstreams):
    unknown = {"error": "unknown city", "status": 404, "city": "Atlantide"}
    async def weather(request: httpx.Request) -> httpx.Response:
        if request.url.params["city"] == "Atlantide":
            return httpx.Response(404, json=unknown)
        return await weather_ok(request)
    upstreams.handlers["weather.test"] = weather
    async with started(make_app(redis, upstreams)) as client:
        response = await client.get("/weather?city=Rodez")
        assert await response.get_json() == {"city": "Rodez", "temperature": 12.5,
                                              "condition": "nuageux", "source": "synthetic"}
        for _ in range(2):  # a 404 is passed on, never cached
            missing = await client.get("/weather?city=Atlantide")
            assert missing.status_code == 404 and await missing.get_json() == unknown
        full = await client.get("/fullinfo?city=Atlantide")
        assert full.status_code == 404 and await full.get_json() == unknown
        jokes = [await (await client.get("/joke")).get_json() for _ in range(2)]
        assert jokes[0] == jokes[1] == {"id": "0123456789ab", "joke": "Coin-coin !"}
    assert upstreams.calls == {"weather.test": 4, "jokes.test": 1}


@pytest.mark.parametrize("route", ["/fullinfo", "/weather"])
@pytest.mark.parametrize(("query", "problem"), [
    ("", "invalid city: missing"),
    ("?city=", "invalid city: empty"),
    ("?town=Rodez", "invalid city: missing"),
    ("?city=" + "x" * 101, "invalid city: longer than 100 characters"),
    ("?city=Ro%1Bdez", "invalid city: contains a control character"),
    ("?city=%C2%85Rodez", "invalid city: contains a control character"),
    ("?city=Rodez&city=Albi", "invalid city: given more than once"),
])
async def test_bad_cities_are_400_on_every_route(redis, upstreams, route, query, problem):
    response = await make_app(redis, upstreams).test_client().get(f"{route}{query}")
    assert response.status_code == 400
    assert await response.get_json() == {"error": problem, "status": 400, "parameter": "city"}
    assert not upstreams.calls


async def test_unknown_parameters_are_ignored(redis, started, upstreams):
    async with started(make_app(redis, upstreams)) as client:
        assert (await client.get("/joke?lang=fr&x=%00")).status_code == 200
        assert (await client.get("/fullinfo?city=Rodez&units=metric")).status_code == 200


@pytest.mark.parametrize("city", ["Tombouctou", "Zürich", "São Paulo", "東京"])
async def test_unicode_cities(redis, started, upstreams, city):
    async with started(make_app(redis, upstreams)) as client:
        response = await client.get("/fullinfo", query_string={"city": city})
        assert response.status_code == 200
        assert (await response.get_json())["city"] == city
        # Written as UTF-8 text, readable in curl's output, not as \u escapes.
        assert city.encode() in await response.get_data()
    assert upstreams.cities == [city]
    assert await redis.exists(f"canaduck:cache:weather:{city.casefold().replace(' ', '-')}")


async def test_an_unreadable_cache_entry_is_a_miss(redis, started, upstreams):
    await redis.set(WEATHER_KEY, b"\xff not json")
    async with started(make_app(redis, upstreams)) as client:
        response = await client.get("/weather?city=Rodez")
        assert response.status_code == 200 and response.headers["X-Cache"] == "MISS"
    assert json.loads(await redis.get(WEATHER_KEY))["body"]["city"] == "Rodez"


async def test_redis_down_still_answers_and_ready_says_degraded(redis, fake_server, started, upstreams):
    clock = ManualClock()
    app = make_app(redis, upstreams, clock, heartbeat_interval=0.05, cache_retry_after=5)
    async with started(app) as client:
        assert (await (await client.get("/ready")).get_json())["status"] == "ready"
        fake_server.connected = False
        first = await client.get("/fullinfo?city=Albi")
        assert first.status_code == 200 and first.headers["X-Cache"] == "MISS"
        assert (await first.get_json())["weather"]["temperature"] == 12.5
        again = await client.get("/fullinfo?city=Albi")  # kept in memory meanwhile
        assert again.status_code == 200 and again.headers["X-Cache"] == "HIT"

        async def redis_seen_down() -> bool:
            return (await (await client.get("/ready")).get_json())["redis"] is False

        await wait_until_async(redis_seen_down)  # the next heartbeat notices
        ready = await client.get("/ready")
        assert ready.status_code == 200
        assert (await ready.get_json())["status"] == "degraded"
        fake_server.connected = True
        await client.get("/weather?city=Gaillac")
        assert not await redis.exists("canaduck:cache:weather:gaillac")  # still bypassed
        clock.jump(5)  # past cache_retry_after: the cache is tried again
        await client.get("/weather?city=Castres")
        await app.extensions["aggregator"].cache.settle()
        assert await redis.exists("canaduck:cache:weather:castres")
        assert not await redis.exists("canaduck:cache:weather:albi")
    assert upstreams.calls["weather.test"] == 3


async def test_fresh_entries_are_kept_in_memory_for_local_cache_seconds(redis, started, upstreams):
    app = make_app(redis, upstreams, local_cache_seconds=1.0)
    clock = pin_clock(app)
    async with started(app) as client:
        await client.get("/weather?city=Rodez")
        await app.extensions["aggregator"].cache.settle()
        await redis.delete(WEATHER_KEY)
        assert (await client.get("/weather?city=Rodez")).headers["X-Cache"] == "HIT"  # no Redis read
        clock.jump(1.5)
        assert (await client.get("/weather?city=Rodez")).headers["X-Cache"] == "MISS"
    assert upstreams.calls["weather.test"] == 2


async def test_no_memory_with_local_cache_seconds_zero(redis, started, upstreams):
    async with started(make_app(redis, upstreams, local_cache_seconds=0)) as client:
        await client.get("/weather?city=Rodez")
        await redis.delete(WEATHER_KEY)
        assert (await client.get("/weather?city=Rodez")).headers["X-Cache"] == "MISS"
    assert upstreams.calls["weather.test"] == 2


async def test_upstreams_are_found_in_the_directory(redis, started, upstreams):
    upstreams.handlers = {"weather-a.test": weather_ok, "jokes-a.test": joke_ok}
    directory = Directory(redis, Keys(), ttl=10)
    clock = ManualClock()
    app = make_app(redis, upstreams, clock, weather_url="", jokes_url="", peers_fresh_for=0.1)
    async with started(app) as client:
        nobody = await client.get("/fullinfo?city=Rodez")
        assert nobody.status_code == 502
        assert (await nobody.get_json())["errors"]["weather"] == "no live instance in the directory"
        for service in ("weather", "jokes"):
            await directory.register(Entry(service, f"{service}-a", f"http://{service}-a.test",
                                           f"canaduck:inbox:{service}"))
        clock.jump(0.15)  # past peers_fresh_for: the empty lookup is not reused
        response = await client.get("/fullinfo?city=Rodez")
        assert response.status_code == 200
    assert upstreams.calls == {"weather-a.test": 1, "jokes-a.test": 1}


async def test_metrics_count_cache_outcomes(redis, started, upstreams):
    async with started(make_app(redis, upstreams)) as client:
        await client.get("/weather?city=Rodez")
        await client.get("/weather?city=Rodez")
        text = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'canaduck_aggregator_total{what="hit"} 1.0' in text
    assert 'canaduck_aggregator_total{what="call:weather"} 1.0' in text


async def test_a_refused_connection_tries_the_next_instance(redis, started, upstreams):
    upstreams.handlers = {"dead.test": refused, "alive.test": weather_ok, "jokes.test": joke_ok}
    directory = Directory(redis, Keys(), ttl=10)
    for name in ("dead", "alive"):
        await directory.register(Entry("weather", name, f"http://{name}.test", "canaduck:inbox:weather"))
    async with started(make_app(redis, upstreams, weather_url="", peers_fresh_for=60)) as client:
        for city in ("Rodez", "Albi", "Millau", "Sète"):
            response = await client.get("/weather", query_string={"city": city})
            assert response.status_code == 200, city
    assert upstreams.calls["alive.test"] == 4 and upstreams.calls["dead.test"] >= 1


async def test_concurrent_retries_never_go_back_to_the_refused_instance(redis, started, upstreams):
    async def refused_after_a_turn(request):
        await asyncio.sleep(0.001)  # a real refused connect yields: other requests take turns
        return await refused(request)

    upstreams.handlers = {"dead.test": refused_after_a_turn, "alive.test": weather_ok,
                          "jokes.test": joke_ok}
    directory = Directory(redis, Keys(), ttl=10)
    for name in ("dead", "alive"):
        await directory.register(Entry("weather", name, f"http://{name}.test", "canaduck:inbox:weather"))
    async with started(make_app(redis, upstreams, weather_url="", peers_fresh_for=60)) as client:
        responses = await asyncio.gather(*(client.get("/weather", query_string={"city": f"Ville {i}"})
                                           for i in range(20)))
    assert [r.status_code for r in responses] == [200] * 20


async def test_single_flight_without_the_memory_cache(redis, started, upstreams):
    async with started(make_app(redis, upstreams, local_cache_seconds=0)) as client:
        await asyncio.gather(*(client.get("/weather?city=Rodez") for _ in range(50)))
    assert upstreams.calls["weather.test"] == 1


async def test_a_miss_is_answered_before_its_cache_write_lands(redis, started, upstreams):
    # With the in-memory copy on, the SET goes on in the background; the copy serves at once.
    app = make_app(redis, upstreams)
    cache = app.extensions["aggregator"].cache
    async with started(app) as client:
        redis_set = redis.set
        release = asyncio.Event()

        async def slow_set(*args, **kwargs):
            await release.wait()
            return await redis_set(*args, **kwargs)

        redis.set = slow_set
        first = await client.get("/weather?city=Rodez")
        assert first.status_code == 200 and first.headers["X-Cache"] == "MISS"
        assert not await redis.exists(WEATHER_KEY)  # not written yet: the answer did not wait
        assert (await client.get("/weather?city=Rodez")).headers["X-Cache"] == "HIT"
        release.set()
        await cache.settle()
        assert json.loads(await redis.get(WEATHER_KEY))["body"]["city"] == "Rodez"
    assert upstreams.calls["weather.test"] == 1


async def test_stop_waits_for_the_cache_writes_under_way(redis, started, upstreams):
    # A cache timeout far above the write's 0.2 s: only the wait at stop is under test here.
    app = make_app(redis, upstreams, cache_timeout=5.0)
    async with started(app) as client:
        redis_set = redis.set

        async def slow_set(*args, **kwargs):
            await asyncio.sleep(0.2)
            return await redis_set(*args, **kwargs)

        redis.set = slow_set
        assert (await client.get("/weather?city=Rodez")).status_code == 200
    assert json.loads(await redis.get(WEATHER_KEY))["body"]["city"] == "Rodez"

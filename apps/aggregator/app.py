"""The aggregator: `GET /fullinfo?city=` (weather and a joke in one answer), and the pass-through
routes `GET /weather?city=` and `GET /joke`. Every answer says `X-Cache: HIT|MISS|STALE`.

Weather and jokes are found in the directory (or at WEATHER_URL / JOKES_URL), called
concurrently with UPSTREAM_TIMEOUT each, and cached in Redis under `canaduck:cache:`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from pydantic import BaseModel
from quart import Blueprint, Response, jsonify, request
from redis.asyncio import Redis

from apps.aggregator.cache import ResponseCache
from apps.aggregator.parts import CacheStatus, Part, PartGetter, Source
from apps.aggregator.settings import AggregatorSettings
from apps.aggregator.upstreams import JokeShape, Upstreams, WeatherShape
from apps.kit.app import ServiceApp, error, service_app
from apps.kit.app import create_app as create_service_app
from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.kit.dircache import DirectoryCache
from apps.kit.http import Peers
from apps.kit.names import Keys
from apps.kit.openapi import documented
from apps.kit.params import CityQuery, fold, text_param

routes = Blueprint("aggregator", __name__)

_WORST_FIRST = (CacheStatus.STALE, CacheStatus.MISS, CacheStatus.HIT)


class Weather(BaseModel):
    temperature: float
    condition: str
    source: str


class FullInfo(BaseModel):
    """`GET /fullinfo`: a failed part is null and explained in `errors`; `stale` gives the age
    in seconds of a part served from an expired copy while its upstream was down."""

    city: str
    weather: Weather | None
    joke: str | None
    errors: dict[str, str] | None = None
    stale: dict[str, float] | None = None


class Aggregator:
    """The sources of the parts, and the getter that serves them."""

    def __init__(self, settings: AggregatorSettings, keys: Keys, upstreams: Upstreams,
                 cache: ResponseCache) -> None:
        self.settings = settings
        self.keys = keys
        self.upstreams = upstreams
        self.cache = cache
        self.parts = PartGetter(cache)

    def weather_source(self, city: str) -> Source:
        return Source("weather", self.keys[f"cache:weather:{fold(city)}"], self.settings.weather_ttl,
                      lambda: self.upstreams.weather(city))

    def joke_source(self) -> Source:
        return Source("jokes", self.keys["cache:joke"], self.settings.joke_ttl, self.upstreams.joke)

    async def get(self, *sources: Source) -> list[Part]:
        """The parts for `sources`: one cache read for all, then the upstreams concurrently."""
        cached = await self.cache.read(*(s.key for s in sources))
        hits = self.parts.hits(cached)
        if hits is not None:  # the hot path: no task, no upstream
            return hits
        # Fresh parts are taken at once; only the others go to their upstreams, a lone one
        # without a task of its own (the usual miss: a new city while the joke is fresh).
        found = [self.parts.fresh(c) for c in cached]
        missing = [(i, s, c) for i, (s, c, part) in enumerate(zip(sources, cached, found, strict=True))
                   if part is None]
        if len(missing) == 1:
            i, source, entry = missing[0]
            found[i] = await self.parts.get(source, entry)
        else:
            fetched = await asyncio.gather(*(self.parts.get(s, c) for _, s, c in missing))
            for (i, _, _), part in zip(missing, fetched, strict=True):
                found[i] = part
        return [part for part in found if part is not None]


def create_app(settings: AggregatorSettings | None = None, redis: Redis | None = None,
               http_transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = SYSTEM_CLOCK) -> ServiceApp:
    """The aggregator app. It keeps answering without Redis, so its /ready says "degraded".

    `clock` replaces the time its rules read (cache freshness, the cache's breaker, how long a
    directory lookup is reused): tests move it by hand.
    """
    settings = settings or AggregatorSettings()
    app = create_service_app(settings, import_name=__name__, redis=redis,
                             http_transport=http_transport, ready_without_redis=True)
    runtime = app.runtime
    peers = Peers(DirectoryCache(runtime.directory, settings.peers_fresh_for, clock=clock),
                  {"weather": settings.weather_url, "jokes": settings.jokes_url},
                  lookup_timeout=settings.cache_timeout)

    def http() -> httpx.AsyncClient:
        assert runtime.http is not None, "the app has not started"
        return runtime.http

    cache = ResponseCache(runtime.redis, stale_ttl=settings.stale_ttl, timeout=settings.cache_timeout,
                          retry_after=settings.cache_retry_after,
                          local_for=settings.local_cache_seconds, clock=clock)
    aggregator = Aggregator(settings, settings.keys, Upstreams(peers, http, settings.upstream_timeout),
                            cache)
    app.extensions["aggregator"] = aggregator
    runtime.on_stop(cache.settle)  # the cache writes still under way, before Redis closes
    app.metrics.expose_counts("canaduck_aggregator", "Cache outcomes, upstream calls and failures",
                              lambda: {**aggregator.parts.counts, "cache_errors": cache.errors})
    app.register_blueprint(routes)
    return app


def _aggregator() -> Aggregator:
    aggregator: Aggregator = service_app().extensions["aggregator"]
    return aggregator


def _city() -> str:
    return text_param(request.args, "city")


@routes.get("/fullinfo")
@documented(query=CityQuery, ok=FullInfo, errors=[400, 404, 502])
async def fullinfo() -> Response:
    """{city, weather, joke}; a failed part is null and explained in `errors`."""
    city = _city()
    aggregator = _aggregator()
    weather, joke = await aggregator.get(aggregator.weather_source(city), aggregator.joke_source())
    if weather.answer is not None and not weather.answer.ok:
        return _answer(weather.answer.status, weather.answer.body, weather)  # e.g. unknown city
    errors: dict[str, str] = {}
    if weather.error:
        errors["weather"] = weather.error
    if joke.error:
        errors["joke"] = joke.error
    joke_text: str | None = None
    if joke.answer is not None and joke.answer.ok:
        joke_text = joke.answer.body["joke"]
    elif joke.answer is not None:
        errors["joke"] = f"answered {joke.answer.status}"
    if weather.answer is None and joke_text is None:
        return _with_cache(error(502, "weather and jokes unavailable", city=city, errors=errors),
                           weather, joke)
    body: dict[str, Any] = {
        "city": city,
        "weather": None if weather.answer is None else
        {k: v for k, v in weather.answer.body.items() if k != "city"},
        "joke": joke_text,
    }
    if errors:
        body["errors"] = errors
    stale = {name: round(part.age or 0.0, 1) for name, part in (("weather", weather), ("joke", joke))
             if part.status is CacheStatus.STALE}
    if stale:
        body["stale"] = stale
    return _with_cache(jsonify(body), weather, joke)


@routes.get("/weather")
@documented(query=CityQuery, ok=WeatherShape, errors=[400, 404, 502])
async def weather() -> Response:
    """The weather service's answer, unchanged (status and body), from the cache if fresh."""
    aggregator = _aggregator()
    (part,) = await aggregator.get(aggregator.weather_source(_city()))
    return _pass_through("weather", part)


@routes.get("/joke")
@documented(ok=JokeShape, errors=[404, 502])
async def joke() -> Response:
    """The jokes service's answer, unchanged: the joke of the moment."""
    aggregator = _aggregator()
    (part,) = await aggregator.get(aggregator.joke_source())
    return _pass_through("jokes", part)


def _pass_through(service: str, part: Part) -> Response:
    if part.answer is None:
        return _with_cache(error(502, f"{service} unavailable", upstream=service, reason=part.error),
                           part)
    return _answer(part.answer.status, part.answer.body, part)


def _answer(status: int, body: dict[str, Any], part: Part) -> Response:
    response = jsonify(body)
    response.status_code = status
    return _with_cache(response, part)


def _with_cache(response: Response, *parts: Part) -> Response:
    """X-Cache: the worst status of the parts (STALE, then MISS, then HIT); Age if cached."""
    statuses = {part.status for part in parts}
    response.headers["X-Cache"] = next(s for s in _WORST_FIRST if s in statuses).value
    ages = [part.age for part in parts if part.age is not None]
    if ages and len(ages) == len(parts):
        response.headers["Age"] = str(round(max(ages)))
    return response

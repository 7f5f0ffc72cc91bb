"""The weather service: synthetic provider, Open-Meteo through recorded answers, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from apps.weather.app import create_app
from apps.weather.settings import WeatherSettings
from apps.weather.synthetic import CONDITIONS, SyntheticProvider
from scripts.devkit.clock import ManualClock

RECORDED = Path(__file__).parent / "data" / "open_meteo"
GEOCODING = "https://geocoding-api.open-meteo.com/v1/search"
FORECAST = "https://api.open-meteo.com/v1/forecast"
NOON = 1_747_224_000.0  # a fixed hour, so synthetic figures are known


def make_app(redis):
    return create_app(WeatherSettings(instance_id="weather-1"), redis=redis, clock=ManualClock(wall=NOON))


class OpenMeteoRecording:
    """Answers like Open-Meteo did, from the files in data/open_meteo; records the requests."""

    def __init__(self, override: httpx.Response | None = None) -> None:
        self.requests: list[httpx.Request] = []
        self.override = override

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.override is not None:
            return self.override
        url = str(request.url.copy_with(query=None))
        if url == GEOCODING:
            name = {"Rodez": "rodez", "東京": "tokyo"}.get(request.url.params["name"], "nothing")
            return httpx.Response(200, content=(RECORDED / f"geocoding-{name}.json").read_bytes())
        if url == FORECAST:
            name = "rodez" if request.url.params["latitude"].startswith("44.") else "tokyo"
            return httpx.Response(200, content=(RECORDED / f"forecast-{name}.json").read_bytes())
        return httpx.Response(404)


def open_meteo_app(redis, recording):
    settings = WeatherSettings(instance_id="weather-1", weather_provider="open-meteo")
    return create_app(settings, redis=redis, http_transport=httpx.MockTransport(recording))


async def test_synthetic_is_deterministic_per_city_and_hour():
    clock = ManualClock(wall=NOON)
    provider = SyntheticProvider(clock)
    first = await provider.current("Rodez")
    assert first == await provider.current("Rodez")
    assert (await provider.current("  RODEZ ")).temperature == first.temperature  # folded alike
    clock.jump(3599 - NOON % 3600)  # same hour
    assert await provider.current("Rodez") == first
    hours = set()
    for hour in range(24):
        report = await SyntheticProvider(ManualClock(wall=NOON + hour * 3600)).current("Rodez")
        hours.add((report.temperature, report.condition))
        assert -10 < report.temperature < 30 and report.condition in CONDITIONS
    assert len(hours) > 1  # the weather changes over a day
    assert first.source == "synthetic" and first.city == "Rodez"


async def test_weather_route_answers_the_documented_shape(redis, started):
    async with started(make_app(redis)) as client:
        response = await client.get("/weather?city=Rodez&units=ignored")
        assert response.status_code == 200
        body = await response.get_json()
        assert list(body) == ["city", "temperature", "condition", "source"]
        assert body["city"] == "Rodez" and body["source"] == "synthetic"
        assert isinstance(body["temperature"], float)


@pytest.mark.parametrize("city", ["Tombouctou", "Zürich", "São Paulo", "東京", "Saint-Étienne-du-Rouvray"])
async def test_unicode_cities(redis, city):
    response = await make_app(redis).test_client().get("/weather", query_string={"city": city})
    assert response.status_code == 200
    assert (await response.get_json())["city"] == city


@pytest.mark.parametrize(("query", "problem"), [
    ("", "invalid city: missing"),
    ("?city=", "invalid city: empty"),
    ("?city=%20%20", "invalid city: empty"),
    ("?city=" + "a" * 101, "invalid city: longer than 100 characters"),
    ("?city=Ro%00dez", "invalid city: contains a control character"),
    ("?city=Ro%0Adez", "invalid city: contains a control character"),
])
async def test_bad_cities_are_400_naming_the_problem(redis, query, problem):
    response = await make_app(redis).test_client().get(f"/weather{query}")
    assert response.status_code == 400
    body = await response.get_json()
    assert body["error"] == problem and body["parameter"] == "city"


async def test_a_city_of_100_characters_is_fine(redis):
    response = await make_app(redis).test_client().get("/weather?city=" + "a" * 100)
    assert response.status_code == 200


async def test_synthetic_knows_no_city_without_letters(redis):
    response = await make_app(redis).test_client().get("/weather?city=12345")
    assert response.status_code == 404
    assert await response.get_json() == {"error": "unknown city", "status": 404, "city": "12345"}


async def test_open_meteo_geocodes_then_reads_current_weather(redis, started):
    recording = OpenMeteoRecording()
    async with started(open_meteo_app(redis, recording)) as client:
        response = await client.get("/weather?city=Rodez")
        assert response.status_code == 200
        assert await response.get_json() == {"city": "Rodez", "temperature": 17.4,
                                             "condition": "couvert", "source": "open-meteo"}
        tokyo = await (await client.get("/weather", query_string={"city": "東京"})).get_json()
        assert tokyo == {"city": "Tokyo", "temperature": 19.8, "condition": "pluie",
                         "source": "open-meteo"}
    geocoding, forecast = recording.requests[:2]
    assert geocoding.url.params["name"] == "Rodez" and geocoding.url.params["count"] == "1"
    assert forecast.url.params["latitude"] == "44.35258"
    assert forecast.url.params["current"] == "temperature_2m,weather_code"


async def test_open_meteo_unknown_city_is_404(redis, started):
    recording = OpenMeteoRecording()
    async with started(open_meteo_app(redis, recording)) as client:
        response = await client.get("/weather?city=Nulle-Part-Sur-Mer")
        assert response.status_code == 404
        assert (await response.get_json())["error"] == "unknown city"
    assert len(recording.requests) == 1  # no forecast asked for a place that does not exist


@pytest.mark.parametrize("answer", [
    httpx.Response(500, text="Internal Server Error"),
    httpx.Response(200, text="<html>maintenance</html>"),
    httpx.Response(200, json={"results": [{"name": "Rodez"}]}),
])
async def test_open_meteo_failures_are_502_json(redis, started, answer):
    async with started(open_meteo_app(redis, OpenMeteoRecording(answer))) as client:
        response = await client.get("/weather?city=Rodez")
        assert response.status_code == 502
        body = await response.get_json()
        assert body["error"] == "weather provider failed" and body["city"] == "Rodez"


async def test_open_meteo_unreachable_is_502(redis, started):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    settings = WeatherSettings(instance_id="weather-1", weather_provider="open-meteo")
    app = create_app(settings, redis=redis, http_transport=httpx.MockTransport(refuse))
    async with started(app) as client:
        response = await client.get("/weather?city=Rodez")
        assert response.status_code == 502
        assert "ConnectError" in json.dumps(await response.get_json())

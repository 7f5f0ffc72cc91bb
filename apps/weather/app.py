"""The weather service: `GET /weather?city=<name>` -> {city, temperature, condition, source}.

Internal only: the aggregator calls it (through the directory) and caches its answers.
"""

from __future__ import annotations

import httpx
from quart import Blueprint, Response, current_app, jsonify, request
from redis.asyncio import Redis

from apps.kit.app import ServiceApp, error
from apps.kit.app import create_app as create_service_app
from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.kit.openapi import documented
from apps.kit.params import CityQuery, text_param
from apps.weather.open_meteo import OpenMeteoProvider
from apps.weather.report import Provider, ProviderError, Report, UnknownCity
from apps.weather.settings import WeatherSettings
from apps.weather.synthetic import SyntheticProvider

routes = Blueprint("weather", __name__)


def create_app(settings: WeatherSettings | None = None, redis: Redis | None = None,
               http_transport: httpx.AsyncBaseTransport | None = None,
               clock: Clock = SYSTEM_CLOCK) -> ServiceApp:
    """The weather service app; `clock` pins the synthetic provider's hour in tests."""
    settings = settings or WeatherSettings()
    app = create_service_app(settings, import_name=__name__, redis=redis, http_transport=http_transport)
    app.extensions["weather.provider"] = SyntheticProvider(clock)

    if settings.weather_provider == "open-meteo":
        @app.runtime.on_start
        async def use_open_meteo() -> None:
            # The runtime's HTTP client exists once the app has started.
            assert app.runtime.http is not None
            app.extensions["weather.provider"] = OpenMeteoProvider(
                app.runtime.http, settings.open_meteo_geocoding_url,
                settings.open_meteo_forecast_url, settings.open_meteo_timeout)

    app.register_blueprint(routes)
    return app


def _provider() -> Provider:
    provider: Provider = current_app.extensions["weather.provider"]
    return provider


@routes.get("/weather")
@documented(query=CityQuery, ok=Report, errors=[400, 404, 502])
async def weather() -> Response:
    """The current weather of `city`: 400 for a bad name, 404 for an unknown city."""
    city = text_param(request.args, "city")
    try:
        report = await _provider().current(city)
    except UnknownCity:
        return error(404, "unknown city", city=city)
    except ProviderError as exc:
        return error(502, "weather provider failed", city=city, detail=str(exc))
    return jsonify(report.to_dict())

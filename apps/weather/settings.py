"""Settings of the weather service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from apps.kit.settings import KitSettings


class WeatherSettings(KitSettings):
    """Kit settings plus which provider answers, and where Open-Meteo lives."""

    service_name: str = "weather"
    #: `synthetic` works offline (deterministic per city and hour); `open-meteo` asks the
    #: public API (no key): geocoding, then current weather.
    weather_provider: Literal["synthetic", "open-meteo"] = "synthetic"
    open_meteo_geocoding_url: str = "https://geocoding-api.open-meteo.com/v1/search"
    open_meteo_forecast_url: str = "https://api.open-meteo.com/v1/forecast"
    #: Seconds one Open-Meteo request may take.
    open_meteo_timeout: float = Field(default=3.0, gt=0)

"""The Open-Meteo provider: the public API, no key. Geocoding first, then current weather.

Docs: https://open-meteo.com/en/docs/geocoding-api and https://open-meteo.com/en/docs.
Conditions come as WMO weather codes, told here in French.
"""

from __future__ import annotations

from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from apps.weather.report import ProviderError, Report, UnknownCity

_Model = TypeVar("_Model", bound=BaseModel)

#: WMO weather interpretation codes (the table at the bottom of Open-Meteo's docs).
WMO_CONDITIONS: dict[int, str] = {
    0: "ensoleillé", 1: "peu nuageux", 2: "nuageux", 3: "couvert",
    45: "brouillard", 48: "brouillard givrant",
    51: "bruine", 53: "bruine", 55: "bruine", 56: "bruine verglaçante", 57: "bruine verglaçante",
    61: "pluie", 63: "pluie", 65: "forte pluie", 66: "pluie verglaçante", 67: "pluie verglaçante",
    71: "neige", 73: "neige", 75: "forte neige", 77: "grains de neige",
    80: "averses", 81: "averses", 82: "fortes averses", 85: "averses de neige", 86: "averses de neige",
    95: "orage", 96: "orage avec grêle", 99: "orage avec grêle",
}


class _Place(BaseModel):
    name: str
    latitude: float
    longitude: float


class _Geocoding(BaseModel):
    results: list[_Place] = []


class _Current(BaseModel):
    temperature_2m: float
    weather_code: int


class _Forecast(BaseModel):
    current: _Current


class OpenMeteoProvider:
    """Asks Open-Meteo through `http` (an httpx client; tests give it a MockTransport)."""

    source = "open-meteo"

    def __init__(self, http: httpx.AsyncClient, geocoding_url: str, forecast_url: str,
                 timeout: float) -> None:
        self._http = http
        self._geocoding_url = geocoding_url
        self._forecast_url = forecast_url
        self._timeout = timeout

    async def current(self, city: str) -> Report:
        geocoding = await self._get(self._geocoding_url, _Geocoding,
                                    {"name": city, "count": 1, "language": "fr", "format": "json"})
        if not geocoding.results:
            raise UnknownCity(city)
        place = geocoding.results[0]
        forecast = await self._get(self._forecast_url, _Forecast, {
            "latitude": place.latitude, "longitude": place.longitude,
            "current": "temperature_2m,weather_code", "timezone": "auto",
        })
        code = forecast.current.weather_code
        return Report(city=place.name, temperature=forecast.current.temperature_2m,
                      condition=WMO_CONDITIONS.get(code, "inconnu"), source=self.source)

    async def _get(self, url: str, model: type[_Model], params: dict[str, Any]) -> _Model:
        try:
            response = await self._http.get(url, params=params, timeout=self._timeout)
        except httpx.HTTPError as exc:
            raise ProviderError(f"{url}: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise ProviderError(f"{url}: status {response.status_code}")
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise ProviderError(f"{url}: unexpected answer ({exc.error_count()} problems)") from exc

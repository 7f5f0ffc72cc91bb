"""A provider that needs no network: plausible weather, the same for a city all hour long.

The figures come from a hash of the folded city name and the hour (UTC), so two instances,
or two calls within the same hour, agree, and tests can pin the clock.
"""

from __future__ import annotations

import hashlib

from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.kit.params import fold
from apps.weather.report import Report, UnknownCity

CONDITIONS = ("ensoleillé", "peu nuageux", "nuageux", "couvert", "brouillard", "bruine",
              "pluie", "averses", "orage", "neige")


def _draw(*parts: str) -> int:
    digest = hashlib.blake2b("|".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class SyntheticProvider:
    """Deterministic per city and hour. A name without any letter is no city (404)."""

    source = "synthetic"

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock

    async def current(self, city: str) -> Report:
        if not any(char.isalpha() for char in city):
            raise UnknownCity(city)
        name = fold(city)
        hour = str(int(self._clock.wall() // 3600))
        climate = _draw(name) % 300 / 10 - 5  # -5.0 .. 24.9 °C: the city's own mean
        today = _draw(name, hour)
        temperature = round(climate + (today % 81) / 10 - 4, 1)  # +/- 4 °C around it
        condition = CONDITIONS[(today >> 16) % len(CONDITIONS)]
        if condition == "neige" and temperature > 2:
            condition = "pluie"
        return Report(city=city, temperature=temperature, condition=condition, source=self.source)

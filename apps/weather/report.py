"""What a provider answers, and how it says it cannot."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Report:
    """The current weather of one city: °C, a condition in French, who said so."""

    city: str
    temperature: float
    condition: str
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class UnknownCity(LookupError):
    """The provider knows no city of that name."""


class ProviderError(RuntimeError):
    """The provider failed (unreachable, error status, unexpected answer)."""


class Provider(Protocol):
    """Anything that tells the current weather of a city."""

    async def current(self, city: str) -> Report: ...

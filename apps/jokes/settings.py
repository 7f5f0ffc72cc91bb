"""Settings of the jokes service."""

from __future__ import annotations

from pydantic import Field

from apps.kit.settings import KitSettings


class JokesSettings(KitSettings):
    """Kit settings plus where the first jokes come from and how long one may be."""

    service_name: str = "jokes"
    #: JSON list of strings always kept in `canaduck:jokes` (seeded, put back when missing);
    #: default: the packaged file.
    jokes_file: str = ""
    #: Longest joke accepted by POST /jokes, in characters.
    joke_max_length: int = Field(default=280, ge=1, le=10_000)

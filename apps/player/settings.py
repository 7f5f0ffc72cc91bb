"""Settings of a player (run twice: SERVICE_NAME=ping and SERVICE_NAME=pong)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from apps.kit.names import SERVICE_NAME_PATTERN
from apps.kit.settings import KitSettings

Transport = Literal["http", "directory", "broker"]


class PlayerSettings(KitSettings):
    """Kit settings plus the rally's: transport, peer, think time, deadline, backoff."""

    service_name: str = "ping"
    #: http (exercise 1), directory (exercise 2) or broker (exercise 4).
    transport: Transport = "broker"
    #: The other player; default: pong for ping, ping for anyone else.
    peer: str = Field(default="", pattern=rf"{SERVICE_NAME_PATTERN}|^$")
    #: The peer's base URL (transport http only), e.g. http://127.0.0.1:5003.
    peer_url: str = ""
    #: Seconds a player thinks before answering (0 for benchmarks), plus up to `think_jitter`.
    think_time: float = Field(default=0.1, ge=0)
    think_jitter: float = Field(default=0.0, ge=0)
    #: Seconds the answer has to come back before it is a miss.
    rally_deadline: float = Field(default=0.5, gt=0)
    #: First and largest delay between serves to a peer that cannot be reached.
    serve_backoff: float = Field(default=0.25, gt=0)
    serve_backoff_max: float = Field(default=2.0, gt=0)
    #: Shots kept for the round-trip percentiles and shots/s.
    rally_window: int = Field(default=1000, ge=10, le=100_000)
    #: Seconds between writes of this player's state to the scoreboard hash.
    scoreboard_interval: float = Field(default=0.25, gt=0)
    #: Seconds a directory lookup is reused (transport directory).
    lookup_ttl: float = Field(default=2.0, ge=0)

    @model_validator(mode="after")
    def _peer_and_url(self) -> PlayerSettings:
        if not self.peer:
            object.__setattr__(self, "peer", "pong" if self.service_name == "ping" else "ping")
        if self.peer == self.service_name:
            raise ValueError("PEER must name the other player, not this one")
        if self.transport == "http" and not self.peer_url.startswith(("http://", "https://")):
            raise ValueError("TRANSPORT=http needs PEER_URL, e.g. http://127.0.0.1:5003")
        return self

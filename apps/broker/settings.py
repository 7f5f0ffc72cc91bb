"""Settings of the broker."""

from __future__ import annotations

from pydantic import Field

from apps.kit.settings import KitSettings


class BrokerSettings(KitSettings):
    """Kit settings plus the relay's tuning."""

    service_name: str = "broker"
    #: Most envelopes relayed in one pipelined round trip (1: one PUBLISH at a time).
    relay_batch: int = Field(default=128, ge=1, le=10_000)
    #: Envelopes read but not yet relayed; past it, reading waits (back pressure).
    relay_queue: int = Field(default=10_000, ge=1)
    #: Seconds a recipient's directory lookup is reused (events invalidate it sooner).
    lookup_ttl: float = Field(default=2.0, ge=0)

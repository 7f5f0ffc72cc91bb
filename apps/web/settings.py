"""Settings of the web front."""

from __future__ import annotations

from pydantic import Field

from apps.kit.settings import KitSettings


class WebSettings(KitSettings):
    """Kit settings plus the dashboard feed's pace."""

    service_name: str = "web"
    #: Seconds between two snapshots of the stack sent to every dashboard (a registration or
    #: a withdrawal sends one at once).
    feed_interval: float = Field(default=1.0, gt=0)
    #: Seconds over which per-second rates (requests, relays, cache hits) are averaged.
    rate_window: float = Field(default=5.0, gt=0)
    #: Messages kept for a browser that reads slowly; beyond that the oldest are dropped.
    feed_queue: int = Field(default=64, ge=2)
    #: Recent events (registrations, misses, expiries...) sent to a dashboard that connects.
    events_kept: int = Field(default=30, ge=0)

"""Settings of the aggregator."""

from __future__ import annotations

from pydantic import Field

from apps.kit.settings import KitSettings


class AggregatorSettings(KitSettings):
    """Kit settings plus upstream addresses, time limits and cache lifetimes (seconds)."""

    service_name: str = "aggregator"
    #: Fixed upstream URLs; empty (the default) means "find a live instance in the directory".
    weather_url: str = ""
    jokes_url: str = ""
    #: Time one whole upstream call may take (finding the instance, connecting, answering).
    upstream_timeout: float = Field(default=1.0, gt=0)
    #: How long a weather report and the "joke of the moment" are served without asking again.
    weather_ttl: float = Field(default=600.0, gt=0)
    joke_ttl: float = Field(default=30.0, gt=0)
    #: How long the last good copy is kept to answer when an upstream fails (stale-if-error).
    stale_ttl: float = Field(default=86_400.0, gt=0)
    #: Time one cache read or write may take before Redis counts as down for this request...
    cache_timeout: float = Field(default=0.25, gt=0)
    #: ...and then for how long requests skip the cache and go straight to the upstreams.
    cache_retry_after: float = Field(default=1.0, ge=0)
    #: Seconds an instance keeps a fresh entry in memory before reading Redis again (0: never).
    local_cache_seconds: float = Field(default=1.0, ge=0)
    #: Seconds a directory lookup of an upstream is reused.
    peers_fresh_for: float = Field(default=1.0, ge=0)

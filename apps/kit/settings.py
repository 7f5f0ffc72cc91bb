"""Typed settings read from the environment: one object per service.

Every service gets the kit's fields (names fixed by docs/architecture.md); a service that needs
more subclasses `KitSettings` and adds its own fields, which read env vars of the same name.
"""

from __future__ import annotations

import os
import re
import socket
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from apps.kit.names import SERVICE_NAME_PATTERN, Keys

#: Loopback and the private ranges: the local stack's Caddy (127.0.0.1) and compose's (an
#: address of the project's bridge network) reach the services from there, and nothing else can.
DEFAULT_TRUSTED_PROXIES = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


def http_url(host: str, port: int) -> str:
    """`http://host:port`, with an IPv6 address in brackets."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class KitSettings(BaseSettings):
    """What every service reads from its environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = Field(default="service", pattern=SERVICE_NAME_PATTERN)
    instance_id: str = Field(default_factory=_default_instance_id, min_length=1, max_length=128)
    redis_url: str = "redis://127.0.0.1:6379/0"
    # The ACL user and password, when they are not in REDIS_URL: a password taken as it is,
    # with no URL escaping (compose passes them this way; `/`, `#`, `%`, `@` are then fine).
    redis_username: str = ""
    redis_password: str = Field(default="", repr=False)
    # REDIS_URL names one node of a Redis/Valkey Cluster: the kit then uses the cluster
    # client and sharded pub/sub (apps/kit/pubsub.py; docs/cluster.md).
    redis_cluster: bool = False
    advertise_url: str = ""
    # Extra ports this instance listens on, by name, as JSON (`{"admin": 5100}`): put in its
    # directory entry (`meta.ports`) and answered by the directory's DNS as
    # `_<name>._tcp.<service>.service.canaduck` SRV records.
    advertise_ports: dict[str, int] = Field(default_factory=dict)
    host: str = "0.0.0.0"
    port: int = Field(default=5000, ge=0, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    key_prefix: str = "canaduck:"
    directory_ttl: float = Field(default=10.0, gt=0)
    heartbeat_interval: float = Field(default=3.0, gt=0)
    # How long start-up waits for Redis to answer before giving up (compose and the local
    # runner start Redis first, so this only covers its boot).
    redis_wait: float = Field(default=30.0, ge=0)
    # Seconds one Redis command may take: under Caddy's 5 s response_header_timeout, so a hung
    # Redis becomes the service's own JSON 503, not a gateway timeout.
    redis_timeout: float = Field(default=2.0, gt=0)
    # Seconds an instance keeps serving after SIGTERM has taken it out of the directory:
    # longer than the gateway's refresh of the directory (1 s), so that no request is routed
    # to it once it stops listening.
    drain_seconds: float = Field(default=2.0, ge=0)
    # Seconds Hypercorn gives in-flight requests to finish after that.
    graceful_timeout: float = Field(default=5.0, ge=0)
    # The event loop the service runs on: uvloop (less CPU per request, see README's
    # dependencies) or the standard library's asyncio (to compare, or to debug).
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # Larger request bodies are refused (413), before any route runs (apps/kit/limits.py);
    # Caddy refuses them first on the public routes (proxy/Caddyfile, `body_limit`).
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    # A request line and headers adding up to more are refused (431, JSON). Under what Caddy
    # forwards (its max_header_size) and what Hypercorn reads (apps/kit/serve.py), so that
    # this JSON answer is the one a client gets.
    max_header_bytes: int = Field(default=16 * 1024, gt=0)
    # Seconds a connection keeps reading (and dropping) the rest of a refused request before
    # it closes: closed with unread bytes, it would send a reset that can destroy the answer.
    linger_seconds: float = Field(default=2.0, ge=0)
    # Peers believed when they say who their client is (X-Forwarded-For; apps/kit/clientaddr.py),
    # comma-separated CIDRs. Narrow it where untrusted hosts share the private network.
    trusted_proxies: Annotated[tuple[IPvAnyNetwork, ...], NoDecode] = Field(
        default=DEFAULT_TRUSTED_PROXIES, validate_default=True)
    # Seconds between two publications of this instance's counters on `canaduck:stats` (what
    # /metrics shows, for the dashboard); 0 publishes nothing.
    stats_interval: float = Field(default=1.0, ge=0)
    # Seconds between two measures of the event loop's lag (canaduck_event_loop_lag_seconds
    # on /metrics; apps/kit/looplag.py); 0 measures nothing.
    loop_lag_interval: float = Field(default=0.1, ge=0)
    # Objects the process may allocate (less those freed) before the garbage collector looks
    # at the young ones: CPython's 700 unless a service measured better (apps/kit/serve.py
    # `collect_less_often`).
    gc_young_threshold: int = Field(default=700, ge=1)
    version: str = "0.1.0"

    @model_validator(mode="after")
    def _one_source_of_credentials(self) -> KitSettings:
        userinfo = urlsplit(self.redis_url)
        if (self.redis_username and userinfo.username) or (self.redis_password and userinfo.password):
            raise ValueError("REDIS_USERNAME/REDIS_PASSWORD and credentials in REDIS_URL: give one")
        return self

    @field_validator("advertise_ports")
    @classmethod
    def _port_names(cls, value: dict[str, int]) -> dict[str, int]:
        for name, port in value.items():
            if not re.fullmatch(r"[a-z0-9-]{1,32}", name) or not 0 < port < 65536:
                raise ValueError(f"ADVERTISE_PORTS: {name!r}: {port} is not a name and a port")
        return value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _cidrs(cls, value: object) -> object:
        if isinstance(value, str):  # from the environment: comma-separated, as people write them
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @property
    def url(self) -> str:
        """How other services reach this instance: ADVERTISE_URL, else HOST and PORT.

        Listening on every interface (HOST 0.0.0.0, as in a container), the instance
        advertises the address it reaches Redis from (see `Runtime.start`); until then, and
        for a loopback HOST, this is the loopback address.
        """
        if self.advertise_url:
            return self.advertise_url
        host = self.host if self.host not in ("", "0.0.0.0", "::") else "127.0.0.1"
        return http_url(host, self.port)

    @property
    def advertises_own_address(self) -> bool:
        """True when the URL must be completed with this host's own address at start-up."""
        return not self.advertise_url and self.host in ("", "0.0.0.0", "::")

    @property
    def keys(self) -> Keys:
        """The Redis keys and channels of this deployment."""
        return Keys(self.key_prefix)

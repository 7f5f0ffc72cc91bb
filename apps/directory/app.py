"""The directory's HTTP view (exercise 2): who is registered, where, and for how long.

Exercise 2.2 (the default): services register themselves in Redis at start-up, each in its
own hash, and this service reads them. Exercise 2.1: started with DIRECTORY_STATIC or
DIRECTORY_STATIC_FILE, it first writes those known addresses as entries without a TTL (its
Redis user alone may write any service's hash). It also answers DNS (apps/directory/dns.py):
that is how Caddy finds each service's instances. And it keeps the index of service names
tidy: every DIRECTORY_PRUNE_INTERVAL s it takes out the names whose hash is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

from pydantic import BaseModel
from quart import Blueprint, Response, jsonify
from redis.asyncio import Redis
from redis.exceptions import RedisError

from apps.directory.dns import DnsServer
from apps.directory.settings import DirectorySettings
from apps.directory.static import load_static_entries
from apps.kit.app import ServiceApp, error, runtime
from apps.kit.app import create_app as create_service_app
from apps.kit.broker import Subscription
from apps.kit.names import is_service_name
from apps.kit.openapi import documented
from apps.kit.tasks import cancel_and_wait

log = logging.getLogger("canaduck.directory")

routes = Blueprint("directory", __name__)


def create_app(settings: DirectorySettings | None = None, redis: Redis | None = None) -> ServiceApp:
    """The directory service app."""
    settings = settings or DirectorySettings()
    app = create_service_app(settings, import_name=__name__, redis=redis)
    static_entries = load_static_entries(settings)  # bad input fails here, before serving

    @app.runtime.on_start
    async def write_static_entries() -> None:
        for entry in static_entries:
            await app.runtime.directory.register_static(entry)

    if settings.directory_prune_interval:
        add_index_pruning(app, settings.directory_prune_interval)
    if settings.dns_port:
        add_dns_interface(app, settings)
    app.register_blueprint(routes)
    return app


class Instance(BaseModel):
    """One live instance: its directory entry, and the seconds of TTL its field has left."""

    service: str
    instance: str
    url: str
    channel: str
    started_at: float
    version: str
    meta: dict[str, Any]
    ttl: float | None  # None: a static entry (DIRECTORY_STATIC), no TTL


class Services(BaseModel):
    """`GET /directory`: every live instance, grouped by service."""

    services: dict[str, list[Instance]]
    instances: int


class ServiceInstances(BaseModel):
    """`GET /directory/<service>`: one service's live instances."""

    service: str
    instances: list[Instance]


def add_dns_interface(app: ServiceApp, settings: DirectorySettings) -> None:
    """Serve the directory over DNS while the app runs (see apps/directory/dns.py)."""
    rt = app.runtime
    dns = DnsServer(rt.directory.hashes, settings.dns_domain, settings.dns_refresh,
                    settings.dns_max_entry_bytes)
    app.extensions["dns"] = dns
    tasks: list[asyncio.Task[None]] = []
    subscriptions: list[Subscription] = []
    app.metrics.expose_counts("canaduck_dns", "DNS queries answered", lambda: {"queries": dns.queries})

    @rt.on_start
    async def start_dns() -> None:
        with contextlib.suppress(RedisError):
            await dns.reload()
        host, port = await dns.start(settings.dns_host or settings.host, settings.dns_port)
        log.info("DNS interface on %s:%d (udp, tcp) for %s", host, port, dns.responder.zone)

        async def on_event(channel: str, data: bytes) -> None:
            dns.on_event(data)

        subscriptions.append(rt.broker.listen([rt.keys.events], on_event, name="dns"))
        tasks.append(asyncio.create_task(dns.keep_fresh(), name="dns-refresh"))

    @rt.on_stop
    async def stop_dns() -> None:
        for task in tasks:
            await cancel_and_wait(task)
        for subscription in subscriptions:
            await subscription.stop()
        await dns.stop()


def add_index_pruning(app: ServiceApp, interval: float) -> None:
    """Every `interval` seconds, take out of the index the names whose hash is gone: services
    with no instance left, and names a compromised service added (apps/kit/directory.py)."""
    rt = app.runtime
    tasks: list[asyncio.Task[None]] = []

    async def prune_forever() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                removed = await rt.directory.prune()
            except RedisError as exc:  # Redis away: the next round tries again
                log.debug("index not pruned: %s", exc)
                continue
            if removed:
                log.info("pruned from the index: %s", ", ".join(removed)[:500])

    @rt.on_start
    async def start_pruning() -> None:
        tasks.append(asyncio.create_task(prune_forever(), name="prune-index"))

    @rt.on_stop
    async def stop_pruning() -> None:
        for task in tasks:
            await cancel_and_wait(task)


@routes.get("/directory")
@documented(ok=Services)
async def list_services() -> Response:
    """Every live entry, grouped by service, with the seconds of TTL it has left."""
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    listings = await runtime().directory.list()
    for listing in listings:
        grouped[listing.entry.service].append(listing.to_dict())
    return jsonify({"services": grouped, "instances": len(listings)})


@routes.get("/directory/<service>")
@documented(ok=ServiceInstances, errors=[400, 404])
async def show_service(service: str) -> Response:
    """The live instances of one service; 404 if there are none."""
    if not is_service_name(service):
        return error(400, "invalid service name: expected 1 to 64 of [a-z0-9-]", service=service)
    listings = await runtime().directory.list([service])
    if not listings:
        return error(404, "no live instance of this service", service=service)
    return jsonify({"service": service, "instances": [item.to_dict() for item in listings]})

"""The broker (exercise 4): services hand it envelopes, it relays them to the recipient's inbox.

Envelopes arrive on `canaduck:broker` (or as `POST /messages`), are validated, resolved in the
directory and published on `canaduck:inbox:<to>`. Expired ones are dropped; undeliverable ones
(unknown recipient, nobody subscribed) come back to the sender as `kind: "undeliverable"`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from quart import Blueprint, Response, current_app, jsonify
from quart_schema import validate_request
from redis.asyncio import Redis

from apps.broker.relay import Relay
from apps.broker.settings import BrokerSettings
from apps.kit.app import ServiceApp, error, runtime
from apps.kit.app import create_app as create_service_app
from apps.kit.dircache import DirectoryCache
from apps.kit.envelope import Kind, ServiceName
from apps.kit.openapi import documented

routes = Blueprint("broker", __name__)


class Message(BaseModel):
    """`POST /messages`: what to relay, to whom. It goes out `from` the broker itself: a public
    route must not let anyone speak as a service (players only take shots from their peer)."""

    model_config = ConfigDict(extra="forbid")

    to: ServiceName
    kind: Kind
    body: Any = None


def create_app(settings: BrokerSettings | None = None, redis: Redis | None = None) -> ServiceApp:
    """The broker app; it starts relaying once it is registered."""
    settings = settings or BrokerSettings()
    app = create_service_app(settings, import_name=__name__, redis=redis)
    rt = app.runtime
    relay = Relay(rt.redis, rt.broker, DirectoryCache(rt.directory, settings.lookup_ttl),
                  batch=settings.relay_batch, queue=settings.relay_queue)
    app.extensions["relay"] = relay
    rt.on_start(relay.start)
    rt.on_stop(relay.stop)
    app.metrics.expose_counts("canaduck_relay", "Envelopes by outcome", lambda: relay.counts)
    app.register_blueprint(routes)
    return app


def _relay() -> Relay:
    return current_app.extensions["relay"]


class Accepted(BaseModel):
    """`POST /messages` relayed: the envelope's id, and how many instances heard it."""

    id: str
    to: str
    kind: str
    receivers: int
    delivered: bool


class Lookups(BaseModel):
    cached: int
    directory: int


class Stats(BaseModel):
    """`GET /stats`: envelopes by outcome since this instance started."""

    relayed: int
    undeliverable: int
    expired: int
    malformed: int
    errors: int
    queued: int
    lookups: Lookups


@routes.post("/messages")
@validate_request(Message)
@documented(ok=Accepted, ok_status=202, errors=[400, 404, 413, 503])
async def post_message(data: Message) -> Response:
    """Relay one message now: 202 with how many instances heard it; 404 for an unknown recipient."""
    broker = runtime().broker
    envelope = broker.envelope(data.to, data.kind, data.body)
    receivers = await _relay().relay_now(envelope)  # Redis down: the kit's JSON 503
    if receivers is None:
        return error(404, "unknown recipient: no live instance in the directory", field="to",
                     to=data.to)
    response = jsonify({"id": envelope.id, "to": envelope.to, "kind": envelope.kind,
                        "receivers": receivers, "delivered": receivers > 0})
    response.status_code = 202
    return response


@routes.get("/stats")
@documented(ok=Stats)
async def stats() -> Response:
    """Envelopes relayed, undeliverable, expired and malformed since this instance started."""
    relay = _relay()
    counts = relay.counts
    return jsonify({
        "relayed": counts["relayed"], "undeliverable": counts["undeliverable"],
        "expired": counts["expired"], "malformed": counts["malformed"],
        "errors": counts["errors"], "queued": relay.queued,
        "lookups": {"cached": relay.cache_hits, "directory": relay.cache_misses},
    })

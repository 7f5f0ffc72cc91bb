"""The IRC gateway: IRC over TCP (and TLS) and IRCv3 WebSocket, its state shared in Redis.

It runs under the kit like every service (/health, /ready, /metrics); the IRC listeners open
when the instance has registered and close when it stops. See docs/chat.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from quart import Blueprint, Response, current_app, jsonify, websocket
from redis.asyncio import Redis

from apps.ircd.server import IrcServer
from apps.ircd.settings import IrcdSettings
from apps.ircd.sweeper import Sweeper
from apps.ircd.websocket import BINARY, WebSocketTransport, choose_subprotocol
from apps.kit.app import ServiceApp, service_app
from apps.kit.app import create_app as create_service_app
from apps.kit.clientaddr import client_address, is_trusted, parse_address
from apps.kit.redisconn import connect
from apps.kit.tasks import Background

routes = Blueprint("ircd", __name__)


def create_app(settings: IrcdSettings | None = None, redis: Redis | None = None) -> ServiceApp:
    """The gateway app; IRC listeners start once the instance is registered."""
    settings = settings or IrcdSettings()
    if redis is None:
        # Many clients' commands run at once: they queue for a bounded pool of connections.
        redis = connect(settings.redis_url, client_name=f"{settings.service_name}/{settings.instance_id}",
                        timeout=settings.redis_timeout, username=settings.redis_username,
                        password=settings.redis_password, pool_size=settings.redis_pool_size,
                        batch_size=settings.redis_batch_size,
                        cluster=settings.redis_cluster)
    app = create_service_app(settings, import_name=__name__, redis=redis)
    rt = app.runtime
    server = IrcServer(settings, rt.redis, loop_lag=app.extensions["kit.loop_lag"].sustained_lag)
    app.extensions["irc"] = server
    rates = Rates(server)

    async def live_replicas() -> set[str]:
        return {entry.instance for entry in await rt.directory.lookup(settings.service_name)}

    sweeper = Sweeper(server.ctx, live_replicas, settings.sweep_interval)

    @rt.on_start
    async def start_irc() -> None:
        server.accounts.http = rt.http
        await sweeper.start()
        await server.start()
        rates.start()

    # Whether SASL is offered follows the users service in the directory (apps/ircd/accounts.py).
    rt.on_beat(server.accounts.refresh)

    @rt.on_stop
    async def stop_irc() -> None:
        await rates.stop()
        await sweeper.stop()
        await server.stop()

    app.metrics.expose_counts("canaduck_irc", "IRC gateway events by kind", lambda: server.counts)
    app.metrics.expose_gauge("canaduck_irc_connections", "Clients connected to this replica",
                             lambda: server.roster.registered)
    app.metrics.expose_gauge("canaduck_irc_registrations_waiting",
                             "Commands of unregistered connections waiting for their turn",
                             lambda: server.registration_turns.waiting)
    app.metrics.expose_gauge("canaduck_irc_messages_per_second",
                             "Lines delivered to clients per second (last second)",
                             lambda: rates.messages_per_second)
    app.register_blueprint(routes)
    return app


class Rates:
    """Messages per second, sampled once a second for /metrics and /stats."""

    def __init__(self, server: IrcServer) -> None:
        self._server = server
        self.messages_per_second = 0.0
        self._task = Background("irc-rates")

    def start(self) -> None:
        self._task.start(self._sample())

    async def stop(self) -> None:
        await self._task.stop()

    async def _sample(self) -> None:
        last, then = self._server.counts["messages"], time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            now, count = time.monotonic(), self._server.counts["messages"]
            self.messages_per_second = (count - last) / max(now - then, 1e-6)
            last, then = count, now


def _server() -> IrcServer:
    return current_app.extensions["irc"]


@routes.get("/stats")
async def stats() -> Response:
    """This replica's clients, channels with local members, and counters."""
    server = _server()
    return jsonify({"instance": server.instance, "connections": server.roster.registered,
                    "local_channels": len(server.roster.local), "ports": server.ports,
                    "counts": dict(server.counts)})


# `/irc` is the path Caddy routes; `/` is where IRC WebSocket clients given a bare
# ws://host:port connect (irctest's WebSocket tests among them).
@routes.websocket("/irc")
@routes.websocket("/")
async def irc_websocket() -> None:
    """IRCv3 WebSocket transport: one IRC line per message (text.ircv3.net or binary.ircv3.net)."""
    subprotocol = choose_subprotocol(list(websocket.requested_subprotocols))
    await websocket.accept(subprotocol=subprotocol)
    # Behind Caddy every peer is the proxy, and the client is the address Caddy wrote in
    # X-Forwarded-For; from any other peer that header (and X-Forwarded-Proto) is a claim
    # anyone can make, so the peer itself is the client (TRUSTED_PROXIES; apps/kit/clientaddr.py).
    trusted = service_app().settings.trusted_proxies
    remote = (websocket.scope.get("client") or (None,))[0]
    address = client_address(remote, websocket.headers.getlist("X-Forwarded-For"), trusted)
    peer = str(address) if address is not None else (remote or "?")
    proxied = is_trusted(parse_address(remote), trusted)
    secure = websocket.scheme == "wss" or (proxied and websocket.headers.get("X-Forwarded-Proto") == "https")
    transport = WebSocketTransport(websocket._get_current_object(),  # type: ignore[attr-defined]
                                   peer, secure, binary=subprotocol == BINARY)
    with contextlib.suppress(asyncio.CancelledError):
        await _server().serve(transport)

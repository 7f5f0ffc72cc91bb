"""How a shot travels to the peer: the three transports of exercises 1, 2 and 4.

`send` returns DELIVERED (the peer confirmed it), SENT (it left; no confirmation comes) or
a short reason why it could not go, which the player shows as a stall.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import httpx
from redis.exceptions import RedisError

from apps.kit.broker import BrokerClient, Subscription
from apps.kit.dircache import DirectoryCache
from apps.kit.envelope import Envelope
from apps.kit.lifecycle import Runtime
from apps.player.rally import Shot
from apps.player.settings import PlayerSettings

log = logging.getLogger("canaduck.player")

DELIVERED = "delivered"
SENT = "sent"
SHOT_KIND = "shot"
UNDELIVERABLE_KIND = "undeliverable"

ShotHandler = Callable[[Shot], Awaitable[None]]
LostHandler = Callable[[Shot, str], None]


class Link(Protocol):
    """One transport: started with the player, asked to send each shot."""

    name: str

    async def start(self, on_shot: ShotHandler, on_lost: LostHandler) -> None: ...

    async def send(self, shot: Shot) -> str: ...

    async def stop(self) -> None: ...


class HttpLink:
    """Exercise 1 (fixed PEER_URL) and 2 (URL from the directory): POST /shots to the peer.

    Shots arriving here come through the player's own POST /shots route, not this object.
    """

    def __init__(self, settings: PlayerSettings, runtime: Runtime) -> None:
        self.name: str = settings.transport
        self._peer = settings.peer
        self._fixed_url = settings.peer_url.rstrip("/") if settings.transport == "http" else ""
        self._timeout = settings.rally_deadline
        self._runtime = runtime
        self._cache = DirectoryCache(runtime.directory, settings.lookup_ttl)
        self._watch: Subscription | None = None

    async def start(self, on_shot: ShotHandler, on_lost: LostHandler) -> None:
        if not self._fixed_url:  # moves and restarts of the peer are announced as events
            self._watch = self._cache.watch(self._runtime.broker)

    async def _url(self) -> str:
        if self._fixed_url:
            return self._fixed_url
        entries = [e for e in await self._cache.lookup(self._peer) if e.url]
        # The newest instance: a restarted peer replaces the old entry before it expires.
        return entries[-1].url.rstrip("/") if entries else ""

    async def send(self, shot: Shot) -> str:
        try:
            url = await self._url()
        except RedisError:
            return "Redis unreachable"
        if not url:
            return f"{self._peer} not in the directory"
        http = self._runtime.http
        assert http is not None, "the runtime opens its HTTP client at start"
        try:
            response = await http.post(f"{url}/shots", json=shot.to_dict(), timeout=self._timeout)
        except httpx.HTTPError:
            self._cache.invalidate(self._peer)
            return f"{self._peer} unreachable"
        if response.status_code == 202:
            return DELIVERED
        self._cache.invalidate(self._peer)
        return f"{self._peer} answered {response.status_code}"

    async def stop(self) -> None:
        if self._watch:
            await self._watch.stop()


class BrokerLink:
    """Exercise 4: envelopes to the broker, shots back on our own inbox."""

    name = "broker"

    def __init__(self, settings: PlayerSettings, runtime: Runtime) -> None:
        self._peer = settings.peer
        self._within = settings.rally_deadline
        self._broker: BrokerClient = runtime.broker
        self._inbox: Subscription | None = None

    async def start(self, on_shot: ShotHandler, on_lost: LostHandler) -> None:
        peer = self._peer

        async def on_envelope(envelope: Envelope) -> None:
            if envelope.kind == SHOT_KIND and envelope.sender == peer:
                try:
                    shot = Shot.from_dict(envelope.body)
                except ValueError as exc:
                    log.warning("bad shot from %s: %s", envelope.sender, exc)
                    return
                await on_shot(shot)
            elif envelope.kind == UNDELIVERABLE_KIND and isinstance(envelope.body, dict):
                original = envelope.body
                if original.get("kind") == SHOT_KIND:
                    try:
                        shot = Shot.from_dict(original.get("body"))
                    except ValueError:
                        return
                    on_lost(shot, f"{peer} absent ({original.get('reason', 'undeliverable')})")

        self._inbox = self._broker.listen_envelopes([self._broker.keys.inbox(self._broker.service)],
                                                    on_envelope)
        await self._inbox.subscribed.wait()

    async def send(self, shot: Shot) -> str:
        envelope = self._broker.envelope(self._peer, SHOT_KIND, shot.to_dict(), within=self._within)
        try:
            brokers = await self._broker.send(envelope)
        except (RedisError, OSError):
            return "Redis unreachable"
        return SENT if brokers else "no broker listening"

    async def stop(self) -> None:
        if self._inbox:
            await self._inbox.stop()


def make_link(settings: PlayerSettings, runtime: Runtime) -> Link:
    """The link of the configured TRANSPORT."""
    if settings.transport == "broker":
        return BrokerLink(settings, runtime)
    return HttpLink(settings, runtime)

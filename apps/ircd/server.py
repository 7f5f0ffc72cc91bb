"""One replica of the IRC gateway, put together: its state in Redis, its clients, delivery, the
bus, the listeners and the loops that run beside them.

A replica holds only its sockets: nicks, users, channels, members and modes are in Redis, and
the replicas meet only there (docs/ircd.md opens with a map of the code).
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Callable
from functools import partial

from redis.asyncio import Redis

from apps.chat.access import HistoryAccess
from apps.chat.chatlog import ChatLog
from apps.ircd.accounts import Accounts
from apps.ircd.admission import Door, RegistrationTurns, connection_limit
from apps.ircd.bus import Bus
from apps.ircd.client import Client
from apps.ircd.commands import COMMANDS
from apps.ircd.context import Context
from apps.ircd.delivery import Delivery
from apps.ircd.dispatch import Dispatcher
from apps.ircd.flood import FloodControl
from apps.ircd.keepalive import Keepalive
from apps.ircd.lines import server_time
from apps.ircd.listeners import Listeners
from apps.ircd.names import MemberReads
from apps.ircd.operations import devices
from apps.ircd.operations.leave import disconnect
from apps.ircd.roster import Roster
from apps.ircd.router import Router
from apps.ircd.scanturns import ScanTurns
from apps.ircd.settings import IrcdSettings
from apps.ircd.store import Store
from apps.ircd.transport import Transport
from apps.kit.directory import Directory
from apps.kit.ratelimit import RateLimiter


class IrcServer:
    """One replica of the IRC gateway."""

    def __init__(self, settings: IrcdSettings, redis: Redis, *, clock: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = lambda: secrets.token_hex(8),
                 loop_lag: Callable[[], float] = lambda: 0.0) -> None:
        keys = settings.chat_keys
        self.settings = settings
        self.counts: Counter[str] = Counter()
        self.store = Store(redis, keys)
        self.chatlog = ChatLog.from_settings(redis, settings)
        self.bus = Bus(redis, self._on_bus, self.counts)
        self.roster = Roster(self.bus, keys, self.chatlog)
        delivery = Delivery(redis, keys, settings.instance_id, self.roster, self.counts, new_id,
                            wait_from=settings.presence_wait_members)
        self._router = Router(keys, settings.instance_id, self.roster, delivery, self.counts)
        self.accounts = Accounts(settings, Directory(redis, settings.keys, settings.directory_ttl))
        self.ctx = Context(settings=settings, store=self.store, chatlog=self.chatlog,
                           history_access=HistoryAccess(redis, keys), roster=self.roster, delivery=delivery,
                           clock=clock, new_id=new_id, counts=self.counts, accounts=self.accounts,
                           created=server_time(clock()),
                           names=MemberReads(self.store, settings.names_at_once),
                           network_scans=ScanTurns())
        self._router.on_sync = partial(devices.on_sync, self.ctx)
        flood = FloodControl(settings, RateLimiter(redis), keys, self.counts)
        #: Registrations served a few at a time, oldest connection first (apps/ircd/admission.py).
        self.registration_turns = RegistrationTurns(settings.irc_registrations_at_once)
        dispatcher = Dispatcher(self.ctx, flood, COMMANDS, self.registration_turns)
        door = Door(settings, max_connections=connection_limit(settings),
                    connections=lambda: len(self.roster.connections), loop_lag=loop_lag,
                    turns=self.registration_turns, counts=self.counts)
        self.listeners = Listeners(self.ctx, dispatcher, partial(disconnect, self.ctx), door)
        self._keepalive = Keepalive(settings, self.roster)

    async def start(self) -> None:
        """Subscribe to this replica's channels, then open the IRC listeners."""
        keys = self.settings.chat_keys
        self._router.start()
        await self.bus.start(keys.replica_events(self.settings.instance_id), keys.broadcast)
        await self.accounts.refresh()
        await self.listeners.start()
        self._keepalive.start()

    async def stop(self) -> None:
        """Close the listeners, say goodbye to every client (freeing its state), stop the bus."""
        await self._keepalive.stop()
        await self.listeners.stop()
        await self.bus.stop()
        await self._router.stop()

    async def serve(self, transport: Transport) -> None:
        """Run one connection to its end (the WebSocket route hands its connections here)."""
        await self.listeners.serve(transport)

    async def _on_bus(self, channel: str, data: bytes) -> None:
        # The bus exists before its router: the router needs the roster, which needs the bus.
        await self._router(channel, data)

    # -- what the app and the tests look at ------------------------------------------------------
    @property
    def instance(self) -> str:
        return self.settings.instance_id

    @property
    def clients(self) -> dict[str, list[Client]]:
        """This replica's registered clients: each user's devices here, by uid."""
        return self.roster.users

    @property
    def ports(self) -> dict[str, int]:
        return self.listeners.ports

"""The gateway's process-wide part: listeners, local clients, delivery, the bus.

A replica holds only its sockets. `local` maps each channel to the clients of this replica in
it; everything else (nicks, members, modes) is in Redis. Messages from a local client are
delivered to local members at once, in the sender's command, and reach the other replicas
through the channel's fan-out on Redis; a replica ignores what it published itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import ssl
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from apps.chat.access import HistoryAccess
from apps.chat.chatlog import ChatLog
from apps.chat.conversations import ChatMessage, MalformedChatMessage, party
from apps.ircd.bus import Bus
from apps.ircd.client import Client, server_time
from apps.ircd.protocol import Message
from apps.ircd.settings import IrcdSettings
from apps.ircd.store import Store
from apps.ircd.transport import StreamTransport, stream_limit
from apps.kit.pubsub import publish, publish_on
from apps.kit.ratelimit import Limit, RateLimiter, take_local
from apps.kit.tasks import cancel_and_wait

log = logging.getLogger("canaduck.ircd")

Handler = Callable[[Client, Message], Any]


class IrcServer:
    """One replica of the IRC gateway."""

    def __init__(self, settings: IrcdSettings, redis: Redis, *,
                 clock: Callable[[], float] = time.time,
                 new_id: Callable[[], str] = lambda: secrets.token_hex(8)) -> None:
        from apps.ircd.commands import COMMANDS  # the handlers import this module's types

        self.settings = settings
        self.name = settings.server_name
        self.instance = settings.instance_id
        self.clock = clock
        self.new_id = new_id
        self.store = Store(redis, settings.key_prefix)
        self.chatlog = ChatLog.from_settings(redis, settings)
        self.history_access = HistoryAccess(redis, settings.chat_keys)
        self.limiter = RateLimiter(redis)
        self.flood = Limit(rate=settings.flood_lines, period=settings.flood_window,
                           burst=settings.flood_lines)
        #: live channel -> the channel (casefolded) or the uid of the local client it feeds
        self._live: dict[str, tuple[str, str]] = {}
        self.bus = Bus(redis, self.on_bus)
        self.commands: dict[str, tuple[Handler, int, bool]] = COMMANDS
        #: registered clients by uid; `connections` has every open connection, registered or not
        self.clients: dict[str, Client] = {}
        self.connections: set[Client] = set()
        self._dirty: list[Client] = []
        self._keepalive_task: asyncio.Task[None] | None = None
        self.local: dict[str, set[Client]] = {}
        self.created = server_time(clock())
        self.started_at = clock()
        #: connections, commands, messages (delivered), posted (sent by local clients)
        self.counts: Counter[str] = Counter()
        self._recent: OrderedDict[str, set[str]] = OrderedDict()
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.ports: dict[str, int] = {}
        self.users_http: Any = None  # an httpx.AsyncClient for SASL, set by the app

    # -- life ----------------------------------------------------------------------------------
    async def start(self) -> None:
        """Subscribe to this replica's channel and open the IRC listeners."""
        await self.bus.start(self.store.instance_channel(self.instance), self.store.broadcast_channel)
        host = self.settings.irc_host or self.settings.host
        loop = asyncio.get_running_loop()
        plain = await loop.create_server(self._protocol, host, self.settings.irc_port)
        self._servers.append(plain)
        self.ports["irc"] = plain.sockets[0].getsockname()[1]
        context = self.tls_context()
        if context is not None:
            tls = await loop.create_server(self._protocol, host, self.settings.irc_tls_port, ssl=context)
            self._servers.append(tls)
            self.ports["ircs"] = tls.sockets[0].getsockname()[1]
        self._keepalive_task = asyncio.create_task(self._keepalive(), name="irc-keepalive")
        log.info("IRC on %s", ", ".join(f"{k} {host}:{v}" for k, v in self.ports.items()))

    def tls_context(self) -> ssl.SSLContext | None:
        if not (self.settings.tls_cert and self.settings.tls_key):
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.settings.tls_cert, self.settings.tls_key)
        return context

    async def stop(self) -> None:
        """Close the listeners, say goodbye to every client (freeing its state), stop the bus."""
        for server in self._servers:
            server.close()
        if self._keepalive_task is not None:
            await cancel_and_wait(self._keepalive_task)
        unregistered = [c for c in self.connections if not c.registered]
        for client in [*self.clients.values(), *unregistered]:
            client.quit_reason = "Server shutting down"
            client.send(f"ERROR :Closing link: {client.quit_reason}")
            client.close()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        for server in self._servers:
            await server.wait_closed()
        await self.bus.stop()

    def _protocol(self) -> StreamTransport:
        """A new TCP or TLS connection: its transport runs `serve` once connected."""
        return StreamTransport(self.serve, stream_limit())

    async def serve(self, transport: Any) -> None:
        """Run one connection to its end (TCP, TLS or WebSocket)."""
        client = Client(self, transport)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        try:
            counted = await self._count_in(transport)
            if counted is None:
                return
            self.connections.add(client)
            try:
                await client.run()
            finally:
                self.connections.discard(client)
                if counted:
                    await self.quietly(self.store.connect_ip(transport.peer_ip, self.instance, -1))
        except Exception:
            log.exception("connection from %s failed", transport.peer_ip)
            transport.close()
        finally:
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    async def _count_in(self, transport: Any) -> bool | None:
        """Count a new connection against its address's limit: True if counted, False if
        Redis could not count it (the client is served anyway: a slow Redis must not turn
        into connections closed without a word), None if refused (and closed)."""
        try:
            count = await self.store.connect_ip(transport.peer_ip, self.instance, 1)
        except (RedisError, OSError) as exc:
            log.warning("connection from %s not counted: %s", transport.peer_ip, exc)
            return False
        if count > self.settings.max_connections_per_ip:
            await self.quietly(self.store.connect_ip(transport.peer_ip, self.instance, -1))
            transport.send(["ERROR :Closing link: too many connections from your address"])
            transport.close()
            await transport.wait_closed()
            return None
        self.counts["connections"] += 1
        await self.quietly(self.store.unregistered(self.instance, 1))
        return True

    @staticmethod
    async def quietly(step: Awaitable[object]) -> None:
        """Bookkeeping that may fail while Redis is away without failing the connection."""
        try:
            await step
        except (RedisError, OSError) as exc:
            log.warning("bookkeeping skipped: %s", exc)

    # -- commands ------------------------------------------------------------------------------
    async def dispatch(self, client: Client, message: Message) -> None:
        from apps.chat import numerics as n

        entry = self.commands.get(message.command)
        if entry is None:
            if client.registered:
                client.reply(n.ERR_UNKNOWNCOMMAND, message.command, "Unknown command")
            else:
                client.reply(n.ERR_NOTREGISTERED, "You have not registered")
            return
        handler, min_params, needs_registration = entry
        if needs_registration and not client.registered:
            client.reply(n.ERR_NOTREGISTERED, "You have not registered")
            return
        if len(message.params) < min_params:
            client.reply(n.ERR_NEEDMOREPARAMS, message.command, "Not enough parameters")
            return
        await handler(client, message)

    async def throttle(self, client: Client, raw: bytes) -> bool:
        """Flood control, before a line is even parsed: every line counts, registered or
        not, keep-alives included (the kit's GCRA: FLOOD_LINES at once, then FLOOD_LINES per
        FLOOD_WINDOW). Past the budget the line waits; a connection lives on one replica, so
        its budget is kept in this process. False: drop the line and the rest of the
        connection's input (it was lost while the line waited, or the peer has closed and the
        budget is spent: what a client sent before leaving is handled only while its budget
        lasts, so a flooder that disconnects stops at once). A QUIT never waits."""
        decision, client.flood_tat = take_local(client.flood_tat, time.monotonic(), self.flood)
        while not decision.allowed:
            if raw[:4].upper() == b"QUIT" and raw[4:5] in (b"", b" "):
                return True
            self.counts["throttled"] += 1
            if client.transport.ended or not await client.transport.pause(decision.retry_after):
                self.counts["dropped"] += 1
                return False
            decision, client.flood_tat = take_local(client.flood_tat, time.monotonic(), self.flood)
        return True

    async def throttle_account(self, client: Client) -> bool:
        """The account's share of flood control: an account may be connected through several
        replicas, so its budget is in Redis, shared by all of them (keep-alives aside)."""
        key = self.settings.chat_keys.flood(party(client.uid, client.account))
        shared = await self.limiter.take(key, self.flood)
        while not shared.allowed:
            self.counts["throttled"] += 1
            if client.transport.ended or not await client.transport.pause(shared.retry_after):
                self.counts["dropped"] += 1
                return False
            shared = await self.limiter.take(key, self.flood)
        return True

    # -- delivery ------------------------------------------------------------------------------
    def event(self, source: str, command: str, params: list[str], *, tags: dict[str, str] | None = None,
              **extra: Any) -> dict[str, Any]:
        """A message or event as the bus carries it; `time` is set here."""
        all_tags = {"time": server_time(self.clock()), **(tags or {})}
        return {"src": source, "cmd": command, "p": params, "tags": all_tags, **extra}

    def deliver_local(self, cfs: Iterable[str], event: dict[str, Any], *,
                      exclude: str | None = None) -> None:
        """Deliver to the local members of channels `cfs`, once per client; the line is
        formatted once per set of tags the members negotiated, not once per member."""
        seen = self.seen(event)
        rendered: dict[tuple[str, ...], str] = {}
        delivered = 0
        for cf in cfs:
            for client in list(self.local.get(cf, ())):
                if client.uid == exclude or client.uid in seen:
                    continue
                seen.add(client.uid)
                client.send_event(event, rendered)
                delivered += 1
        self.counts["messages"] += delivered

    def flush_soon(self, client: Client) -> None:
        """Write `client`'s pending lines at the end of this turn of the event loop, with
        every other client's: one write per client per turn, one callback for them all."""
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self._flush)
        self._dirty.append(client)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        for client in dirty:
            try:
                client.flush()
            except Exception:  # one broken socket must not keep the others' lines
                log.exception("write to %s failed", client.uid)

    async def _keepalive(self) -> None:
        """Registration deadlines and keep-alive PINGs of every client, once a second: one
        loop for the replica rather than a timer task per connection."""
        settings = self.settings
        period = min(1.0, settings.ping_interval / 4, settings.registration_timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for client in list(self.connections):
                client.keepalive(now)

    def seen(self, event: dict[str, Any]) -> set[str]:
        """Clients that already got this event (QUIT, NICK, AWAY go to several channels)."""
        event_id = event.get("id")
        if not event_id:
            return set()
        seen = self._recent.get(event_id)
        if seen is None:
            seen = self._recent[event_id] = set()
            while len(self._recent) > 2048:
                self._recent.popitem(last=False)
        return seen

    async def to_channels(self, cfs: Iterable[str], event: dict[str, Any], *,
                          exclude: str | None = None) -> None:
        """Deliver locally now, and publish for the other replicas."""
        cfs = list(cfs)
        if len(cfs) > 1:
            event.setdefault("id", self.new_id())
        if exclude:
            event["x"] = exclude
        self.deliver_local(cfs, event, exclude=exclude)
        async with self.store.redis.pipeline(transaction=False) as pipe:
            for cf in cfs:
                payload = json.dumps({**event, "o": self.instance, "cf": cf}, separators=(",", ":"))
                publish_on(pipe, self.store.fanout_channel(cf), payload)
            await pipe.execute()

    async def to_everyone(self, event: dict[str, Any]) -> None:
        """Deliver to every client of every replica (WALLOPS)."""
        for client in list(self.clients.values()):
            client.send_event(event)
        payload = json.dumps({**event, "o": self.instance}, separators=(",", ":"))
        await publish(self.store.redis, self.store.broadcast_channel, payload)

    async def to_uids(self, targets: dict[str, str], event: dict[str, Any]) -> None:
        """Deliver to users by uid; `targets` maps each uid to its replica."""
        remote: dict[str, list[str]] = {}
        for uid, instance in targets.items():
            client = self.clients.get(uid)
            if client is not None:
                await self.remote_event(client, event)
            elif instance and instance != self.instance:
                remote.setdefault(instance, []).append(uid)
        for instance, uids in remote.items():
            payload = json.dumps({**event, "to": uids, "o": self.instance}, separators=(",", ":"))
            await publish(self.store.redis, self.store.instance_channel(instance), payload)

    async def on_live(self, channel: str, data: bytes) -> None:
        """A chat record from the kit's chat log: a channel message, or a private one."""
        try:
            message = ChatMessage.from_json(data)
        except MalformedChatMessage:
            self.counts["malformed"] += 1
            return
        feeds = self._live.get(channel)
        if feeds is None or message.origin == self.instance:  # delivered here when posted
            return
        kind, name = feeds
        event = self.record_event(message)
        if kind == "channel":
            self.deliver_local([name], event)
        else:
            client = self.clients.get(name)
            if client is not None:
                client.send_event(event)
                self.counts["messages"] += 1

    def record_event(self, message: ChatMessage) -> dict[str, Any]:
        """A stored chat message as an event to deliver (its time is the stream id's)."""
        tags = {"time": server_time(message.time_ms / 1000), "msgid": message.id, **message.tags}
        if message.account:
            tags["account"] = message.account
        params = [message.target, message.text] if message.command != "TAGMSG" else [message.target]
        return {"src": message.source, "cmd": message.command, "p": params, "tags": tags}

    async def on_bus(self, channel: str, data: bytes) -> None:
        """A message from another replica: a channel fan-out or something for our clients."""
        if channel in self._live:
            await self.on_live(channel, data)
            return
        if channel == self.store.broadcast_channel:
            event = json.loads(data)
            if event.get("o") != self.instance:
                for local in list(self.clients.values()):
                    local.send_event(event)
            return
        if channel == self.store.instance_channel(self.instance):
            event = json.loads(data)
            for uid in event.pop("to", []):
                client = self.clients.get(uid)
                if client is not None:
                    await self.remote_event(client, event)
            return
        event = json.loads(data)
        cf = event.pop("cf", "")
        if event.get("o") == self.instance:
            return
        self.deliver_local([cf], event, exclude=event.get("x"))
        gone = event.get("leave")
        if gone and gone in self.clients:
            await self.forget_membership(self.clients[gone], cf)

    async def remote_event(self, client: Client, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind == "kill":
            client.quit_reason = event.get("reason", "Killed")
            client.send(f"ERROR :Closing link: {client.quit_reason}")
            client.close()
            return
        if event.get("id"):  # also sent through a channel (extended-monitor): deliver once
            seen = self.seen(event)
            if client.uid in seen:
                return
            seen.add(client.uid)
        client.send_event(event)
        self.counts["messages"] += 1

    # -- local membership ------------------------------------------------------------------------
    async def remember_membership(self, client: Client, cf: str) -> None:
        client.channels.add(cf)
        members = self.local.setdefault(cf, set())
        if not members:
            members.add(client)
            live = self.chatlog.channel_live(cf)
            self._live[live] = ("channel", cf)
            await self.bus.follow(self.store.fanout_channel(cf))
            await self.bus.follow(live)
        else:
            members.add(client)

    async def forget_membership(self, client: Client, cf: str) -> None:
        client.channels.discard(cf)
        members = self.local.get(cf)
        if members is None or client not in members:
            return
        members.discard(client)
        if not members:
            del self.local[cf]
            live = self.chatlog.channel_live(cf)
            self._live.pop(live, None)
            await self.bus.unfollow(self.store.fanout_channel(cf))
            await self.bus.unfollow(live)

    async def follow_nick(self, client: Client, nick: str) -> None:
        """Hear the private messages sent to `nick` from other replicas.

        A nick freed by a leaving client can be taken here before that client has finished
        leaving: the newcomer takes the subscription over, and the leaver's `unfollow_nick`
        then leaves it alone."""
        live = self.chatlog.nick_live(nick)
        taken_over = live in self._live
        self._live[live] = ("nick", client.uid)
        if not taken_over:
            await self.bus.follow(live)

    async def unfollow_nick(self, client: Client, nick: str) -> None:
        """Stop hearing `nick`'s private messages, unless another client holds it here now."""
        live = self.chatlog.nick_live(nick)
        if self._live.get(live) == ("nick", client.uid):
            del self._live[live]
            await self.bus.unfollow(live)

    async def disconnect(self, client: Client) -> None:
        """Everything a connection leaves behind: channels, nick, user, monitors."""
        from apps.ircd.commands import quit_everywhere

        self.clients.pop(client.uid, None)
        if not client.registered:
            await self.quietly(self.store.unregistered(self.instance, -1))
        await quit_everywhere(client)

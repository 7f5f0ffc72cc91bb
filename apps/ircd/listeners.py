"""Where connections come in: the IRC listeners (TCP, and TLS when a certificate is set), the
limit of connections per address, and each connection's life from its first line to the
clean-up after its last."""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import Counter
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from apps.ircd.admission import Door
from apps.ircd.client import Client, Flusher
from apps.ircd.context import Context, quietly
from apps.ircd.dispatch import Dispatcher
from apps.ircd.retry import UntilDone
from apps.ircd.transport import (
    ProxiedStreamTransport,
    StreamTransport,
    Transport,
    remember_server_name,
    stream_limit,
)

log = logging.getLogger("canaduck.ircd")


class Listeners:
    """Opens the listeners and serves each connection that `door` lets in: `dispatcher` runs
    its lines, then `leave` undoes what it leaves behind (apps/ircd/operations/leave.py)."""

    def __init__(self, ctx: Context, dispatcher: Dispatcher,
                 leave: Callable[[Client], Awaitable[None]], door: Door) -> None:
        self._ctx = ctx
        self._dispatcher = dispatcher
        self._leave = leave
        self._door = door
        #: What a connection leaves behind is undone however busy Redis is (apps/ircd/retry.py).
        self._until_done = UntilDone(ctx.settings)
        self._cleanups = asyncio.Semaphore(ctx.settings.irc_cleanups_at_once)
        self._flusher = Flusher(ctx.settings.presence_delay)
        self._servers: list[asyncio.AbstractServer] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._addresses = AddressCounts(ctx, self._until_done)
        self.ports: dict[str, int] = {}
        #: `serve` bound once, for every connection's transport to hold, not a bound method each.
        self._serve = self.serve

    async def start(self) -> None:
        settings = self._ctx.settings
        host = settings.irc_host or settings.host
        context = self._tls_context()
        await self._listen("irc", host, settings.irc_port)
        if settings.irc_shared_port:
            await self._listen("irc_shared", host, settings.irc_shared_port, shared=True)
        if settings.irc_proxy_port:
            await self._listen("irc_proxy", host, settings.irc_proxy_port, proxied=True)
        if context is not None:
            if not type(asyncio.get_running_loop()).__module__.startswith("uvloop"):
                # The standard library's TLS gives each connection a 256 KiB read buffer, all
                # of it written (a bytearray): 294 KiB of RSS per TLS client measured, against
                # 28 on uvloop (docs/ircd.md, "Memory per connection").
                log.warning("TLS on the standard library's event loop costs ~300 KiB per connection: "
                            "EVENT_LOOP=uvloop takes a tenth of it")
            await self._listen("ircs", host, settings.irc_tls_port, context)
            if settings.irc_tls_shared_port:
                await self._listen("ircs_shared", host, settings.irc_tls_shared_port, context, shared=True)
        log.info("IRC on %s", ", ".join(f"{k} {host}:{v}" for k, v in self.ports.items()))

    async def _listen(self, name: str, host: str, port: int, context: ssl.SSLContext | None = None,
                      shared: bool = False, proxied: bool = False) -> None:
        """Listen on `port` as `name` (in `ports`). A shared port is bound with SO_REUSEPORT,
        which Linux lets only processes of the same user join: another user on the host cannot
        slip a listener of its own in among the replicas'. A proxied one reads a PROXY header
        first, from a trusted balancer only (ProxiedStreamTransport)."""
        server = await asyncio.get_running_loop().create_server(
            self._proxied_protocol if proxied else self._protocol, host, port, ssl=context,
            reuse_port=shared or None, backlog=self._ctx.settings.irc_listen_backlog)
        self._servers.append(server)
        self.ports[name] = server.sockets[0].getsockname()[1]

    def _tls_context(self) -> ssl.SSLContext | None:
        settings = self._ctx.settings
        if not (settings.tls_cert and settings.tls_key):
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.tls_cert, settings.tls_key)
        context.sni_callback = remember_server_name  # STS's persistence policy goes by host name
        return context

    async def stop(self) -> None:
        """Close the listeners and say goodbye to every client (its task frees its state)."""
        self._until_done.stop()
        for server in self._servers:
            server.close()
        for client in list(self._ctx.roster.connections):
            client.close_link("Server shutting down")
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=5)
        for server in self._servers:
            await server.wait_closed()

    def _protocol(self) -> StreamTransport:
        """A new TCP or TLS connection: its transport runs `serve` once connected."""
        return StreamTransport(self._serve, stream_limit())

    def _proxied_protocol(self) -> StreamTransport:
        """A new connection from the balancer: `serve` runs once its PROXY header is read."""
        return ProxiedStreamTransport(self._serve, stream_limit(), self._ctx.settings.trusted_proxies)

    async def serve(self, transport: Transport) -> None:
        """Run one connection to its end (TCP, TLS or WebSocket)."""
        ctx = self._ctx
        if not self._door.admits():
            await _refuse(transport, "server busy, try again later")
            return
        client = Client(transport, ctx.new_id(), server_name=ctx.name, flusher=self._flusher,
                        send_queue_bytes=ctx.settings.send_queue_bytes, now=ctx.clock())
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)  # type: ignore[arg-type]
        try:
            counted = await self._addresses.count_in(transport)
            if counted is None:
                return
            ctx.roster.connections.add(client)
            try:
                # The dispatcher's loop awaited here, not in a coroutine of its own: one frame
                # less held for the life of every connection (docs/ircd.md, "Memory per
                # connection").
                await self._dispatcher.run(client)
            finally:
                # Shielded: a WebSocket's handler is cancelled as its socket closes, at times
                # again while the clean-up runs, and a clean-up cut short leaves its user as it
                # was (its nick held, an always-on user never away, its address still counted).
                ending = asyncio.ensure_future(self._end(client, counted))
                self._tasks.add(ending)
                ending.add_done_callback(self._tasks.discard)
                await asyncio.shield(ending)
        except Exception:
            log.exception("connection from %s failed", transport.peer_ip)
            transport.close()
        finally:
            if task is not None:
                self._tasks.discard(task)  # type: ignore[arg-type]

    async def _end(self, client: Client, counted: bool) -> None:
        """After the connection's lines, the clean-up (channels, nick), and only then its last
        lines and the close: a client that sees its connection end can reconnect with the
        same nick at once. Then its address is counted one connection fewer."""
        ctx = self._ctx
        try:
            async with self._cleanups:
                await self._until_done.run(f"cleanup of {client.uid}", lambda: self._leave(client))
        except Exception:
            log.exception("cleanup of %s failed", client.uid)
        try:
            client.flush()
            client.transport.close()
            await client.transport.wait_closed()
        finally:
            ctx.roster.connections.discard(client)
            await self._addresses.count_out(client.transport.peer_ip, counted)


class AddressCounts:
    """The limit of connections per address (MAX_CONNECTIONS_PER_IP), counted across replicas
    in Redis. While Redis cannot count a connection (down, slow, or its pool drained on
    purpose) the client is still served, uncounted: a slow Redis must not turn into connections
    closed without a word. But this replica then holds the address's uncounted connections to
    the limit itself, so an outage does not lift it."""

    def __init__(self, ctx: Context, until_done: UntilDone) -> None:
        self._ctx = ctx
        self._until_done = until_done
        #: This replica's connections Redis could not count, per address; empty while it counts.
        self._uncounted: Counter[str] = Counter()

    async def count_in(self, transport: Transport) -> bool | None:
        """Count a new connection against its address's limit: True if Redis counted it, False
        if it could not (the replica did), None if refused (and closed)."""
        ctx = self._ctx
        ip, limit = transport.peer_ip, ctx.settings.max_connections_per_ip
        try:
            count = await ctx.store.connect_ip(ip, ctx.instance, 1, unregistered=True)
        except (RedisError, OSError) as exc:
            if self._uncounted[ip] >= limit:
                await _refuse(transport, "too many connections from your address")
                return None
            log.warning("connection from %s not counted: %s", ip, exc)
            self._uncounted[ip] += 1
            return False
        if count > limit:
            await quietly(ctx.store.connect_ip(ip, ctx.instance, -1, unregistered=True))
            await _refuse(transport, "too many connections from your address")
            return None
        ctx.counts["connections"] += 1
        return True

    async def count_out(self, ip: str, counted: bool) -> None:
        """A connection from `ip` has ended: one fewer where `count_in` counted it."""
        if not counted:
            if (left := self._uncounted[ip] - 1) > 0:
                self._uncounted[ip] = left
            else:
                del self._uncounted[ip]
            return
        ctx = self._ctx
        try:
            await self._until_done.run(f"uncounting a connection from {ip}",
                                       lambda: ctx.store.connect_ip(ip, ctx.instance, -1))
        except Exception:  # the replica stopping: its addresses are the sweep's
            log.exception("uncounting a connection from %s failed", ip)


async def _refuse(transport: Transport, reason: str) -> None:
    """Tell a connection why it is not served, then close it."""
    transport.send([f"ERROR :Closing link: {reason}"])
    transport.close()
    await transport.wait_closed()

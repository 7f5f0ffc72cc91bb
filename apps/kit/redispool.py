"""A bounded Redis connection pool that serves its waiters in turn.

redis-py's `BlockingConnectionPool` wakes one waiter when a connection comes back, but puts
the connection back among the free ones first: a command that arrives before the woken waiter
has run takes it, and the waiter, finding none, waits again at the back of the line. On a
busy event loop (a thousand clients reconnecting at once) a woken task runs only at the next
turn of the loop, so newcomers win nearly every time and a waiter can lose its turn until its
timeout, while others pass at once: `No connection available` for some, after seconds, with
connections going round all the time. Its fast path also arms a timer, takes a lock and a
condition for every command.

Here a connection given back while someone waits is handed to the first waiter directly, so
the line moves in order and nobody is overtaken; a command that finds a connection free (or
room for a new one) takes it without a timer or a lock. What it changed for 5,000 clients
reconnecting at once: docs/ircd.md, "A replica killed under load".
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from redis.asyncio import ConnectionPool
from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ConnectionError as RedisConnectionError


class FairBlockingPool(ConnectionPool):
    """At most `max_connections` connections; a command past them waits its turn, for at most
    `timeout` seconds (then redis-py's `ConnectionError("No connection available.")`, as its
    own blocking pool raises). Waiters are served first come, first served."""

    def __init__(self, max_connections: int = 50, timeout: float = 20.0, **connection_kwargs: Any) -> None:
        super().__init__(max_connections=max_connections, **connection_kwargs)
        self.timeout = timeout
        self._waiters: deque[asyncio.Future[AbstractConnection]] = deque()

    @property
    def waiting(self) -> int:
        """Commands waiting for a connection now."""
        return sum(not waiter.done() for waiter in self._waiters)

    async def get_connection(self, command_name: Any = None, *keys: Any,
                             **options: Any) -> AbstractConnection:
        """A connected connection: a free one, a new one, or the next one given back."""
        # Give-backs go to waiters, never among the free connections, so while anyone waits
        # nothing is free and a newcomer queues behind them.
        if self.can_get_connection():
            connection = self.get_available_connection()
        else:
            connection = await self._wait_turn()
        try:
            await self.ensure_connection(connection)
        except BaseException:
            await self.release(connection)
            raise
        return connection

    async def _wait_turn(self) -> AbstractConnection:
        waiter: asyncio.Future[AbstractConnection] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.timeout):
                return await waiter
        except BaseException as exc:
            # A waiter given up stays in the line, done, and `release` passes over it: taking
            # it out here would cost a walk of the line for every one of a burst's timeouts.
            if waiter.done() and not waiter.cancelled():
                # Handed a connection in the same turn as the timeout or a cancellation: it is
                # this waiter's to give back, or it would be lost to the pool.
                await self.release(waiter.result())
            else:
                waiter.cancel()
            if isinstance(exc, TimeoutError):
                raise RedisConnectionError("No connection available.") from exc
            raise

    async def release(self, connection: AbstractConnection) -> None:
        """Hand the connection to the first waiter, or put it back among the free ones.

        redis-py's own release also dispatches an after-release event (it re-authenticates
        connections for streaming credential providers) and counts pool metrics for its
        OpenTelemetry recorder; neither is used here (a fixed user and password, `/metrics`
        of our own), and both cost every command."""
        if connection.should_reconnect():
            await connection.disconnect()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(connection)  # still in use: it changes hands
                return
        self._in_use_connections.remove(connection)
        self._available_connections.append(connection)

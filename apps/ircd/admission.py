"""Connections under load: the door, and registrations in turn.

**The door.** While the replica holds as many connections as it may (IRC_MAX_CONNECTIONS),
or its event loop lags past IRC_ADMISSION_LAG (two measures in a row, or one and the next
overdue: apps/kit/looplag.py), or more than IRC_REGISTRATIONS_WAITING commands wait for a
registration turn (below), a new connection is told to come back later (`ERROR`, then
closed) instead of joining work the replica is already late with; a client reconnecting with
backoff comes back when there is room, perhaps on another replica behind the one address.
Every connection holds a file descriptor, and past the process's limit (20,000 here) uvloop
accepts a new connection and closes it without a word. The lag and the waiting commands
cannot be raised by idle connections, unlike a count of connections still registering, which
anyone could fill and hold for REGISTRATION_TIMEOUT.

**Registrations in turn.** When a replica dies its clients all come back within a second or
two, thousands to each survivor. Served all at once, every registration gets a sliver of the
loop and they all end late together, past the clients' patience: the clients give up, and the
work done for them is lost. Served a few at a time, oldest connection first, they end in the
order they came, the first ones at once; the connections waiting for their turn cost their
memory and nothing else, and one that gives up before its turn costs nothing at all (see
`Dispatcher.run`). A turn is held only while one of the connection's commands runs, never
while the connection is idle: connections that connect and say nothing, or say it slowly,
cannot hold the turns.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import resource
from collections import Counter
from collections.abc import Callable

from apps.ircd.settings import IrcdSettings


class RegistrationTurns:
    """At most `size` commands of unregistered connections at once; the others wait, the
    oldest connection's first."""

    def __init__(self, size: int) -> None:
        self._free = size
        #: (when its connection was made, arrival order, its future): a heap, oldest first.
        #: A waiter that gave up stays in it, done, and is passed over by `leave`.
        self._waiting: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    @property
    def waiting(self) -> int:
        """Commands waiting for their turn (those given up but not yet passed over included)."""
        return len(self._waiting)

    async def enter(self, since: float) -> None:
        """Wait for a turn for a command of a connection made at `since` (monotonic seconds).
        Every `enter` that returns must be followed by one `leave`."""
        if self._free > 0:  # then nobody waits: `leave` hands a turn to a waiter first
            self._free -= 1
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (since, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.leave()  # handed a turn in the same moment as it gave up: pass it on
            raise

    def leave(self) -> None:
        """End a turn: hand it to the oldest connection waiting, or free it."""
        while self._waiting:
            future = heapq.heappop(self._waiting)[2]
            if not future.done():
                future.set_result(None)
                return
        self._free += 1


class Door:
    """Lets a new connection in unless the replica is full or late: `connections()` at
    `max_connections`, the loop lagging past `settings.irc_admission_lag` seconds as
    `loop_lag()` says (`LoopLagMonitor.sustained_lag`), or more than
    `settings.irc_registrations_waiting` commands waiting for a registration turn (0 for
    either of the last two: no such limit). Refusals are counted in `counts` as `refused_busy`."""

    def __init__(self, settings: IrcdSettings, *, max_connections: int, connections: Callable[[], int],
                 loop_lag: Callable[[], float], turns: RegistrationTurns, counts: Counter[str]) -> None:
        self._max_lag = settings.irc_admission_lag
        self._max_waiting = settings.irc_registrations_waiting
        self._max_connections = max_connections
        self._connections = connections
        self._loop_lag = loop_lag
        self._turns = turns
        self._counts = counts

    def admits(self) -> bool:
        """Whether the replica has room and time for one more connection."""
        if self._connections() >= self._max_connections \
                or (self._max_lag and self._loop_lag() > self._max_lag) \
                or (self._max_waiting and self._turns.waiting > self._max_waiting):
            self._counts["refused_busy"] += 1
            return False
        return True


def connection_limit(settings: IrcdSettings) -> int:
    """IRC_MAX_CONNECTIONS, or, when 0, the process's open-file limit less what the replica
    needs for itself (IRC_FILES_KEPT: its pools to Redis and to the users service, its
    listeners, its logs). Past the open-file limit a new connection is not refused but lost:
    uvloop accepts it and closes it at once, without a word."""
    if settings.irc_max_connections:
        return settings.irc_max_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return max(1, soft - settings.irc_files_kept)

"""Turns to read the whole network: `WHO` with a mask reads every user, `LIST` every channel.

Any registered client may send either, ten lines a second on each of its connections, and one
of them is as much reading as a great many of the other commands. So a replica runs one at a
time, refusing another meanwhile (`TryAgain`: 263, "try again") rather than queueing it, as a
queue would hold each asker's connection through the scans before its own. After each, the
replica rests as long as the scan took, and the next one waits that out before it starts:
scans back to back take at most half of the replica's time, and a client's WHO and LIST sent
together both run.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from apps.ircd.errors import TryAgain


class ScanTurns:
    """One look at the whole network at a time on a replica, each followed by a rest."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        """`clock`: seconds that only go forward (what the rest is measured and slept in)."""
        self._clock = clock
        self._running = asyncio.Lock()
        self._rest_until = 0.0

    @asynccontextmanager
    async def turn(self, command: str) -> AsyncIterator[None]:
        """Held while `command` reads the whole network, once the rest from the last one is
        over; TryAgain if another holds it (or took it during the rest)."""
        if self._running.locked():
            raise TryAgain(command)
        rest = self._rest_until - self._clock()
        if rest > 0:
            await asyncio.sleep(rest)
            if self._running.locked():
                raise TryAgain(command)
        async with self._running:
            started = self._clock()
            try:
                yield
            finally:
                ended = self._clock()
                self._rest_until = ended + max(0.0, ended - started)

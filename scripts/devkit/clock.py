"""A clock moved by hand, for tests of code that reads and waits on a `apps.kit.clock.Clock`."""

from __future__ import annotations

import asyncio


class ManualClock:
    """`now()` stays put until `advance()`; `sleep()` returns once time has been advanced past
    its end. Also callable (`clock()` is `clock.now()`), for code that takes a plain function.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    __call__ = now

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        wake = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + seconds, wake))
        try:
            await wake
        finally:
            self._sleepers = [(due, f) for due, f in self._sleepers if f is not wake]

    @property
    def sleeping(self) -> int:
        """How many sleeps are waiting for time to pass."""
        return sum(1 for _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, wake the sleeps that are over, and let their tasks run.

        Tasks ready to run go first, so that a sleep started "now" starts before time moves.
        """
        await settle()
        self._now += seconds
        for due, wake in list(self._sleepers):
            if due <= self._now and not wake.done():
                wake.set_result(None)
        await settle()


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until nothing is left to do (a few loop turns)."""
    for _ in range(rounds):
        await asyncio.sleep(0)

"""`ManualClock`: the `apps.kit.clock.Clock` tests use, moved by hand instead of by sleeping."""

from __future__ import annotations

import asyncio

#: Where a manual clock's wall time starts unless told: a fixed instant (2025-05-14 12:00 UTC),
#: so that what depends on the date or the hour is the same in every run.
WALL_START = 1_747_224_000.0


class ManualClock:
    """`now()` and `wall()` stay put until the test moves them, together; `sleep()` returns
    once time has been moved past its end.

    `advance()` is for code running on the event loop (it lets the woken tasks run);
    `jump()` is for rules tested synchronously, with no loop running.
    """

    def __init__(self, start: float = 1000.0, wall: float = WALL_START) -> None:
        self._now = start
        self._wall_minus_now = wall - start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_minus_now

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

    def jump(self, seconds: float) -> None:
        """Move time forward at once and wake the sleeps that are over (their tasks run at
        the loop's next turn)."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
        for due, wake in list(self._sleepers):
            if due <= self._now and not wake.done():
                wake.set_result(None)

    async def advance(self, seconds: float) -> None:
        """Move time forward, wake the sleeps that are over, and let their tasks run.

        Tasks ready to run go first, so that a sleep started "now" starts before time moves.
        """
        await settle()
        self.jump(seconds)
        await settle()


async def settle(rounds: int = 20) -> None:
    """Let every ready task run until nothing is left to do (a few loop turns)."""
    for _ in range(rounds):
        await asyncio.sleep(0)

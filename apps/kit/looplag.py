"""How late the event loop runs: the time every task of an instance waits behind work that
does not yield.

An asyncio service serves everyone from one thread, so one slow callback (a big JSON
encode, a join storm's NAMES, a flood handled without yielding) delays every other client
of the instance. This measures it the way the clients feel it: a task asks to wake every
`interval` seconds and records how much later than asked it ran, into the histogram
`canaduck_event_loop_lag_seconds` of /metrics. One timer per instance costs nothing
measurable (10 wake-ups a second by default).
"""

from __future__ import annotations

from prometheus_client import Histogram

from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.kit.tasks import Background


class LoopLagMonitor:
    """Records the event loop's lag into `histogram` every `interval` seconds (0: never)."""

    def __init__(self, histogram: Histogram, interval: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self._histogram = histogram
        self._interval = interval
        self._clock = clock
        self._task = Background("loop-lag")
        self._last = self._before_last = 0.0
        self._due = float("inf")

    async def start(self) -> None:
        if self._interval > 0:
            self._task.start(self._run())

    async def stop(self) -> None:
        await self._task.stop()
        self._due = float("inf")

    async def _run(self) -> None:
        while True:
            self._due = self._clock.now() + self._interval
            await self._clock.sleep(self._interval)
            self.observe(self._clock.now() - self._due)

    def observe(self, lag: float) -> None:
        """Record one wake-up `lag` seconds late (never negative: early is on time)."""
        self._before_last, self._last = self._last, max(lag, 0.0)
        self._histogram.observe(self._last)

    def sustained_lag(self) -> float:
        """The lag the loop has kept: its last measure, bounded by the one before it or by how
        overdue the next one is already, whichever is later. One late wake-up (a garbage
        collection, one big write) does not show here; a loop that stays late shows one
        measure later, or sooner if the next wake-up is overdue. 0 when nothing is measured."""
        return min(self._last, max(self._before_last, self._clock.now() - self._due))

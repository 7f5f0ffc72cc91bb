"""Time, for code whose rules depend on it: every such rule reads and waits through a Clock.

Two implementations: `SystemClock`, the real time every service runs on, and the manual clock
tests use (`ManualClock`, scripts/devkit/clock.py), which stands still until the test moves it,
so that a TTL, a deadline or an hour is crossed by hand instead of by sleeping.

A Clock gives two readings because rules need two kinds of time:
- `now()`, monotonic seconds, for durations measured inside one process (a lookup reused for
  2 s, a shot's deadline): it never jumps when the system's time is set;
- `wall()`, seconds since the epoch, for times other processes read (a cache entry's expiry
  shared through Redis, a timestamp published to the dashboard, the hour of the day).
Both advance together; only their origin differs.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    """Monotonic and wall-clock seconds, and a way to wait for them to pass."""

    def now(self) -> float:
        """Monotonic seconds (an arbitrary origin): for durations within this process."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch: for times shared with other processes."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock."""
        ...


class SystemClock:
    """The real thing: `time.monotonic()`, `time.time()` and `asyncio.sleep`."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


#: The clock every service runs on, the default of each rule that takes one (it holds no
#: state, so one instance serves everyone).
SYSTEM_CLOCK: Clock = SystemClock()

"""Bookkeeping a connection leaves behind, done however busy Redis is.

When thousands of connections end at once, many of their clean-ups find no pooled connection
to Redis free within REDIS_TIMEOUT. Given up, each would leave a ghost holding its nick and
its channels on a live replica, which no sweep clears, and its address counted against
MAX_CONNECTIONS_PER_IP for good. So each is tried again after a jittered wait that doubles
(CLEANUP_RETRY up to CLEANUP_RETRY_CAP), and they do not all come back together.

A step runs again whole, so what it had done before it failed is done twice: its QUIT seen
twice (even after a newcomer took the freed nick), or, when a reply timed out after Redis ran
the command, an address counted one short. That is better than a ghost that holds its nick
for good.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from apps.ircd.settings import IrcdSettings

log = logging.getLogger("canaduck.ircd")


class UntilDone:
    """Runs bookkeeping steps until Redis takes them, or until the replica stops (`stop`):
    its users are then the sweep's (apps/ircd/sweeper.py)."""

    def __init__(self, settings: IrcdSettings, jitter: Callable[[], float] = random.random) -> None:
        self._settings = settings
        self._jitter = jitter
        self._stopping = False

    def stop(self) -> None:
        """From now on a step that fails raises instead of waiting to be tried again."""
        self._stopping = True

    async def run(self, what: str, step: Callable[[], Awaitable[object]]) -> None:
        """Run `step` until it does not fail on Redis; `what` names it in the log."""
        wait = self._settings.cleanup_retry
        while True:
            try:
                await step()
                return
            except (RedisError, OSError) as exc:
                if self._stopping:
                    raise
                pause = wait * (0.5 + self._jitter() / 2)
                log.warning("%s failed (%s); again in %.2g s", what, exc, pause)
            await asyncio.sleep(pause)
            wait = min(wait * 2, self._settings.cleanup_retry_cap)

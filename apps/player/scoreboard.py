"""The scoreboard: one Redis hash (`canaduck:rally`) that either player can read and answer.

Fields, each written by one owner so that no write ever races another:
- `rallies`: the rally counter; HINCRBY gives each new rally its id.
- `transport`: how the players reach each other.
- `<player>:points`, `<player>:misses`: HINCRBY by the player who won the point.
- `<player>:state`: JSON written by that player every SCOREBOARD_INTERVAL: its status, the
  rally it plays, its counts and its last N round trips (microseconds).
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.rally.scoreboard import summarize


class Scoreboard:
    """Writes and reads the scoreboard hash."""

    def __init__(self, redis: Redis, key: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self._redis = redis
        self.key = key
        self._clock = clock  # `read` ages each player's state (`updated_at`) on its wall time

    async def next_rally_id(self, above: int = 0) -> int:
        """A new rally id, larger than every one given before and than `above`.

        `above` is the newest rally this player has seen. Redis keeps no data across a
        restart, so the counter may start again from 0 while both players remember rallies
        up to, say, 500: ids they would ignore as stale. Then the counter is moved past it.
        """
        rally_id = int(await self._redis.hincrby(self.key, "rallies", 1))
        if rally_id <= above:
            rally_id = int(await self._redis.hincrby(self.key, "rallies", above - rally_id + 1))
        return rally_id

    async def point(self, winner: str, loser: str) -> None:
        """`winner` takes a point, `loser` gets a miss."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(self.key, f"{winner}:points", 1)
            pipe.hincrby(self.key, f"{loser}:misses", 1)
            await pipe.execute()

    async def publish_state(self, player: str, transport: str, state: dict[str, Any]) -> None:
        """Write one player's state (and the transport it plays over)."""
        await self._redis.hset(self.key, mapping={
            "transport": transport,
            f"{player}:state": json.dumps(state, separators=(",", ":")),
        })

    async def read(self) -> dict[str, Any]:
        """The scoreboard as `GET /rally` shows it."""
        return summarize(await self._redis.hgetall(self.key), self._clock.wall())

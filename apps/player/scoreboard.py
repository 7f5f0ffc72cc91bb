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
import time
from typing import Any

from redis.asyncio import Redis

from apps.kit.stats import percentile

#: A player whose state is older than this is shown as silent.
SILENT_AFTER = 5.0


class Scoreboard:
    """Writes and reads the scoreboard hash."""

    def __init__(self, redis: Redis, key: str) -> None:
        self._redis = redis
        self.key = key

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
        return summarize(await self._redis.hgetall(self.key), time.time())


def summarize(raw: dict[Any, Any], now: float) -> dict[str, Any]:
    """Turn the raw hash into the scoreboard; tolerant of missing or hand-edited fields."""
    fields = {_text(k): _text(v) for k, v in raw.items()}
    players: dict[str, dict[str, Any]] = {}
    states: dict[str, dict[str, Any]] = {}
    for name, value in fields.items():
        player, _, what = name.partition(":")
        if what in ("points", "misses"):
            players.setdefault(player, {})[what] = _int(value)
        elif what == "state":
            try:
                state = json.loads(value)
            except ValueError:
                continue
            if isinstance(state, dict):
                states[player] = state
                players.setdefault(player, {})

    rtts: list[int] = []
    shots_per_s = 0.0
    current: dict[str, int] | None = None
    longest = 0
    for player, row in sorted(players.items()):
        row.setdefault("points", 0)
        row.setdefault("misses", 0)
        state = states.get(player)
        if state is None:
            row["status"] = "unknown"
            continue
        age = now - float(state.get("updated_at", 0))
        silent = age > SILENT_AFTER
        row.update(
            status="silent" if silent else state.get("status", "unknown"),
            shots=state.get("shots", 0), returned=state.get("returned", 0),
            ignored=state.get("ignored", {}), think_time=state.get("think_time"),
            updated_s_ago=round(age, 2),
        )
        longest = max(longest, _int(state.get("longest")))
        rtts.extend(x for x in state.get("rtt_us", []) if isinstance(x, int))
        if not silent:
            shots_per_s += float(state.get("shots_per_s", 0.0))
            here = {"id": _int(state.get("rally")), "hits": _int(state.get("hit"))}
            if current is None or (here["id"], here["hits"]) > (current["id"], current["hits"]):
                current = here

    p50, p99 = percentile(rtts, 50), percentile(rtts, 99)
    return {
        "transport": fields.get("transport", ""),
        "rallies": _int(fields.get("rallies")),
        "current_rally": current or {"id": 0, "hits": 0},
        "longest_rally": longest,
        "players": players,
        "round_trip_ms": {
            "p50": None if p50 is None else round(p50 / 1000, 3),
            "p99": None if p99 is None else round(p99 / 1000, 3),
            "samples": len(rtts),
        },
        "shots_per_s": round(shots_per_s, 1),
    }


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0

"""Rate limits kept in Redis, so that every replica enforces the same one: GCRA in one script.

The generic cell rate algorithm keeps one number per limited thing: the "theoretical arrival
time" (TAT) of its next request. A request costs `interval` (= period / rate) of it; it is
allowed while the TAT stays within `burst * interval` of now. One key, one integer, one round
trip, exact under any concurrency (the script runs atomically), and the key expires by itself
once the sender has been quiet long enough for a full burst.

The clock is the Redis server's (`TIME`), one clock for every replica; tests pass `now_ms`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from redis.asyncio import Redis

# KEYS[1] the TAT key. ARGV: interval ms, burst, cost, now ms ("" = the server's clock),
# "1" for a dry run (decide, write nothing). Returns {allowed (0/1), retry_after ms, remaining}.
_GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local now
if ARGV[4] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
else
  now = tonumber(ARGV[4])
end
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local limit = burst * interval
local new_tat = tat + cost * interval
if new_tat - now > limit then
  return {0, new_tat - now - limit, math.floor((limit - (tat - now)) / interval)}
end
if ARGV[5] ~= '1' then
  redis.call('SET', KEYS[1], new_tat, 'PX', math.max(1, new_tat - now))
end
return {1, 0, math.floor((limit - (new_tat - now)) / interval)}
"""


@dataclass(frozen=True, slots=True)
class Limit:
    """`rate` events per `period` seconds on average, up to `burst` at once."""

    rate: float
    period: float = 1.0
    burst: int = 1

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.period <= 0 or self.burst < 1:
            raise ValueError("rate and period must be positive and burst at least 1")

    @property
    def interval_ms(self) -> int:
        """Milliseconds one event costs."""
        return max(1, math.ceil(self.period * 1000 / self.rate))


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether the event may happen now; if not, in how many seconds it may."""

    allowed: bool
    retry_after: float
    remaining: int


def take_local(tat: float, now: float, limit: Limit, cost: int = 1) -> tuple[Decision, float]:
    """The same GCRA decision on a TAT held in memory (seconds, any monotonic clock): for a
    limit on something only one process sees (one connection), where a Redis round trip per
    event would buy nothing. Returns the decision and the new TAT (unchanged if refused)."""
    interval = limit.interval_ms / 1000
    tat = max(tat, now)
    allowance = limit.burst * interval
    new_tat = tat + cost * interval
    if new_tat - now > allowance:
        return Decision(False, new_tat - now - allowance, int((allowance - (tat - now)) / interval)), tat
    return Decision(True, 0.0, int((allowance - (new_tat - now)) / interval)), new_tat


class RateLimiter:
    """Takes events against limits kept in Redis under the keys it is given."""

    def __init__(self, redis: Redis) -> None:
        self._script = redis.register_script(_GCRA)

    async def take(self, key: str, limit: Limit, cost: int = 1, *, dry_run: bool = False,
                   now_ms: int | None = None) -> Decision:
        """Count `cost` events on `key` if the limit allows them all; a refused event is not
        counted. `dry_run` only asks whether they would be allowed, counting nothing."""
        if cost < 1:
            raise ValueError("cost must be at least 1")
        args = [limit.interval_ms, limit.burst, cost, "" if now_ms is None else now_ms,
                "1" if dry_run else "0"]
        allowed, retry_ms, remaining = await self._script(keys=[key], args=args)
        return Decision(bool(allowed), max(0, int(retry_ms)) / 1000, max(0, int(remaining)))

"""The shared rate limiter (apps/kit/ratelimit.py): GCRA in one script, on fakeredis."""

from __future__ import annotations

import asyncio

import pytest

from apps.kit.ratelimit import Limit, RateLimiter, take_local

KEY = "canaduck:chat:{alice}:flood"


@pytest.fixture
def limiter(redis) -> RateLimiter:
    return RateLimiter(redis)


async def test_a_burst_then_one_event_per_interval(limiter):
    limit = Limit(rate=2, period=1, burst=4)  # one event per 500 ms, 4 at once
    decisions = [await limiter.take(KEY, limit, now_ms=10_000) for _ in range(5)]
    assert [d.allowed for d in decisions] == [True, True, True, True, False]
    assert [d.remaining for d in decisions[:4]] == [3, 2, 1, 0]
    assert decisions[4].retry_after == pytest.approx(0.5)
    assert not (await limiter.take(KEY, limit, now_ms=10_499)).allowed
    assert (await limiter.take(KEY, limit, now_ms=10_500)).allowed
    assert not (await limiter.take(KEY, limit, now_ms=10_500)).allowed


async def test_refused_events_are_not_counted(limiter):
    limit = Limit(rate=1, period=1, burst=1)
    assert (await limiter.take(KEY, limit, now_ms=0)).allowed
    for now in range(100, 1000, 100):  # a sender hammering while refused...
        assert not (await limiter.take(KEY, limit, now_ms=now)).allowed
    assert (await limiter.take(KEY, limit, now_ms=1000)).allowed  # ...is not punished further


async def test_quiet_senders_get_their_whole_burst_back_and_the_key_expires(limiter, redis):
    limit = Limit(rate=10, period=1, burst=3)
    for _ in range(3):
        await limiter.take(KEY, limit, now_ms=0)
    assert 0 < await redis.pttl(KEY) <= 300
    assert (await limiter.take(KEY, limit, now_ms=10_000)).remaining == 2


async def test_a_cost_takes_several_events_at_once_or_none(limiter):
    limit = Limit(rate=1, period=1, burst=5)
    assert (await limiter.take(KEY, limit, cost=4, now_ms=0)).remaining == 1
    refused = await limiter.take(KEY, limit, cost=2, now_ms=0)
    assert not refused.allowed and refused.retry_after == pytest.approx(1.0)
    assert (await limiter.take(KEY, limit, cost=1, now_ms=0)).allowed


async def test_a_dry_run_counts_nothing(limiter):
    limit = Limit(rate=1, period=60, burst=1)
    for _ in range(3):
        assert (await limiter.take(KEY, limit, dry_run=True, now_ms=0)).allowed
    assert (await limiter.take(KEY, limit, now_ms=0)).allowed
    assert not (await limiter.take(KEY, limit, dry_run=True, now_ms=0)).allowed


async def test_concurrent_takes_never_exceed_the_burst(limiter):
    limit = Limit(rate=1, period=3600, burst=10)
    decisions = await asyncio.gather(*(limiter.take(KEY, limit) for _ in range(50)))
    assert sum(d.allowed for d in decisions) == 10


async def test_the_server_clock_is_used_by_default(limiter):
    limit = Limit(rate=1000, period=1, burst=2)
    assert (await limiter.take(KEY, limit)).allowed
    assert (await limiter.take(KEY, limit)).allowed


@pytest.mark.parametrize("kwargs", [{"rate": 0}, {"rate": 1, "period": 0}, {"rate": 1, "burst": 0}])
def test_impossible_limits_are_refused(kwargs):
    with pytest.raises(ValueError):
        Limit(**kwargs)


async def test_a_cost_below_one_is_refused(limiter):
    with pytest.raises(ValueError):
        await limiter.take(KEY, Limit(rate=1), cost=0)


def test_the_in_memory_gcra_decides_as_the_script_does():
    limit = Limit(rate=2, period=1, burst=4)
    tat, decisions = 0.0, []
    for _ in range(5):
        decision, tat = take_local(tat, 10.0, limit)
        decisions.append(decision)
    assert [d.allowed for d in decisions] == [True, True, True, True, False]
    assert [d.remaining for d in decisions[:4]] == [3, 2, 1, 0]
    assert decisions[4].retry_after == pytest.approx(0.5)
    assert not take_local(tat, 10.499, limit)[0].allowed
    decision, tat = take_local(tat, 10.5, limit)
    assert decision.allowed and not take_local(tat, 10.5, limit)[0].allowed

"""The shared rate limiter on the real server, under the ircd's and the users service's ACL users."""

from __future__ import annotations

import asyncio

import pytest

from apps.chat.keys import ChatKeys
from apps.kit.ratelimit import Limit, RateLimiter


@pytest.mark.cluster
async def test_two_replicas_share_one_flood_limit(redis_server, admin):
    replicas = [redis_server.async_client("ircd") for _ in range(2)]
    for client in replicas:  # connected first, as a service is before it serves (and as redis-py's
        await client.ping()  # cluster client needs: 60 commands at once on a new one race)
    limiters = [RateLimiter(client) for client in replicas]
    key = ChatKeys().flood("alice")
    limit = Limit(rate=1, period=3600, burst=25)
    decisions = await asyncio.gather(*(limiters[i % 2].take(key, limit) for i in range(60)))
    assert sum(d.allowed for d in decisions) == 25
    assert 0 < admin.pttl(key) <= 25 * 3600 * 1000
    for client in replicas:
        await client.aclose()


async def test_the_users_service_user_may_run_its_limiter(redis_server, admin):
    client = redis_server.async_client("users")
    limit = Limit(rate=2, period=60, burst=10)
    decision = await RateLimiter(client).take(ChatKeys().account_failures("alice"), limit)
    assert decision.allowed and decision.remaining == 9
    await client.aclose()

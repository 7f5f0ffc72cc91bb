"""The gateway's Redis pool: bounded, and its waiters served in order (apps/kit/redispool.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from apps.kit.app import create_app
from apps.kit.autopipeline import AutoPipelinedRedis
from apps.kit.redispool import FairBlockingPool
from apps.kit.settings import KitSettings


class FakeConnection:
    """What the pool asks of a connection, with no socket."""

    fail_connect = False

    def __init__(self, **_: Any) -> None:
        self.connected = False

    async def connect(self) -> None:
        if FakeConnection.fail_connect:
            raise RedisConnectionError("refused")
        self.connected = True

    async def can_read(self) -> bool:
        return False

    async def disconnect(self) -> None:
        self.connected = False

    def should_reconnect(self) -> bool:
        return False


@pytest.fixture(autouse=True)
def _connects() -> None:
    FakeConnection.fail_connect = False


def make_pool(size: int, timeout: float = 5.0) -> FairBlockingPool:
    return FairBlockingPool(max_connections=size, timeout=timeout, connection_class=FakeConnection)


async def turns(count: int = 3) -> None:
    for _ in range(count):
        await asyncio.sleep(0)


async def test_takes_free_connections_and_reuses_them() -> None:
    pool = make_pool(2)
    first, second = await pool.get_connection(), await pool.get_connection()
    assert first is not second and isinstance(first, FakeConnection) and first.connected
    await pool.release(first)
    assert await pool.get_connection() is first


async def test_waiters_are_served_in_order_and_a_newcomer_does_not_overtake_them() -> None:
    pool = make_pool(1)
    held = await pool.get_connection()
    served: list[str] = []

    async def command(name: str) -> None:
        connection = await pool.get_connection()
        served.append(name)
        await pool.release(connection)

    first = asyncio.create_task(command("first"))
    second = asyncio.create_task(command("second"))
    await turns()
    assert pool.waiting == 2
    await pool.release(held)  # handed to "first", which runs only at the loop's next turn
    newcomer = asyncio.create_task(command("newcomer"))
    await asyncio.gather(first, second, newcomer)
    assert served == ["first", "second", "newcomer"]
    assert pool.waiting == 0


async def test_a_waiter_past_its_timeout_gets_redis_pys_error_and_the_pool_goes_on() -> None:
    pool = make_pool(1, timeout=0.05)
    held = await pool.get_connection()
    with pytest.raises(RedisConnectionError, match="No connection available"):
        await pool.get_connection()
    assert pool.waiting == 0
    await pool.release(held)  # the given-up waiter is passed over: the connection is free
    assert await asyncio.wait_for(pool.get_connection(), 1) is held


async def test_a_connection_handed_to_a_waiter_cancelled_in_the_same_turn_is_passed_on() -> None:
    pool = make_pool(1)
    held = await pool.get_connection()
    cancelled = asyncio.create_task(pool.get_connection())
    patient = asyncio.create_task(pool.get_connection())
    await turns()
    await pool.release(held)  # handed to `cancelled`...
    cancelled.cancel()  # ...which is cancelled before it has run
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert await asyncio.wait_for(patient, 1) is held


async def test_a_connection_that_fails_to_connect_goes_back_to_the_pool() -> None:
    pool = make_pool(1)
    FakeConnection.fail_connect = True
    with pytest.raises(RedisConnectionError, match="refused"):
        await pool.get_connection()
    FakeConnection.fail_connect = False
    connection = await asyncio.wait_for(pool.get_connection(), 1)  # not lost to the failure
    assert isinstance(connection, FakeConnection) and connection.connected


async def test_a_service_on_a_bounded_pool_shows_its_line_on_metrics() -> None:
    pool = make_pool(1)
    app = create_app(KitSettings(service_name="ircd", instance_id="ircd-1", port=5101),
                     import_name=__name__, redis=AutoPipelinedRedis(connection_pool=pool))
    held = await pool.get_connection()
    waiters = [asyncio.create_task(pool.get_connection()) for _ in range(3)]
    await turns()
    metrics = await (await app.test_client().get("/metrics")).get_data(as_text=True)
    assert "canaduck_redis_commands_waiting 3.0" in metrics
    for waiter in waiters:
        await pool.release(held)
        held = await waiter
    metrics = await (await app.test_client().get("/metrics")).get_data(as_text=True)
    assert "canaduck_redis_commands_waiting 0.0" in metrics

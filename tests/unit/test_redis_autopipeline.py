"""The gateway's Redis client: one turn's commands go as one pipeline, each caller gets its own
reply or error (apps/kit/autopipeline.py)."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest
from fakeredis import FakeServer
from fakeredis.aioredis import FakeRedis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from apps.kit.autopipeline import AutoPipelinedRedis, BatchedPipeline, blocks


class CountingClient(AutoPipelinedRedis):
    """Counts the connections its commands take from the pool: one per round trip."""

    taken = 0

    def __init__(self, server: FakeServer, batch_size: int = 256) -> None:
        pool = FakeRedis(server=server, decode_responses=True).connection_pool
        super().__init__(connection_pool=pool, decode_responses=True, batch_size=batch_size)
        get_connection = pool.get_connection

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self.taken += 1
            return await get_connection(*args, **kwargs)

        pool.get_connection = counted  # type: ignore[method-assign]


@pytest.fixture
def server() -> FakeServer:
    return FakeServer()


@pytest.fixture
def redis(server: FakeServer) -> CountingClient:
    return CountingClient(server)


async def test_one_turns_commands_go_in_one_round_trip_each_with_its_reply(redis: CountingClient) -> None:
    replies = await asyncio.gather(*(redis.incr("counter") for _ in range(50)),
                                   redis.set("name", "duck"), redis.get("name"))
    assert sorted(cast(list[int], replies[:50])) == list(range(1, 51))  # INCR's replies
    assert replies[50:] == [True, "duck"]
    assert redis.taken == 1


async def test_a_command_alone_in_its_turn_goes_as_it_would_without_batching(redis: CountingClient) -> None:
    assert await redis.set("a", "1") is True
    assert await redis.get("a") == "1"
    assert redis.taken == 2


async def test_a_failing_command_fails_only_its_caller(redis: CountingClient) -> None:
    await redis.set("text", "not a number")
    results = await asyncio.gather(redis.incr("text"), redis.incr("n"), redis.get("text"),
                                   return_exceptions=True)
    assert isinstance(results[0], ResponseError)
    assert results[1:] == [1, "not a number"]


async def test_a_pipeline_without_a_transaction_joins_the_turn_and_keeps_its_errors(
        redis: CountingClient) -> None:
    await redis.set("text", "x")
    async with redis.pipeline(transaction=False) as pipe:
        # One by one: redis-py types a command of an asyncio pipeline as awaitable, not as the
        # pipeline it returns for chaining.
        pipe.incr("n")
        pipe.incr("text")
        pipe.get("text")
        lenient = asyncio.ensure_future(pipe.execute(raise_on_error=False))
        single = asyncio.ensure_future(redis.incr("n"))
        replies = await lenient
    assert replies[0] in (1, 2) and isinstance(replies[1], ResponseError) and replies[2] == "x"
    assert await single in (1, 2)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.incr("text")
        with pytest.raises(ResponseError):
            await pipe.execute()


async def test_a_transaction_keeps_its_own_connection_and_stays_atomic(redis: CountingClient) -> None:
    async with redis.pipeline(transaction=True) as pipe:
        assert not isinstance(pipe, BatchedPipeline)
        pipe.incr("n")
        pipe.incr("n")
        assert await pipe.execute() == [1, 2]


async def test_a_script_called_on_a_pipeline_is_loaded_before_the_pipeline_runs(
        redis: CountingClient) -> None:
    script = redis.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    async with redis.pipeline(transaction=False) as pipe:
        await script(keys=["n"], args=[2], client=pipe)
        pipe.get("n")
        assert await pipe.execute() == [2, "2"]  # not NOSCRIPT: the server had never seen it


async def test_a_blocking_command_waits_alone_and_holds_up_no_other(redis: CountingClient) -> None:
    # Issued in the same turn: batched with the BLPOP, SET and GET would wait for its reply.
    popped = asyncio.ensure_future(redis.blpop(["queue"], timeout=5))
    others = asyncio.gather(redis.set("k", "v"), redis.get("k"))
    assert await asyncio.wait_for(others, 1) == [True, "v"]
    assert not popped.done()
    await redis.rpush("queue", "job")
    reply = await asyncio.wait_for(popped, 2)
    assert reply is not None and tuple(reply) == ("queue", "job")


@pytest.mark.parametrize("args, expected", [
    (("BLPOP", "q", 0), True), (("xread", "COUNT", 1, "BLOCK", 100, "STREAMS", "s", "$"), True),
    (("XREAD", "COUNT", 1, "STREAMS", "s", "0"), False), (("GET", "k"), False),
])
def test_blocking_commands_are_told_apart(args: tuple[Any, ...], expected: bool) -> None:
    assert blocks(args) is expected


async def test_a_full_batch_goes_at_once_and_the_turn_starts_another(server: FakeServer) -> None:
    redis = CountingClient(server, batch_size=100)
    replies = await asyncio.gather(*(redis.incr("n") for _ in range(250)))
    assert sorted(replies) == list(range(1, 251))
    assert redis.taken == 3


async def test_a_lost_connection_fails_every_caller_of_the_batch(server: FakeServer,
                                                                 redis: CountingClient) -> None:
    server.connected = False
    results = await asyncio.gather(redis.get("a"), redis.get("b"), return_exceptions=True)
    assert all(isinstance(r, RedisConnectionError) for r in results)
    assert results[0] is not results[1] and str(results[0]) == str(results[1])  # a copy each
    server.connected = True
    assert await asyncio.gather(redis.set("a", "1"), redis.get("a")) == [True, "1"]


async def test_a_caller_that_gives_up_leaves_the_others_their_replies(redis: CountingClient) -> None:
    given_up = asyncio.ensure_future(redis.incr("n"))
    kept = asyncio.ensure_future(redis.incr("m"))
    await asyncio.sleep(0)
    given_up.cancel()
    assert await kept == 1
    assert await redis.get("n") == "1"  # sent all the same, as a command cancelled in flight may be


async def test_scripts_load_themselves_when_the_server_lacks_them(redis: CountingClient) -> None:
    script = redis.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    replies = await asyncio.gather(script(keys=["n"], args=[2]), script(keys=["n"], args=[3]))
    assert replies in ([2, 5], [3, 5])

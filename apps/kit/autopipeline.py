"""A Redis client that sends the commands of one turn of the event loop together.

A gateway serves thousands of clients from one event loop, each of whose commands is a round
trip to Redis of its own: a connection taken from the pool, a write, a wake-up for the reply,
a connection given back. Under a storm (a dead replica's clients all registering again at
once) hundreds of such round trips start in the same turn of the loop, and their writes and
wake-ups, in the replica and in Redis, cost more than the commands. Here the commands issued
in one turn (single commands, and pipelines without a transaction) are queued and sent at the
end of the turn as one pipeline on one connection: one write, one read of the replies, one
wake-up; each caller gets its own reply, or its own error, as if it had sent its command
alone. A turn with one command sends it as before. What it saves: docs/ircd.md,
"One round trip for a turn's commands".

Not batched: transactions (MULTI/EXEC keep their connection), and blocking commands (BLPOP,
XREAD BLOCK...), which would hold every reply behind them in the pipeline. A cluster keeps
redis-py's cluster client (`apps/kit/redisconn.py`): a batch would have to be split by node.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Mapping, Sequence
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

#: Commands that may wait on the server, never sent in a batch.
BLOCKING = frozenset({"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BLMPOP", "BZPOPMIN", "BZPOPMAX",
                      "BZMPOP", "WAIT", "WAITAOF", "MONITOR", "SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE"})

#: A command's arguments and options, as redis-py's pipelines keep them.
Command = tuple[tuple[Any, ...], Mapping[str, Any]]


def blocks(args: Sequence[Any]) -> bool:
    """Whether the command may wait on the server (a blocking pop, XREAD with BLOCK)."""
    name = str(args[0]).upper()
    if name in BLOCKING:
        return True
    return name in ("XREAD", "XREADGROUP") and any(str(a).upper() == "BLOCK" for a in args[1:])


class _Batch:
    """The commands of one turn: each caller's commands and the future of its replies."""

    __slots__ = ("callers", "commands")

    def __init__(self) -> None:
        self.commands: list[Command] = []
        #: (its first command's index, how many, whether one single command, its future)
        self.callers: list[tuple[int, int, bool, asyncio.Future[Any]]] = []


class AutoPipelinedRedis(Redis):
    """A Redis client whose commands of one event-loop turn go to the server as one pipeline
    (at most `batch_size` commands each). A single command answers as `Redis` does; a
    pipeline without a transaction (`pipeline(transaction=False)`) joins the turn's batch."""

    def __init__(self, *args: Any, batch_size: int = 256, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batch_size = batch_size
        self._batch: _Batch | None = None
        #: The batches on their way: the loop keeps only weak references to its tasks.
        self._sending: set[asyncio.Task[None]] = set()

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        if self.single_connection_client or blocks(args):
            return await super().execute_command(*args, **options)
        return await self._submit([(args, options)], single=True)

    def pipeline(self, transaction: bool = True, shard_hint: str | None = None) -> Pipeline:
        if transaction:
            return super().pipeline(transaction, shard_hint)
        return BatchedPipeline(self, shard_hint)

    def _submit(self, commands: list[Command], *, single: bool) -> asyncio.Future[Any]:
        """Queue `commands` in this turn's batch: the future of their replies."""
        loop = asyncio.get_running_loop()
        batch = self._batch
        if batch is None:
            batch = self._batch = _Batch()
            loop.call_soon(self._send, batch)
        future: asyncio.Future[Any] = loop.create_future()
        batch.callers.append((len(batch.commands), len(commands), single, future))
        batch.commands.extend(commands)
        if len(batch.commands) >= self.batch_size:
            self._send(batch)  # full: it goes now, the turn's next commands start another
        return future

    def _send(self, batch: _Batch) -> None:
        if self._batch is batch:
            self._batch = None
            task = asyncio.get_running_loop().create_task(self._run(batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _run(self, batch: _Batch) -> None:
        try:
            if len(batch.callers) == 1 and batch.callers[0][2]:
                args, options = batch.commands[0]
                replies: list[Any] = [await super().execute_command(*args, **options)]
            else:
                pipe = Pipeline(self.connection_pool, self.response_callbacks, False, None)
                async with pipe:
                    pipe.command_stack = list(batch.commands)
                    replies = await pipe.execute(raise_on_error=False)
        except asyncio.CancelledError:
            for *_, future in batch.callers:
                future.cancel()
            raise
        except Exception as exc:  # each caller gets the error its command met, a copy of its own:
            # one object raised in many tasks would gather all their frames in its traceback
            for *_, future in batch.callers:
                if not future.done():
                    future.set_exception(copy.copy(exc))
            return
        for start, count, single, future in batch.callers:
            if future.done():
                continue  # its caller gave up (cancelled): the commands ran all the same
            if not single:
                future.set_result(replies[start:start + count])
            elif isinstance(replies[start], Exception):
                future.set_exception(replies[start])
            else:
                future.set_result(replies[start])


class BatchedPipeline(Pipeline):
    """A pipeline without a transaction whose commands join the client's batch of the turn."""

    def __init__(self, client: AutoPipelinedRedis, shard_hint: str | None) -> None:
        super().__init__(client.connection_pool, client.response_callbacks, False, shard_hint)
        self._client = client

    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        stack = self.command_stack
        if self.watching or self.explicit_transaction or self.scripts:
            # redis-py's own path: WATCH holds a connection, and scripts called on the
            # pipeline (`script(..., client=pipe)`) are loaded before it runs
            return await super().execute(raise_on_error)
        if not stack:
            return []
        try:
            replies: list[Any] = await self._client._submit(list(stack), single=False)
        finally:
            await self.reset()
        if raise_on_error:
            self.raise_first_error(stack, replies)
        return replies

"""cancel_and_wait: a task that swallows a cancellation still ends."""

from __future__ import annotations

import asyncio

from apps.kit.tasks import cancel_and_wait


async def test_a_task_that_swallows_the_first_cancellation_still_ends():
    swallowed = 0

    async def stubborn() -> None:
        nonlocal swallowed
        while True:
            try:
                await asyncio.sleep(1)
            except asyncio.CancelledError:
                if swallowed:  # as redis-py does, once, inside a read
                    raise
                swallowed += 1

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    await asyncio.wait_for(cancel_and_wait(task), timeout=2)
    assert task.done() and swallowed == 1


async def test_a_task_that_already_failed_is_waited_for_without_raising():
    async def failing() -> None:
        raise RuntimeError("boom")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)
    await cancel_and_wait(task)
    assert isinstance(task.exception(), RuntimeError)

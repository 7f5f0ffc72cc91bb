"""cancel_and_wait: a task that swallows a cancellation still ends."""

from __future__ import annotations

import asyncio

from apps.kit.tasks import Background, cancel_and_wait


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


async def test_a_background_task_starts_once_and_stops_for_sure():
    ticks = 0

    async def loop() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    task = Background("ticker")
    task.start(loop())
    second = loop()
    task.start(second)  # already running: ignored, and the coroutine closed (no warning)
    assert second.cr_frame is None
    await asyncio.sleep(0.05)
    assert task.running and ticks >= 2
    await task.stop()
    assert not task.running
    stopped_at = ticks
    await asyncio.sleep(0.03)
    assert ticks == stopped_at
    task.start(loop())  # and again after a stop
    assert task.running
    await task.stop()

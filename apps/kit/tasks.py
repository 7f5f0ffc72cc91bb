"""Ending background tasks for sure."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any]) -> None:
    """Cancel `task` and wait until it has ended, whatever it was doing.

    A cancellation that lands inside a redis-py read can be swallowed there, and the task then
    goes on as if nothing happened (seen as a service that never finished stopping), so the
    cancellation is repeated until the task is done. Its outcome is not raised: it is ending.
    """
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=0.1)
    with contextlib.suppress(asyncio.CancelledError, Exception):
        task.result()


class Background:
    """A component's one background task (a loop it runs while the app serves): started once,
    ended for sure (`cancel_and_wait`). The component keeps the loop; this keeps the task."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._task: asyncio.Task[Any] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, loop: Coroutine[Any, Any, Any]) -> None:
        """Run `loop` as the task; a second start while one runs is ignored (`loop` closed)."""
        if self._task is not None:
            loop.close()
            return
        self._task = asyncio.create_task(loop, name=self.name)

    async def stop(self) -> None:
        """End the task, whatever it is doing; it may be started again after."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

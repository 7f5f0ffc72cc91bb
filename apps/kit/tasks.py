"""Ending background tasks for sure."""

from __future__ import annotations

import asyncio
import contextlib
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

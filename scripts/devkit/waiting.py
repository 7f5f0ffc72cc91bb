"""Waiting for a condition: the one polling loop of the dev toolkit, blocking or async."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import Callable


class NotMet(AssertionError):
    """The condition did not hold in time (an AssertionError: a test reports it as a failure)."""


def eventually(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05,
               ignore: tuple[type[BaseException], ...] = ()) -> bool:
    """Poll `predicate` until it is truthy: True, or False after `timeout` seconds.

    Exceptions of the `ignore` types count as "not yet" (a service still starting refuses
    connections).
    """
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(*ignore):
            if predicate():
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05,
               ignore: tuple[type[BaseException], ...] = ()) -> None:
    """Poll `predicate` until it is truthy; `NotMet` (an AssertionError) after `timeout` s."""
    if not eventually(predicate, timeout, interval, ignore):
        raise NotMet(f"condition not met within {timeout} s")


async def wait_until_async(predicate: Callable[[], object], timeout: float = 5.0,
                           interval: float = 0.01) -> None:
    """`wait_until` for async code: polls without blocking the event loop.

    `predicate` may be a coroutine function (e.g. a probe that makes a request).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() >= deadline:
            raise NotMet(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)

"""The command table: each handler registers itself with the rules the dispatcher checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apps.ircd.client import Client
    from apps.ircd.protocol import Message

HandlerFn = Callable[["Client", "Message"], Awaitable[Any]]

#: command -> (handler, minimum parameters, needs registration)
COMMANDS: dict[str, tuple[HandlerFn, int, bool]] = {}


def command(*names: str, params: int = 0, registered: bool = True) -> Callable[[HandlerFn], HandlerFn]:
    """Register a handler for `names`; the dispatcher answers 461 below `params` parameters and
    451 before registration when `registered`."""

    def add(handler: HandlerFn) -> HandlerFn:
        for name in names:
            COMMANDS[name] = (handler, params, registered)
        return handler

    return add

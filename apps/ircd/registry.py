"""The command table: each handler registers itself with the rules the dispatcher checks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.protocol import Message

Handler = Callable[[Context, Client, Message], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Command:
    """A command's handler; the dispatcher answers 461 below `params` parameters, and 451
    before registration when `registered`."""

    handler: Handler
    params: int
    registered: bool


CommandTable = dict[str, Command]

#: Every command, filled as the handler modules are imported (apps/ircd/commands.py).
COMMANDS: CommandTable = {}


def command(*names: str, params: int = 0, registered: bool = True) -> Callable[[Handler], Handler]:
    """Register a handler for `names`."""

    def add(handler: Handler) -> Handler:
        for name in names:
            COMMANDS[name] = Command(handler, params, registered)
        return handler

    return add

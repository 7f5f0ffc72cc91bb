"""All command handlers, gathered into one table (importing the modules registers them)."""

from apps.ircd.handlers import caps, channels, connection, messaging, modes, operators, queries  # noqa: F401
from apps.ircd.handlers.connection import quit_everywhere
from apps.ircd.registry import COMMANDS

__all__ = ["COMMANDS", "quit_everywhere"]

"""Every command handler, gathered into one table (importing the modules registers them)."""

from apps.ircd.handlers import (  # noqa: F401
    accounts,
    caps,
    channels,
    history,
    identity,
    markers,
    messaging,
    modes,
    monitor,
    multiline,
    operators,
    queries,
    redaction,
    registration,
)
from apps.ircd.registry import COMMANDS

__all__ = ["COMMANDS"]

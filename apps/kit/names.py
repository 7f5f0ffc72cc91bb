"""Names that cross service boundaries: service names and the Redis keys and channels.

docs/architecture.md fixes them; this is their only spelling in code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SERVICE_NAME_PATTERN = r"^[a-z0-9-]{1,64}$"
_SERVICE_NAME = re.compile(SERVICE_NAME_PATTERN)


def is_service_name(value: str) -> bool:
    """True for a valid service name: 1 to 64 of lowercase letters, digits and dashes."""
    return bool(_SERVICE_NAME.fullmatch(value))


@dataclass(frozen=True, slots=True)
class Keys:
    """Redis keys and channels under one prefix (default ``canaduck:``)."""

    prefix: str = "canaduck:"

    def directory(self, service: str) -> str:
        """A service's directory hash: one field per live instance (apps/kit/directory.py)."""
        return f"{self.prefix}directory:{service}"

    @property
    def services(self) -> str:
        """The index of service names that have registered: a set, so readers need no SCAN."""
        return f"{self.prefix}services"

    @property
    def events(self) -> str:
        return f"{self.prefix}events"

    @property
    def broker(self) -> str:
        return f"{self.prefix}broker"

    @property
    def stats(self) -> str:
        return f"{self.prefix}stats"

    def inbox(self, service: str) -> str:
        return f"{self.prefix}inbox:{service}"

    def __getitem__(self, name: str) -> str:
        """Any other key of a service's own, e.g. ``keys["rally"]``."""
        return f"{self.prefix}{name}"

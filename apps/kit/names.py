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

    # The chat. Names passed in are already folded (apps.kit.casemap); the part in braces is
    # a Redis Cluster hash tag, so everything about one conversation lands in one slot.

    def chat_log(self, conversation: str) -> str:
        """The history stream of a channel (`#chan`) or a private conversation (`a,b`)."""
        return f"{self.prefix}chat:{{{conversation}}}:log"

    def chat_live(self, name: str) -> str:
        """The live fan-out channel of a channel, or of whoever holds a nick."""
        return f"{self.prefix}chat:{{{name}}}:live"

    def chat_dms(self, party: str) -> str:
        """A party's private conversations: member = the other party, score = last ms."""
        return f"{self.prefix}chat:{{{party}}}:dms"

    def irc_channel(self, channel: str) -> str:
        """The ircd's state of a channel: hash with `name`, `modes` (letters, e.g. `nt`)..."""
        return f"{self.prefix}irc:chan:{{{channel}}}"

    def irc_channel_members(self, channel: str) -> str:
        """A channel's members: hash of connection id -> status letters (`o`, `v`, ``)."""
        return f"{self.irc_channel(channel)}:members"

    def irc_account_connections(self, account: str) -> str:
        """The connections logged in to an account now (a set of connection ids)."""
        return f"{self.prefix}irc:account:{{{account}}}:connections"

    def user_account(self, account: str) -> str:
        """An account: hash of name, password hash, created."""
        return f"{self.prefix}users:{{{account}}}:account"

    def user_failures(self, account: str) -> str:
        """An account's failed password checks: a rate limiter's state (apps/kit/ratelimit.py)."""
        return f"{self.prefix}users:{{{account}}}:failures"

    def user_address_failures(self, address: str) -> str:
        """Failed password checks from one client address (`limit_key`: an IPv4 address or an
        IPv6 /64), whichever accounts they were for: a rate limiter's state. No account is
        named `ip:...` (a nick holds no colon), so the two never share a key."""
        return f"{self.prefix}users:{{ip:{address}}}:failures"

    def chat_flood(self, who: str) -> str:
        """A chat sender's flood limiter state (`who`: a party, or `ip:<address>`)."""
        return f"{self.prefix}chat:{{{who}}}:flood"

    def user_sessions(self, account: str) -> str:
        """An account's web sessions: field per token digest, each with its own TTL."""
        return f"{self.prefix}users:{{{account}}}:sessions"

    def __getitem__(self, name: str) -> str:
        """Any other key of a service's own, e.g. ``keys["rally"]``."""
        return f"{self.prefix}{name}"

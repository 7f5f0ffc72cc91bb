"""Every Redis key and pub/sub channel of the chat: this is their only spelling in code.

Names passed in are already folded (apps/chat/casemap.py). The part in braces is a Redis
Cluster hash tag: every key of one conversation, one channel, one user or one account lands
in one slot, so the scripts that change several of them at once run on one node. The keys
are listed in docs/architecture.md and docs/ircd.md.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ChatKeys:
    """The chat's keys and channels under one prefix (default ``canaduck:``)."""

    prefix: str = "canaduck:"

    # -- the history (apps/chat/chatlog.py): one slot per conversation ----------------------------
    def conversation_log(self, conversation: str) -> str:
        """The history stream of a channel (`#chan`) or a private conversation (`a,b`)."""
        return f"{self.prefix}chat:{{{conversation}}}:log"

    def search_index(self, conversation: str) -> str:
        """A conversation's search index (apps/chat/search.py): a sorted set of
        `<term> <message position>` members, written with the stream."""
        return f"{self.prefix}chat:{{{conversation}}}:search"

    def live(self, name: str) -> str:
        """The live channel of a channel's messages, or of whoever holds a nick."""
        return f"{self.prefix}chat:{{{name}}}:live"

    def conversations_of(self, party: str) -> str:
        """A party's private conversations: member = the other party, score = last ms."""
        return f"{self.prefix}chat:{{{party}}}:dms"

    def read_markers(self, party: str) -> str:
        """A party's read markers (draft/read-marker): field = a folded target (a channel or
        a nick), value = the ms of the last message its user read there."""
        return f"{self.prefix}chat:{{{party}}}:read"

    def flood(self, who: str) -> str:
        """A chat sender's flood limiter state (`who`: a party)."""
        return f"{self.prefix}chat:{{{who}}}:flood"

    # -- the gateways' shared state (apps/ircd/store) ---------------------------------------------
    def nick(self, nick: str) -> str:
        """The connection id holding a nick (one holder network-wide)."""
        return f"{self.prefix}irc:nick:{{{nick}}}"

    def user(self, uid: str) -> str:
        """A user (one connection, or an account's devices sharing it): hash of nick, user,
        host, real, account, away, modes, inst..."""
        return f"{self.prefix}irc:user:{{{uid}}}"

    def user_devices(self, uid: str) -> str:
        """A user's devices (its connections, one account on several of them): connection id ->
        the replica holding it."""
        return f"{self.user(uid)}:devices"

    def user_channels(self, uid: str) -> str:
        """The channels a connection is in (folded names)."""
        return f"{self.user(uid)}:chans"

    def replica_users(self, instance: str) -> str:
        """The connections registered through one replica: what to sweep if it dies."""
        return f"{self.prefix}irc:inst:{{{instance}}}:users"

    def network(self, name: str) -> str:
        """A network-wide set or counter, all in one slot (`{global}`) so that one script may
        read several: `users`, `invisible`, `opers`, `chans`, `unregistered`, `most`,
        `instances`, `detached` (always-on users with no device: uid -> since when)."""
        return f"{self.prefix}irc:{{global}}:{name}"

    def channel(self, channel: str) -> str:
        """A channel: hash of name, created, topic, modes, key, limit..."""
        return f"{self.prefix}irc:chan:{{{channel}}}"

    def channel_members(self, channel: str) -> str:
        """A channel's members: connection id -> status letters (`o`, `v`, `ov`, ``)."""
        return f"{self.channel(channel)}:members"

    def channel_invites(self, channel: str) -> str:
        """The connections invited to a channel (an invitation is used up by the JOIN)."""
        return f"{self.channel(channel)}:invites"

    def channel_list(self, channel: str, name: str) -> str:
        """One of a channel's mask lists (`bans`, `excepts`, `invex`):
        mask -> `setter time`."""
        return f"{self.channel(channel)}:{name}"

    def whowas(self, nick: str) -> str:
        """The last users of a nick (JSON records, newest first)."""
        return f"{self.prefix}irc:whowas:{{{nick}}}"

    def monitor(self, nick: str) -> str:
        """Who MONITORs a nick: `instance uid` of each watcher."""
        return f"{self.prefix}irc:monitor:{{{nick}}}"

    def address(self, ip: str) -> str:
        """Connections from one address: replica -> count."""
        return f"{self.prefix}irc:ip:{{{ip}}}"

    def account_connections(self, account: str) -> str:
        """The connections logged in to an account now (the history rule reads it)."""
        return f"{self.prefix}irc:account:{{{account}}}:connections"

    # -- pub/sub between the gateway replicas -----------------------------------------------------
    def channel_events(self, channel: str) -> str:
        """A channel's events (JOIN, PART, MODE...) to every replica with members in it."""
        return f"{self.prefix}irc:fan:{{{channel}}}"

    def replica_events(self, instance: str) -> str:
        """What one replica's clients are sent by uid (INVITE, MONITOR, KILL...)."""
        return f"{self.prefix}irc:inst:{instance}"

    @property
    def broadcast(self) -> str:
        """What every replica hears (WALLOPS)."""
        return f"{self.prefix}irc:all"

    # -- accounts (apps/users) --------------------------------------------------------------------
    def account(self, account: str) -> str:
        """An account: hash of name, password hash, created."""
        return f"{self.prefix}users:{{{account}}}:account"

    def account_failures(self, account: str) -> str:
        """An account's failed password checks: a rate limiter's state (apps/kit/ratelimit.py)."""
        return f"{self.prefix}users:{{{account}}}:failures"

    def address_failures(self, address: str) -> str:
        """Failed password checks from one client address (`limit_key`: an IPv4 address or an
        IPv6 /64), whichever accounts they were for: a rate limiter's state. No account is
        named `ip:...` (a nick holds no colon), so the two never share a key."""
        return f"{self.prefix}users:{{ip:{address}}}:failures"

    def account_sessions(self, account: str) -> str:
        """An account's web sessions: field per token digest, each with its own TTL."""
        return f"{self.prefix}users:{{{account}}}:sessions"

"""The gateway's shared state in Redis: nicks, users, channels, modes, bans, invites, limits.

Every key of one channel (or one user) carries the same cluster hash tag (`{#chan}`,
`{uid}`), so the Lua scripts that change several of them run on one node. The keys are listed
in docs/architecture.md; each name is spelled here only.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from redis.asyncio import Redis

from apps.chat.casemap import casefold
from apps.chat.keys import ChatKeys

# JOIN in one step: the checks (+i, +k, +l, bans, invites) and the membership change cannot
# interleave with another replica's JOIN or MODE. Returns the outcome: a numeric or a word.
_JOIN = """
local info, members, invites = KEYS[1], KEYS[2], KEYS[3]
local uid, name, now, key, banned, invex = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if redis.call('HEXISTS', members, uid) == 1 then return 'already' end
if redis.call('EXISTS', info) == 0 then
  redis.call('HSET', info, 'name', name, 'created', now, 'modes', 'nt')
  redis.call('HSET', members, uid, 'o')
  return 'created'
end
local modes = redis.call('HGET', info, 'modes') or ''
local invited = redis.call('SISMEMBER', invites, uid) == 1
if string.find(modes, 'i', 1, true) and not invited and invex ~= '1' then return '473' end
local ckey = redis.call('HGET', info, 'key')
if ckey and ckey ~= key and not invited then return '475' end
local limit = tonumber(redis.call('HGET', info, 'limit') or '')
if limit and redis.call('HLEN', members) >= limit and not invited then return '471' end
if banned == '1' and not invited then return '474' end
redis.call('HSET', members, uid, '')
redis.call('SREM', invites, uid)
return 'joined'
"""

# PART/KICK/QUIT: leave, and the last one out removes the channel and its lists. Its history
# (KEYS[1]) stays if the channel was open; a secret (+s), invite-only (+i) or keyed (+k) one's
# goes with it, so that whoever creates the channel again cannot read what its members said.
# KEYS[2] is the channel's info, KEYS[3] its members; KEYS[2..] every key of the channel.
# Returns 0 (was not a member), 1 (left), 2 (left, the channel is gone), 3 (and its history).
_LEAVE = """
if redis.call('HDEL', KEYS[3], ARGV[1]) == 0 then return 0 end
if redis.call('HLEN', KEYS[3]) > 0 then return 1 end
local modes = redis.call('HGET', KEYS[2], 'modes') or ''
local closed = string.find(modes, '[sik]') or redis.call('HEXISTS', KEYS[2], 'key') == 1
redis.call('DEL', unpack(KEYS, 2))
if closed then
  redis.call('DEL', KEYS[1])
  return 3
end
return 2
"""

# A mask added to a channel list (bans, exceptions, invite exceptions) unless it is there
# already (0) or the list is full (-1).
_ADD_MASK = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

#: The channel list modes and the key part holding each (mask -> "setter time").
MASK_LISTS = {"b": "bans", "e": "excepts", "I": "invex"}

# The user count and its high-water mark, for LUSERS.
_USERS = """
local count = redis.call('SCARD', KEYS[1])
local most = tonumber(redis.call('GET', KEYS[2]) or '0')
if count > most then redis.call('SET', KEYS[2], count); most = count end
return {count, most}
"""

# A member's new status letters, only while it is a member: a check then a write from Python
# could put back a member that left in between (and recreate the members of a channel gone).
_SET_STATUS = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""

# Release a nick only if it is still ours (another connection may have taken it since).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _map(raw: Mapping[Any, Any]) -> dict[str, str]:
    return {_s(k): _s(v) for k, v in raw.items()}


class Store:
    """Typed access to the gateway's keys; `prefix` is the deployment's key prefix."""

    def __init__(self, redis: Redis, prefix: str = "canaduck:") -> None:
        self.redis = redis
        self.keys = ChatKeys(prefix)
        self._join = redis.register_script(_JOIN)
        self._leave = redis.register_script(_LEAVE)
        self._release = redis.register_script(_RELEASE)
        self._users = redis.register_script(_USERS)
        self._add_mask = redis.register_script(_ADD_MASK)
        self._set_status = redis.register_script(_SET_STATUS)

    # -- key names (spelled in apps/chat/keys.py) -------------------------------------------------
    def nick_key(self, nick_cf: str) -> str:
        return self.keys.nick(nick_cf)

    def user_key(self, uid: str) -> str:
        return self.keys.user(uid)

    def instance_users_key(self, instance: str) -> str:
        """The uids registered through one replica (what to clean up if it dies)."""
        return self.keys.replica_users(instance)

    def user_channels_key(self, uid: str) -> str:
        return self.keys.user_channels(uid)

    def global_key(self, name: str) -> str:
        return self.keys.network(name)

    @property
    def users_key(self) -> str:
        return self.global_key("users")

    @property
    def channels_key(self) -> str:
        return self.global_key("chans")

    def channel_key(self, cf: str, part: str = "") -> str:
        return self.keys.channel_list(cf, part) if part else self.keys.channel(cf)

    def whowas_key(self, nick_cf: str) -> str:
        return self.keys.whowas(nick_cf)

    def monitor_key(self, nick_cf: str) -> str:
        return self.keys.monitor(nick_cf)

    def ip_key(self, ip: str) -> str:
        return self.keys.address(ip)

    def fanout_channel(self, cf: str) -> str:
        """The pub/sub channel carrying a channel's messages and events to every replica."""
        return self.keys.channel_events(cf)

    @property
    def broadcast_channel(self) -> str:
        """The pub/sub channel every replica hears: messages for everyone (WALLOPS)."""
        return self.keys.broadcast

    def instance_channel(self, instance: str) -> str:
        """The pub/sub channel of one replica: private messages and notices for its clients."""
        return self.keys.replica_events(instance)

    # -- nicks and users ---------------------------------------------------------------------
    async def claim_nick(self, nick_cf: str, uid: str) -> bool:
        return bool(await self.redis.set(self.nick_key(nick_cf), uid, nx=True))

    async def release_nick(self, nick_cf: str, uid: str) -> None:
        await self._release(keys=[self.nick_key(nick_cf)], args=[uid])

    async def uid_of(self, nick_cf: str) -> str | None:
        value = await self.redis.get(self.nick_key(nick_cf))
        return _s(value) if value is not None else None

    async def save_user(self, uid: str, fields: Mapping[str, str]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.user_key(uid), mapping=dict(fields))  # type: ignore[arg-type]
            pipe.sadd(self.users_key, uid)
            pipe.sadd(self.instance_users_key(fields["inst"]), uid)
            if fields.get("account"):
                pipe.sadd(self.account_connections_key(fields["account"]), uid)
            await pipe.execute()
        await self._users(keys=[self.users_key, self.global_key("most")])

    def account_connections_key(self, account: str) -> str:
        return self.keys.account_connections(casefold(account))

    async def log_in(self, uid: str, account: str) -> None:
        """A registered connection logged in to `account` (SASL after registration)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.user_key(uid), "account", account)
            pipe.sadd(self.account_connections_key(account), uid)
            await pipe.execute()

    async def set_flag(self, name: str, uid: str, on: bool) -> None:
        """Add or remove `uid` from a network-wide set (`invisible`, `opers`)."""
        key = self.global_key(name)
        await (self.redis.sadd(key, uid) if on else self.redis.srem(key, uid))

    async def unregistered(self, instance: str, delta: int) -> None:
        """Count a connection that has not registered yet (+1), or one that did or left (-1)."""
        await self.redis.hincrby(self.global_key("unregistered"), instance, delta)

    async def lusers(self) -> dict[str, int]:
        """Network-wide counts for LUSERS."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.scard(self.users_key)
            pipe.get(self.global_key("most"))
            pipe.scard(self.global_key("invisible"))
            pipe.scard(self.global_key("opers"))
            pipe.hvals(self.global_key("unregistered"))
            pipe.scard(self.channels_key)
            users, most, invisible, opers, unregistered, channels = await pipe.execute()
        return {"users": int(users), "most": max(int(most or 0), int(users)), "invisible": int(invisible),
                "opers": int(opers), "unregistered": sum(max(0, int(v)) for v in unregistered),
                "channels": int(channels)}

    async def update_user(self, uid: str, **fields: str) -> None:
        await self.redis.hset(self.user_key(uid), mapping=fields)  # type: ignore[arg-type]

    async def user(self, uid: str) -> dict[str, str]:
        return _map(await self.redis.hgetall(self.user_key(uid)))

    async def users(self, uids: Iterable[str]) -> dict[str, dict[str, str]]:
        uids = list(uids)
        if not uids:
            return {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for uid in uids:
                pipe.hgetall(self.user_key(uid))
            found = await pipe.execute()
        return {uid: _map(raw) for uid, raw in zip(uids, found, strict=True) if raw}

    async def user_by_nick(self, nick_cf: str) -> dict[str, str] | None:
        uid = await self.uid_of(nick_cf)
        if uid is None:
            return None
        found = await self.user(uid)
        return found or None

    async def delete_user(self, uid: str, instance: str, account: str = "") -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            if account:
                pipe.srem(self.account_connections_key(account), uid)
            pipe.srem(self.instance_users_key(instance), uid)
            pipe.delete(self.user_key(uid), self.user_channels_key(uid))
            pipe.srem(self.users_key, uid)
            pipe.srem(self.global_key("invisible"), uid)
            pipe.srem(self.global_key("opers"), uid)
            await pipe.execute()

    async def instance_uids(self, instance: str) -> list[str]:
        return [_s(u) for u in await self.redis.smembers(self.instance_users_key(instance))]

    async def instances(self) -> set[str]:
        """Every replica that has had users (see `apps.ircd.sweeper`)."""
        return {_s(i) for i in await self.redis.hkeys(self.global_key("instances"))}

    async def add_instance(self, instance: str, now: float) -> None:
        await self.redis.hset(self.global_key("instances"), instance, str(int(now)))

    async def remove_instance(self, instance: str) -> None:
        await self.redis.hdel(self.global_key("instances"), instance)
        await self.redis.hdel(self.global_key("unregistered"), instance)

    async def all_uids(self) -> list[str]:
        return [_s(u) for u in await self.redis.smembers(self.users_key)]

    async def user_count(self) -> int:
        return int(await self.redis.scard(self.users_key))

    async def user_channels(self, uid: str) -> set[str]:
        return {_s(c) for c in await self.redis.smembers(self.user_channels_key(uid))}

    # -- channels ----------------------------------------------------------------------------
    def _channel_keys(self, cf: str) -> list[str]:
        """Every key of a channel: its info, members and invites first, then its mask lists."""
        return [self.channel_key(cf), self.channel_key(cf, "members"), self.channel_key(cf, "invites"),
                *(self.channel_key(cf, part) for part in MASK_LISTS.values())]

    async def join(self, cf: str, name: str, uid: str, *, key: str, banned: bool, now: float,
                   invex: bool = False) -> str:
        """Join (creating the channel, its creator an operator): 'created', 'joined', 'already'
        or the numeric refusing it (471, 473, 474, 475). `banned`: the client matches a ban
        and no exception; `invex`: it matches an invite exception (+I lets it pass +i)."""
        info, members, invites = self._channel_keys(cf)[:3]
        outcome = _s(await self._join(keys=[info, members, invites],
                                      args=[uid, name, f"{now:.3f}", key, "1" if banned else "0",
                                            "1" if invex else "0"]))
        if outcome in ("created", "joined"):
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.sadd(self.user_channels_key(uid), cf)
                if outcome == "created":
                    pipe.sadd(self.channels_key, cf)
                await pipe.execute()
        return outcome

    async def leave(self, cf: str, uid: str) -> bool:
        """Leave a channel; False if `uid` was not in it. The last one out removes it (and
        its history, if it was closed: see `_LEAVE`)."""
        keys = [self.keys.conversation_log(cf), *self._channel_keys(cf)]
        left = int(await self._leave(keys=keys, args=[uid]))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.srem(self.user_channels_key(uid), cf)
            if left >= 2:
                pipe.srem(self.channels_key, cf)
            await pipe.execute()
        return left > 0

    async def channel(self, cf: str) -> dict[str, str]:
        return _map(await self.redis.hgetall(self.channel_key(cf)))

    async def channel_and_status(self, cf: str, uid: str) -> tuple[dict[str, str], str | None]:
        """A channel's info and `uid`'s status in it (None: not a member) in one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(self.channel_key(cf))
            pipe.hget(self.channel_key(cf, "members"), uid)
            info, status = await pipe.execute()
        return _map(info), (_s(status) if status is not None else None)

    async def update_channel(self, cf: str, **fields: str) -> None:
        await self.redis.hset(self.channel_key(cf), mapping=fields)  # type: ignore[arg-type]

    async def clear_channel_fields(self, cf: str, *fields: str) -> None:
        await self.redis.hdel(self.channel_key(cf), *fields)

    async def members(self, cf: str) -> dict[str, str]:
        return _map(await self.redis.hgetall(self.channel_key(cf, "members")))

    async def member_count(self, cf: str) -> int:
        return int(await self.redis.hlen(self.channel_key(cf, "members")))

    async def status(self, cf: str, uid: str) -> str | None:
        value = await self.redis.hget(self.channel_key(cf, "members"), uid)
        return _s(value) if value is not None else None

    async def set_status(self, cf: str, uid: str, status: str) -> bool:
        """Change a member's status letters; False if not a member any more."""
        return bool(await self._set_status(keys=[self.channel_key(cf, "members")], args=[uid, status]))

    async def masks(self, cf: str, letters: str = "beI") -> dict[str, dict[str, str]]:
        """The channel's mask lists named by `letters` (b, e, I), in one round trip:
        letter -> {mask: "setter time"}."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for letter in letters:
                pipe.hgetall(self.channel_key(cf, MASK_LISTS[letter]))
            found = await pipe.execute()
        return {letter: _map(raw) for letter, raw in zip(letters, found, strict=True)}

    async def add_mask(self, cf: str, letter: str, mask: str, setter: str, now: float, most: int) -> int:
        """Add to list `letter`: 1 added, 0 already there, -1 the list holds `most` already."""
        return int(await self._add_mask(keys=[self.channel_key(cf, MASK_LISTS[letter])],
                                        args=[mask, f"{setter} {int(now)}", most]))

    async def remove_mask(self, cf: str, letter: str, mask: str) -> bool:
        return bool(await self.redis.hdel(self.channel_key(cf, MASK_LISTS[letter]), mask))

    async def invite(self, cf: str, uid: str) -> None:
        await self.redis.sadd(self.channel_key(cf, "invites"), uid)

    async def channel_names(self) -> list[str]:
        """Every channel, casefolded."""
        return sorted(_s(c) for c in await self.redis.smembers(self.channels_key))

    async def channel_count(self) -> int:
        return int(await self.redis.scard(self.channels_key))

    async def channel_summaries(self, cfs: list[str]) -> list[tuple[dict[str, str], int]]:
        """Info and member count of each channel, in one round trip (gone ones left out)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cf in cfs:
                pipe.hgetall(self.channel_key(cf))
                pipe.hlen(self.channel_key(cf, "members"))
            raw = await pipe.execute()
        return [(_map(raw[i]), int(raw[i + 1])) for i in range(0, len(raw), 2) if raw[i]]

    # -- whowas, monitor, limits ---------------------------------------------------------------
    async def remember(self, nick_cf: str, entry: Mapping[str, str], keep: int) -> None:
        key = self.whowas_key(nick_cf)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lpush(key, json.dumps(dict(entry)))
            pipe.ltrim(key, 0, keep - 1)
            await pipe.execute()

    async def whowas(self, nick_cf: str, count: int) -> list[dict[str, str]]:
        return [json.loads(e) for e in await self.redis.lrange(self.whowas_key(nick_cf), 0, count - 1)]

    async def watch(self, nick_cf: str, watcher: str) -> None:
        await self.redis.sadd(self.monitor_key(nick_cf), watcher)

    async def unwatch(self, nick_cf: str, watcher: str) -> None:
        await self.redis.srem(self.monitor_key(nick_cf), watcher)

    async def watchers(self, nick_cf: str) -> set[str]:
        return {_s(w) for w in await self.redis.smembers(self.monitor_key(nick_cf))}

    async def connect_ip(self, ip: str, instance: str, delta: int) -> int:
        """Count a connection from `ip` in (+1) or out (-1); the connections from it now.

        One field per replica, so a replica's count can be told apart (and cleared) by it.
        """
        key = self.ip_key(ip)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, instance, delta)
            pipe.hvals(key)
            mine, values = await pipe.execute()
        if int(mine) <= 0:
            await self.redis.hdel(key, instance)
        return sum(max(0, int(v)) for v in values)

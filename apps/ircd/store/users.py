"""Who is who, in Redis: nicks, users, the accounts' connections, WHOWAS and MONITOR lists."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from apps.chat.casemap import casefold
from apps.chat.keys import ChatKeys
from apps.chat.modes import USER_MODES
from apps.chat.records import NAMES_FIELDS, User
from apps.ircd.store import scripts
from apps.ircd.store.base import StoreBase, text
from apps.kit.pubsub import is_cluster


@dataclass(frozen=True, slots=True)
class NickClaim:
    """A nick asked for: whether it was free (and is the asker's now), and whether it is an
    account's (reserved for it), read in the same step."""

    claimed: bool
    owned: bool


class UserState(StoreBase):
    """Nicks (one holder each, network-wide), the user records of registered connections and
    the indexes that find them: by replica (for the sweeper), by account (for the history
    rule), every one (LUSERS, WHO masks)."""

    def __init__(self, redis: Redis, keys: ChatKeys) -> None:
        super().__init__(redis, keys)
        self._release = redis.register_script(scripts.RELEASE_NICK)
        self._claim = redis.register_script(scripts.CLAIM_NICK)
        self._set_host = redis.register_script(scripts.SET_HOST)
        self._names_users = redis.register_script(scripts.NAMES_USERS)
        self._whole_users = redis.register_script(scripts.USERS)

    # -- nicks -------------------------------------------------------------------------------------
    async def claim_nick(self, nick_cf: str, uid: str) -> NickClaim:
        """Take a free nick for `uid` (not if someone holds it), and read whether it is an
        account's: the users service's account of that name, which the gateway may only ask
        the existence of."""
        claimed, owned = await self._claim(keys=[self.keys.nick(nick_cf)],
                                           args=[uid, self.keys.account(nick_cf)])
        return NickClaim(bool(claimed), bool(owned))

    async def is_account(self, nick_cf: str) -> bool:
        """Whether a nick is an account's name (reserved for it)."""
        return bool(await self.redis.exists(self.keys.account(nick_cf)))

    async def release_nick(self, nick_cf: str, uid: str) -> None:
        """Free a nick, if `uid` still holds it."""
        await self._release(keys=[self.keys.nick(nick_cf)], args=[uid])

    async def uid_of(self, nick_cf: str) -> str | None:
        value = await self.redis.get(self.keys.nick(nick_cf))
        return text(value) if value is not None else None

    # -- users ----------------------------------------------------------------------------------
    def queue_add_user(self, pipe: Pipeline, user: User, device: str = "") -> None:
        """Queue on `pipe` what a connection registered as a new user writes in its own slot and
        in its indexes: its record, its one device (`device`, else the user's own uid), its
        replica's users, its account's connections. Counting it network-wide is
        `queue_count_new_user`; `Store.register_user` sends both with what the welcome reads.
        Each part is one command: EVAL, not the script's EVALSHA, as redis-py asks SCRIPT
        EXISTS before every pipeline holding a Script (a round trip more), while Redis keeps
        the compiled script by its hash."""
        fields = [part for pair in user.to_redis().items() for part in pair]
        pipe.eval(scripts.ADD_USER, 2, self.keys.user(user.uid), self.keys.user_devices(user.uid),
                  device or user.uid, user.instance, *fields)
        pipe.sadd(self.keys.replica_users(user.instance), user.uid)
        if user.account:
            pipe.sadd(self._connections_of(user.account), user.uid)

    async def update_user(self, user: User, *fields: str) -> None:
        """`fields` of a user's record (its hash's names: `nick`, `away`, `real`, `modes`),
        changed by one of its devices: only those, so that what another device or CHGHOST
        (`set_host`) wrote meanwhile stays, where the device's whole record would put back the
        fields it has not heard of yet."""
        record = user.to_redis()
        await self.redis.hset(self.keys.user(user.uid), mapping={name: record[name] for name in fields})

    async def set_host(self, uid: str, username: str, host: str) -> bool:
        """A user's new user name and host (CHGHOST), written alone: the other fields are its
        devices' to write. False if the user is gone."""
        return bool(await self._set_host(keys=[self.keys.user(uid)], args=[username, host]))

    async def log_in(self, user: User) -> None:
        """A registered connection logged in to `user.account` (SASL after registration): its
        account and whether it is always-on written, nothing else (`update_user`)."""
        record = user.to_redis()
        changed = {name: record[name] for name in ("account", "always_on")}
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.keys.user(user.uid), mapping=changed)  # type: ignore[arg-type]
            pipe.sadd(self._connections_of(user.account), user.uid)
            await pipe.execute()

    async def user(self, uid: str) -> User | None:
        raw = await self.redis.hgetall(self.keys.user(uid))
        return User.from_redis(raw) if raw else None

    async def users(self, uids: Iterable[str]) -> dict[str, User]:
        """The records of `uids` still registered, in one round trip: one script (`USERS`),
        as redis-py's work for each command of a pipeline cost more than the records' own
        reading (docs/ircd.md, "NAMES"); on a cluster, whose scripts keep to one slot, a
        pipeline."""
        uids = list(uids)
        if not uids:
            return {}
        keys = [self.keys.user(uid) for uid in uids]
        if is_cluster(self.redis):
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hgetall(key)
                found = await pipe.execute()
        else:
            flats = await self._whole_users(keys=keys)
            found = [dict(zip(flat[::2], flat[1::2], strict=True)) for flat in flats]
        return {uid: User.from_redis(raw) for uid, raw in zip(uids, found, strict=True) if raw}

    async def names_users(self, uids: Sequence[str]) -> list[User | None]:
        """What NAMES needs of each of `uids` (its nick, user, host and modes: the other fields
        of the record are left empty), None for one no longer registered; in one round trip.
        NAMES reads a large channel's members a slice at a time through this, so that a JOIN
        never holds every member's whole record at once."""
        if not uids:
            return []
        keys = [self.keys.user(uid) for uid in uids]
        if is_cluster(self.redis):  # a script's keys must share a slot there: one HMGET each
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.hmget(key, NAMES_FIELDS)
                found = await pipe.execute()
        else:
            found = await self._names_users(keys=keys, args=NAMES_FIELDS)
        return [User.from_names_fields(uid, values) for uid, values in zip(uids, found, strict=True)]

    async def user_by_nick(self, nick_cf: str) -> User | None:
        uid = await self.uid_of(nick_cf)
        return None if uid is None else await self.user(uid)

    async def delete_user(self, user: User) -> None:
        """A registered connection is gone: its record, its channel set and its indexes."""
        uid = user.uid
        async with self.redis.pipeline(transaction=False) as pipe:
            if user.account:
                pipe.srem(self._connections_of(user.account), uid)
            for instance in user.instances:
                pipe.srem(self.keys.replica_users(instance), uid)
            pipe.delete(self.keys.user(uid), self.keys.user_channels(uid), self.keys.user_devices(uid))
            pipe.srem(self._users, uid)
            pipe.zrem(self._detached, uid)
            for mode in USER_MODES:
                if mode.counted_in:
                    pipe.srem(self.keys.network(mode.counted_in), uid)
            await pipe.execute()

    async def replica_uids(self, instance: str) -> list[str]:
        """The connections registered through one replica."""
        return [text(uid) for uid in await self.redis.smembers(self.keys.replica_users(instance))]

    async def user_channels(self, uid: str) -> set[str]:
        return {text(cf) for cf in await self.redis.smembers(self.keys.user_channels(uid))}

    @property
    def _users(self) -> str:
        return self.keys.network("users")

    def _connections_of(self, account: str) -> str:
        return self.keys.account_connections(casefold(account))

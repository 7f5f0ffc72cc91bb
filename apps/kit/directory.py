"""The service directory: one Redis hash per service, one field per live instance, each field
with a TTL; and an index of the service names.

`canaduck:directory:<service>` holds field `<instance>`, value a JSON entry. Each service's
Redis user may write its own hash only (redis/users.acl), so that no service can put an address
under another's name; every user may read them all. Every write sets the field's TTL in the same
transaction, because a plain HSET clears it; a killed instance therefore vanishes when its TTL
runs out, with no sweeper. Static entries (exercise 2.1) are written without a TTL.

`canaduck:services` is a set of the names that have registered, so that the whole directory is
listed without a SCAN of the keyspace. It is only a hint: every instance adds its name at each
heartbeat, any service may add a name (one with no hash lists nothing), and only the directory
service takes out the names whose hash is gone (`prune`).

Anything can still sit in a hash its owner writes (a bug, a hand-written HSET): an entry is used
only if it names the service of its hash and the instance of its field (`check_entry`).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from redis.asyncio import Redis

from apps.kit.names import Keys, is_service_name

log = logging.getLogger("canaduck.directory")

#: An instance id longer than this is refused (the static list's limit too).
MAX_INSTANCE_LENGTH = 128

#: One service's hash as HGETALL returns it (bytes, or str with decode_responses).
RawHash = Mapping[bytes | str, bytes | str]


@dataclass(frozen=True, slots=True)
class Entry:
    """One instance of a service, as other services find it."""

    service: str
    instance: str
    url: str
    channel: str
    started_at: float = field(default_factory=time.time)
    version: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """`<service>/<instance>`: how logs, events and the dashboard name an instance."""
        return f"{self.service}/{self.instance}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Entry:
        data = json.loads(raw)
        return cls(
            service=str(data["service"]),
            instance=str(data["instance"]),
            url=str(data.get("url", "")),
            channel=str(data.get("channel", "")),
            started_at=float(data.get("started_at", 0.0)),
            version=str(data.get("version", "")),
            meta=dict(data.get("meta") or {}),
        )


@dataclass(frozen=True, slots=True)
class Listing:
    """An entry with the seconds its field has left (None: a static entry, no TTL)."""

    entry: Entry
    ttl: float | None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self.entry), "ttl": self.ttl}


def check_entry(service: str, instance: str | bytes, raw: str | bytes) -> Entry | str:
    """The entry stored in `service`'s hash under the field `instance`, or why it is unusable.

    An entry speaks only for the hash and the field it sits in: one that names another service
    or another instance is refused, whatever else it says.
    """
    try:
        entry = Entry.from_json(raw)
    except (ValueError, KeyError, TypeError, AttributeError):
        return "not a JSON entry"
    if not is_service_name(entry.service) or not 0 < len(entry.instance) <= MAX_INSTANCE_LENGTH:
        return "bad service or instance name"
    if entry.service != service or entry.instance != as_text(instance):
        return f"entry is not this field's ({entry.name[:100]})"
    return entry


def as_text(value: str | bytes) -> str:
    """A Redis reply as text (field and member names may be bytes)."""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


class Directory:
    """Reads and writes the directory: the services' hashes and their index."""

    def __init__(self, redis: Redis, keys: Keys, ttl: float) -> None:
        self._redis = redis
        self.keys = keys
        self.ttl_ms = max(1, round(ttl * 1000))
        # What was skipped at the last read of each service, to log each bad field once.
        self._skipped: dict[str, set[tuple[str, str]]] = {}

    async def register(self, entry: Entry) -> None:
        """Write `entry` and (re)arm its TTL atomically, then name its service in the index.
        A heartbeat is the same call."""
        key = self.keys.directory(entry.service)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, entry.instance, entry.to_json())
            pipe.execute_command("HPEXPIRE", key, self.ttl_ms, "FIELDS", 1, entry.instance)
            await pipe.execute()
        await self._index(entry.service)

    heartbeat = register

    async def register_static(self, entry: Entry) -> None:
        """Write an entry that never expires (exercise 2.1: addresses known in advance)."""
        await self._redis.hset(self.keys.directory(entry.service), entry.instance, entry.to_json())
        await self._index(entry.service)

    async def _index(self, service: str) -> None:
        # After the entry, outside its transaction: on a cluster the index lives in another
        # slot. A reader may miss a brand-new service for that one round trip, never an entry
        # whose name the index already holds.
        await self._redis.sadd(self.keys.services, service)

    async def deregister(self, service: str, instance: str) -> bool:
        """Remove one instance; True if it was there. Its name stays in the index."""
        return bool(await self._redis.hdel(self.keys.directory(service), instance))

    async def lookup(self, service: str) -> list[Entry]:
        """Live instances of `service`, oldest first: one HGETALL of its hash. Expired fields
        are gone server-side."""
        raw = await self._redis.hgetall(self.keys.directory(service))
        entries = self._usable(service, raw)
        return sorted(entries, key=lambda e: e.started_at)

    async def services(self) -> list[str]:
        """The names in the index, sorted; some may have no live instance. A member that is
        not a service name is left out (its hash could not be a service's)."""
        members = await self._redis.smembers(self.keys.services)
        return sorted(name for name in map(as_text, members) if is_service_name(name))

    async def hashes(self, services: Sequence[str] | None = None) -> dict[str, RawHash]:
        """The hashes of `services` (default: every name in the index) as HGETALL returns them,
        read in one pipeline, unchecked; services with no live instance are left out."""
        names = list(services) if services is not None else await self.services()
        if not names:
            return {}
        # Not a transaction: on a cluster the hashes live in different slots.
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.hgetall(self.keys.directory(name))
            raws = await pipe.execute()
        return {name: raw for name, raw in zip(names, raws, strict=True) if raw}

    async def prune(self) -> list[str]:
        """Take out of the index the names whose hash is gone; the names taken out.

        The directory service's job (only its Redis user may SREM). A service that registers
        while this runs stays indexed: its own SADD follows its HSET, and a name whose hash
        exists again after the SREM is put back at once.
        """
        members = [as_text(name) for name in await self._redis.smembers(self.keys.services)]
        gone = await self._without_hash(members)
        if not gone:
            return []
        await self._redis.srem(self.keys.services, *gone)
        removed = set(await self._without_hash(gone))
        back = [name for name in gone if name not in removed]
        if back:
            await self._redis.sadd(self.keys.services, *back)
        return sorted(removed)

    async def _without_hash(self, names: Iterable[str]) -> list[str]:
        names = list(names)
        if not names:
            return []
        # One EXISTS per key: a multi-key EXISTS is refused across a cluster's slots.
        async with self._redis.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.exists(self.keys.directory(name))
            found = await pipe.execute()
        return [name for name, exists in zip(names, found, strict=True) if not exists]

    def _usable(self, service: str, raw: RawHash) -> list[Entry]:
        """The entries of one service's hash that pass `check_entry`; the others are logged
        once (not at every read) and skipped, so one bad field never hides the rest."""
        entries: list[Entry] = []
        skipped: set[tuple[str, str]] = set()
        for instance, value in raw.items():
            checked = check_entry(service, instance, value)
            if isinstance(checked, Entry):
                entries.append(checked)
            else:
                skipped.add((as_text(instance)[:200], checked))
        for instance, reason in sorted(skipped - self._skipped.get(service, set())):
            log.warning("directory entry %s/%s skipped: %s", service, instance, reason)
        if skipped:
            self._skipped[service] = skipped
        else:
            self._skipped.pop(service, None)
        return entries

    # Last in the class: below it, `list` in an annotation would name this method.
    async def list(self, services: Sequence[str] | None = None) -> list[Listing]:
        """Every live entry of `services` (default: all) with its remaining TTL, sorted by
        service then instance. Two pipelined reads: the hashes, then their fields' TTLs."""
        usable = {name: entries for name, raw in (await self.hashes(services)).items()
                  if (entries := self._usable(name, raw))}
        if not usable:
            return []
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, entries in usable.items():
                pipe.execute_command("HPTTL", self.keys.directory(name), "FIELDS", len(entries),
                                     *(entry.instance for entry in entries))
            ttls = await pipe.execute()
        listings = [
            Listing(entry, None if ttl_ms < 0 else ttl_ms / 1000)
            for entries, service_ttls in zip(usable.values(), ttls, strict=True)
            for entry, ttl_ms in zip(entries, service_ttls, strict=True)
            if ttl_ms != -2  # expired between the two reads
        ]
        return sorted(listings, key=lambda item: (item.entry.service, item.entry.instance))

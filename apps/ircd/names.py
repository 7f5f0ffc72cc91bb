"""One replica's reads of channels' members for NAMES, shared by the NAMES that wait for them.

Every JOIN is answered with its channel's NAMES: a storm of joins to a channel of thousands
would read every member once per join, and hold as many copies of the channel as there are
joins in flight. Here the NAMES of one channel that arrive while a read of it is under way wait
for the next read, which starts once that one is done and serves them all; at most
NAMES_AT_ONCE channels are read at once. A read takes a slice of NAMES_CHUNK members per round
trip, four fields of each (`UserState.names_users`). See docs/ircd.md, "NAMES".
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from apps.chat.records import Status, User
from apps.ircd.store import Store

#: Members read per round trip: what one read asks Redis for at once. A read's round trips
#: each wait for a turn of the event loop, and in a storm of joins a turn is long (it delivers
#: many JOINs): at 200 a read of 7,000 members took 35 of them, and the joiners waiting for it
#: set the pace of the storm (docs/ircd.md, "CPU of a join wave"). At most NAMES_AT_ONCE reads
#: are under way at once, so a bigger slice costs little memory.
NAMES_CHUNK = 1000


@dataclass(frozen=True, slots=True)
class Member:
    user: User  # its nick, user, host and modes only
    status: Status


@dataclass(frozen=True, slots=True)
class Roll:
    """A channel's members as one read found them (those whose record is gone left out)."""

    members: list[Member]
    uids: frozenset[str]
    #: What `texts` made, by its arguments: a JOIN storm answers many joiners from one read.
    _texts: dict[tuple[bool, bool, int], list[str]] = field(default_factory=dict, compare=False, repr=False)

    def texts(self, every: bool, hostmasks: bool, room: int) -> list[str]:
        """The members as the texts of 353 lines: prefixes (all of them with `every`, the
        multi-prefix capability, else the highest) and nicks (or, with `hostmasks`,
        userhost-in-names, nick!user@host), space separated, each text at most `room` bytes
        (or one entry, if longer). Made once per set of arguments for all the NAMES the read
        serves: in a storm of joins to a channel of thousands, each joiner's reply built member
        by member was 14 % of a replica's CPU (docs/ircd.md, "CPU of a join wave")."""
        key = (every, hostmasks, room)
        found = self._texts.get(key)
        if found is None:
            found = self._texts[key] = _texts(self.members, every, hostmasks, room)
        return found


def _texts(members: list[Member], every: bool, hostmasks: bool, room: int) -> list[str]:
    symbols: dict[Status, str] = {}  # a handful of distinct statuses in a channel
    texts: list[str] = []
    line: list[str] = []
    size = 0  # bytes of " ".join(line)
    for member in members:
        user, status = member.user, member.status
        prefix = symbols.get(status)
        if prefix is None:
            prefix = symbols[status] = status.symbols(every)
        entry = prefix + (user.prefix if hostmasks else user.nick)
        length = len(entry) if entry.isascii() else len(entry.encode())
        grown = size + length + (1 if line else 0)
        if line and grown > room:
            texts.append(" ".join(line))
            line, grown = [], length
        line.append(entry)
        size = grown
    if line:
        texts.append(" ".join(line))
    return texts


class MemberReads:
    """Reads of channels' members, each shared by the NAMES waiting for it when it starts."""

    def __init__(self, store: Store, at_once: int) -> None:
        self._store = store
        self._gate = asyncio.Semaphore(at_once)
        self._next: dict[str, asyncio.Future[Roll]] = {}  # per channel: the read not started yet
        self._running: dict[str, asyncio.Future[Roll]] = {}  # per channel: the read under way
        self._tasks: set[asyncio.Task[None]] = set()

    async def members(self, cf: str) -> Roll:
        """Channel `cf`'s members, from a read that starts after this call (so a client that
        has just joined finds itself), shared with the other callers waiting for it."""
        future = self._next.get(cf)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._next[cf] = loop.create_future()
            future.add_done_callback(_retrieve)
            task = loop.create_task(self._read(cf, future))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await asyncio.shield(future)

    async def _read(self, cf: str, future: asyncio.Future[Roll]) -> None:
        try:
            running = self._running.get(cf)
            if running is not None:
                await asyncio.wait([running])
            # From here on, a newcomer may have joined after this read's members were read.
            del self._next[cf]
            self._running[cf] = future
            async with self._gate:
                roll = await self._read_roll(cf)
            future.set_result(roll)
        except Exception as exc:  # the waiting NAMES answer it (Redis down: their 400)
            if not future.done():
                future.set_exception(exc)
        finally:
            if self._next.get(cf) is future:
                del self._next[cf]
            if self._running.get(cf) is future:
                del self._running[cf]

    async def _read_roll(self, cf: str) -> Roll:
        statuses: dict[bytes, Status] = {}  # a handful of distinct values: one object each
        members: list[Member] = []
        raw = await self._store.member_statuses(cf)
        keys = list(raw)
        for start in range(0, len(keys), NAMES_CHUNK):
            part = keys[start:start + NAMES_CHUNK]
            users = await self._store.names_users([uid.decode() for uid in part])
            for key, user in zip(part, users, strict=True):
                if user is None:
                    continue
                status = statuses.get(raw[key])
                if status is None:
                    status = statuses[raw[key]] = Status.from_redis(raw[key])
                members.append(Member(user, status))
        return Roll(members, frozenset(member.user.uid for member in members))


def _retrieve(future: asyncio.Future[Roll]) -> None:
    """A read's failure is the waiting NAMES' to answer; if they have all gone, it is dropped."""
    if not future.cancelled():
        future.exception()

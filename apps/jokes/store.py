"""The jokes in Redis: one hash, `canaduck:jokes`, field = id, value = the joke's text.

A joke's id is a hash of its folded text, so the same joke (up to case and spacing) always
gets the same id: adding is one HSETNX, atomic, and a duplicate is simply a field that
exists. `redis-cli HGETALL canaduck:jokes` shows them all.

The seeded jokes (the packaged file, or JOKES_FILE) are content that must always be there:
whenever Redis comes back without them (a server without persistence restarted, a FLUSHALL),
they are put back, at the next heartbeat or by the first request that misses them, without a
restart of the service. The jokes users added are data: only Redis's persistence keeps them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from apps.kit.params import fold

log = logging.getLogger("canaduck.jokes")

PACKAGED_JOKES = Path(__file__).with_name("jokes.json")


@dataclass(frozen=True, slots=True)
class Joke:
    id: str
    joke: str


def joke_id(text: str) -> str:
    """12 hex characters derived from the folded text."""
    return hashlib.blake2b(fold(text).encode(), digest_size=6).hexdigest()


def read_jokes_file(path: Path) -> list[str]:
    """The jokes of a JSON file holding a list of non-empty strings (ValueError otherwise)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, list) or not all(isinstance(j, str) and j.strip() for j in data):
        raise ValueError(f"{path}: expected a JSON list of non-empty strings")
    return [j.strip() for j in data]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class JokeStore:
    """Reads and writes the jokes hash, and keeps the seeded jokes in it."""

    def __init__(self, redis: Redis, key: str, seeded: Iterable[str] = ()) -> None:
        self._redis = redis
        self.key = key
        self.seeded: dict[str, str] = {joke_id(text): text for text in seeded}
        # One seeded joke stands for all: a flush or an empty restart loses every one of them.
        self._sentinel = next(iter(self.seeded), None)

    async def restore_seeded(self) -> int:
        """Put back each seeded joke that is missing; how many were put back.

        HSETNX never overwrites: a joke already there (even as another spelling a user added)
        is kept. Several instances doing it at once write the same fields with the same
        values, so the race is harmless; a joke already there costs no write (and no AOF).
        """
        if not self.seeded:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for id_, text in self.seeded.items():
                pipe.hsetnx(self.key, id_, text)
            added = sum(bool(done) for done in await pipe.execute())
        if added:
            log.warning("put back %d seeded jokes missing from %s", added, self.key)
        return added

    async def heal(self) -> int:
        """Restore the seeded jokes if they are gone: one HGET when all is well."""
        if self._sentinel is None or await self._redis.hget(self.key, self._sentinel) is not None:
            return 0
        return await self.restore_seeded()

    async def random(self) -> Joke | None:
        """One joke picked at random, None if there are none (even after restoring the seeded)."""
        picked: list[bytes] = await self._redis.hrandfield(self.key, 1, withvalues=True)  # type: ignore[assignment]
        if not picked and await self.restore_seeded():
            picked = await self._redis.hrandfield(self.key, 1, withvalues=True)  # type: ignore[assignment]
        if not picked:
            return None
        return Joke(id=_text(picked[0]), joke=_text(picked[1]))

    async def get(self, id_: str) -> Joke | None:
        """The joke with this id; a seeded one missing from Redis is put back first."""
        text = await self._redis.hget(self.key, id_)
        if text is None and id_ in self.seeded:
            await self.restore_seeded()
            text = await self._redis.hget(self.key, id_)
        return None if text is None else Joke(id=id_, joke=_text(text))

    async def add(self, text: str) -> tuple[Joke, bool]:
        """Store `text`; (the joke, True) if new, (the joke already there, False) if a duplicate."""
        id_ = joke_id(text)
        if await self._redis.hsetnx(self.key, id_, text):
            return Joke(id=id_, joke=text), True
        existing = await self.get(id_)
        return existing or Joke(id=id_, joke=text), False

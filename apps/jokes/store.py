"""The jokes in Redis: one hash, `canaduck:jokes`, field = id, value = the joke's text.

A joke's id is a hash of its folded text, so the same joke (up to case and spacing) always
gets the same id: adding is one HSETNX, atomic, and a duplicate is simply a field that
exists. `redis-cli HGETALL canaduck:jokes` shows them all.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from apps.kit.params import fold

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
    """Reads and writes the jokes hash."""

    def __init__(self, redis: Redis, key: str) -> None:
        self._redis = redis
        self.key = key

    async def seed(self, jokes: list[str]) -> int:
        """Load `jokes` if the hash is empty (the first start); how many were loaded.

        Two instances starting together write the same fields with the same values, so the
        race is harmless.
        """
        if await self._redis.hlen(self.key):
            return 0
        mapping = {joke_id(text): text for text in jokes}
        await self._redis.hset(self.key, mapping=mapping)  # type: ignore[arg-type]
        return len(mapping)

    async def random(self) -> Joke | None:
        """One joke picked at random, None if there are none."""
        picked: list[bytes] = await self._redis.hrandfield(self.key, 1, withvalues=True)  # type: ignore[assignment]
        if not picked:
            return None
        return Joke(id=_text(picked[0]), joke=_text(picked[1]))

    async def get(self, id_: str) -> Joke | None:
        text = await self._redis.hget(self.key, id_)
        return None if text is None else Joke(id=id_, joke=_text(text))

    async def add(self, text: str) -> tuple[Joke, bool]:
        """Store `text`; (the joke, True) if new, (the joke already there, False) if a duplicate."""
        id_ = joke_id(text)
        if await self._redis.hsetnx(self.key, id_, text):
            return Joke(id=id_, joke=text), True
        existing = await self.get(id_)
        return existing or Joke(id=id_, joke=text), False

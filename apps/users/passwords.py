"""Password rules and argon2id hashing, off the event loop.

A hash costs tens of milliseconds of CPU and megabytes of memory by design, so it runs in a
worker thread, at most `concurrency` at a time: a burst of logins waits its turn instead of
stalling every other request or eating the memory. Passwords are never logged nor returned.
"""

from __future__ import annotations

import asyncio
import unicodedata
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from apps.kit.params import InvalidParameter


class WeakPassword(InvalidParameter):
    """A password refused only for being shorter than the minimum: a client may be told that
    it is too weak, rather than unacceptable (IRCv3 account-registration tells them apart)."""


def checked_password(value: str, *, field: str, min_length: int, max_length: int) -> str:
    """`value` NFC-normalised (the same password typed on two keyboards is the same), or
    InvalidParameter naming `field` if it is too long, blank or holds a control character
    (NUL separates SASL PLAIN's fields; others are never typed); WeakPassword if too short."""
    password = unicodedata.normalize("NFC", value)
    if any(unicodedata.category(char) == "Cc" for char in password):
        raise InvalidParameter(field, "contains a control character")
    if not password.strip():
        raise InvalidParameter(field, "empty")
    if len(password) < min_length:
        raise WeakPassword(field, f"shorter than {min_length} characters")
    if len(password) > max_length:
        raise InvalidParameter(field, f"longer than {max_length} characters")
    return password


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a verification: `ok`, and whether the stored hash should be redone
    with the current cost settings."""

    ok: bool
    rehash: bool = False


class Hasher:
    """argon2id hashing and verification in worker threads, a few at a time."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int, concurrency: int) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib,
                                      parallelism=parallelism)
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        """The PHC string of `password` (`$argon2id$v=19$m=...`), salted at random."""
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored: str | None, password: str) -> Verdict:
        """Check `password` against `stored`. With no stored hash (an unknown account) a dummy
        one is checked instead, so the answer takes as long and tells nothing more."""
        if stored is None:
            await self._verify(await self._dummy_hash(), password)
            return Verdict(False)
        if not await self._verify(stored, password):
            return Verdict(False)
        return Verdict(True, rehash=self._hasher.check_needs_rehash(stored))

    async def _verify(self, stored: str, password: str) -> bool:
        async with self._slots:
            try:
                return await asyncio.to_thread(self._hasher.verify, stored, password)
            except (VerifyMismatchError, VerificationError, InvalidHashError):
                return False

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self.hash("not a password anybody has")
        return self._dummy

"""Accounts and web sessions in Redis.

An account is a hash, `canaduck:users:{<folded name>}:account`: `name` (as registered),
`password` (argon2id PHC string), `created` (unix seconds). Registration writes the three
fields with HSETNX in one MULTI, so of two simultaneous registrations of one name exactly one
gets the fields and the other sees zeros: no lock, no script.

A session token is `<base64url(folded account)>.<secret>`. Only the secret's SHA-256 is kept,
as a field of `canaduck:users:{<folded name>}:sessions` with its own TTL (HPEXPIRE): reading
Redis does not give anyone a usable token, logout is one HDEL, and revoking every session of
an account (after a password change) is one DEL. The account's two keys share a hash tag.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from apps.chat.casemap import casefold, is_valid_nick
from apps.chat.keys import ChatKeys


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    created: int
    #: Always-on (the chat keeps its user when its last device goes): the account's choice,
    #: None until it makes one (the ircd's ALWAYS_ON decides then).
    always_on: bool | None = None


@dataclass(frozen=True, slots=True)
class Session:
    account: str
    token: str
    expires_in: int


class AccountStore:
    """Reads and writes accounts and their sessions."""

    def __init__(self, redis: Redis, keys: ChatKeys, session_ttl: float) -> None:
        self._redis = redis
        self._keys = keys
        self._session_ttl_ms = max(1, round(session_ttl * 1000))

    def _key(self, name: str) -> str:
        return self._keys.account(casefold(name))

    async def create(self, name: str, password_hash: str, now: float | None = None) -> Account | None:
        """Register `name`; None if the (folded) name is taken."""
        created = int(time.time() if now is None else now)
        key = self._key(name)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "name", name)
            pipe.hsetnx(key, "password", password_hash)
            pipe.hsetnx(key, "created", str(created))
            results = await pipe.execute()
        return Account(name, created) if all(results) else None

    async def get(self, name: str) -> Account | None:
        """The account of `name` (any case), None if there is none."""
        stored, created, always_on = await self._redis.hmget(  # type: ignore[misc]
            self._key(name), ["name", "created", "always_on"])
        if stored is None:
            return None
        return Account(_text(stored), int(_text(created or "0")),
                       None if always_on is None else _text(always_on) == "1")

    async def set_always_on(self, name: str, always_on: bool) -> None:
        """The account's choice of always-on (an existing account's)."""
        await self._redis.hset(self._key(name), "always_on", "1" if always_on else "0")

    async def exists(self, name: str) -> bool:
        return await self.get(name) is not None

    async def password_hash(self, name: str) -> tuple[Account, str] | None:
        """The account and its stored hash, None if there is no such account."""
        stored, created, password = await self._redis.hmget(  # type: ignore[misc]
            self._key(name), ["name", "created", "password"])
        if stored is None or password is None:
            return None
        return Account(_text(stored), int(_text(created or "0"))), _text(password)

    async def set_password_hash(self, name: str, password_hash: str) -> None:
        """Replace the stored hash (password change, or a rehash at the current cost)."""
        await self._redis.hset(self._key(name), "password", password_hash)

    # Sessions

    async def open_session(self, account: Account) -> Session:
        """A new session token for `account`."""
        folded = casefold(account.name)
        secret = secrets.token_urlsafe(32)
        key = self._keys.account_sessions(folded)
        digest = _digest(secret)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, digest, str(int(time.time())))
            pipe.execute_command("HPEXPIRE", key, self._session_ttl_ms, "FIELDS", 1, digest)
            await pipe.execute()
        token = f"{_encode(folded)}.{secret}"
        return Session(account.name, token, self._session_ttl_ms // 1000)

    async def session_account(self, token: str) -> Account | None:
        """The account a live token belongs to; None for an unknown, expired or malformed one."""
        parsed = _parse_token(token)
        if parsed is None:
            return None
        folded, secret = parsed
        if not await self._redis.hget(self._keys.account_sessions(folded), _digest(secret)):
            return None
        return await self.get(folded)

    async def close_session(self, token: str) -> bool:
        """Log out one token; True if it was live."""
        parsed = _parse_token(token)
        if parsed is None:
            return False
        folded, secret = parsed
        return bool(await self._redis.hdel(self._keys.account_sessions(folded), _digest(secret)))

    async def close_all_sessions(self, name: str) -> None:
        await self._redis.delete(self._keys.account_sessions(casefold(name)))


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _encode(folded: str) -> str:
    return base64.urlsafe_b64encode(folded.encode()).decode().rstrip("=")


def _parse_token(token: str) -> tuple[str, str] | None:
    """(folded account, secret) of a well-formed token, else None."""
    head, dot, secret = token.partition(".")
    if not dot or not head or not 20 <= len(secret) <= 100 or len(head) > 100:
        return None
    try:
        folded = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    if not is_valid_nick(folded) or folded != casefold(folded):
        return None
    return folded, secret


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

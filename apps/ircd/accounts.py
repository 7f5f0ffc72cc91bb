"""The users service, as the gateway asks it: SASL PLAIN's checks, IRCv3 REGISTER's new
accounts and an account's always-on choice. Whether a nick is an account's is not asked:
the gateway reads in Redis whether the users service holds an account of that name, as it
claims the nick (apps/ircd/store/users.py `claim_nick`).

It is found as the messages service finds it: at USERS_URL when that is set, else a live
instance in the directory (apps/kit/http.py `Peers`, through a short-lived cache). SASL is
offered while a users service can be found. With USERS_URL, always; else as the last look
found it: a look at start, after every heartbeat of the replica (HEARTBEAT_INTERVAL) and at
every call to the users service. CAP LS reads that answer: it never looks up the directory.
"""

from __future__ import annotations

import enum
import logging
from typing import Any

import httpx

from apps.chat.casemap import casefold
from apps.ircd.settings import IrcdSettings
from apps.kit.dircache import DirectoryCache
from apps.kit.directory import Directory
from apps.kit.http import NoInstance, Peers

log = logging.getLogger("canaduck.ircd.accounts")

#: Seconds a directory lookup of the users service is reused.
LOOKUP_TTL = 1.0


class Refusal(enum.Enum):
    """Why the users service did not create an account."""

    EXISTS = "exists"  # the name is an account's, in any case
    BAD_NAME = "bad name"  # not a nick
    WEAK_PASSWORD = "weak password"  # shorter than the users service's minimum
    BAD_PASSWORD = "bad password"  # too long, blank, a control character
    UNAVAILABLE = "unavailable"  # the users service could not be asked, or failed


class Accounts:
    """Calls the users service; `http` is the app's HTTP client, set at start."""

    def __init__(self, settings: IrcdSettings, directory: Directory) -> None:
        self._lookups = DirectoryCache(directory, LOOKUP_TTL)
        self._peers = Peers(self._lookups, {"users": settings.users_url},
                            lookup_timeout=settings.users_timeout)
        self._timeout = settings.users_timeout
        #: Whether a users service could be found at the last look (always with USERS_URL).
        self.available = bool(settings.users_url)
        self.http: Any = None  # an httpx.AsyncClient

    async def refresh(self) -> None:
        """Look for a users service now, in the directory itself (`available`)."""
        self._lookups.invalidate("users")
        await self._base_url()

    async def always_on(self, account: str, default: bool) -> bool:
        """Whether `account`'s user stays when its last device goes: the account's choice
        (`PATCH /api/users/me`), or `default` when it made none or the users service cannot
        say."""
        base = await self._base_url()
        if base is None or self.http is None:
            return default
        try:
            response = await self.http.get(f"{base}/internal/accounts/{account}", timeout=self._timeout)
            chosen = response.json().get("always_on") if response.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            log.warning("users service unreachable for %s's always-on: %s", account, exc)
            return default
        return chosen if isinstance(chosen, bool) else default

    async def verify(self, account: str, password: str, address: str) -> str | None:
        """The account's name if the users service takes `password` for `account`, else None.

        The password may be a web session token of that account (the chat page logs in with
        its token, never the password): that is asked first, as it is cheap and not counted,
        whereas a wrong password costs the users service a hash and counts towards throttling
        the account, which would lock out a page that reloads or reconnects often. Anything
        else is the users service's password check, unchanged; `address` is the IRC client's,
        so that failures count against it rather than against the gateway's own address."""
        owner = await self._ask("/internal/sessions/check", {"token": password})
        if owner is not None and casefold(owner) == casefold(account):
            return owner
        return await self._ask("/internal/verify",
                               {"account": account, "password": password, "address": address})

    async def register(self, account: str, password: str) -> str | Refusal:
        """Create the account `account` with `password` on the users service (whose rules
        decide): its name as registered, or why not."""
        base = await self._base_url()
        if base is None or self.http is None:
            return Refusal.UNAVAILABLE
        try:
            response = await self.http.post(f"{base}/internal/register", timeout=self._timeout,
                                            json={"account": account, "password": password})
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("users service unreachable for REGISTER: %s", exc)
            return Refusal.UNAVAILABLE
        if response.status_code == 201 and isinstance(body, dict) and body.get("account"):
            return str(body["account"])
        if response.status_code == 409:
            return Refusal.EXISTS
        if response.status_code == 400 and isinstance(body, dict):
            if body.get("parameter") == "account":
                return Refusal.BAD_NAME
            if body.get("parameter") == "password":
                return Refusal.WEAK_PASSWORD if body.get("weak") else Refusal.BAD_PASSWORD
        return Refusal.UNAVAILABLE

    async def _ask(self, route: str, body: dict[str, str]) -> str | None:
        """The `account` of the users service's 200 answer to `route`; None for any other answer."""
        base = await self._base_url()
        if base is None or self.http is None:
            return None
        try:
            response = await self.http.post(base + route, json=body, timeout=self._timeout)
        except httpx.HTTPError as exc:
            log.warning("users service unreachable for SASL: %s", exc)
            return None
        if response.status_code != 200:
            return None
        try:
            account = response.json().get("account")
        except (ValueError, AttributeError):
            return None
        return account if isinstance(account, str) and account else None

    async def _base_url(self) -> str | None:
        """The users service's URL now, or None (and `available` says so)."""
        try:
            url = await self._peers.url("users")
        except NoInstance:  # never with USERS_URL
            self.available = False
            return None
        self.available = True
        return url.rstrip("/")

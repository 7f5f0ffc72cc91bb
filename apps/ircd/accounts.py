"""The users service, as the gateway asks it: who owns a nick, and SASL PLAIN's checks."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from apps.chat.casemap import casefold
from apps.ircd.settings import IrcdSettings

log = logging.getLogger("canaduck.ircd.accounts")


class Accounts:
    """Calls the users service at USERS_URL; `http` is the app's HTTP client, set at start."""

    def __init__(self, settings: IrcdSettings) -> None:
        self._settings = settings
        self.http: Any = None  # an httpx.AsyncClient

    @property
    def available(self) -> bool:
        """Whether SASL is offered: a users service is configured."""
        return bool(self._settings.users_url)

    async def owner_of(self, nick: str) -> str | None:
        """The account named `nick`, if any; None too when the users service cannot be asked
        (the chat stays up without it, and says so in the log)."""
        if not self._settings.users_url or self.http is None:
            return None
        try:
            response = await self.http.get(self._url(f"/internal/accounts/{nick}"))
        except httpx.HTTPError as exc:
            log.warning("users service unreachable for nick %s: %s", nick, exc)
            return None
        if response.status_code != 200:
            return None
        return str(response.json().get("account", "")) or None

    async def verify(self, account: str, password: str) -> str | None:
        """The account's name if the users service takes `password` for `account`, else None.

        The password may be a web session token of that account (the chat page logs in with
        its token, never the password): that is asked first, as it is cheap and not counted,
        whereas a wrong password costs the users service a hash and counts towards throttling
        the account, which would lock out a page that reloads or reconnects often. Anything
        else is the users service's password check, unchanged."""
        owner = await self._ask("/internal/sessions/check", {"token": password})
        if owner is not None and casefold(owner) == casefold(account):
            return owner
        return await self._ask("/internal/verify", {"account": account, "password": password})

    async def _ask(self, route: str, body: dict[str, str]) -> str | None:
        """The `account` of the users service's 200 answer to `route`; None for any other answer."""
        try:
            response = await self.http.post(self._url(route), json=body)
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

    def _url(self, route: str) -> str:
        return self._settings.users_url.rstrip("/") + route

"""Keep-alives and registration deadlines: one loop for the replica, about once a second,
rather than a timer task per connection."""

from __future__ import annotations

import asyncio
import time

from apps.ircd.client import Client
from apps.ircd.roster import Roster
from apps.ircd.settings import IrcdSettings
from apps.kit.tasks import Background


class Keepalive:
    """Closes a connection that has not registered in REGISTRATION_TIMEOUT seconds; PINGs a
    client quiet for PING_INTERVAL seconds, and cuts it PING_TIMEOUT seconds later."""

    def __init__(self, settings: IrcdSettings, roster: Roster) -> None:
        self._settings = settings
        self._roster = roster
        self._task = Background("irc-keepalive")

    def start(self) -> None:
        self._task.start(self._loop())

    async def stop(self) -> None:
        await self._task.stop()

    async def _loop(self) -> None:
        settings = self._settings
        period = min(1.0, settings.ping_interval / 4, settings.registration_timeout / 4)
        while True:
            await asyncio.sleep(period)
            now = time.monotonic()
            for client in list(self._roster.connections):
                self.check(client, now)

    def check(self, client: Client, now: float) -> None:
        """One client's deadline or keep-alive, at monotonic time `now`."""
        if client.closing:
            return
        settings = self._settings
        if not client.registered:
            if now - client.signon_monotonic > settings.registration_timeout:
                client.close_link("Registration timeout", "registration timeout")
            return
        idle = now - client.last_read
        if idle >= settings.ping_interval + settings.ping_timeout:
            client.close_link(f"Ping timeout: {int(settings.ping_timeout)} seconds")
        elif idle >= settings.ping_interval and client.pinged_at != client.last_read:
            client.pinged_at = client.last_read
            client.send(f"PING :{client.server_name}")

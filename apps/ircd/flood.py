"""Flood control: every line counts against its connection's budget, and a logged-in client's
lines (keep-alives aside) against its account's too.

The kit's GCRA rule (apps/kit/ratelimit.py): FLOOD_LINES at once, then FLOOD_LINES per
FLOOD_WINDOW. Past the budget the line waits; nothing is dropped while the client is there.
"""

from __future__ import annotations

import time
from collections import Counter

from apps.chat.conversations import party
from apps.chat.keys import ChatKeys
from apps.ircd.client import Client
from apps.ircd.settings import IrcdSettings
from apps.kit.ratelimit import Limit, RateLimiter, take_local


class FloodControl:
    """The two budgets: a connection's, in this process (a connection lives on one replica),
    and an account's, in Redis (an account may be connected through several replicas)."""

    def __init__(self, settings: IrcdSettings, limiter: RateLimiter, keys: ChatKeys,
                 counts: Counter[str]) -> None:
        self._limit = Limit(rate=settings.flood_lines, period=settings.flood_window,
                            burst=settings.flood_lines)
        self._limiter = limiter
        self._keys = keys
        self._counts = counts

    async def line(self, client: Client, raw: bytes) -> bool:
        """The connection's share, before a line is even parsed: every line counts, registered
        or not, keep-alives included. False: drop the line and the rest of the connection's
        input (it was lost while the line waited, or the peer has closed and the budget is
        spent: what a client sent before leaving is handled only while its budget lasts, so a
        flooder that disconnects stops at once). A QUIT never waits."""
        decision, client.flood_tat = take_local(client.flood_tat, time.monotonic(), self._limit)
        while not decision.allowed:
            if raw[:4].upper() == b"QUIT" and raw[4:5] in (b"", b" "):
                return True
            if not await self._wait(client, decision.retry_after):
                return False
            decision, client.flood_tat = take_local(client.flood_tat, time.monotonic(), self._limit)
        return True

    async def account(self, client: Client) -> bool:
        """The account's share, shared by every replica (keep-alives aside: the caller's
        choice); False as for `line`."""
        key = self._keys.flood(party(client.uid, client.account))
        shared = await self._limiter.take(key, self._limit)
        while not shared.allowed:
            if not await self._wait(client, shared.retry_after):
                return False
            shared = await self._limiter.take(key, self._limit)
        return True

    async def _wait(self, client: Client, seconds: float) -> bool:
        self._counts["throttled"] += 1
        if client.transport.ended or not await client.transport.pause(seconds):
            self._counts["dropped"] += 1
            return False
        return True

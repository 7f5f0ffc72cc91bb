"""IRCv3 WebSocket transport (https://ircv3.net/specs/extensions/websocket)."""

from __future__ import annotations

import asyncio
from typing import Any

from apps.ircd.protocol import MAX_INPUT
from apps.ircd.transport import QueuedTransport, TooLong

SUBPROTOCOL = "text.ircv3.net"


class WebSocketTransport(QueuedTransport):
    """Each WebSocket message is one IRC line, without CRLF."""

    def __init__(self, ws: Any, peer_ip: str, secure: bool) -> None:
        super().__init__()
        self._ws = ws
        self.peer_ip = peer_ip
        self.secure = secure

    async def read_line(self) -> bytes | None:
        if self._closed:
            return None
        try:
            data = await self.receive(asyncio.ensure_future(self._ws.receive()))
        except Exception:  # the socket went away (Quart raises its own disconnection error)
            return None
        if data is None:
            return None
        raw = data.encode() if isinstance(data, str) else bytes(data)
        raw = raw.rstrip(b"\r\n")
        if len(raw) > MAX_INPUT:
            raise TooLong()
        return raw

    async def write_lines(self, lines: list[str]) -> None:
        for line in lines:
            await self._ws.send(line)

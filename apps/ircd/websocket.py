"""IRCv3 WebSocket transport (https://ircv3.net/specs/extensions/websocket).

Two subprotocols: `text.ircv3.net` (text frames, what browsers use) and `binary.ircv3.net`
(binary frames, the bytes of the line). The client's order of preference decides, as the spec
asks; a client that names neither gets text frames.
"""

from __future__ import annotations

from typing import Any

from apps.ircd.linebuffer import TooLong
from apps.ircd.protocol import MAX_INPUT
from apps.ircd.transport import QueuedTransport

TEXT, BINARY = "text.ircv3.net", "binary.ircv3.net"


def choose_subprotocol(requested: list[str]) -> str | None:
    """The first subprotocol the client asked for that we speak, or None (then text frames)."""
    return next((name for name in requested if name in (TEXT, BINARY)), None)


class WebSocketTransport(QueuedTransport):
    """Each WebSocket message is one IRC line, without CRLF; sent as binary frames when the
    client chose `binary.ircv3.net`. Either kind of frame is read."""

    def __init__(self, ws: Any, peer_ip: str, secure: bool, *, binary: bool = False) -> None:
        super().__init__()
        self._ws = ws
        self.binary = binary
        self.peer_ip = peer_ip
        self.secure = secure
        self.server_name = ""
        self.direct = False

    async def read_line(self) -> bytes | None:
        if self._closed:
            return None
        try:
            data = await self.receive(self._ws.receive())
        except Exception:  # the socket went away (Quart raises its own disconnection error)
            self.ended = True
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
            await self._ws.send(line.encode() if self.binary else line)

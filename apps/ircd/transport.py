"""Where a client's lines come from and go to: a TCP (or TLS) stream, or a WebSocket."""

from __future__ import annotations

import asyncio
from typing import Protocol

from apps.ircd.protocol import MAX_INPUT


class TooLong(Exception):
    """A line longer than the gateway reads: it was discarded up to its end."""


class Transport(Protocol):
    peer_ip: str
    secure: bool

    async def read_line(self) -> bytes | None:
        """The next line without its line ending; None at end of stream; TooLong past limit."""

    async def write(self, lines: list[str]) -> None:
        """Send `lines` (each without CRLF) and wait until the peer can take more."""

    def close(self) -> None:
        """Close now (unsent output may be dropped)."""


class StreamTransport:
    """IRC over TCP or TLS: CRLF (or bare LF) terminated lines."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        peer = writer.get_extra_info("peername") or ("?", 0)
        self.peer_ip = str(peer[0])
        self.secure = writer.get_extra_info("sslcontext") is not None

    async def read_line(self) -> bytes | None:
        try:
            line = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None  # end of stream (a last unterminated line is not a command)
        except asyncio.LimitOverrunError:
            await self._discard_line()
            raise TooLong() from None
        return line.rstrip(b"\r\n")

    async def _discard_line(self) -> None:
        while True:
            try:
                await self._reader.readuntil(b"\n")
                return
            except asyncio.LimitOverrunError as exc:
                await self._reader.readexactly(exc.consumed)
            except asyncio.IncompleteReadError:
                return

    async def write(self, lines: list[str]) -> None:
        self._writer.write("".join(f"{line}\r\n" for line in lines).encode())
        await self._writer.drain()

    def close(self) -> None:
        self._writer.close()


def stream_limit() -> int:
    """The StreamReader buffer limit: one maximal line with its CRLF."""
    return MAX_INPUT + 2

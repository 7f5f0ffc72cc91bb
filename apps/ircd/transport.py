"""Where a client's lines come from and go to: a TCP (or TLS) stream, or a WebSocket.

Output never blocks the caller: `send` hands the lines to the transport's own buffer (the
kernel's socket buffer first, asyncio's write buffer past it) and `buffered` says how much the
peer has not taken yet, which the client compares with SEND_QUEUE_BYTES. So delivering a
message to a thousand members is a thousand non-blocking writes, with no task woken per
recipient and nothing awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, cast

from apps.ircd.protocol import MAX_INPUT

#: Seconds a closing connection may take to flush its last lines before it is cut.
CLOSE_GRACE = 2.0


class TooLong(Exception):
    """A line longer than the gateway reads: it was discarded up to its end."""


class Transport(Protocol):
    peer_ip: str
    secure: bool

    async def read_line(self) -> bytes | None:
        """The next line without its line ending; None at end of stream; TooLong past limit."""

    def send(self, lines: list[str]) -> None:
        """Queue `lines` (each without CRLF) for the peer, in order; never blocks."""

    def buffered(self) -> int:
        """Bytes queued that the peer has not taken yet."""

    def stop_reading(self) -> None:
        """End reads now (the pending `read_line` returns None); output still goes out."""

    def close(self) -> None:
        """Close once what is queued is sent (cut after CLOSE_GRACE seconds); reads end."""

    def abort(self) -> None:
        """Close now, dropping what is queued; reads end."""

    async def wait_closed(self) -> None:
        """Until the output queued before `close` is sent (at most CLOSE_GRACE seconds)."""


class StreamTransport(asyncio.Protocol):
    """IRC over TCP or TLS: CRLF (or bare LF) terminated lines.

    An asyncio Protocol rather than a StreamReader/StreamWriter pair: lines are split as the
    bytes arrive, the connection's one task (`serve`, started when the connection is made)
    awaits them, and a client sending faster than it is served is paused past
    MAX_QUEUED_LINES lines. Less held per connection, and no buffer copied per line.
    """

    #: Lines read ahead of the command being handled before the socket is paused.
    MAX_QUEUED_LINES = 64

    def __init__(self, serve: Callable[[StreamTransport], Coroutine[Any, Any, None]], limit: int) -> None:
        self._serve = serve
        self._limit = limit
        self._partial = b""
        self._lines: deque[bytes | None] = deque()  # None: a line over the limit
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False
        self._discarding = False
        self._paused = False
        self._transport: asyncio.Transport | None = None
        self.peer_ip = "?"
        self.secure = False

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer_ip = str(peer[0])
        self.secure = transport.get_extra_info("sslcontext") is not None
        asyncio.get_running_loop().create_task(self._serve(self))

    def data_received(self, data: bytes) -> None:
        if self._eof:
            return
        buffer = self._partial + data if self._partial else data
        lines, limit, start = self._lines, self._limit, 0
        while (end := buffer.find(b"\n", start)) >= 0:
            if self._discarding:  # the end of a line already answered as too long
                self._discarding = False
            elif end + 1 - start > limit:
                lines.append(None)
            else:
                lines.append(buffer[start:end])
            start = end + 1
        rest = buffer[start:] if start else buffer
        if len(rest) > limit:
            if not self._discarding:
                lines.append(None)
                self._discarding = True
            rest = b""
        self._partial = rest
        if len(lines) > self.MAX_QUEUED_LINES and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return not self.secure  # keep a plain socket open for our last lines, as streams do

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- Transport -------------------------------------------------------------------------------
    async def read_line(self) -> bytes | None:
        while not self._lines:
            if self._eof:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        line = self._lines.popleft()
        if self._paused and len(self._lines) <= self.MAX_QUEUED_LINES // 2 and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        if line is None:
            raise TooLong()
        return line.rstrip(b"\r\n")

    def send(self, lines: list[str]) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        lines.append("")
        transport.write("\r\n".join(lines).encode())

    def buffered(self) -> int:
        return self._transport.get_write_buffer_size() if self._transport is not None else 0

    def stop_reading(self) -> None:
        # Further input is read and dropped, not left in the kernel: closing a socket with
        # unread input would reset the connection instead of ending it cleanly.
        self._eof = True
        self._lines.clear()
        if self._paused and self._transport is not None:
            self._paused = False
            self._transport.resume_reading()
        self._wake()

    def close(self) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        transport.close()  # flushes its buffer, then closes
        if transport.get_write_buffer_size():
            asyncio.get_running_loop().call_later(CLOSE_GRACE, transport.abort)

    def abort(self) -> None:
        self._eof = True
        self._wake()
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Nothing to wait for: the asyncio transport flushes (or is cut) by itself."""


class QueuedTransport:
    """The output half for transports whose writes must be awaited (a WebSocket): lines wait
    in a queue drained by one writer task per connection, started on the first send."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[list[str] | None] = asyncio.Queue()
        self._queued = 0
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        #: Set on close or abort: a read waiting for the peer ends at once.
        self._closing = asyncio.Event()

    async def receive(self, read: asyncio.Future[Any]) -> Any:
        """`read`'s outcome, or None if the connection is closed first."""
        closing: asyncio.Future[Any] = asyncio.ensure_future(self._closing.wait())
        try:
            done, _ = await asyncio.wait({read, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
        if read not in done:
            read.cancel()
            return None
        return read.result()

    async def write_lines(self, lines: list[str]) -> None:
        """Write to the peer, waiting until it can take more (the subclass's part)."""
        raise NotImplementedError

    def send(self, lines: list[str]) -> None:
        if self._closed:
            return
        self._queued += sum(len(line) + 2 for line in lines)
        self._queue.put_nowait(lines)
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())

    def buffered(self) -> int:
        return self._queued

    def stop_reading(self) -> None:
        self._closing.set()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._closing.set()
            self._queue.put_nowait(None)

    def abort(self) -> None:
        self._closed = True
        self._closing.set()
        if self._writer is not None:
            self._writer.cancel()

    async def wait_closed(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._writer), CLOSE_GRACE)
            self._writer.cancel()

    async def _write_loop(self) -> None:
        with contextlib.suppress(Exception):
            while (lines := await self._queue.get()) is not None:
                self._queued -= sum(len(line) + 2 for line in lines)
                await self.write_lines(lines)


def stream_limit() -> int:
    """The StreamReader buffer limit: one maximal line with its CRLF."""
    return MAX_INPUT + 2

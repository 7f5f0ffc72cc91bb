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
import logging
import socket
import ssl
import time
import weakref
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol, cast

from apps.ircd import proxyproto
from apps.ircd.linebuffer import LineBuffer
from apps.ircd.protocol import MAX_INPUT
from apps.kit.clientaddr import IPNetwork, is_trusted, parse_address

log = logging.getLogger("canaduck.ircd")

#: Seconds a closing connection may take to flush its last lines before it is cut.
CLOSE_GRACE = 2.0
#: Seconds between two looks at whether a waiting connection's peer has gone.
PEER_CHECK_INTERVAL = 0.5
#: Linux's TCP_INFO (its first byte is the connection's state) and the two states of a
#: connection whose peer has gone: reset (CLOSE) or closed its side (CLOSE_WAIT).
TCP_INFO = getattr(socket, "TCP_INFO", 11)
TCP_CLOSE, TCP_CLOSE_WAIT = 7, 8
#: Seconds a connection to the PROXY listener has to send its header: the balancer sends it
#: at once, so only something else is slower.
PROXY_HEADER_TIMEOUT = 5.0


#: The host name each TLS connection's client asked for (SNI), from the handshake until the
#: connection is made (`remember_server_name` is the TLS context's `sni_callback`).
_SERVER_NAMES: weakref.WeakKeyDictionary[ssl.SSLObject, str] = weakref.WeakKeyDictionary()


def remember_server_name(ssl_object: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
    """The TLS handshake's SNI callback: keep the host name the client asked for."""
    if server_name:
        _SERVER_NAMES[ssl_object] = server_name


class Transport(Protocol):
    peer_ip: str
    secure: bool
    #: The host name a TLS client asked for (SNI); empty without TLS or without one.
    server_name: str
    #: IRC's own connection, TCP or TLS (STS speaks of those), not the WebSocket transport.
    direct: bool

    @property
    def ended(self) -> bool:
        """True once the peer has closed its side or the connection is lost: what is still
        unread is the last of it."""

    async def read_line(self) -> bytes | None:
        """The next line without its line ending; None at end of stream; TooLong past limit."""

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds`, or less if the connection is lost first; False if it was."""

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
    """IRC over TCP or TLS: CRLF (or bare LF) terminated lines. An asyncio Protocol rather
    than a StreamReader/StreamWriter pair: the connection's one task (`serve`, started when the
    connection is made) takes lines from the bytes received, one at a time, as it handles them
    (apps/ircd/linebuffer.py). Unread input is bounded: past READ_AHEAD bytes the socket is
    paused, so a client sending faster than it is served waits in its own kernel buffers, not
    in the gateway's memory. When the connection is lost (a reset, or the gateway aborting
    it), what is still unread is dropped at once: nothing of a vanished client is handled after
    it has gone. A clean close by the peer (end of stream) leaves the unread lines to the
    client, which handles them only while its flood budget lasts."""

    #: Unread bytes held before the socket is paused: at least one longest line (tags and all).
    READ_AHEAD = 16 * 1024

    # One per connection: slots, not a dict (docs/ircd.md, "Memory per connection").
    __slots__ = ("_eof", "_lines", "_lost", "_pause_waiter", "_paused", "_serve", "_transport", "_waiter",
                 "direct", "peer_ip", "secure", "server_name")

    def __init__(self, serve: Callable[[StreamTransport], Coroutine[Any, Any, None]], limit: int) -> None:
        self._serve = serve
        self._lines = LineBuffer(limit)
        self._waiter: asyncio.Future[None] | None = None
        self._pause_waiter: asyncio.Future[None] | None = None
        self._eof = False  # the peer closed its side: no more input
        self._lost = False  # the connection is gone: unread input is dropped
        self._paused = False
        self._transport: asyncio.Transport | None = None
        self.peer_ip = "?"
        self.secure = False
        self.server_name = ""
        self.direct = True

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer_ip = str(peer[0])
        self.secure = transport.get_extra_info("sslcontext") is not None
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None:
            self.server_name = _SERVER_NAMES.pop(ssl_object, "")
        self._start()

    def _start(self) -> None:
        """Hand the connection to its task: who the client is is known by now."""
        asyncio.get_running_loop().create_task(self._serve(self))

    def data_received(self, data: bytes) -> None:
        if self._eof:
            return
        self._lines.feed(data)
        if len(self._lines) > self.READ_AHEAD and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return not self.secure  # keep a plain socket open for our last lines, as streams do

    def connection_lost(self, exc: Exception | None) -> None:
        self._drop_input()

    def _drop_input(self) -> None:
        self._eof = self._lost = True
        self._lines.clear()
        self._wake()
        waiter = self._pause_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- Transport -------------------------------------------------------------------------------
    @property
    def ended(self) -> bool:
        return self._eof

    async def read_line(self) -> bytes | None:
        while True:
            line = self._next_line()
            if line is not None:
                return line
            if self._eof:
                return None
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    def _next_line(self) -> bytes | None:
        try:
            return self._lines.next_line()
        finally:  # drained to half what pauses it: read again
            if self._paused and len(self._lines) <= self.READ_AHEAD // 2 \
                    and self._transport is not None and not self._eof:
                self._paused = False
                self._transport.resume_reading()

    async def pause(self, seconds: float) -> bool:
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        while not (self._lost or peer_gone(self._transport)):
            left = until - loop.time()
            if left <= 0:
                return True
            waiter = self._pause_waiter = loop.create_future()
            # Looked at again at least once a second: see `peer_gone`.
            timer = loop.call_later(min(left, PEER_CHECK_INTERVAL), _resolve, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._pause_waiter = None
        self._drop_input()
        return False

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
        self._drop_input()
        if self._transport is not None:
            self._transport.abort()

    async def wait_closed(self) -> None:
        """Nothing to wait for: the asyncio transport flushes (or is cut) by itself."""


class ProxiedStreamTransport(StreamTransport):
    """IRC over TCP from a TCP balancer that speaks the PROXY protocol (version 2).

    Every connection must start with a PROXY header (apps/ircd/proxyproto.py), which says who
    the client is (its address: what WHOIS shows and MAX_CONNECTIONS_PER_IP counts) and whether
    it came over TLS, the balancer having taken the TLS off. The header is believed only from a
    peer in `trusted` (TRUSTED_PROXIES): a connection from anyone else is closed before a byte
    is read, as is one whose first bytes are not a header, or that sends none within
    PROXY_HEADER_TIMEOUT seconds. A LOCAL header (the balancer's health check) is answered by
    closing the connection. The client's lines start after the header, and the connection is
    served from then on as any other (TLS included: it is plain TCP from the balancer).
    """

    def __init__(self, serve: Callable[[StreamTransport], Coroutine[Any, Any, None]], limit: int,
                 trusted: Sequence[IPNetwork], header_timeout: float | None = None) -> None:
        super().__init__(serve, limit)
        self._trusted = trusted
        self._header_timeout = PROXY_HEADER_TIMEOUT if header_timeout is None else header_timeout
        self._header: bytearray | None = bytearray()  # None once the header has been read
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.peer_ip = str(peer[0])
        if not is_trusted(parse_address(self.peer_ip), self._trusted):
            _refused(self.peer_ip, "not a trusted proxy (TRUSTED_PROXIES)")
            self._give_up()
            return
        self._timer = asyncio.get_running_loop().call_later(self._header_timeout, self._give_up)

    def data_received(self, data: bytes) -> None:
        if self._header is None:
            super().data_received(data)
            return
        self._header += data
        try:
            header = proxyproto.parse(bytes(self._header))
        except proxyproto.ProxyError as exc:
            _refused(self.peer_ip, str(exc))
            self._give_up()
            return
        if header is None:
            return
        rest, self._header = bytes(self._header[header.size:]), None
        self._cancel_timer()
        if header.local:  # the balancer's health check: it only wanted to see us accept
            if self._transport is not None:
                self._transport.close()
            return
        if header.client is not None:
            client = parse_address(header.client)
            self.peer_ip = str(client) if client is not None else header.client
        self.secure = header.tls
        self.server_name = header.server_name
        self._start()
        if rest:
            super().data_received(rest)

    def eof_received(self) -> bool:
        if self._header is not None:  # gone before its header: nothing to serve
            return False
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        super().connection_lost(exc)

    def _give_up(self) -> None:
        """Close a connection that never became a client (no task was started for it)."""
        self._header = bytearray()  # anything still arriving is not read as the client's
        self._cancel_timer()
        if self._transport is not None:
            self._transport.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


#: When the last refusal of a PROXY connection was logged: one line per REFUSAL_LOG_INTERVAL
#: seconds at most, so that a peer knocking in a loop cannot fill the log.
_last_refusal_logged = -float("inf")
REFUSAL_LOG_INTERVAL = 10.0


def _refused(peer: str, why: str) -> None:
    """Log why a connection to the PROXY listener was closed (rate-limited)."""
    global _last_refusal_logged
    now = time.monotonic()
    if now - _last_refusal_logged >= REFUSAL_LOG_INTERVAL:
        _last_refusal_logged = now
        log.warning("connection from %s to the PROXY listener closed: %s", peer, why)


def peer_gone(transport: asyncio.Transport | None) -> bool:
    """True if the peer has reset or closed the connection: asked of the kernel, because a
    connection with a backlog may not be read for a while (its socket is paused, or the
    kernel still holds data ahead of the reset), and asyncio learns of a reset only by reading
    past that data."""
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    try:
        state = sock.getsockopt(socket.IPPROTO_TCP, TCP_INFO, 1)[0]
    except (OSError, AttributeError, TypeError):  # not Linux, or not a TCP socket
        return False
    return state in (TCP_CLOSE, TCP_CLOSE_WAIT)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class QueuedTransport:
    """The output half for transports whose writes must be awaited (a WebSocket): lines wait
    in a queue drained by one writer task per connection, started on the first send."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[list[str] | None] = asyncio.Queue()
        self._queued = 0
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        #: Resolved on close or abort: a read or a pause waiting for the peer ends at once.
        self._closing: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        #: A WebSocket delivers whole messages, and its end as one more: nothing is left unread
        #: behind it, so the end of input is the end of the connection.
        self.ended = False

    async def receive(self, read: Coroutine[Any, Any, Any]) -> Any:
        """`read`'s outcome, or None if the connection is closed first."""
        if self._closing.done():
            read.close()
            return None
        task = asyncio.ensure_future(read)
        try:
            await asyncio.wait((task, self._closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            # Also when this task is cancelled (the peer went away): the read must not be left
            # pending, or it is destroyed pending when the connection is collected.
            if not task.done():
                task.cancel()
        if not task.done() or task.cancelled():
            return None
        return task.result()

    async def pause(self, seconds: float) -> bool:
        if self._closing.done():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._closing), seconds)
        return not self._closing.done()

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
        self._end()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._end()
            self._queue.put_nowait(None)

    def abort(self) -> None:
        self._closed = True
        self._end()
        if self._writer is not None:
            self._writer.cancel()

    def _end(self) -> None:
        self.ended = True
        if not self._closing.done():
            self._closing.set_result(None)

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

"""Request size limits, enforced before any route runs, and refused without harming the connection.

`RequestLimits` wraps each service's ASGI app (`apps.kit.app.create_app` installs it):

- Headers: a request line and headers adding up to more than MAX_HEADER_BYTES are refused
  (431). Hypercorn's own limit (h11's) answers with an empty body, and only when the headers
  span more than one read of the socket; this one answers the same whatever the reads.
- Body: read here, up to MAX_BODY_BYTES, before the app runs, so that when a route answers,
  the body has been read to its end whether the route looked at it or not, and the connection
  is ready for the next request (a request that declares no body goes to the app untouched).
  A body declared (Content-Length) or found (chunked) to be larger is refused (413) as soon
  as that is known; one that has not arrived within BODY_TIMEOUT (Quart's setting) is
  refused too (408).
- A refusal carries `Connection: close`, and the rest of the request is read and dropped for up
  to LINGER_SECONDS before the connection closes (a "lingering close"). Hypercorn closes the
  socket right after the answer; with unread bytes in it, the kernel sends a reset instead of
  a clean close, and a reset can destroy the answer in the client's buffers before it is
  read. Behind Caddy that is a 502, and the instance marked down for everyone.

The refusal itself is the app's to write: the middleware leaves the exception to raise in the
ASGI scope (`REFUSAL`), and the kit's first `before_request` raises it, so that a refused request
is a JSON error like any other, with its request id, log line and metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from werkzeug.exceptions import (
    HTTPException,
    RequestEntityTooLarge,
    RequestHeaderFieldsTooLarge,
    RequestTimeout,
)

#: The scope key under which a refused request carries its refusal (an HTTPException).
REFUSAL = "canaduck.refusal"

# ASGI as plain dicts: the middleware builds and forwards messages, it does not inspect types.
Message = dict[str, Any]
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestLimits:
    """ASGI middleware: header and body size limits, and a lingering close after a refusal."""

    def __init__(self, app: ASGIApp, *, max_header_bytes: int, max_body_bytes: int,
                 body_timeout: float, linger_seconds: float) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.linger_seconds = linger_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # WebSockets and lifespan pass as they are
            await self.app(scope, receive, send)
            return
        read = _Read(refusal=self._header_refusal(scope), ended=not _declares_body(scope))
        if read.refusal is None:
            if read.ended:  # nothing to read: the app runs at once (and may stream its answer)
                await self.app(scope, receive, send)
                return
            try:
                read = await self._read_body(scope, receive)
            except _Gone:
                return  # the client left: nobody to answer
        if read.refusal is not None:
            scope = {**scope, REFUSAL: read.refusal}
        exchange = _Exchange(read, receive, send, self.linger_seconds)
        await self.app(scope, exchange.app_receive, exchange.app_send)

    def _header_refusal(self, scope: Scope) -> HTTPException | None:
        size = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        size += sum(len(name) + len(value) + 4 for name, value in scope.get("headers", []))  # ": ", CRLF
        if size <= self.max_header_bytes:
            return None
        return RequestHeaderFieldsTooLarge(
            f"the request line and headers are {size} bytes, over the {self.max_header_bytes}-byte limit")

    async def _read_body(self, scope: Scope, receive: Receive) -> _Read:
        """The whole body, or a refusal as soon as one is due."""
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            return _Read(refusal=self._too_large())
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        raise _Gone
                    chunk = bytes(message.get("body", b""))
                    ended = not message.get("more_body", False)
                    size += len(chunk)
                    if size > self.max_body_bytes:
                        return _Read(refusal=self._too_large(), ended=ended)
                    chunks.append(chunk)
                    if ended:
                        return _Read(b"".join(chunks), ended=True)
        except TimeoutError:
            return _Read(refusal=RequestTimeout(f"the body did not arrive within {self.body_timeout:g} s"))

    def _too_large(self) -> HTTPException:
        return RequestEntityTooLarge(f"the body is over the {self.max_body_bytes}-byte limit")


@dataclass(frozen=True, slots=True)
class _Read:
    """What reading a request gave: its body, or the refusal it earned; whether it was all read."""

    body: bytes = b""
    refusal: HTTPException | None = None
    ended: bool = False


class _Gone(Exception):
    """The client disconnected while its request was being read."""


class _Exchange:
    """One request's receive and send as the app sees them.

    The app receives the body read beforehand, in one message. After a refusal, its answer
    goes out with `Connection: close` and in full, then the rest of the request is read and
    dropped (up to `linger` seconds) before the end of the answer lets the server close.
    """

    def __init__(self, read: _Read, receive: Receive, send: Send, linger: float) -> None:
        self.body: bytes | None = read.body
        self.refused = read.refusal is not None
        self.unread = not read.ended  # some of the request is still to come
        self.receive = receive
        self.send = send
        self.linger = linger
        self.lingered = asyncio.Event()

    async def app_receive(self) -> Message:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        if not self.refused:
            return await self.receive()  # whatever comes next: the client leaving
        await self.lingered.wait()  # the rest of the request is the linger's to drop
        return {"type": "http.disconnect"}

    async def app_send(self, message: Message) -> None:
        if not self.refused:
            await self.send(message)
            return
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
        elif message["type"] == "http.response.body" and not message.get("more_body", False):
            await self.send({**message, "more_body": True})
            await self._drop_the_rest()
            message = {"type": "http.response.body", "body": b"", "more_body": False}
        await self.send(message)

    async def _drop_the_rest(self) -> None:
        """Read what the client still sends until its request ends, it leaves, or time is up."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.linger):
                while self.unread:
                    message = await self.receive()
                    self.unread = message["type"] == "http.request" and bool(message.get("more_body"))
        self.lingered.set()


def _declares_body(scope: Scope) -> bool:
    """True if the request has a body: in HTTP/1.1, only one with Content-Length or Transfer-Encoding
    does. (Over HTTP/2 a body needs neither; Quart's MAX_CONTENT_LENGTH still bounds it.)"""
    framing = (b"content-length", b"transfer-encoding")
    return any(name.lower() in framing for name, _ in scope.get("headers", []))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return None

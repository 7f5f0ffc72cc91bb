"""SUBSCRIBE on one server, read as the bytes arrive: the kit's subscriber wherever the link is
plain TCP (`apps.kit.pubsub.open_pubsub` picks it; redis-py's own PubSub elsewhere: TLS, a Unix
socket, a test double, and a cluster's nodes).

redis-py's PubSub reads each message through its connection's layers (a retry wrapper, a
timeout, the parser's call, a push handler): 32-39 us of CPU a message, read with
`get_message`, when messages come one at a time, as a gateway's do. Here the event loop hands
the bytes to `data_received`, hiredis (the parser redis-py uses) cuts them into messages and
they wait in a queue: 14-17 us a message, measured the same way (docs/cluster.md, "The chat
under quotas"). A gateway replica reads every message of every channel it has members in, so this
cost is paid once per replica a message reaches: it is the part of the chat's work that grows
with the number of replicas.

The link speaks RESP2, where a subscribed connection gets nothing but its subscriptions'
messages, the replies to PING, and an error for a subscription refused (the link is then given
up, as for a lost one). Its login and name are the client's own (`AUTH`,
`CLIENT SETNAME`), its health check redis-py's interval: a PING every `health_check_interval`
seconds, and the link is given up when a whole interval after one passes without a byte.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import hiredis
from redis.exceptions import AuthenticationError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: Messages read and not yet taken past which the link stops reading (and reads again once
#: half of them are taken): Redis then keeps what is published meanwhile, up to its own limit
#: for a subscriber (`client-output-buffer-limit pubsub`), as it would for redis-py's PubSub,
#: rather than this process holding without bound what a stalled reader does not take.
MAX_QUEUED = 10_000

#: The pub/sub messages' kinds; any other reply answers one of our commands (`pong` in RESP2).
_PUSH_KINDS = {b"message", b"pmessage", b"subscribe", b"unsubscribe", b"psubscribe", b"punsubscribe"}


def pack(*args: str | bytes) -> bytes:
    """One command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg.encode() if isinstance(arg, str) else arg
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class QueuedMessages:
    """`get_message` and `listen` as redis-py's PubSub has them, over a queue that a reader of
    the link fills with messages, or with the error that ended the link (raised to whoever
    reads next, and to every read after). `_taken` is told of every message taken."""

    def __init__(self, *, ignore_subscribe_messages: bool = False) -> None:
        self._ignore = ignore_subscribe_messages
        self._messages: asyncio.Queue[dict[str, Any] | BaseException] = asyncio.Queue()
        self._closed = False

    def _taken(self) -> None:
        """A message left the queue."""

    async def get_message(self, ignore_subscribe_messages: bool = False,
                          timeout: float | None = 0.0) -> dict[str, Any] | None:
        """The next message (a dict as redis-py's: type, pattern, channel, data), waiting at most
        `timeout` seconds (None: as long as it takes; 0: not at all); None if none came.
        ConnectionError once the link is lost."""
        while True:
            if not self._messages.empty():
                item = self._messages.get_nowait()
            elif timeout is None:
                item = await self._messages.get()
            elif timeout <= 0:
                return None
            else:
                try:
                    item = await asyncio.wait_for(self._messages.get(), timeout)
                except TimeoutError:
                    return None
            if isinstance(item, BaseException):
                self._messages.put_nowait(item)  # every later read fails the same way
                raise item
            self._taken()
            if item["type"] not in ("message", "pmessage") and (self._ignore or ignore_subscribe_messages):
                if timeout is None:
                    continue
                return None
            return item

    async def listen(self) -> AsyncIterator[dict[str, Any]]:
        while not self._closed:
            message = await self.get_message(timeout=None)
            if message is not None:
                yield message


class LinkSubscriber(QueuedMessages, asyncio.Protocol):
    """What `open_pubsub` returns for a plain TCP link: redis-py's PubSub as the services use it
    (`subscribe`, `unsubscribe`, `get_message`, `listen`, `aclose`, `subscribed`). `options`
    are the client's connection options (its pool's `connection_kwargs`)."""

    def __init__(self, options: dict[str, Any], *, ignore_subscribe_messages: bool = False,
                 max_queued: int = MAX_QUEUED) -> None:
        super().__init__(ignore_subscribe_messages=ignore_subscribe_messages)
        self._host = str(options.get("host", "localhost"))
        self._port = int(options.get("port", 6379))
        self._username: str | None = options.get("username")
        self._password: str | None = options.get("password")
        self._client_name: str | None = options.get("client_name")
        self._connect_timeout: float | None = options.get("socket_connect_timeout")
        self._health_interval = float(options.get("health_check_interval") or 0)
        encoding = options.get("encoding", "utf-8") if options.get("decode_responses") else None
        self._parser = hiredis.Reader(encoding=encoding, errors=options.get("encoding_errors", "strict"))
        self._max_queued = max_queued
        self._paused = False
        #: A future for each command awaiting its answer (AUTH, CLIENT SETNAME), None for the
        #: health check's PING, whose answer only needs to come.
        self._answers: deque[asyncio.Future[Any] | None] = deque()
        self._channels: set[str] = set()
        #: Commands of this turn of the event loop, written together at its end (`_flush`).
        self._outgoing: list[bytes] = []
        self._transport: asyncio.Transport | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._health: asyncio.TimerHandle | None = None
        self._heard = True  # a byte came since the last health check
        self._gave_up = ""  # why this side ended the link, if it did

    # -- the PubSub the services know ------------------------------------------------------------
    @property
    def subscribed(self) -> bool:
        return bool(self._channels)

    async def subscribe(self, *channels: str) -> None:
        """SUBSCRIBE, on a link opened (and logged in) first if there is none yet."""
        await self._connected()
        self._channels.update(channels)
        self._send(pack("SUBSCRIBE", *channels))

    async def unsubscribe(self, *channels: str) -> None:
        """UNSUBSCRIBE from `channels` (all, if none is named)."""
        if self._transport is None:
            return
        self._channels.difference_update(channels or set(self._channels))
        self._send(pack("UNSUBSCRIBE", *channels))

    def _taken(self) -> None:
        if self._paused and self._messages.qsize() <= self._max_queued // 2 and self._transport:
            self._paused = False
            self._transport.resume_reading()

    async def aclose(self) -> None:
        self._closed = True
        if self._health is not None:
            self._health.cancel()
        if self._connecting is not None and not self._connecting.done():
            self._connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connecting
        if self._transport is not None:
            self._transport.close()

    # -- the link --------------------------------------------------------------------------------
    async def _connected(self) -> None:
        if self._closed:
            raise RedisConnectionError("subscriber closed")
        if self._connecting is None:
            self._connecting = asyncio.create_task(self._connect())
        await asyncio.shield(self._connecting)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            await asyncio.wait_for(loop.create_connection(lambda: self, self._host, self._port),
                                   self._connect_timeout)
        except TimeoutError:
            raise RedisTimeoutError(f"connecting to {self._host}:{self._port} timed out") from None
        except OSError as exc:
            raise RedisConnectionError(f"connecting to {self._host}:{self._port}: {exc}") from exc
        hello: list[tuple[str, ...]] = []
        if self._password:
            hello.append(("AUTH", self._username, self._password) if self._username
                         else ("AUTH", self._password))
        if self._client_name:
            hello.append(("CLIENT", "SETNAME", self._client_name))
        answers = [self._ask(pack(*command)) for command in hello]
        try:
            replies = await asyncio.wait_for(asyncio.gather(*answers), self._connect_timeout)
        except TimeoutError:
            raise RedisTimeoutError("Redis did not answer the subscriber's login") from None
        for command, reply in zip(hello, replies, strict=True):
            if isinstance(reply, hiredis.ReplyError):
                error = AuthenticationError if command[0] == "AUTH" else ResponseError
                raise error(str(reply))
        if self._health_interval:
            self._health = loop.call_later(self._health_interval, self._check_health)

    def _ask(self, command: bytes) -> asyncio.Future[Any]:
        answer = asyncio.get_running_loop().create_future()
        self._answers.append(answer)
        self._send(command)
        return answer

    def _send(self, data: bytes) -> None:
        """Queue a command for the end of this turn. A wave of registrations subscribes each
        client's nick: one write a command was a system call each on both ends of the link,
        where one write a turn carries them all."""
        if self._transport is None or self._transport.is_closing():
            raise RedisConnectionError("the subscriber's link is closed")
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(data)

    def _flush(self) -> None:
        data, self._outgoing = b"".join(self._outgoing), []
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)  # lost with the link otherwise: its reader subscribes again

    def _check_health(self) -> None:
        if self._closed or self._transport is None or self._transport.is_closing():
            return  # closing: connection_lost tells the reader
        if not self._heard:
            self._gave_up = f"no answer to PING in {self._health_interval:g} s"
            self._transport.abort()
            return
        self._heard = False
        self._answers.append(None)
        self._send(pack("PING"))
        self._health = asyncio.get_running_loop().call_later(self._health_interval, self._check_health)

    # -- asyncio.Protocol ------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._heard = True
        self._parser.feed(data)
        while (reply := self._parser.gets()) is not False:
            kind = reply[0] if isinstance(reply, list) and reply else None
            if kind is not None and (kind if isinstance(kind, bytes) else kind.encode()) in _PUSH_KINDS:
                self._messages.put_nowait(self._message(reply))
            elif isinstance(reply, hiredis.ReplyError) and not (self._answers and self._answers[0]):
                # Not the login's answer: a SUBSCRIBE refused (NOPERM). The link is given up,
                # so that the caller says so and subscribes again, rather than wait in silence
                # for messages that will never come.
                self._messages.put_nowait(RedisConnectionError(f"Redis refused a subscription: {reply}"))
                if self._transport is not None:
                    self._transport.close()
                return
            elif self._answers:
                answer = self._answers.popleft()
                if answer is not None and not answer.done():
                    answer.set_result(reply)
        if not self._paused and self._messages.qsize() >= self._max_queued and self._transport:
            self._paused = True
            self._transport.pause_reading()

    @staticmethod
    def _message(reply: list[Any]) -> dict[str, Any]:
        kind = reply[0].decode() if isinstance(reply[0], bytes) else reply[0]
        if kind == "pmessage":
            return {"type": kind, "pattern": reply[1], "channel": reply[2], "data": reply[3]}
        return {"type": kind, "pattern": None, "channel": reply[1], "data": reply[2]}

    def connection_lost(self, exc: Exception | None) -> None:
        if self._health is not None:
            self._health.cancel()
        lost = RedisConnectionError(f"pub/sub link lost: {exc or self._gave_up or 'closed by the server'}")
        for answer in self._answers:
            if answer is not None and not answer.done():
                answer.set_exception(lost)
        self._answers.clear()
        self._messages.put_nowait(lost)

"""One client connection: its reader, its writer queue, its registration and capabilities.

Commands are handled one at a time, in the order they arrive; every line for the client
(replies and deliveries from others) goes through one queue drained by one writer task, so a
command's replies always go out before the next command's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from apps.ircd import numerics as n
from apps.ircd.protocol import LineError, Message, format_line, parse
from apps.ircd.transport import TooLong, Transport
from apps.kit.tasks import cancel_and_wait

if TYPE_CHECKING:
    from apps.ircd.server import IrcServer

log = logging.getLogger("canaduck.ircd.client")

#: The client whose command is running in this task, when its replies are being labelled
#: (labeled-response): lines sent to it from its own command are held and labelled; lines from
#: other clients' commands (other tasks) are not.
_labelling: ContextVar[Client | None] = ContextVar("labelling", default=None)

#: Commands that do not count against the flood limit (keep-alives and leaving).
UNTHROTTLED = frozenset({"PING", "PONG", "QUIT", "CAP", "AUTHENTICATE"})


def server_time(seconds: float) -> str:
    """IRCv3 server-time: ISO 8601 UTC with milliseconds."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class Client:
    """A connected client, registered or not."""

    def __init__(self, server: IrcServer, transport: Transport) -> None:
        self.server = server
        self.transport = transport
        self.uid = server.new_id()
        self.nick = "*"
        self.nick_cf = ""
        self.user = ""
        self.realname = ""
        self.host = transport.peer_ip
        self.account = ""
        self.caps: set[str] = set()
        self.cap_version = 0
        self.negotiating = False
        self.registered = False
        self.password = ""
        self.away = ""
        self.invisible = False
        self.oper = False
        self.wallops = False
        self.channels: set[str] = set()
        self.monitoring: set[str] = set()
        self.signon = server.clock()
        self.last_message = self.signon
        self.sasl_buffer = ""
        self.sasl_mechanism = ""
        self.closing = False
        self.quit_reason = "Client closed connection"
        self._out: asyncio.Queue[str | None] = asyncio.Queue()
        self._queued_bytes = 0
        self._last_read = time.monotonic()
        self._batches = 0
        self._held: list[str] | None = None

    # -- identity ----------------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return f"{self.nick}!{self.user}@{self.host}"

    @property
    def modes(self) -> str:
        """User modes as letters, e.g. "iow"."""
        return ("i" if self.invisible else "") + ("o" if self.oper else "") + ("w" if self.wallops else "")

    def record(self) -> dict[str, str]:
        """What other replicas need to know about this client (its hash in Redis)."""
        return {"uid": self.uid, "nick": self.nick, "user": self.user, "host": self.host,
                "real": self.realname, "account": self.account, "away": self.away,
                "modes": self.modes, "inst": self.server.instance,
                "signon": str(int(self.signon)), "secure": "1" if self.transport.secure else ""}

    # -- output --------------------------------------------------------------------------------
    def send(self, line: str) -> None:
        """Queue one line; a client that stops reading is cut off past SEND_QUEUE_BYTES."""
        if self.closing and line is not None and not line.startswith("ERROR"):
            return
        if self._held is not None and _labelling.get() is self:
            self._held.append(line)
            return
        self._queued_bytes += len(line) + 2
        if self._queued_bytes > self.server.settings.send_queue_bytes:
            self.quit_reason = "SendQ exceeded"
            self.close()
            return
        self._out.put_nowait(line)

    def reply(self, numeric: str, *params: str) -> None:
        """A numeric from the server, addressed to this client."""
        self.send(format_line(numeric, [self.nick, *params], source=self.server.name))

    def notice(self, text: str) -> None:
        self.send(format_line("NOTICE", [self.nick, text], source=self.server.name))

    def fail(self, command: str, code: str, *context: str) -> None:
        self.send(format_line("FAIL", [command, code, *context], source=self.server.name))

    def tags_for(self, tags: dict[str, str] | None) -> dict[str, str]:
        """The subset of a message's tags this client negotiated."""
        if not tags:
            return {}
        out = {}
        caps = self.caps
        for key, value in tags.items():
            if key == "time":
                if "server-time" in caps:
                    out[key] = value
            elif key == "account":
                if "account-tag" in caps:
                    out[key] = value
            elif key == "batch":
                if "batch" in caps:
                    out[key] = value
            elif "message-tags" in caps:
                out[key] = value
        return out

    def event(self, command: str, params: list[str], *, source: str = "", **extra: Any) -> dict[str, Any]:
        """An event from this client, as the bus carries it: its account in the `account` tag
        (account-tag), `time` set now."""
        tags = {"account": self.account} if self.account else None
        return self.server.event(source or self.prefix, command, params, tags=tags, **extra)

    def send_event(self, event: dict[str, Any]) -> None:
        """Deliver a message or event (a JOIN, a PRIVMSG...) rendered for this client."""
        if "num" in event:
            self.reply(event["num"], *event["p"])
            return
        if event.get("umode") == "w" and not self.wallops:
            return
        if any(cap not in self.caps for cap in event.get("caps", ())):
            return
        cap = event.get("cap")
        if cap and cap not in self.caps:
            fallback = event.get("alt")
            if fallback:
                self.send_event(fallback)
            return
        command = event["cmd"]
        if command == "TAGMSG" and "message-tags" not in self.caps:
            return
        self.send(format_line(command, event["p"], source=event.get("src"),
                              tags=self.tags_for(event.get("tags"))))

    def deliver_unlabelled(self, event: dict[str, Any]) -> None:
        """Deliver a message sent to this very client by its own labelled command: that is a
        delivery, not a reply, so only its echo carries the label."""
        held, self._held = self._held, None
        try:
            self.send_event(event)
        finally:
            self._held = held

    def new_batch(self) -> str:
        self._batches += 1
        return f"{self.uid[:6]}{self._batches}"

    def close(self) -> None:
        """Stop reading; the writer flushes what is queued, then the connection closes."""
        if not self.closing:
            self.closing = True
            self._out.put_nowait(None)

    async def _write_loop(self) -> None:
        while True:
            line = await self._out.get()
            batch: list[str] = []
            while line is not None:
                batch.append(line)
                if self._out.empty() or len(batch) >= 256:
                    break
                line = self._out.get_nowait()
            if batch:
                self._queued_bytes -= sum(len(x) + 2 for x in batch)
                await self.transport.write(batch)
            if line is None:
                return

    # -- input ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until it ends, then leave every channel and free the nick."""
        writer = asyncio.create_task(self._write_loop(), name=f"irc-writer:{self.uid}")
        pinger = asyncio.create_task(self._keepalive(), name=f"irc-ping:{self.uid}")
        try:
            while not self.closing:
                reader = asyncio.ensure_future(self.transport.read_line())
                done, _ = await asyncio.wait({reader, writer}, return_when=asyncio.FIRST_COMPLETED)
                if reader not in done:  # the writer failed: the peer is gone
                    await cancel_and_wait(reader)
                    break
                try:
                    raw = reader.result()
                except TooLong:
                    self.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
                    continue
                except (ConnectionError, OSError):
                    break
                if raw is None:
                    break
                self._last_read = time.monotonic()
                await self.handle(raw)
        finally:
            await cancel_and_wait(pinger)
            try:
                await self.server.disconnect(self)
            except Exception:
                log.exception("cleanup of %s failed", self.uid)
            self.close()
            with contextlib.suppress(asyncio.TimeoutError, ConnectionError, OSError):
                await asyncio.wait_for(asyncio.shield(writer), 2.0)
            await cancel_and_wait(writer)
            self.transport.close()

    async def handle(self, raw: bytes) -> None:
        """Parse and run one line; errors become numerics, never a dropped connection."""
        try:
            message = parse(raw)
        except LineError as exc:
            if exc.numeric == n.ERR_INPUTTOOLONG:
                self.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
            elif str(exc) == "invalid utf-8":
                self.fail(exc.numeric, "INVALID_UTF8", "Message rejected: not UTF-8")
            elif exc.numeric:
                self.reply(exc.numeric, "*", f"Line rejected: {exc}")
            return
        if message is None:
            return
        self.server.counts["commands"] += 1
        if self.registered and message.command not in UNTHROTTLED:
            await self.server.throttle(self)
        label = message.tags.get("label", "") if "labeled-response" in self.caps else ""
        if label:
            self._held = []
            token = _labelling.set(self)
        try:
            await self.server.dispatch(self, message)
        except RedisError as exc:
            log.warning("Redis error in %s: %s", message.command, exc)
            self.reply(n.ERR_UNKNOWNERROR, message.command, "Server state unavailable; try again")
        except Exception:
            log.exception("error handling %s", message.command)
            self.reply(n.ERR_UNKNOWNERROR, message.command, "Internal error")
        finally:
            if label:
                _labelling.reset(token)
                held, self._held = self._held or [], None
                self._send_labelled(label, held)

    def _send_labelled(self, label: str, lines: list[str]) -> None:
        """A command's replies with its label: ACK for none, the tag on a single line, else
        a `labeled-response` batch."""
        if not lines:
            self.send(format_line("ACK", [], source=self.server.name, tags={"label": label}))
        elif len(lines) == 1:
            self.send(_with_tag(lines[0], _tag("label", label)))
        elif "batch" not in self.caps:
            for line in lines:
                self.send(line)
        else:
            ref = self.new_batch()
            self.send(format_line("BATCH", [f"+{ref}", "labeled-response"], source=self.server.name,
                                  tags={"label": label}))
            for line in lines:
                self.send(_with_tag(line, f"batch={ref}"))
            self.send(format_line("BATCH", [f"-{ref}"], source=self.server.name))

    async def _keepalive(self) -> None:
        settings = self.server.settings
        deadline = time.monotonic() + settings.registration_timeout
        while not self.registered:
            await asyncio.sleep(min(1.0, settings.registration_timeout))
            if not self.registered and time.monotonic() > deadline:
                self.quit_reason = "Registration timeout"
                self.send("ERROR :Closing link: registration timeout")
                self.close()
                return
        while True:
            idle = time.monotonic() - self._last_read
            if idle < settings.ping_interval:
                await asyncio.sleep(settings.ping_interval - idle)
                continue
            self.send(f"PING :{self.server.name}")
            await asyncio.sleep(settings.ping_timeout)
            if time.monotonic() - self._last_read >= settings.ping_interval + settings.ping_timeout:
                self.quit_reason = f"Ping timeout: {int(settings.ping_timeout)} seconds"
                self.send(f"ERROR :Closing link: {self.quit_reason}")
                self.close()
                return


def _tag(key: str, value: str) -> str:
    """`key=value` escaped as a message tag."""
    return format_line("X", [], tags={key: value}).split(" ", 1)[0][1:]


def _with_tag(line: str, tag: str) -> str:
    """A formatted line with one more tag in front of its others."""
    return f"@{tag};{line[1:]}" if line.startswith("@") else f"@{tag} {line}"


__all__ = ["Client", "Message", "server_time"]

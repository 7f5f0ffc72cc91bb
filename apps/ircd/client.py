"""One client connection: its reader, its writer queue, its registration and capabilities.

Commands are handled one at a time, in the order they arrive; every line for the client
(replies and deliveries from others) goes through one queue drained by one writer task, so a
command's replies always go out before the next command's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from apps.chat import numerics as n
from apps.ircd.protocol import LineError, Message, format_line, parse
from apps.ircd.transport import TooLong, Transport

if TYPE_CHECKING:
    from apps.ircd.server import IrcServer

log = logging.getLogger("canaduck.ircd.client")

#: The client whose command is running in this task, when its replies are being labelled
#: (labeled-response): lines sent to it from its own command are held and labelled; lines from
#: other clients' commands (other tasks) are not.
_labelling: ContextVar[Client | None] = ContextVar("labelling", default=None)

#: Lines that keep a connection alive: they count against the connection's flood budget like
#: every line, but not against its account's, which is shared by all its connections.
KEEPALIVES = frozenset({"PING", "PONG"})



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
        #: Lines sent since the last flush (None: nothing pending); see `send`.
        self._pending: list[str] | None = None
        self._last_read = self.signon_monotonic = time.monotonic()
        #: The `_last_read` a keep-alive PING was sent for (one PING per quiet spell).
        self._pinged_at = 0.0
        self._batches = 0
        self._held: list[str] | None = None
        #: Flood control: the GCRA "theoretical arrival time" of this connection's next line.
        self.flood_tat = 0.0

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
        """Queue one line. Lines are written at the end of the event loop's turn, all those
        of one client in one write and in the order sent (a command's replies before the next
        command's); a client that stops reading is cut off past SEND_QUEUE_BYTES."""
        if self.closing and not line.startswith("ERROR"):
            return
        if self._held is not None and _labelling.get() is self:
            self._held.append(line)
            return
        if self._pending is None:
            self._pending = [line]
            self.server.flush_soon(self)
        else:
            self._pending.append(line)

    def flush(self) -> None:
        """Hand the pending lines to the transport (the server calls it once per turn)."""
        lines, self._pending = self._pending, None
        if not lines:
            return
        transport = self.transport
        transport.send(lines)
        if transport.buffered() > self.server.settings.send_queue_bytes:
            self.quit_reason = "SendQ exceeded"
            self.closing = True
            transport.abort()  # reads end too: the connection's task frees its state

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

    def send_event(self, event: dict[str, Any], rendered: dict[tuple[str, ...], str] | None = None) -> None:
        """Deliver a message or event (a JOIN, a PRIVMSG...) rendered for this client;
        `rendered` caches the lines of an event sent to many clients, by the tags they get."""
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
                self.send_event(fallback)  # rare (away-notify's fallback): not cached
            return
        command = event["cmd"]
        if command == "TAGMSG" and "message-tags" not in self.caps:
            return
        tags = self.tags_for(event.get("tags"))
        if rendered is None:
            self.send(format_line(command, event["p"], source=event.get("src"), tags=tags))
            return
        # One event to many clients: each distinct set of tags is formatted once.
        key = tuple(tags)
        line = rendered.get(key)
        if line is None:
            line = rendered[key] = format_line(command, event["p"], source=event.get("src"), tags=tags)
        self.send(line)

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
        """Stop reading: the connection's task then frees its state (channels, nick), and
        only after that sends what is queued and closes the socket, so a client that sees its
        connection end can reconnect with the same nick at once."""
        if not self.closing:
            self.closing = True
            self.transport.stop_reading()

    # -- input ---------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection until it ends, then leave every channel and free the nick.

        This task is the connection's only one: output goes out through `send` without a
        writer task, and keep-alives come from the server's one `keepalive` loop."""
        try:
            while not self.closing:
                try:
                    raw = await self.transport.read_line()
                except TooLong:
                    self.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
                    continue
                except (ConnectionError, OSError):
                    break
                if raw is None:
                    break
                self._last_read = time.monotonic()
                if not await self.handle(raw):
                    break
                # One line per turn: a connection with a backlog (lines that arrived together,
                # or a flood) lets every other connection of the replica take its turn before
                # its next line, however cheap its lines are.
                await asyncio.sleep(0)
        finally:
            try:
                await self.server.disconnect(self)
            except Exception:
                log.exception("cleanup of %s failed", self.uid)
            self.flush()
            self.transport.close()
            await self.transport.wait_closed()

    async def handle(self, raw: bytes) -> bool:
        """Parse and run one line; errors become numerics, never a dropped connection.
        False when the connection is done with (it was lost while the line waited for its
        flood budget, or the peer had closed and the budget is spent: the rest is dropped)."""
        if not await self.server.throttle(self, raw):
            return False
        try:
            message = parse(raw)
        except LineError as exc:
            if exc.numeric == n.ERR_INPUTTOOLONG:
                self.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
            elif str(exc) == "invalid utf-8":
                self.fail(exc.numeric, "INVALID_UTF8", "Message rejected: not UTF-8")
            elif exc.numeric:
                self.reply(exc.numeric, "*", f"Line rejected: {exc}")
            return True
        if message is None:
            return True
        self.server.counts["commands"] += 1
        if self.account and message.command not in KEEPALIVES \
                and not await self.server.throttle_account(self):
            return False
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
        return True

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

    def keepalive(self, now: float) -> None:
        """Called about once a second by the server: the registration deadline, then a PING
        after PING_INTERVAL quiet seconds and the cut PING_TIMEOUT seconds after that."""
        if self.closing:
            return
        settings = self.server.settings
        if not self.registered:
            if now - self.signon_monotonic > settings.registration_timeout:
                self.quit_reason = "Registration timeout"
                self.send("ERROR :Closing link: registration timeout")
                self.close()
            return
        idle = now - self._last_read
        if idle >= settings.ping_interval + settings.ping_timeout:
            self.quit_reason = f"Ping timeout: {int(settings.ping_timeout)} seconds"
            self.send(f"ERROR :Closing link: {self.quit_reason}")
            self.close()
        elif idle >= settings.ping_interval and self._pinged_at != self._last_read:
            self._pinged_at = self._last_read
            self.send(f"PING :{self.server.name}")


def _tag(key: str, value: str) -> str:
    """`key=value` escaped as a message tag."""
    return format_line("X", [], tags={key: value}).split(" ", 1)[0][1:]


def _with_tag(line: str, tag: str) -> str:
    """A formatted line with one more tag in front of its others."""
    return f"@{tag};{line[1:]}" if line.startswith("@") else f"@{tag} {line}"


__all__ = ["Client", "Message", "server_time"]

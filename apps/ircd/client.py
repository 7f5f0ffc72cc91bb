"""One client connection: who it is, what it negotiated, and its output.

Every line for a client (replies, and deliveries from others) is queued by `send` and written
at the end of the event loop's turn, all of one client's lines in one write and in the order
sent (`Flusher`), so a command's replies go out before the next command's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from contextvars import ContextVar

from apps.chat.modes import with_user_mode
from apps.chat.numerics import ERR_UNKNOWNERROR, RPL_AWAY
from apps.chat.records import User
from apps.ircd.multiline import ClientBatches
from apps.ircd.protocol import format_line
from apps.ircd.transport import Transport

log = logging.getLogger("canaduck.ircd.client")

#: draft/pre-away: the away message of a user "not present for an unspecified reason", and
#: the text shown in its place to clients that did not negotiate draft/pre-away.
UNSPECIFIED_AWAY = "*"
UNSPECIFIED_AWAY_TEXT = "Away"

#: The client whose command is running in this task, while its replies are being labelled
#: (labeled-response, apps/ircd/labels.py): lines sent to it from its own command are held;
#: lines from other clients' commands (other tasks) are not.
LABELLING: ContextVar[Client | None] = ContextVar("labelling", default=None)


class Flusher:
    """Writes the pending lines of every client that has some, once per turn of the event loop:
    one write per client per turn, one callback for them all.

    Lines that can wait (`later`: others' JOINs, PARTs and QUITs in a big channel) are written
    `delay` seconds after the first of them, with whatever the client got meanwhile, unless a
    line that cannot wait takes them along first. A wave of thousands joining one channel sends
    each member a JOIN per joiner: written a turn at a time, the writes (and, on the machine,
    the readers' wake-ups) were most of the wave's CPU (docs/ircd.md, "CPU of a join wave")."""

    def __init__(self, delay: float = 0.1) -> None:
        self._dirty: list[Client] = []
        self._waiting: list[Client] = []
        self._delay = delay

    def soon(self, client: Client) -> None:
        """Write `client`'s pending lines at the end of this turn."""
        if not self._dirty:
            asyncio.get_running_loop().call_soon(self._flush)
        self._dirty.append(client)

    def later(self, client: Client) -> None:
        """Write `client`'s pending lines `delay` seconds from now (sooner if `soon` comes)."""
        if not self._waiting:
            asyncio.get_running_loop().call_later(self._delay, self._flush_waiting)
        self._waiting.append(client)

    def _flush_waiting(self) -> None:
        waiting, self._waiting = self._waiting, []
        self._write(waiting)

    def _flush(self) -> None:
        dirty, self._dirty = self._dirty, []
        self._write(dirty)

    @staticmethod
    def _write(clients: list[Client]) -> None:
        for client in clients:
            try:
                client.flush()
            except Exception:  # one broken socket must not keep the others' lines
                log.exception("write to %s failed", client.uid)


#: What a client holds when it has nothing of a kind: its capabilities before any, its watched
#: nicks before a MONITOR +. One empty frozenset for every client, where an empty set of its
#: own is 216 bytes (docs/ircd.md, "Memory per connection").
NOTHING: frozenset[str] = frozenset()

#: Each distinct set of capabilities clients negotiated, made once: most clients of a network
#: run the same few clients, which ask for the same capabilities, and a set of twenty names is
#: 2.2 KiB. Bounded, as clients choose what they ask for: past the bound a set is not kept here.
_CAPS: dict[frozenset[str], frozenset[str]] = {NOTHING: NOTHING}
_MAX_CAPS = 1024


def shared_caps(names: Iterable[str]) -> frozenset[str]:
    """The frozenset of `names`, the same object for every client that negotiated them."""
    caps = frozenset(names)
    found = _CAPS.get(caps)
    if found is not None:
        return found
    if len(_CAPS) < _MAX_CAPS:
        _CAPS[caps] = caps
    return caps


#: A client's attributes, as slots: past the 30 keys CPython's shared-key instance dicts hold,
#: every client had a dict of its own, 1.9 KiB of a registered connection's ~9, where slots take
#: 0.3 (docs/ircd.md, "Memory per connection").
_ATTRIBUTES = ("_batches", "_can_wait", "_flusher", "_held", "_pending", "_send_queue_bytes", "account",
               "always_on", "asked_nick", "attach_to", "away", "cap_version", "caps", "channels", "closing",
               "device", "flood_tat", "host", "killed", "last_message", "last_read", "missed_since_ms",
               "modes", "monitoring", "multiline", "negotiating", "nick", "nick_cf", "nick_reserved",
               "password", "pinged_at", "quit_reason", "realname", "registered", "sasl_buffer",
               "sasl_mechanism", "server_name", "signon", "signon_monotonic", "transport", "uid",
               "username")


class Client:
    """A connected client, registered or not; `server_name` is the name replies come from."""

    __slots__ = _ATTRIBUTES

    def __init__(self, transport: Transport, uid: str, *, server_name: str, flusher: Flusher,
                 send_queue_bytes: int, now: float) -> None:
        self.transport = transport
        #: Its user's id (its own, or, a device of an account's user, that user's: docs/chat.md
        #: "One account, many devices"), and its own, never shared.
        self.uid = self.device = uid
        self.server_name = server_name
        self._flusher = flusher
        self._send_queue_bytes = send_queue_bytes
        self.nick, self.nick_cf = "*", ""
        self.nick_reserved = False  # its nick was an account's when taken: checked as it registers
        self.username = ""
        self.realname = ""
        self.host = transport.peer_ip
        self.account = ""
        self.always_on = False  # its user stays when its last device goes (the account's choice)
        #: Before registration: the user of its account holding the nick it asked for, which
        #: it becomes a device of when it registers logged in to that account.
        self.attach_to = ""
        #: A device back to an always-on user that had none: since when (unix ms).
        self.missed_since_ms = 0
        #: Killed (KILL): its user leaves with it, always-on or not, devices or not.
        self.killed = False
        self.away = ""
        self.modes = ""  # user mode letters, in the table's order (apps/chat/modes.py)
        self.caps = NOTHING  # shared with the clients that negotiated the same (`shared_caps`)
        self.cap_version = 0
        self.negotiating = self.registered = False
        self.password = ""
        #: The last nick asked for before registration, taken or not: REGISTER * names it.
        self.asked_nick = ""
        self.channels: set[str] = set()  # casefolded, the channels it is in
        self.monitoring: frozenset[str] | set[str] = NOTHING  # casefolded; a set from the first (MONITOR +)
        self.signon = self.last_message = now
        self.sasl_buffer = self.sasl_mechanism = ""
        self.closing = False
        self.quit_reason = "Client closed connection"
        #: Keep-alive bookkeeping (apps/ircd/keepalive.py): monotonic seconds.
        self.last_read = self.signon_monotonic = time.monotonic()
        self.pinged_at = 0.0  # the `last_read` a keep-alive PING was sent for
        #: Flood control: the GCRA "theoretical arrival time" of this connection's next line.
        self.flood_tat = 0.0
        #: draft/multiline: the client's batches, from its first BATCH on (apps/ircd/multiline.py).
        self.multiline: ClientBatches | None = None
        self._pending: list[str] | None = None  # lines sent since the last flush
        self._can_wait = False  # every pending line can wait for the flusher's `later`
        self._held: list[str] | None = None  # a labelled command's replies
        self._batches = 0

    # -- identity ----------------------------------------------------------------------------
    @property
    def prefix(self) -> str:
        return f"{self.nick}!{self.username}@{self.host}"

    @property
    def oper(self) -> bool:
        return "o" in self.modes

    def set_mode(self, letter: str, on: bool) -> None:
        self.modes = with_user_mode(self.modes, letter, on)

    def to_user(self, instance: str) -> User:
        """What other replicas know of this client: its record in Redis."""
        return User(uid=self.uid, nick=self.nick, username=self.username, host=self.host,
                    realname=self.realname, account=self.account, away=self.away, modes=self.modes,
                    instance=instance, signon=int(self.signon), secure=self.transport.secure,
                    always_on=self.always_on)

    # -- output --------------------------------------------------------------------------------
    def send(self, line: str, *, can_wait: bool = False) -> None:
        """Queue one line, written at the end of this turn or, one that `can_wait`, within the
        flusher's delay; a client that stops reading is cut off past SEND_QUEUE_BYTES."""
        if self.closing and not line.startswith("ERROR"):
            return
        if self._held is not None and LABELLING.get() is self:
            self._held.append(line)
            return
        if self._pending is None:
            self._pending, self._can_wait = [line], can_wait
            (self._flusher.later if can_wait else self._flusher.soon)(self)
        else:
            self._pending.append(line)
            if self._can_wait and not can_wait:  # it takes the lines that could wait along
                self._can_wait = False
                self._flusher.soon(self)

    def flush(self) -> None:
        """Hand the pending lines to the transport (the flusher calls it once per turn)."""
        lines, self._pending, self._can_wait = self._pending, None, False
        if not lines:
            return
        transport = self.transport
        transport.send(lines)
        if transport.buffered() > self._send_queue_bytes:
            self.quit_reason = "SendQ exceeded"
            self.closing = True
            transport.abort()  # reads end too: the connection's task frees its state

    def reply(self, numeric: str, *params: str) -> None:
        """A numeric from the server, addressed to this client."""
        self.send(format_line(numeric, [self.nick, *params], source=self.server_name))

    def reply_away(self, nick: str, away: str) -> None:
        """301 RPL_AWAY: `nick` is away (draft/pre-away's `*` as a text to one without it)."""
        if away == UNSPECIFIED_AWAY and "draft/pre-away" not in self.caps:
            away = UNSPECIFIED_AWAY_TEXT
        self.reply(RPL_AWAY, nick, away)

    def fail(self, command: str, code: str, *context: str) -> None:
        """An IRCv3 standard reply: FAIL <command> <code> [<context>...] <description>."""
        self.send(format_line("FAIL", [command, code, *context], source=self.server_name))

    def unknown_error(self, command: str, code: str, description: str) -> None:
        """A failure only the catch-all 400 ERR_UNKNOWNERROR names: `FAIL <command> <code>` to
        a client that negotiated `standard-replies` (machine-readable), the 400 to others."""
        if "standard-replies" in self.caps:
            self.fail(command, code, description)
        else:
            self.reply(ERR_UNKNOWNERROR, command, description)

    def new_batch(self) -> str:
        self._batches += 1
        return f"{self.uid[:6]}{self._batches}"

    # -- labelled replies (apps/ircd/labels.py) --------------------------------------------------
    def hold(self) -> None:
        """Hold what this client's running command sends it, until `release`."""
        self._held = []

    def release(self) -> list[str]:
        held, self._held = self._held or [], None
        return held

    def unheld(self) -> list[str] | None:
        """Stop holding for a moment (give the result back to `rehold`): a delivery to this very
        client by its own labelled command is not a reply, and goes out unlabelled."""
        held, self._held = self._held, None
        return held

    def rehold(self, held: list[str] | None) -> None:
        self._held = held

    # -- end -------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop reading: the connection's task frees its state (channels, nick), then sends
        what is queued and closes, so that a client can reconnect with the same nick at once."""
        if not self.closing:
            self.closing = True
            self.transport.stop_reading()

    def close_link(self, reason: str, shown: str = "") -> None:
        """Close with an ERROR line: `reason` is its QUIT's, `shown` the ERROR's (or `reason`)."""
        self.quit_reason = reason
        self.send(f"ERROR :Closing link: {shown or reason}")
        self.close()

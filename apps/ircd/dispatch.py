"""A connection's input: each line read, counted against flood control, parsed and handed to
its command, one at a time and in order, errors answered with their numeric.

Commands run one at a time per connection, so a command's replies always go out before the
next command's; one line per turn of the event loop, so a connection with a backlog lets every
other connection of the replica take its turn between two of its lines.
"""

from __future__ import annotations

import asyncio
import logging
import time

from redis.exceptions import RedisError

from apps.chat import numerics as n
from apps.ircd.admission import RegistrationTurns
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import ChatError
from apps.ircd.failures import reply_to, reply_to_batch
from apps.ircd.flood import FloodControl
from apps.ircd.labels import labelled
from apps.ircd.linebuffer import TooLong
from apps.ircd.protocol import LineError, Message, parse
from apps.ircd.registry import CommandTable

log = logging.getLogger("canaduck.ircd")

#: Lines that keep a connection alive: they count against the connection's flood budget like
#: every line, but not against its account's, which is shared by all its connections.
KEEPALIVES = frozenset({"PING", "PONG"})


class Dispatcher:
    """Reads a connection's lines and runs their commands."""

    def __init__(self, ctx: Context, flood: FloodControl, commands: CommandTable,
                 turns: RegistrationTurns) -> None:
        self._ctx = ctx
        self._flood = flood
        self._commands = commands
        self._turns = turns

    async def run(self, client: Client) -> None:
        """Serve the connection's input until it ends (or the client is closed)."""
        transport = client.transport
        while not client.closing:
            try:
                raw = await transport.read_line()
            except TooLong:
                client.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
                continue
            except (ConnectionError, OSError):
                return
            if raw is None:
                return
            client.last_read = time.monotonic()
            if not await (self.handle(client, raw) if client.registered else self._registering(client, raw)):
                return
            # One line per turn: a connection with a backlog (lines that arrived together, or a
            # flood) lets every other connection of the replica take its turn before its next
            # line, however cheap its lines are.
            await asyncio.sleep(0)

    async def _registering(self, client: Client, raw: bytes) -> bool:
        """A line of a connection not yet registered, in its turn (apps/ircd/admission.py).
        A connection whose peer has gone by then is done with: it is nobody yet, and nobody
        would read what its registration says."""
        await self._turns.enter(client.signon_monotonic)
        try:
            return not client.transport.ended and await self.handle(client, raw)
        finally:
            self._turns.leave()

    async def handle(self, client: Client, raw: bytes) -> bool:
        """Parse and run one line; errors become numerics, never a dropped connection. False
        when the connection is done with (flood control dropped the rest of its input)."""
        if not await self._flood.line(client, raw):
            return False
        try:
            message = parse(raw)
        except LineError as exc:
            _refuse(client, exc)
            return True
        if message is None:
            return True
        self._ctx.counts["commands"] += 1
        if client.multiline is not None:
            self._interrupt_batch(client, message.command)
        if client.account and message.command not in KEEPALIVES and not await self._flood.account(client):
            return False
        label = message.tags.get("label", "") if "labeled-response" in client.caps else ""
        if label:
            with labelled(client, label):
                await self._run(client, message)
        else:
            await self._run(client, message)
        return True

    @staticmethod
    def _interrupt_batch(client: Client, command: str) -> None:
        """A command that has no place in an open multiline batch drops it (its FAIL answers
        the batch's opening), then runs as usual: a QUIT is never lost to a batch."""
        assert client.multiline is not None
        label = client.multiline.label
        error = client.multiline.interrupted(command)
        if error is not None:
            reply_to_batch(client, error, label)

    async def _run(self, client: Client, message: Message) -> None:
        try:
            await self.dispatch(client, message)
        except ChatError as error:
            if message.command != "NOTICE":  # a NOTICE never gets an automatic reply
                reply_to(client, error)
        except RedisError as exc:
            log.warning("Redis error in %s: %s", message.command, exc)
            client.unknown_error(message.command, "TEMPORARILY_UNAVAILABLE",
                                 "Server state unavailable; try again")
        except Exception:
            log.exception("error handling %s", message.command)
            client.unknown_error(message.command, "INTERNAL_ERROR", "Internal error")

    async def dispatch(self, client: Client, message: Message) -> None:
        """Run the command's handler, after the checks its entry asks for."""
        entry = self._commands.get(message.command)
        if entry is None:
            if client.registered:
                client.reply(n.ERR_UNKNOWNCOMMAND, message.command, "Unknown command")
            else:
                client.reply(n.ERR_NOTREGISTERED, "You have not registered")
            return
        if entry.registered and not client.registered:
            client.reply(n.ERR_NOTREGISTERED, "You have not registered")
            return
        if len(message.params) < entry.params:
            client.reply(n.ERR_NEEDMOREPARAMS, message.command, "Not enough parameters")
            return
        await entry.handler(self._ctx, client, message)


def _refuse(client: Client, error: LineError) -> None:
    """The answer to a line that cannot be parsed."""
    if error.numeric == n.ERR_INPUTTOOLONG:
        client.reply(n.ERR_INPUTTOOLONG, "Input line was too long")
    elif str(error) == "invalid utf-8":
        client.fail(error.numeric, "INVALID_UTF8", "Message rejected: not UTF-8")
    elif error.numeric == n.ERR_UNKNOWNERROR:
        client.unknown_error("*", "INVALID_LINE", f"Line rejected: {error}")
    elif error.numeric:
        client.reply(error.numeric, "*", f"Line rejected: {error}")

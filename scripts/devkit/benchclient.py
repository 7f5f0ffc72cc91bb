"""One IRC connection of scripts/bench-irc's load generator (`BenchClient`) and what one load
generator process's clients saw (`Tally`): lines split by hand and the bench messages timed,
since the generator must not be what is slow."""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections.abc import Callable

#: Seconds a client may take to register or to join (the servers may be slow under load).
SETUP_TIMEOUT = 120.0


class Tally:
    """What one worker's clients saw."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.cross_ms: list[float] = []  # the deliveries that crossed servers
        self.received: dict[int, int] = {}
        self.last_arrival = 0
        self.errors: list[str] = []
        self.pings = 0  # keep-alive PINGs answered
        self.retries = 0  # NICKs and JOINs asked again after a 400 "try again"
        self.closed = 0  # connections the server closed after registering them
        self.turned_away = 0  # connections closed before registering (the door), tried again


#: Lines that are only others' JOINs (any number of them, and nothing else): in a big channel's
#: join wave a client gets one per joiner after it, 24.5 million for 7,000 members, and looking
#: at each in Python made the load generators a third of the wave's CPU.
OTHERS_JOINS = re.compile(rb"(?::[^ \n]+ JOIN [^\n]*\n)*")


class BenchClient(asyncio.Protocol):
    """One IRC connection of the load generator: lines split by hand, bench messages timed."""

    def __init__(self, nick: str, tally: Tally, *, port: int = 0, origin: dict[int, int] | None = None,
                 no_implicit_names: bool = False, echoed: Callable[[], None] | None = None) -> None:
        self.nick = nick
        self.tally = tally
        self.port = port
        self.origin = origin or {}
        self.no_implicit_names = no_implicit_names
        #: A closed loop's: called when one of its own messages comes back (echo-message), or
        #: is refused, so that the next may go.
        self.echoed_message = echoed
        self._source = f":{nick}!".encode()
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.registered = asyncio.get_running_loop().create_future()
        self.joined: dict[bytes, asyncio.Future[None]] = {}
        self.echoed = False  # its own JOIN came back (the benchmark's clients join one channel)
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.registered.done():
            self.tally.closed += 1
            self.tally.errors.append(f"{self.nick}: connection closed")
        else:
            self.registered.set_exception(ConnectionError("closed before registering"))

    def write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter_ns()
        data = self.buffer + data
        end = data.rfind(b"\n") + 1
        body, self.buffer = data[:end], data[end:]
        if OTHERS_JOINS.fullmatch(body) and self._source not in body:
            return  # a join wave: thousands of others' JOINs a second, nothing to do with them
        lines = body.split(b"\n")
        lines.pop()
        tally = self.tally
        for line in lines:
            # The hot path: ":src PRIVMSG #chan :bench <id> <sent ns>" (tags or not).
            cut = line.find(b" :bench ")
            if cut > 0 and b" PRIVMSG " in line:
                if self.echoed_message is not None and self._source in line[:line.find(b" PRIVMSG ")]:
                    self.echoed_message()  # its own message back (tags or not): not a delivery
                    continue
                parts = line[cut + 8:].split()
                if len(parts) == 2:
                    msg_id = int(parts[0])
                    latency = (now - int(parts[1])) / 1e6
                    tally.latencies_ms.append(latency)
                    if self.origin.get(msg_id, self.port) != self.port:
                        tally.cross_ms.append(latency)
                    tally.received[msg_id] = tally.received.get(msg_id, 0) + 1
                    tally.last_arrival = now
                    continue
            self._control(line.rstrip(b"\r"))

    def _control(self, line: bytes) -> None:
        words = line.split(b" ", 4)
        if words and words[0].startswith(b"@"):
            words = line.split(b" ", 5)[1:]
        source = b""
        if words and words[0].startswith(b":"):
            source, words = words[0], words[1:]
        if not words:
            return
        command = words[0]
        if command == b"PING":
            token = line.split(b" ", 1)[1] if b" " in line else b""
            self.write(b"PONG " + token + b"\r\n")
            self.tally.pings += 1
        elif command == b"001":
            if not self.registered.done():
                self.registered.set_result(None)
        elif command == b"366" and len(words) > 2 and not self.no_implicit_names:
            self._joined(words[2])
        elif command == b"JOIN" and len(words) > 1 and source.startswith(self._source):
            if self.no_implicit_names:
                self._joined(words[1].lstrip(b":"))
            else:
                self.echoed = True
        elif command == b"400" and len(words) > 2 and words[2] in (b"NICK", b"JOIN"):
            # The server could not reach its state (Redis) in time and says to try again: a
            # person would, after a moment, and so does the benchmark's client (counted). A JOIN
            # whose echo came back is done, only its NAMES failed: those are asked again.
            self.tally.retries += 1
            if words[2] == b"NICK":
                again = f"NICK {self.nick}"
            else:
                again = f"{'NAMES' if self.echoed else 'JOIN'} {self._joining()}"
            pause = random.uniform(0.5, 1.5)
            asyncio.get_running_loop().call_later(pause, self.write, f"{again}\r\n".encode())
        elif command in (b"ERROR", b"433", b"432", b"465") or (command[:1] in b"45" and command.isdigit()):
            self.tally.errors.append(f"{self.nick}: {line[:120].decode('utf-8', 'replace')}")
            refused = command == b"404" or (command == b"400" and words[2:3] == [b"PRIVMSG"])
            if refused and self.echoed_message is not None:
                self.echoed_message()  # no echo will come: its place in the window is free

    def _joining(self) -> str:
        """The channel this client was asked to join (the benchmark's clients join one)."""
        return next((c.decode() for c, done in self.joined.items() if not done.done()), "")

    def _joined(self, channel: bytes) -> None:
        done = self.joined.get(channel.lower())
        if done is not None and not done.done():
            done.set_result(None)

    async def wait(self, future: asyncio.Future[None], what: str) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(future), SETUP_TIMEOUT)
        except TimeoutError:
            raise RuntimeError(f"{self.nick} {what}: no answer in {SETUP_TIMEOUT:.0f} s; the servers "
                               f"said: {self.tally.errors[:3]}") from None

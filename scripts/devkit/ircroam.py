"""The reconnect scenario's load generator (`scripts/bench-irc --scenarios reconnect`): IRC
clients that lose their server and come back as real clients do, and account for every
message they should have seen.

Each client (a `Roamer`) is one user in one channel. It negotiates what a modern client asks
for (`message-tags` for each message's `msgid`, `server-time`, `batch`, `echo-message`, and
`draft/chathistory` where offered) and remembers where it is in its channel: the msgid of the
last message it saw there, or the time of its own JOIN before any. When its connection drops
(its server was killed) it reconnects on its own, with exponential backoff and full jitter
(attempt k waits a uniform random time up to min(cap, base * 2**k)), to the next of its
addresses: the same one address for a gateway that shares one port, the other server for a
network of several. A nick still held by its ghost (`433`) makes it take an alternate nick, as
irssi or weechat do. Once registered it joins its channel again, then asks `CHATHISTORY AFTER
<channel> <where it was> <limit>`, page after page, for what it missed.

What counts as sent is what the server took: a message echoed back to its sender
(`echo-message`). Lost = for every message taken, each member of its channel but the sender
that saw it neither live nor in a history batch. A message a client tried to send while away
is not sent (a real client would hold it; counted as `skipped`); one written just before its
server died and never echoed is `unacked`, the sender knows it was not taken.

One `Worker` per process drives its share of the clients step by step for the conductor
(`scripts/bench_irc.py`), over a pipe, as the other scenarios' workers do.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from scripts.devkit.loopback import connect_from

#: What a reconnecting client asks for, where the server offers it.
WANTED_CAPS = ("message-tags", "server-time", "batch", "echo-message", "draft/chathistory")
#: Registrations or joins in flight at once per worker while the clients first arrive (after
#: a kill nobody coordinates: only backoff spreads them).
WAVE = 50
#: Seconds a client may take to first register or join.
SETUP_TIMEOUT = 180.0
#: A reconnecting client's first wait is up to BACKOFF_BASE seconds, doubling each attempt,
#: never past BACKOFF_CAP (`Backoff`).
BACKOFF_BASE, BACKOFF_CAP = 1.0, 10.0
#: An attempt's steps, in order (`Roamer.steps` holds the time each one started).
ATTEMPT_STEPS = ("connecting", "registering", "joining")
#: Clients per source address. Each (source, destination) pair has ~28,000 ephemeral ports,
#: and the kernel gives a connection from one source the next free port. Behind the one
#: address a port's hash picks the replica, so with few ports left free a storm sorts them:
#: those that hash to a replica taking clients are kept, those of a full one come back free,
#: until every free port leads to the full one and the clients still away are refused at every
#: attempt (a 50,000 run with 20,000 a source: 1,915 never back). With 2,000 a source, most of
#: each source's ports stay free, as real clients' addresses and ports are many.
PER_SOURCE = 2000


@dataclass
class RoamPlan:
    """One worker's share: its clients (global indexes), and the whole run's messages."""

    nicks: dict[int, str]
    channels: dict[int, str]
    #: The addresses a client tries, its own first: one shared port, or every server's.
    ports: dict[int, list[int]]
    #: The source address a client binds (several spread the ephemeral ports: ~28,000 per pair).
    sources: dict[int, str]
    #: Every message of the run, as (msg_id, offset in s, sender index, channel).
    schedule: list[tuple[int, float, int, str]]
    backoff_base: float = BACKOFF_BASE
    backoff_cap: float = BACKOFF_CAP
    attempt_timeout: float = 30.0
    #: Seconds after the kill the conductor waits at most for every dropped client.
    back_timeout: float = 300.0
    history_limit: int = 100
    no_implicit_names: bool = False
    seed: int = 0


class Backoff:
    """Exponential backoff with full jitter: attempt k waits uniform(0, min(cap, base * 2**k)),
    so that thousands of clients dropped at once do not come back at once."""

    def __init__(self, base: float, cap: float, rng: random.Random) -> None:
        self.base, self.cap, self.rng = base, cap, rng
        self.attempt = 0

    def delay(self) -> float:
        """The wait before the next attempt."""
        ceiling = min(self.cap, self.base * 2 ** self.attempt)
        self.attempt += 1
        return self.rng.uniform(0, ceiling)


@dataclass
class Tally:
    """What one worker's clients saw, all of them together."""

    latencies_ms: list[float] = field(default_factory=list)  # live deliveries only
    quits: int = 0  # QUITs of others seen (ghosts swept, or a netsplit)
    double_quits: int = 0  # a QUIT of a nick this client had already seen quit
    history_failures: int = 0  # CHATHISTORY refused (FAIL): a gap left unfilled
    retries: int = 0  # commands asked again after a `400 ... try again`
    redrops: int = 0  # back in its channel, then dropped again before its gap was filled
    #: Connections the server closed before registering them (a replica too busy to take
    #: one more: the door), when first arriving and when coming back after the kill.
    turned_away_first: int = 0
    turned_away_back: int = 0
    first_quit: float = 0.0
    last_quit: float = 0.0
    errors: list[str] = field(default_factory=list)
    #: Each attempt back that succeeded: seconds to connect, to register, to join.
    attempt_steps: list[tuple[float, ...]] = field(default_factory=list)
    #: Attempts back given up after RoamPlan.attempt_timeout, by the step they were at.
    gave_up: Counter[str] = field(default_factory=Counter)
    #: The servers' ERROR lines (why they closed a connection), by their text.
    closings: Counter[str] = field(default_factory=Counter)

    def error(self, text: str) -> None:
        if len(self.errors) < 20:
            self.errors.append(text)

    def quit_seen(self, now: float) -> None:
        self.quits += 1
        self.first_quit = self.first_quit or now
        self.last_quit = now


def _succeeded(future: asyncio.Future[None] | None) -> bool:
    return future is not None and future.done() and not future.cancelled() and future.exception() is None


def tag(tags: bytes, key: bytes) -> bytes:
    """A tag's value from a line's tags (b"@a=1;b=2"), b"" when absent."""
    start = tags.find(key + b"=")
    if start < 0:
        return b""
    start += len(key) + 1
    end = tags.find(b";", start)
    return tags[start:] if end < 0 else tags[start:end]


class Link(asyncio.Protocol):
    """One connection of a roamer: lines split by hand and handed to it."""

    def __init__(self, roamer: Roamer) -> None:
        self.roamer = roamer
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.roamer.lost(self)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        lines = (self.buffer + data).split(b"\n")
        self.buffer = lines.pop()
        for raw in lines:
            line = raw.rstrip(b"\r")
            tags = b""
            if line.startswith(b"@"):
                tags, _, line = line.partition(b" ")
            self.roamer.line(tags, line)


class Roamer:
    """One user: its nick, its channel, where it is in it, what it received; it outlives its
    connections."""

    def __init__(self, index: int, plan: RoamPlan, tally: Tally, rng: random.Random) -> None:
        self.index = index
        self.base_nick = self.nick = plan.nicks[index]
        self.channel = plan.channels[index]
        self._channel_key = self.channel.lower().encode()
        self.ports = plan.ports[index]
        self.source = plan.sources[index]
        self.plan, self.tally, self.rng = plan, tally, rng
        self.link: Link | None = None
        self.caps: set[str] = set()
        self._offered: list[str] = []
        self.registered: asyncio.Future[None] | None = None
        self.joined: asyncio.Future[None] | None = None
        self.ref: str | None = None  # where it is in its channel: msgid=... or timestamp=...
        #: Where the history being asked for starts: `ref` when it came back, then each full
        #: page's last message. Live messages move `ref`, never this.
        self._cursor = ""
        self._live_since_join = False
        self._live_last = ""
        self._page_count = 0
        self._page_last = b""
        self.received: set[int] = set()
        self.recovered: set[int] = set()  # first seen in a history batch
        self.acked: set[int] = set()  # its own messages the server took (echoed)
        self.written: set[int] = set()  # its own messages written to a connection
        self.dropped_at = self.back_at = self.filled_at = 0.0
        self.attempts = 0
        self.alternate_nicks = 0
        self.quitting = False
        self.steps: list[float] = []  # the current attempt's: started, connected, registered, joined
        self._port_index = 0
        self._quits_seen: set[bytes] = set()

    # -- state -------------------------------------------------------------------------------

    @property
    def present(self) -> bool:
        """Connected, registered and in its channel."""
        return self.link is not None and _succeeded(self.joined)

    @property
    def away(self) -> bool:
        """Dropped and not yet back with its gap filled."""
        return bool(self.dropped_at) and not self.filled_at

    # -- connecting --------------------------------------------------------------------------

    async def connect(self, steps: list[float] | None = None) -> None:
        """Connect to the current address and register (an alternate nick if needed); the
        time the connection was made is added to `steps`."""
        loop = asyncio.get_running_loop()
        self.caps, self._offered = set(), []
        self.registered = loop.create_future()
        self.joined = None
        _, link = await connect_from(lambda: Link(self), self.source, self.ports[self._port_index])
        if steps is not None:
            steps.append(time.perf_counter())
        self.link = link
        link.write(f"CAP LS 302\r\nNICK {self.nick}\r\nUSER {self.base_nick} 0 * :bench\r\n".encode())
        await self.registered

    async def join(self) -> None:
        """JOIN its channel and wait for its own JOIN to come back."""
        assert self.link is not None
        self.joined = asyncio.get_running_loop().create_future()
        self.link.write(f"JOIN {self.channel}\r\n".encode())
        await self.joined

    async def come_back(self) -> None:
        """Reconnect as a real client does: wait (backoff, full jitter), try the next address,
        register, rejoin; again until it works. The gap is asked for once the JOIN is back."""
        backoff = Backoff(self.plan.backoff_base, self.plan.backoff_cap, self.rng)
        while not self.quitting:
            await asyncio.sleep(backoff.delay())
            self._port_index = (self._port_index + 1) % len(self.ports)
            self.attempts += 1
            try:
                await asyncio.wait_for(self._connect_and_join(), self.plan.attempt_timeout)
                return
            except (OSError, TimeoutError, ConnectionError) as exc:
                if isinstance(exc, TimeoutError):
                    self.tally.gave_up[ATTEMPT_STEPS[len(self.steps) - 1]] += 1
                if self.link is not None:
                    self.link.close()
                    self.link = None
                if backoff.attempt > 3:
                    self.tally.error(f"{self.nick}: attempt {self.attempts}: {type(exc).__name__} {exc}")

    async def _connect_and_join(self) -> None:
        """One attempt, each step's time noted in `steps` (where a timeout leaves it)."""
        steps = self.steps = [time.perf_counter()]
        await self.connect(steps)
        steps.append(time.perf_counter())
        await self.join()
        steps.append(time.perf_counter())
        self.tally.attempt_steps.append(tuple(b - a for a, b in itertools.pairwise(steps)))

    def lost(self, link: Link) -> None:
        """A connection ended: a drop if it was this roamer's live one."""
        error = ConnectionError("connection closed")
        if link is self.link and self.registered is not None and not self.registered.done():
            if self.dropped_at:
                self.tally.turned_away_back += 1
            else:
                self.tally.turned_away_first += 1
        for future in (self.registered, self.joined):
            if future is not None and not future.done():
                future.set_exception(error)
                future.exception()  # retrieved: whoever awaits it gets it, nobody else warns
        if link is not self.link or self.quitting:
            return
        was_present = _succeeded(self.joined)
        self.link = None
        if was_present:
            if self.away:
                self.tally.redrops += 1
            self.dropped_at = self.dropped_at or time.perf_counter()
            self.back_at = self.filled_at = 0.0
            asyncio.get_running_loop().create_task(self.come_back())

    def send_bench(self, msg_id: int) -> None:
        assert self.link is not None
        self.link.write(f"PRIVMSG {self.channel} :bench {msg_id} {time.perf_counter_ns()}\r\n".encode())
        self.written.add(msg_id)
        if "echo-message" not in self.caps:
            self.acked.add(msg_id)  # no way to know better: written is taken

    # -- lines -------------------------------------------------------------------------------

    def line(self, tags: bytes, line: bytes) -> None:
        cut = line.find(b" :bench ")
        if cut > 0 and b" PRIVMSG " in line[:cut]:
            parts = line[cut + 8:].split()
            if len(parts) == 2:
                self._bench(tags, line, int(parts[0]), int(parts[1]))
                return
        self._control(tags, line)

    def _bench(self, tags: bytes, line: bytes, msg_id: int, sent_ns: int) -> None:
        msgid = tag(tags, b"msgid")
        in_batch = bool(tags) and b"batch=" in tags
        if line[1:line.find(b"!")].decode() == self.nick:
            self.acked.add(msg_id)
        elif msg_id not in self.received:
            self.received.add(msg_id)
            if in_batch:
                self.recovered.add(msg_id)
            else:
                self.tally.latencies_ms.append((time.perf_counter_ns() - sent_ns) / 1e6)
        if in_batch:
            self._page_count += 1
            self._page_last = msgid or self._page_last
        elif msgid:
            # While a gap is open the client's place stays where the gap starts: a connection
            # that drops again before the gap is filled must not skip it next time.
            self._live_last = "msgid=" + msgid.decode()
            self._live_since_join = True
            if not self.away:
                self.ref = self._live_last

    def _control(self, tags: bytes, line: bytes) -> None:
        words = line.split(b" ")
        source = b""
        if words and words[0].startswith(b":"):
            source, words = words[0], words[1:]
        if not words:
            return
        command = words[0]
        if command == b"PING":
            self._write(b"PONG " + b" ".join(words[1:]) + b"\r\n")
        elif command == b"CAP" and len(words) > 3:
            self._cap(words[2], words)
        elif command == b"001":
            self.nick = words[1].decode()
            if self.registered is not None and not self.registered.done():
                self.registered.set_result(None)
        elif command == b"433" and self.registered is not None and not self.registered.done():
            self.alternate_nicks += 1
            self.nick = f"{self.base_nick}_{self.alternate_nicks}"  # irssi's and weechat's way
            self._write(f"NICK {self.nick}\r\n".encode())
        elif command == b"JOIN" and source[1:].split(b"!")[0].decode() == self.nick:
            self._joined(tags)
        elif command == b"QUIT":
            self.tally.quit_seen(time.perf_counter())
            if source in self._quits_seen:
                self.tally.double_quits += 1
            self._quits_seen.add(source)
        elif command == b"BATCH" and len(words) > 1 and words[1].startswith(b"+"):
            self._page_count, self._page_last = 0, b""
        elif command == b"BATCH" and len(words) > 1 and words[1].startswith(b"-"):
            self._page_done()
        elif command in (b"ERROR", b"FAIL") or (command.isdigit() and command[:1] in b"45"
                                                and command not in (b"433", b"422")):
            self.tally.error(f"{self.nick}: {line[:160].decode('utf-8', 'replace')}")
            if command == b"ERROR":
                self.tally.closings[line.partition(b" :")[2][:100].decode("utf-8", "replace")] += 1
            if command == b"400" and len(words) > 2:
                self._try_again(words[2])
            if command == b"FAIL" and self.back_at and not self.filled_at:
                self.filled_at = time.perf_counter()  # the gap is not going to be filled
                self.tally.history_failures += 1

    def _try_again(self, refused: bytes) -> None:
        """`400 ... :try again` (the server's state unavailable for a moment): what a client
        needs to be back (its nick, its JOIN, its history) is asked again a second later."""
        link = self.link
        if refused == b"NICK" and self.registered is not None and not self.registered.done():
            again = f"NICK {self.nick}"
        elif refused == b"JOIN" and self.joined is not None and not self.joined.done():
            again = f"JOIN {self.channel}"
        elif refused == b"CHATHISTORY" and self.back_at and not self.filled_at and self._cursor:
            again = f"CHATHISTORY AFTER {self.channel} {self._cursor} {self.plan.history_limit}"
        else:
            return
        self.tally.retries += 1

        def retry() -> None:
            if self.link is link:
                self._write(again.encode() + b"\r\n")

        asyncio.get_running_loop().call_later(1.0, retry)

    def _cap(self, sub: bytes, words: list[bytes]) -> None:
        if sub == b"LS":
            more = words[3] == b"*"
            listed = b" ".join(words[4 if more else 3:]).lstrip(b":").decode()
            self._offered += [c.split("=")[0] for c in listed.split()]
            if not more:
                wanted = [c for c in WANTED_CAPS if c in self._offered]
                if self.plan.no_implicit_names and "no-implicit-names" in self._offered:
                    wanted.append("no-implicit-names")
                request = f"CAP REQ :{' '.join(wanted)}\r\n" if wanted else ""
                self._write(f"{request}CAP END\r\n".encode())
        elif sub == b"ACK":
            self.caps.update(b" ".join(words[3:]).lstrip(b":").decode().split())

    def _joined(self, tags: bytes) -> None:
        if self.joined is None or self.joined.done():
            return
        if self.ref is None:
            when = tag(tags, b"time")
            self.ref = "timestamp=" + when.decode() if when else None
        self.joined.set_result(None)
        self._live_since_join, self._live_last = False, ""
        if not self.dropped_at or self.back_at:
            return
        self.back_at = time.perf_counter()
        if "draft/chathistory" in self.caps and self.ref is not None:
            self._ask_history(self.ref)
        else:
            self.filled_at = self.back_at  # nothing to fill the gap with

    def _ask_history(self, ref: str) -> None:
        self._cursor = ref
        self._write(f"CHATHISTORY AFTER {self.channel} {ref} {self.plan.history_limit}\r\n".encode())

    def _page_done(self) -> None:
        if not self.back_at or self.filled_at:
            return
        if self._page_count >= self.plan.history_limit and self._page_last:
            self._ask_history("msgid=" + self._page_last.decode())  # a full page: there may be more
            return
        if self._live_since_join:
            self.ref = self._live_last  # the history reached past the first live message
        elif self._page_last:
            self.ref = "msgid=" + self._page_last.decode()
        self.filled_at = time.perf_counter()

    def _write(self, data: bytes) -> None:
        if self.link is not None:
            self.link.write(data)


def roam_plans(count: int, room_size: int, addresses: Callable[[int], list[int]], rate: float,
               seconds: float, workers: int, **settings: Any) -> list[RoamPlan]:
    """The clients split over the workers (client i to worker i % workers), channels of
    `room_size` consecutive clients, a source address per PER_SOURCE clients, and a schedule
    long enough for the longest run (each worker sends its own clients' messages); `settings`
    are RoamPlan's (backoff, timeouts)."""
    rooms = max(1, count // room_size)
    members = {f"#roam{r}": list(range(r * room_size, (r + 1) * room_size)) for r in range(rooms)}
    names = list(members)
    rng = random.Random(42)
    schedule = []
    for msg_id in range(int(rate * seconds)):
        channel = names[msg_id % rooms]
        schedule.append((msg_id, msg_id / rate, rng.choice(members[channel]), channel))
    out = [RoamPlan({}, {}, {}, {}, schedule, seed=w, **settings) for w in range(workers)]
    for channel, indexes in members.items():
        for index in indexes:
            plan = out[index % workers]
            plan.nicks[index] = f"rc{index}"
            plan.channels[index] = channel
            plan.ports[index] = addresses(index)
            plan.sources[index] = f"127.0.0.{1 + index // PER_SOURCE}"
    return out


# -- the worker process ----------------------------------------------------------------------

def worker_main(plan: RoamPlan, pipe: Connection) -> None:
    """A worker process: run the plan, answering the conductor step by step."""
    try:
        asyncio.run(Worker(plan, pipe).run())
    except Exception as exc:  # reported, not raised: the conductor is waiting on the pipe
        pipe.send(("failed", f"{type(exc).__name__}: {exc}"))
    finally:
        pipe.close()


class Worker:
    """One process's clients through the steps: register, join, go (send on the schedule),
    killed (until the dropped are back), stop, count, quit."""

    def __init__(self, plan: RoamPlan, pipe: Connection) -> None:
        self.plan, self.pipe = plan, pipe
        self.tally = Tally()
        rng = random.Random(plan.seed)
        self.roamers = {i: Roamer(i, plan, self.tally, random.Random(rng.random())) for i in plan.nicks}
        self.cutoff = float("inf")
        self.start_at = 0.0
        self.skipped = 0

    async def step(self, name: str) -> Any:
        message = await asyncio.get_running_loop().run_in_executor(None, self.pipe.recv)
        if message[0] != name:
            raise RuntimeError(f"expected {name}, got {message[0]}")
        return message[1] if len(message) > 1 else None

    async def run(self) -> None:
        gate = asyncio.Semaphore(WAVE)

        async def arrive(roamer: Roamer, what: str) -> None:
            # A connection closed before it registers (a replica too busy to take it) is tried
            # again after a backoff, as a real client does, until SETUP_TIMEOUT.
            backoff = Backoff(self.plan.backoff_base, self.plan.backoff_cap, roamer.rng)
            deadline = time.perf_counter() + SETUP_TIMEOUT
            while True:
                async with gate:
                    try:
                        await asyncio.wait_for(roamer.connect() if what == "register" else roamer.join(),
                                               deadline - time.perf_counter())
                        return
                    except (TimeoutError, ConnectionError) as exc:
                        failure = exc
                if what != "register" or not isinstance(failure, ConnectionError) \
                        or time.perf_counter() > deadline:
                    raise RuntimeError(f"{roamer.nick} {what}: {type(failure).__name__}; the servers said: "
                                       f"{self.tally.errors[:3]}") from None
                await asyncio.sleep(backoff.delay())

        for what in ("register", "join"):
            await self.step(what)
            await asyncio.gather(*(arrive(r, what) for r in self.roamers.values()))
            self.pipe.send((what + "ed",))
        start_at = self.start_at = await self.step("go")
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        sending = asyncio.get_running_loop().create_task(self.send(start_at))
        kill_at = await self.step("killed")
        self.pipe.send(("back", await self.until_back(kill_at)))
        cutoff, drain = await self.step("stop")
        self.cutoff = cutoff - start_at
        await sending
        await asyncio.sleep(max(0.0, cutoff + drain - time.perf_counter()))
        wall = time.perf_counter() - max(start_at, wall_start)
        acked = sorted(m for r in self.roamers.values() for m in r.acked)
        self.pipe.send(("done", {"acked": acked, "skipped": self.skipped,
                                 "cpu_pct": 100 * (time.process_time() - cpu_start) / wall}))
        taken = set(await self.step("count"))
        self.pipe.send(("counted", self.count(taken, kill_at)))
        await self.step("quit")
        for roamer in self.roamers.values():
            roamer.quitting = True
            roamer._write(b"QUIT :bench done\r\n")
        await asyncio.sleep(0.2)
        for roamer in self.roamers.values():
            if roamer.link is not None:
                roamer.link.close()

    async def send(self, start_at: float) -> None:
        """This worker's clients' messages on the shared schedule, until the cutoff; a sender
        away when its message is due skips it."""
        for msg_id, offset, sender, _channel in self.plan.schedule:
            roamer = self.roamers.get(sender)
            if roamer is None:
                continue
            if offset > self.cutoff:
                return
            delay = start_at + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if offset > self.cutoff:
                return
            if roamer.present:
                roamer.send_bench(msg_id)
            else:
                self.skipped += 1

    async def until_back(self, kill_at: float, settle: float = 2.0) -> dict[str, Any]:
        """Wait until every dropped client is back with its gap filled (at least `settle`
        seconds after the kill, for the drops to be seen; at most the plan's `back_timeout`)."""
        lags = []  # this process's own event-loop lag meanwhile: a generator that lags times late
        while time.perf_counter() < kill_at + self.plan.back_timeout:
            if time.perf_counter() > kill_at + settle and not any(r.away for r in self.roamers.values()):
                break
            asked = time.perf_counter()
            await asyncio.sleep(0.1)
            lags.append(time.perf_counter() - asked - 0.1)
        dropped = [r for r in self.roamers.values() if r.dropped_at]
        return {"dropped": len(dropped), "away": sum(r.away for r in dropped), "lags": lags}

    @staticmethod
    def _missing(roamer: Roamer, missing: set[int], due_at: dict[int, float], kill_at: float) -> str:
        """What a client missed and when, beside when it dropped, came back and filled its gap
        (seconds after the kill)."""
        def since(t: float) -> str:
            return f"{t - kill_at:.2f}" if t else "-"
        sent = ", ".join(f"{m}@{due_at[m]:.2f}" for m in sorted(missing)[:4])
        return (f"{roamer.nick} in {roamer.channel}: {len(missing)} missing (id@s after kill: {sent}); "
                f"dropped {since(roamer.dropped_at)}, back {since(roamer.back_at)}, "
                f"filled {since(roamer.filled_at)}")

    def count(self, taken: set[int], kill_at: float) -> dict[str, Any]:
        """Every delivery owed to this worker's clients, against what they saw."""
        owed: dict[str, list[tuple[int, int]]] = {}
        due_at: dict[int, float] = {}
        for msg_id, offset, sender, channel in self.plan.schedule:
            if msg_id in taken:
                owed.setdefault(channel, []).append((msg_id, sender))
                due_at[msg_id] = self.start_at + offset - kill_at
        lost = lost_dropped = lost_away = recovered = expected = 0
        samples: dict[bool, list[str]] = {True: [], False: []}  # by whether the client is away
        for roamer in self.roamers.values():
            due = {m for m, sender in owed.get(roamer.channel, []) if sender != roamer.index}
            missing = due - roamer.received
            expected += len(due)
            lost += len(missing)
            recovered += len(roamer.recovered & due)
            if roamer.dropped_at:
                lost_dropped += len(missing)
            if roamer.away:
                lost_away += len(missing)
            if missing and len(samples[roamer.away]) < 5:
                samples[roamer.away].append(self._missing(roamer, missing, due_at, kill_at))
        dropped = [r for r in self.roamers.values() if r.dropped_at]
        tally = self.tally
        return {
            "expected": expected, "lost": lost, "lost_dropped": lost_dropped, "lost_away": lost_away,
            "recovered": recovered, "history_failures": tally.history_failures, "retries": tally.retries,
            "redrops": tally.redrops,
            "turned_away_first": tally.turned_away_first, "turned_away_back": tally.turned_away_back,
            "dropped": len(dropped),
            "back_s": [r.back_at - kill_at for r in dropped if r.back_at],
            "filled_s": [r.filled_at - kill_at for r in dropped if r.filled_at],
            "attempts": sum(r.attempts for r in dropped),
            "alternate_nicks": sum(1 for r in dropped if r.alternate_nicks),
            "unacked": sum(len(r.written - r.acked) for r in self.roamers.values()),
            "latencies": tally.latencies_ms, "quits": tally.quits, "double_quits": tally.double_quits,
            "first_quit_s": tally.first_quit - kill_at if tally.quits else None,
            "last_quit_s": tally.last_quit - kill_at if tally.quits else None,
            "errors": tally.errors[:5], "closings": dict(tally.closings), "gave_up": dict(tally.gave_up),
            "attempt_steps": tally.attempt_steps,
            "lost_samples": samples[False] + samples[True],
        }

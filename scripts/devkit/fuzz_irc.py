"""Fuzzing what an IRC client controls: Hypothesis strategies for lines and parameters, and a
gateway run in a thread so that a property test can talk to it over a real socket.

What must hold whatever a client sends (`problems` checks it on what comes back):
- every line out is one line: at most 512 bytes with its CRLF (tags aside), no CR, LF or
  NUL inside, valid UTF-8;
- no command fails inside the gateway ("Internal error" is what a handler's exception
  becomes; "Server state unavailable" a Redis error, a refused command among them, which a
  healthy server never gives), and the connection still answers a PING afterwards.

The unit tests run a short, derandomized pass (tests/unit/test_fuzz_irc_*.py); `scripts/fuzz
--target irc` runs the same properties for minutes, seeded, against the embedded server (`run`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

from apps.ircd.commands import COMMANDS
from apps.ircd.protocol import MAX_LINE
from scripts.devkit.ircclient import IrcClient

#: Parameters worth trying beside random text: names the handlers look up, masks, numbers,
#: limits, mode strings, references, and the shapes that break parsers.
INTERESTING = [
    "", "*", "0", "-1", "1", "999999999999999999999", "#", "#fuzz", "#fuzz,#other", "&local",
    "fuzzer", "other", "nobody", "*!*@*", "a!b@c", "+o", "-o+v", "+b", "+k", "key", "+l", "50",
    "+imnst", "-k", "+beI", ":", "::", " ", "a b", "%", "%tcuihsnfdlaor,42", "LATEST", "BEFORE",
    "AROUND", "BETWEEN", "TARGETS", "msgid=1-0", "timestamp=2026-01-01T00:00:00.000Z",
    "timestamp=not-a-time", "+", "-", "LS", "REQ", "END", "LIST", "302", "PLAIN", "=",
    "é" * 300, "x" * 600, "\u202e", "\U0001f986",
]


def commands() -> st.SearchStrategy[str]:
    """Commands a client may send: every one the gateway handles, numerics, unknown words."""
    known = sorted(COMMANDS)
    return st.one_of(st.sampled_from(known), st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True),
                     st.from_regex(r"[0-9]{3}", fullmatch=True))


def _text(clean: bool) -> st.SearchStrategy[str]:
    if clean:  # what a parsed line can carry: no line break, no NUL
        return st.text(st.characters(exclude_characters="\r\n\x00", exclude_categories=["Cs"]),
                       max_size=80)
    return st.text(max_size=600)


def params_lists(*, clean: bool = False) -> st.SearchStrategy[list[str]]:
    """Parameter lists. `clean`: as a parsed line gives them (middle ones non-empty, without
    spaces or a leading colon; no line breaks or NULs anywhere)."""
    if not clean:
        return st.lists(st.one_of(st.sampled_from(INTERESTING), _text(False)), max_size=16)
    middle = st.from_regex(r"[^\s:\x00][^\s\x00]{0,30}", fullmatch=True)
    return st.tuples(st.lists(middle, max_size=8), st.one_of(st.none(), _text(True))).map(
        lambda parts: parts[0] + ([parts[1]] if parts[1] is not None else []))


def sources(*, clean: bool = False) -> st.SearchStrategy[str | None]:
    """A line's source: none, a server name, or `nick!user@host` of any characters."""
    if clean:
        return st.one_of(st.none(), st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,8}![~a-z]{1,9}@[a-z0-9.]{1,20}",
                                                  fullmatch=True))
    return st.one_of(st.none(), st.just("irc.test"), st.text(min_size=1, max_size=100))


def tag_maps() -> st.SearchStrategy[dict[str, str] | None]:
    """Message tags: well-formed keys and any values, or keys of any characters."""
    key = st.one_of(st.from_regex(r"\+?([a-z]{1,8}\.[a-z]{2,4}/)?[a-z-]{1,12}", fullmatch=True),
                    st.text(min_size=1, max_size=20))
    return st.one_of(st.none(), st.dictionaries(key, st.text(max_size=200), max_size=6))


def irc_lines() -> st.SearchStrategy[bytes]:
    """Raw client lines (without CRLF): built from commands, parameters and tags, then bytes
    of any kind spliced in (invalid UTF-8, NULs, CRs), or plain random bytes."""
    structured = st.builds(_join, tag_maps(), st.one_of(st.none(), st.text(max_size=30)), commands(),
                           params_lists())
    spliced = st.tuples(structured, st.binary(max_size=8), st.integers(min_value=0, max_value=600)).map(
        lambda parts: parts[0][:parts[2]] + parts[1] + parts[0][parts[2]:])
    return st.one_of(structured, spliced, st.binary(max_size=700),
                     st.binary(min_size=500, max_size=9000))


def client_lines() -> st.SearchStrategy[list[bytes]]:
    """A registered client's commands: a known command and random parameters, sometimes
    tagged, sometimes with raw bytes spliced in."""
    line = st.builds(_join, st.one_of(st.none(), tag_maps()), st.none(),
                     st.sampled_from(sorted(COMMANDS)), params_lists())
    return st.lists(st.one_of(line, line, line, irc_lines()), min_size=1, max_size=12)


def _join(tags: dict[str, str] | None, source: str | None, command: str, params: list[str]) -> bytes:
    """A line as a client might write it, without the escaping a real client would do."""
    parts = []
    if tags:
        parts.append("@" + ";".join(f"{k}={v}" for k, v in tags.items()))
    if source:
        parts.append(":" + source)
    parts.append(command)
    for i, param in enumerate(params):
        last = i == len(params) - 1
        parts.append(":" + param if last and (not param or " " in param or param.startswith(":"))
                     else param)
    return " ".join(parts).encode("utf-8", "surrogatepass").replace(b"\r", b"").replace(b"\n", b"")


def problems(raw_lines: list[bytes]) -> list[str]:
    """What is wrong with lines the gateway sent (each as read, without its CRLF)."""
    found = []
    for raw in raw_lines:
        body = raw.split(b" ", 1)[1] if raw.startswith(b"@") and b" " in raw else raw
        if len(body) + 2 > MAX_LINE:
            found.append(f"{len(body) + 2}-byte line: {raw[:120]!r}")
        if set(raw) & {0x0D, 0x0A, 0x00}:
            found.append(f"CR, LF or NUL inside a line: {raw[:120]!r}")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            found.append(f"not UTF-8: {raw[:120]!r}")
            continue
        words = text.split(" ")
        while words and words[0][:1] == "@":  # tags (labeled-response) before the source
            words.pop(0)
        if words[:2] == [":irc.test", "400"] and text.endswith(":Internal error"):
            found.append(f"a handler failed: {text[:200]}")
        if words[:2] == [":irc.test", "400"] and text.endswith(":Server state unavailable; try again"):
            found.append(f"a Redis command failed (refused by the ACL?): {text[:200]}")
    return found


def command_of(raw: bytes) -> bytes:
    """The command word of a raw client line, tags and source skipped (upper case)."""
    words = [w for w in raw.split(b" ") if w]
    while words and words[0][:1] in (b"@", b":"):
        words.pop(0)
    return words[0].upper() if words else b""


@dataclass
class FuzzGateway:
    """A gateway in a thread of its own, on the Redis `redis_factory` gives (fakeredis for the
    unit tests, the embedded server for the long run), listening on a free loopback port."""

    redis_factory: Callable[[], Any]
    overrides: dict[str, Any] = field(default_factory=dict)
    port: int = 0
    #: Errors the gateway logged (a failed handler, a failed write, a task left pending).
    errors: list[str] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _stop: asyncio.Event | None = None

    def __enter__(self) -> FuzzGateway:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True, name="fuzz-gateway")
        self._thread.start()
        if not ready.wait(20) or not self.port:
            raise RuntimeError("the gateway did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(20)

    def _run(self, ready: threading.Event) -> None:
        collector = _ErrorCollector(self.errors)
        loggers = [logging.getLogger("canaduck"), logging.getLogger("asyncio")]
        for logger in loggers:
            logger.addHandler(collector)
        try:
            asyncio.run(self._serve(ready))
        finally:
            for logger in loggers:
                logger.removeHandler(collector)

    async def _serve(self, ready: threading.Event) -> None:
        from apps.ircd.server import IrcServer
        from apps.ircd.settings import IrcdSettings

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        redis = self.redis_factory()
        settings = IrcdSettings(instance_id="ircd-fuzz", irc_host="127.0.0.1", irc_port=0,
                                server_name="irc.test", flood_lines=1_000_000,
                                **self.overrides)
        gateway = IrcServer(settings, redis)
        await gateway.start()
        self.port = gateway.ports["irc"]
        ready.set()
        try:
            await self._stop.wait()
        finally:
            await gateway.stop()
            with contextlib.suppress(Exception):
                await redis.aclose()


class _ErrorCollector(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.ERROR)
        self._into = into

    def emit(self, record: logging.LogRecord) -> None:
        self._into.append(self.format(record))


#: The capabilities that change what a client is sent.
CAPS = (b"message-tags server-time echo-message batch labeled-response multi-prefix "
        b"userhost-in-names extended-join account-tag away-notify cap-notify setname "
        b"extended-monitor draft/chathistory")


@contextlib.contextmanager
def registered(port: int, nick: str, *, caps: bool = True) -> Iterator[IrcClient]:
    """A client registered as `nick` (with every capability that changes replies, or none),
    in #fuzz."""
    client = IrcClient(port, timeout=10)
    try:
        client.register(nick, CAPS.decode() if caps else "")
        client.send("JOIN #fuzz")
        client.sync()
        yield client
    finally:
        client.close()


def exercise(port: int, lines: list[bytes], nick: str) -> list[str]:
    """Send `lines` from a registered client while another one (no capabilities) watches
    #fuzz, and say what went wrong for either (nothing: [])."""
    # A QUIT ends the connection as it should: the PING after it could not be answered.
    lines = [line for line in lines if command_of(line) != b"QUIT"]
    with registered(port, nick, caps=True) as client, \
            registered(port, f"w{nick}", caps=False) as watcher:
        client.send(*lines)
        try:
            received = client.sync_raw()
            seen = watcher.sync_raw()
        except (EOFError, TimeoutError, OSError) as exc:
            return [f"no answer to a PING after the lines: {exc}"]
        return problems(received) + problems(seen)


@dataclass
class Finding:
    """A property that did not hold, and the smallest input Hypothesis found for it."""

    property: str
    problem: str


@dataclass
class Report:
    examples: int = 0
    rounds: int = 0
    findings: list[Finding] = field(default_factory=list)


#: The properties of a long run: name -> (strategy, check raising AssertionError).
def _properties(port: int, nicks: Iterator[int]) -> dict[str, tuple[Any, Callable[..., None]]]:
    from apps.ircd.protocol import LineError, format_line, parse

    def parse_line(raw: bytes) -> None:
        try:
            parse(raw)
        except LineError as exc:
            assert exc.numeric, f"a LineError without a numeric for {raw[:80]!r}"

    def format_any(args: tuple[str, list[str], str | None, dict[str, str] | None]) -> None:
        command, params, source, tags = args
        line = format_line(command, params, source=source, tags=tags)
        assert problems([line.encode()]) == [], problems([line.encode()])

    def handle(lines: list[bytes]) -> None:
        found = exercise(port, lines, f"fz{next(nicks)}")
        assert found == [], found

    return {
        "parse": (irc_lines(), parse_line),
        "format": (st.tuples(commands(), params_lists(), sources(), tag_maps()), format_any),
        "handlers": (client_lines(), handle),
    }


def _counting(check: Callable[[Any], None], counted: list[int]) -> Callable[[Any], None]:
    """`check`, counting its calls in `counted[0]` (Hypothesis takes no function with defaults)."""

    def counting(value: Any) -> None:
        counted[0] += 1
        check(value)

    return counting


def run(*, seconds: float, seed: int, examples: int, redis_factory: Callable[[], Any]) -> Report:
    """Rounds of the three properties (parsing any bytes, formatting anything, every handler
    over a real socket to a gateway on `redis_factory`'s Redis), a new seed each round, until
    `seconds` have passed; each failure once, with its smallest example."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    report = Report()
    deadline = time.monotonic() + seconds
    with FuzzGateway(redis_factory) as gateway:
        properties = _properties(gateway.port, itertools.count())
        seen: set[tuple[str, str]] = set()
        round_seed = seed
        while time.monotonic() < deadline:
            for name, (strategy, check) in properties.items():
                counted = [0]
                test = settings(max_examples=examples, deadline=None, database=None,
                                phases=[Phase.generate, Phase.shrink],
                                suppress_health_check=list(HealthCheck))(
                    given(strategy)(_counting(check, counted)))
                try:
                    hypothesis_seed(round_seed)(test)()
                except AssertionError as exc:
                    problem = str(exc).splitlines()[0][:300]
                    if (name, problem) not in seen:
                        seen.add((name, problem))
                        report.findings.append(Finding(name, f"{problem} (seed {round_seed})"))
                report.examples += counted[0]
                errors = [e for e in gateway.errors if e]
                if errors:
                    report.findings.append(Finding(name, f"the gateway logged: {errors[0][:300]}"))
                    gateway.errors.clear()
                if time.monotonic() >= deadline:
                    break
            report.rounds += 1
            round_seed += 1
    return report

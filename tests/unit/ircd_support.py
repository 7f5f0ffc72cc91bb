"""An in-process gateway on fakeredis and a line-oriented test client for it."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from typing import TypedDict, Unpack

import fakeredis
import httpx

from apps.chat.casemap import casefold
from apps.ircd.server import IrcServer
from apps.ircd.settings import IrcdSettings


class Clock:
    """An injectable clock the tests move by hand."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class GatewaySettings(TypedDict, total=False):
    """The gateway's settings (IrcdSettings) that tests set, a list as its environment's
    comma-separated text. Spelt out because the settings ignore a name they do not know: a
    test with a misspelt one would run on the default."""

    account_registration_before_connect: bool
    always_on: bool
    always_on_expire: float
    cleanup_retry: float
    cleanup_retry_cap: float
    device_limit: int
    flood_lines: int
    flood_window: float
    history_events: str
    irc_admission_lag: float
    irc_cleanups_at_once: int
    irc_max_connections: int
    irc_opers: str
    irc_password: str
    irc_proxy_port: int
    irc_registrations_at_once: int
    irc_registrations_waiting: int
    irc_shared_port: int
    irc_tls_port: int
    max_channels_per_user: int
    max_connections_per_ip: int
    max_list_entries: int
    ping_interval: float
    ping_timeout: float
    presence_delay: float
    presence_wait_members: int
    registration_timeout: float
    scan_slice: int
    sts: bool
    sts_duration: int
    sts_hostnames: str
    sts_port: int
    sts_preload: bool
    tls_cert: str
    tls_key: str
    trusted_proxies: str
    who_limit: int


class GatewayOptions(GatewaySettings, total=False):
    """`running_gateway`'s settings: the users service's address too, which the helpers
    that serve one set themselves."""

    users_url: str


class LineClient:
    """A raw IRC client: send lines, read lines until a PONG syncs (as irctest does)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._sync = itertools.count()

    async def send(self, *lines: str | bytes) -> None:
        for line in lines:
            data = line if isinstance(line, bytes) else line.encode()
            self.writer.write(data + b"\r\n")
        await self.writer.drain()

    async def sync(self, timeout: float = 3.0) -> list[str]:
        """Every line received until the answer to a PING of ours."""
        token = f"sync{next(self._sync)}"
        await self.send(f"PING {token}")
        lines: list[str] = []
        while True:
            raw = await asyncio.wait_for(self.reader.readline(), timeout)
            if not raw:
                return lines
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line.split(" ")[-1].lstrip(":") == token and " PONG " in line:
                return lines
            lines.append(line)

    async def sync_until(self, wanted: Callable[[str], bool], rounds: int = 20) -> list[str]:
        """Lines of up to `rounds` syncs, stopping once one is `wanted`: what another replica
        relays comes later than a PING's answer (fakeredis delivers pub/sub by polling)."""
        lines: list[str] = []
        for _ in range(rounds):
            lines += await self.sync()
            if any(wanted(line) for line in lines):
                break
        return lines

    async def sync_closed(self, timeout: float = 3.0) -> list[str]:
        """Every line received until the server closes the connection (it does once it has
        freed the connection's state)."""
        lines = []
        while raw := await asyncio.wait_for(self.reader.readline(), timeout):
            lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
        return lines

    async def register(self, nick: str, *, caps: str = "") -> list[str]:
        if caps:
            await self.send("CAP LS 302", f"CAP REQ :{caps}")
        await self.send(f"NICK {nick}", f"USER {nick} 0 * :Real {nick}")
        if caps:
            await self.send("CAP END")
        return await self.sync()

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


class AtOnce:
    """Counts how many calls of `owner`'s async method `name` run at once (the `most`): each
    call, put in its place, waits a moment before it runs, so that calls made together overlap."""

    def __init__(self, owner: object, name: str) -> None:
        self.running = self.most = 0
        step = getattr(owner, name)

        async def counted(*args: object) -> object:
            self.running += 1
            self.most = max(self.most, self.running)
            try:
                await asyncio.sleep(0.01)
                return await step(*args)
            finally:
                self.running -= 1

        setattr(owner, name, counted)


def commands(lines: list[str]) -> list[str]:
    """The command (or numeric) of each line, tags and source left out."""
    out = []
    for line in lines:
        words = [w for w in line.split(" ") if w]
        while words and words[0][0] in "@:":
            words.pop(0)
        out.append(words[0] if words else "")
    return out


@contextlib.asynccontextmanager
async def running_gateway(server: fakeredis.FakeServer | None = None, *, instance: str = "ircd-test",
                          clock: Clock | None = None, loop_lag: Callable[[], float] = lambda: 0.0,
                          **overrides: Unpack[GatewayOptions]) -> AsyncIterator[IrcServer]:
    """A gateway listening on a free loopback port, on fakeredis (shared when `server` given);
    `loop_lag` is what its door reads as the event loop's lag (apps/ircd/listeners.py)."""
    fake = server or fakeredis.FakeServer()
    redis = fakeredis.FakeAsyncRedis(server=fake)
    settings = IrcdSettings(instance_id=instance, irc_host="127.0.0.1", irc_port=0,
                            server_name="irc.test", **overrides)
    gateway = IrcServer(settings, redis, clock=clock or Clock(), loop_lag=loop_lag)
    await gateway.start()
    try:
        yield gateway
    finally:
        await gateway.stop()
        await redis.aclose()


async def forget_everything(doomed: IrcServer) -> None:
    """As if killed: the replica's clients are forgotten, none is cleaned up when it stops
    (nor waited for: a killed process does not wait for its connections to end)."""
    doomed.clients.clear()
    doomed.roster.connections.clear()
    doomed.listeners._tasks.clear()
    await doomed.bus.stop()


async def sweep_dead(alive: IrcServer, dead: str) -> None:
    """`alive`'s sweeper, with only `alive` in the directory, sweeps replica `dead` (missing
    from it twice in a row)."""
    from apps.ircd.sweeper import Sweeper

    async def directory() -> set[str]:
        return {alive.instance}

    sweeper = Sweeper(alive.ctx, directory, 60)
    await alive.store.add_instance(dead, 0)
    await sweeper.sweep_once()
    assert await sweeper.sweep_once() == {dead}


async def connect(gateway: IrcServer, port_name: str = "irc") -> LineClient:
    reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports[port_name])
    return LineClient(reader, writer)


async def serve_accounts(gateway: IrcServer, accounts: dict[str, str],
                         always_on: dict[str, bool] | None = None) -> IrcServer:
    """`gateway` with `accounts` (name -> password): each one's record in Redis as the users
    service keeps it (its nick reserved: the gateway asks whether it exists), and the users
    service's routes the gateway calls answered from them (`users_service`)."""
    for name in accounts:
        await gateway.store.redis.hset(gateway.store.keys.account(casefold(name)),
                                       mapping={"name": name, "password": "(a hash)", "created": "0"})
    gateway.accounts.http = users_service(accounts, always_on)
    return gateway


def users_service(accounts: dict[str, str], always_on: dict[str, bool] | None = None) -> httpx.AsyncClient:
    """The users service's internal routes the gateway calls (SASL's check, an account's
    lookup with its always-on choice from `always_on` when it made one), answered from
    `accounts` (name -> password)."""

    def owner(name: str) -> str | None:
        return next((a for a in accounts if a.lower() == name.lower()), None)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/internal/verify":
            body = json.loads(request.content)
            name = owner(body["account"])
            if name and accounts[name] == body["password"]:
                return httpx.Response(200, json={"account": name})
            return httpx.Response(401, json={"error": "invalid credentials"})
        found = owner(request.url.path.rsplit("/", 1)[1])
        if found is None:
            return httpx.Response(404, json={})
        return httpx.Response(200, json={"account": found, "always_on": (always_on or {}).get(found)})

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


def plain(account: str, password: str) -> str:
    return base64.b64encode(f"{account}\0{account}\0{password}".encode()).decode()

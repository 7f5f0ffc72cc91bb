"""Chaos: a mixed request loop through Caddy while faults are injected into a running stack
(the local one or a compose project), and the report of what each fault did.

`scripts/chaos` runs it from the command line; `tests/e2e/test_chaos_stack.py` runs a short
one with the same assertions. See docs/reliability.md for what the figures mean.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

import redis
from scripts.devkit import manifest
from scripts.devkit.localstack import LocalStack
from scripts.devkit.processes import ROOT
from scripts.devkit.stats import percentile_or

#: Replicas a fault may hit: each sits behind Caddy with a sibling that answers in its place.
VICTIMS = ("calc-1", "calc-2", "mult-a", "mult-b", "ping", "pong")
CITIES = ("Rodez", "Paris", "Lyon", "Brest", "Nantes", "Lille", "Nice", "Dijon")


# --- the request loop -------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """One kind of request of the loop and what a good answer to it is."""

    name: str
    method: str
    needs_redis: bool  # False: it must keep answering while Redis is down
    request: Callable[[int], tuple[str, Any]]  # n -> (path, JSON body or None)
    good: Callable[[int, httpx.Response], bool]


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


#: The password of the accounts the loop registers (they are checked by logging in).
PASSWORD = "chaos-password-1"


def routes(run_id: str, chat: bool) -> list[Route]:
    """The mixed loop: every public route a user drives, reads and writes; with `chat`, the
    chat's account registration too."""
    mixed = [
        Route("GET /fullinfo", "GET", False, lambda n: (f"/fullinfo?city={CITIES[n % len(CITIES)]}", None),
              lambda n, r: r.status_code == 200 and (_json(r) or {}).get("city") == CITIES[n % len(CITIES)]),
        Route("GET /sum", "GET", False, lambda n: (f"/sum?op1={n}&op2=2", None),
              lambda n, r: r.status_code == 200 and (_json(r) or {}).get("result") == n + 2),
        Route("GET /mult", "GET", False, lambda n: (f"/mult?op1={n}&op2=3", None),
              lambda n, r: r.status_code == 200 and (_json(r) or {}).get("result") == n * 3),
        Route("GET /rally", "GET", True, lambda n: ("/rally", None),
              lambda n, r: r.status_code == 200 and "players" in (_json(r) or {})),
        Route("POST /messages", "POST", True,
              lambda n: ("/messages", {"to": "directory", "kind": "note", "body": {"n": n}}),
              lambda n, r: r.status_code == 202),
        Route("POST /jokes", "POST", True,
              lambda n: ("/jokes", {"joke": f"Chaos {run_id}: blague {n}."}),
              lambda n, r: r.status_code == 201 and bool((_json(r) or {}).get("id"))),
    ]
    if chat:
        mixed.append(Route("POST /api/users/register", "POST", True,
                           lambda n: ("/api/users/register",
                                      {"account": f"c{run_id}{n}", "password": PASSWORD}),
                           lambda n, r: r.status_code == 201))
    return mixed


@dataclass(frozen=True)
class Sample:
    """One request: when it ran (monotonic, s), its answer, and whether that was a good one."""

    route: str
    started: float
    ended: float
    status: int  # 0: no HTTP answer (refused, reset, timed out)
    ok: bool
    proper_503: bool  # a JSON 503 with Retry-After: the right answer while Redis is down
    detail: str = ""  # for a failure: the error, or the start of the body, to say why
    cut: bool = False  # the status line and headers arrived, then the connection broke mid-body

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    """`workers` loops over the routes, recording every request, until stopped."""

    base_url: str
    routes: list[Route]
    workers: int
    pause: float
    timeout: float
    samples: list[Sample] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)  # joke id -> text, acknowledged
    accounts: list[str] = field(default_factory=list)  # registered, acknowledged
    _stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        turn = itertools.count()
        limits = httpx.Limits(max_connections=self.workers, max_keepalive_connections=self.workers)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=self.timeout, limits=limits) as client:
            await asyncio.gather(*(self._worker(client, turn) for _ in range(self.workers)))

    def stop(self) -> None:
        self._stop.set()

    async def _worker(self, client: httpx.AsyncClient, turn: itertools.count[int]) -> None:
        while not self._stop.is_set():
            n = next(turn)
            route = self.routes[n % len(self.routes)]
            path, body = route.request(n)
            started = time.monotonic()
            status = 0  # until the status line arrives
            try:
                async with client.stream(route.method, path, json=body) as response:
                    status = response.status_code
                    await response.aread()
            except httpx.HTTPError as error:
                # A body that stopped coming (a timeout) is a hang, not a connection cut.
                cut = status != 0 and not isinstance(error, httpx.TimeoutException)
                self.samples.append(Sample(route.name, started, time.monotonic(), status, False, False,
                                           f"{type(error).__name__}: {error}"[:120], cut=cut))
            else:
                ok = route.good(n, response)
                proper = (response.status_code == 503 and "retry-after" in response.headers
                          and isinstance(_json(response), dict))
                detail = "" if ok else f"{response.status_code} {response.text[:100]!r}"
                self.samples.append(Sample(route.name, started, time.monotonic(), response.status_code,
                                           ok, proper, detail))
                if ok and route.name == "POST /jokes":
                    self.written[response.json()["id"]] = body["joke"]
                elif ok and route.name == "POST /api/users/register":
                    self.accounts.append(body["account"])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.pause)


# --- where the faults land: the local stack or compose ------------------------------------------

class Target(Protocol):
    """A running stack the faults can be injected into."""

    base_url: str

    def kill_redis(self) -> None: ...
    def redis_answers(self) -> bool: ...
    def kill(self, instance: str) -> None: ...
    def answers(self, instance: str) -> bool: ...
    def freeze(self, instance: str) -> None: ...
    def thaw(self, instance: str) -> None: ...


class LocalTarget:
    """The local stack (`scripts/up`): faults are signals to its processes."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack
        self.base_url = stack.url
        self.ports = {i.name: i.port for i in manifest.plan(manifest.load(), stack.port_base)}
        self._probe = redis.Redis(port=stack.redis_port, username="inspector",
                                  password="dev-only-inspector", socket_timeout=0.5,
                                  socket_connect_timeout=0.5)

    def kill_redis(self) -> None:
        os.kill(self.stack.service_pid("redis"), signal.SIGKILL)

    def redis_answers(self) -> bool:
        try:
            return bool(self._probe.ping())
        except redis.RedisError:
            return False

    def kill(self, instance: str) -> None:
        os.kill(self.stack.service_pid(instance), signal.SIGKILL)

    def answers(self, instance: str) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.ports[instance]}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def freeze(self, instance: str) -> None:
        os.kill(self.stack.service_pid(instance), signal.SIGSTOP)

    def thaw(self, instance: str) -> None:
        os.kill(self.stack.service_pid(instance), signal.SIGCONT)


class ComposeTarget:
    """A `docker compose` project: a kill is a SIGKILL inside the container (a crash, which the
    restart policy answers; `docker kill` would count as a deliberate stop), a freeze is
    `docker pause` (the cgroup freezer: SIGSTOP would stop only the init process).

    An instance is named as the local runner names it: a service (`ping`, `mult-a`) or a
    replica of a scaled one (`calc-2`, compose's container number 2 of `calc`). Faults go to
    that one container, found by compose's labels; `docker compose exec` and `pause` take a
    service, and would miss a replica (or pause all of them)."""

    def __init__(self, project: str, http_port: int) -> None:
        self.project = project
        self.base_url = f"http://127.0.0.1:{http_port}"
        self.env = {**os.environ, "CANADUCK_HTTP_PORT": str(http_port)}

    def compose(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.docker("compose", "-p", self.project, *args, timeout=timeout)

    def docker(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", *args], cwd=ROOT, env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)

    def _find(self, service: str, number: str) -> str:
        labels = (f"com.docker.compose.project={self.project}", f"com.docker.compose.service={service}",
                  f"com.docker.compose.container-number={number}")
        found = self.docker("ps", "-aq", *(arg for label in labels for arg in ("--filter", f"label={label}")))
        return found.stdout.split()[0] if found.stdout.split() else ""

    def container(self, instance: str) -> str:
        """The id of the container behind `instance` (a service's first, or a replica)."""
        head, _, number = instance.rpartition("-")
        found = self._find(instance, "1")
        if not found and head and number.isdigit():
            found = self._find(head, number)
        if not found:
            raise LookupError(f"no container for {instance!r} in compose project {self.project}")
        return found

    def _exec(self, instance: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.docker("exec", "-u", "0", self.container(instance), *command, timeout=timeout)

    def _crash(self, instance: str) -> None:
        self._exec(instance, "sh", "-c", "kill -KILL -1")

    def kill_redis(self) -> None:
        self._crash("redis")

    def redis_answers(self) -> bool:
        password = os.environ.get("REDIS_PASSWORD_INSPECTOR") or "dev-only-inspector"
        try:
            done = self._exec("redis", "redis-cli", "--user", "inspector", "--pass", password,
                              "--no-auth-warning", "ping", timeout=5)
        except subprocess.TimeoutExpired:
            return False
        return done.stdout.strip() == "PONG"

    def kill(self, instance: str) -> None:
        self._crash(instance)

    def answers(self, instance: str) -> bool:
        probe = "exec 3<>/dev/tcp/127.0.0.1/5000 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 " \
                "&& read -r -t 5 status <&3 && [[ $status == *' 200'* ]]"
        try:
            return self._exec(instance, "bash", "-c", probe, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def freeze(self, instance: str) -> None:
        self.docker("pause", self.container(instance))

    def thaw(self, instance: str) -> None:
        self.docker("unpause", self.container(instance))


# --- the faults -------------------------------------------------------------------------------

@dataclass
class Fault:
    """One injected fault: what, on whom, when it began and when it was over (monotonic, s)."""

    kind: str  # "kill redis", "kill", "freeze"
    victim: str
    began: float
    over: float | None = None
    struck: float | None = None  # when the signal had been sent (a compose kill takes a while)
    recovery: float = 0.0
    failures: int = 0

    @property
    def redis(self) -> bool:
        return self.kind == "kill redis"


async def wait_for(probe: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Poll a blocking `probe` (in a thread) until true; False after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await asyncio.to_thread(probe):
            return True
        await asyncio.sleep(interval)
    return False


async def inject(target: Target, kind: str, victim: str, freeze_for: float) -> Fault:
    """Inject one fault and wait until it is over (Redis or the replica answering again)."""
    fault = Fault(kind, victim, time.monotonic())
    if kind == "kill redis":
        await asyncio.to_thread(target.kill_redis)
        await asyncio.sleep(0.2)  # let the old process be gone before probing for the new one
        await wait_for(target.redis_answers, 60)
    elif kind == "kill":
        await asyncio.to_thread(target.kill, victim)
        fault.struck = time.monotonic()
        await asyncio.sleep(0.2)
        await wait_for(lambda: target.answers(victim), 60)
    else:
        await asyncio.to_thread(target.freeze, victim)
        await asyncio.sleep(freeze_for)
        await asyncio.to_thread(target.thaw, victim)
    fault.over = time.monotonic()
    return fault


async def chaos(target: Target, *, duration: float, every: float, warmup: float, settle: float,
                freeze_for: float, workers: int, pause: float, timeout: float, seed: int,
                victims: tuple[str, ...] = VICTIMS) -> Report:
    """Run the load for `duration` s with a fault every `every` s (at least one of each kind),
    then check that every write acknowledged is still there."""
    rng = random.Random(seed)
    chat = await asyncio.to_thread(has_chat, target.base_url)
    load = Load(target.base_url, routes(uuid.uuid4().hex[:6], chat), workers, pause, timeout)
    began = time.monotonic()
    running = asyncio.create_task(load.run())
    faults: list[Fault] = []
    kinds = itertools.cycle(("kill redis", "kill", "freeze"))
    await asyncio.sleep(warmup)
    # At least one fault of each kind, even when a slow machine makes that outlast `duration`.
    while time.monotonic() - began < duration - settle or len(faults) < 3:
        kind = next(kinds)
        victim = "redis" if kind == "kill redis" else rng.choice(victims)
        next_at = time.monotonic() + every
        faults.append(await inject(target, kind, victim, freeze_for))
        await asyncio.sleep(max(0.0, min(next_at, began + duration - settle) - time.monotonic()))
    await asyncio.sleep(max(settle, began + duration - time.monotonic()))
    load.stop()
    await running
    lost = await asyncio.to_thread(missing_writes, target.base_url, load.written, load.accounts)
    return Report(began, time.monotonic(), load.samples, faults, len(load.written) + len(load.accounts), lost,
                  [r.name for r in load.routes], {r.name for r in load.routes if r.needs_redis})


def missing_writes(base_url: str, jokes: dict[str, str], accounts: list[str]) -> list[str]:
    """The acknowledged writes that cannot be read back: jokes by id (same text), accounts by
    logging in."""
    lost = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for id_, text in jokes.items():
            response = client.get(f"/jokes/{id_}")
            if response.status_code != 200 or response.json().get("joke") != text:
                lost.append(f"joke {id_}")
        for account in accounts:
            login = client.post("/api/users/login", json={"account": account, "password": PASSWORD})
            if login.status_code != 200:
                lost.append(f"account {account}")
    return lost


def has_chat(base_url: str) -> bool:
    """True when the stack routes the chat's accounts (the users service is there)."""
    try:
        return httpx.get(f"{base_url}/api/users/rules", timeout=10).status_code == 200
    except httpx.HTTPError:
        return False


# --- the report -------------------------------------------------------------------------------

def ms(seconds: list[float], pct: float) -> float:
    return percentile_or(seconds, pct) * 1000


@dataclass
class Report:
    began: float
    ended: float
    samples: list[Sample]
    faults: list[Fault]
    written: int
    lost: list[str]
    route_names: list[str]
    need_redis: set[str]

    def __post_init__(self) -> None:
        outages = [(f.began, f.over or self.ended) for f in self.faults if f.redis]
        self.in_outage = [any(s.started <= end and s.ended >= start for start, end in outages)
                          for s in self.samples]
        # A response whose headers had already gone out through Caddy when the replica writing
        # it was SIGKILLed is lost in flight, like a pub/sub message at a crash: no proxy can
        # replay a request once it has forwarded part of the answer (Caddy aborts the stream).
        # It is counted apart, and only when it was in flight at that very kill.
        kills = [(f.began, f.struck or f.over or self.ended) for f in self.faults if f.kind == "kill"]
        self.cut_by_crash = [s.cut and any(s.started <= struck and s.ended >= began
                                           for began, struck in kills) for s in self.samples]
        for i, fault in enumerate(self.faults):
            until = self.faults[i + 1].began if i + 1 < len(self.faults) else self.ended
            over = fault.over or self.ended
            # A failure overlapping a Redis outage belongs to that outage, not to a fault
            # before it whose window it happened to start in.
            failed = [s for s, out in zip(self.samples, self.in_outage, strict=True)
                      if not s.ok and fault.began <= s.started < until and (fault.redis or not out)]
            fault.failures = len(failed)
            fault.recovery = max([0.0, *(s.ended - over for s in failed)])

    def _counts(self, i: int) -> bool:
        """Whether the i-th sample is a failure that counts against the stack outside an outage."""
        return not self.samples[i].ok and not self.in_outage[i] and not self.cut_by_crash[i]

    @property
    def failed(self) -> int:
        return sum(map(self._counts, range(len(self.samples))))

    @property
    def cut(self) -> int:
        """Responses cut mid-body by the SIGKILL of the replica writing them (not in `failed`)."""
        return sum(self.cut_by_crash)

    @property
    def failed_in_outage(self) -> int:
        return sum(1 for s, out in zip(self.samples, self.in_outage, strict=True) if not s.ok and out)

    @property
    def bad_outage_answers(self) -> int:
        """Failures during an outage that were not a route needing Redis saying so properly."""
        return sum(1 for s, out in zip(self.samples, self.in_outage, strict=True)
                   if out and not s.ok and not (s.route in self.need_redis and s.proper_503))

    @property
    def max_recovery(self) -> float:
        return max([0.0, *(f.recovery for f in self.faults)])

    def t(self, moment: float) -> float:
        return moment - self.began

    def render(self, window: float) -> str:
        lines = ["faults (s since start; recovery: last failure after the fault was over)",
                 f"  {'at':>6}  {'fault':<12} {'victim':<12} {'over at':>7}  {'down s':>6}  "
                 f"{'failures':>8}  {'recovery s':>10}"]
        for f in self.faults:
            over = f.over or self.ended
            lines.append(f"  {self.t(f.began):6.1f}  {f.kind:<12} {f.victim:<12} {self.t(over):7.1f}  "
                         f"{over - f.began:6.1f}  {f.failures:8d}  {f.recovery:10.2f}")
        lines += ["", f"timeline ({window:g} s windows: requests, failed, p99 ms; * = Redis down)"]
        windows: dict[int, list[int]] = defaultdict(list)
        for i, s in enumerate(self.samples):
            windows[int(self.t(s.started) // window)].append(i)
        for w in sorted(windows):
            picked = [self.samples[i] for i in windows[w]]
            down = any(self.in_outage[i] for i in windows[w])
            failed = Counter(s.route for s in picked if not s.ok)
            what = ", ".join(f"{route} {n}" for route, n in failed.items())
            events = "; ".join(f"{f.kind} {f.victim}" for f in self.faults
                               if w * window <= self.t(f.began) < (w + 1) * window)
            lines.append(f"  {w * window:5.0f}-{(w + 1) * window:<5.0f}{'*' if down else ' '} "
                         f"{len(picked):5d} {sum(not s.ok for s in picked):4d} "
                         f"{ms([s.seconds for s in picked], 99):7.0f}  {events}"
                         + (f"  [failed: {what}]" if what else ""))
        lines += ["", f"  {'route':<26} {'requests':>8} {'failed':>6} {'in outage':>9} "
                      f"{'JSON 503':>8} {'cut':>4} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"]
        for name in self.route_names:
            mine = [i for i, s in enumerate(self.samples) if s.route == name]
            times = [self.samples[i].seconds for i in mine]
            lines.append(f"  {name:<26} {len(mine):8d} {sum(map(self._counts, mine)):6d} "
                         f"{sum(not self.samples[i].ok and self.in_outage[i] for i in mine):9d} "
                         f"{sum(self.samples[i].proper_503 and self.in_outage[i] for i in mine):8d} "
                         f"{sum(self.cut_by_crash[i] for i in mine):4d} {ms(times, 50):7.1f} "
                         f"{ms(times, 99):7.1f} {ms(times, 100):7.1f}")
        outside = [i for i, s in enumerate(self.samples) if not s.ok and not self.in_outage[i]]
        if outside:
            lines += ["", "failures outside a Redis outage (first 10: s since start, route, answer; "
                          "cut = cut mid-body by the kill of the replica writing it)"]
            lines += [f"  {self.t(self.samples[i].started):6.1f}  {self.samples[i].route:<26} "
                      f"{'cut ' if self.cut_by_crash[i] else ''}{self.samples[i].detail}"
                      for i in outside[:10]]
        lines += ["", f"writes acknowledged (jokes, accounts): {self.written}; "
                      f"missing afterwards: {len(self.lost)}"
                  + (f" ({', '.join(self.lost[:5])})" if self.lost else ""),
                  f"failures during an outage that were not a JSON 503 with Retry-After from a route "
                  f"that needs Redis: {self.bad_outage_answers}"]
        return "\n".join(lines)

    def result_line(self) -> str:
        return (f"RESULT requests={len(self.samples)} failed={self.failed} "
                f"failed_during_redis_outage={self.failed_in_outage} "
                f"max_recovery_s={self.max_recovery:.2f} data_lost={len(self.lost)} cut_by_crash={self.cut}")

    def met(self, max_recovery: float) -> bool:
        return (not self.lost and self.failed == 0 and self.bad_outage_answers == 0
                and self.max_recovery <= max_recovery)

    def as_json(self) -> dict[str, Any]:
        return {"requests": len(self.samples), "failed": self.failed, "cut_by_crash": self.cut,
                "failed_during_redis_outage": self.failed_in_outage,
                "bad_outage_answers": self.bad_outage_answers, "max_recovery_s": self.max_recovery,
                "data_lost": len(self.lost), "written": self.written,
                "faults": [{"kind": f.kind, "victim": f.victim, "failures": f.failures,
                            "recovery_s": round(f.recovery, 3)} for f in self.faults]}

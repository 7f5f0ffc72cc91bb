"""The local stack (`scripts/up`) started in the background on free ports, and driven.

Tests, benchmarks and demos use it the way a user runs the stack; it can hold a service down
(SIGSTOP its restart loop, SIGKILL the service) and, on stop, records and kills whatever was
left running.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from scripts.devkit.processes import ROOT, free_port, free_port_block, scratch_dir
from scripts.devkit.waiting import NotMet, wait_until


class LocalStack:
    """`scripts/up` in the background on free ports, the way a user runs it.

    `redis_url` makes it use that server instead of the embedded one (REDIS_URL mode);
    `cluster` runs a Valkey Cluster instead (`scripts/up --cluster`: 3 primaries, 3 replicas,
    on `redis_port` and the 11 ports after it); `services` runs only those and what they need
    (`scripts/up ping pong`).
    """

    def __init__(self, redis_url: str = "", *, cluster: bool = False, services: Sequence[str] = (),
                 **env: str) -> None:
        self.services = list(services)
        self.http_port = free_port()
        self.port_base = free_port_block(100)
        self.cluster = cluster
        self.redis_port = free_port_block(12) + 1 if cluster else free_port()
        self.env = {
            **os.environ,
            "CANADUCK_HTTP_PORT": str(self.http_port),
            "CANADUCK_PORT_BASE": str(self.port_base),
            "CANADUCK_REDIS_PORT": str(self.redis_port),
            **env,
        }
        if cluster:
            self.env["CANADUCK_CLUSTER"] = "1"
        if redis_url:
            self.env["REDIS_URL"] = redis_url
        else:
            self.env.pop("REDIS_URL", None)
        self.log_path = scratch_dir("stack") / "stack.log"
        # The stack's own run directory (Redis's append-only file), removed with the rest.
        self.run_dir = self.log_path.parent / "run"
        self.env["CANADUCK_RUN_DIR"] = env.get("CANADUCK_RUN_DIR", str(self.run_dir))
        self.proc: subprocess.Popen | None = None
        self.leaked: list[int] = []
        self.ready_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=10, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def start(self, timeout: float = 90.0) -> LocalStack:
        with open(self.log_path, "wb") as log_file:
            self.proc = subprocess.Popen(
                [str(ROOT / "scripts/up"), *self.services], env=self.env, cwd=ROOT, stdout=log_file,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        started = time.monotonic()
        proc = self.proc
        try:
            wait_until(lambda: "canaduck: ready in" in self.log() or proc.poll() is not None,
                       timeout=timeout, interval=0.2)
        except NotMet:
            self.stop()
            raise AssertionError(f"stack not ready in {timeout} s:\n{self.log()[-4000:]}") from None
        if self.proc.poll() is not None:
            raise AssertionError(f"stack exited with {self.proc.returncode}:\n{self.log()[-4000:]}")
        self.ready_seconds = time.monotonic() - started
        return self

    def process_names(self) -> set[str]:
        """The processes the runner started, as honcho names them: redis, each instance, caddy."""
        return set(re.findall(r"\| (\S+) started \(pid=\d+\)", self.log()))

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

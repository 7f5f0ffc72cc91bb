"""Service processes run one by one against a RedisServer, as the local stack runs them."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts.devkit.processes import ROOT, free_port, stop_process
from scripts.devkit.redis_cluster import ValkeyCluster
from scripts.devkit.redis_server import RedisServer
from scripts.devkit.waiting import wait_until


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

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=5, **kwargs)

    def ready(self) -> bool:
        try:
            return self.get("/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> int:
        return stop_process(self.proc, sig)

    def wait_ready(self, timeout: float = 20.0) -> ServiceProcess:
        """Wait until /ready answers 200; AssertionError with the log if the process ended."""
        wait_until(lambda: self.ready() or self.proc.poll() is not None, timeout=timeout)
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.env['SERVICE_NAME']} exited with {self.proc.returncode}:\n"
                                 f"{self.log()}")
        return self


@dataclass
class ServiceLauncher:
    """Starts service processes against one server and stops them all at the end."""

    server: RedisServer | ValkeyCluster
    started: list[ServiceProcess] = field(default_factory=list)

    def start(self, module: str, service: str, *, user: str | None = None, wait: bool = True,
              port: int | None = None, **env: str) -> ServiceProcess:
        """Start `module` as `service` (logging in as `user`, default the service's own).

        `port` chosen in advance lets a peer be told its URL first; by default a free one.
        """
        return self.launch(module, service, user=user, wait=wait, port=port, env=env)

    def launch(self, module: str, service: str, *, user: str | None = None, wait: bool = True,
               port: int | None = None, env: dict[str, str] | None = None) -> ServiceProcess:
        """`start`, with the extra environment as one dict."""
        port = port or free_port()
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
            "DRAIN_SECONDS": "0",  # tests that need the drain set it
            "DNS_PORT": "0",  # the directory's DNS interface: off unless a test gives a port
            "PYTHONUNBUFFERED": "1",
            **self.server.service_env,
            **(env or {}),
        }
        log_path = self.server.workdir / f"{service}-{port}.log"
        with open(log_path, "wb") as log_file:
            proc = subprocess.Popen(
                [sys.executable, "-m", "apps.kit.serve", module], env=full_env, cwd=ROOT,
                stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True,
            )
        svc = ServiceProcess(module, full_env, port, proc, log_path)
        self.started.append(svc)
        return svc.wait_ready() if wait else svc

    def stop_all(self) -> None:
        """SIGTERM them all at once, then wait for each (SIGKILL past the timeout): services
        shut down side by side, not one after the other."""
        for svc in self.started:
            if svc.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(svc.proc.pid, signal.SIGTERM)
        for svc in self.started:
            svc.stop()
        self.started.clear()


def start_at(launcher: ServiceLauncher, module: str, service: str, port: int,
             **env: str) -> ServiceProcess:
    """Start a service on a port chosen in advance (so a peer can be told its URL first)."""
    return launcher.launch(module, service, port=port, env=env)

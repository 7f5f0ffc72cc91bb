"""Integration tests: real processes against the embedded server, started on a free port.

Tests marked `cluster` run twice: on one server and on a Valkey Cluster (3 primaries, 3
replicas), each started once per session and shared; `cluster(only=True)` runs on the cluster
alone (for a test whose one-server run already exists under another name). Their `redis_server` is either; a
service started by `launcher` is put in cluster mode (REDIS_CLUSTER) on the cluster.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import redis
from scripts.devkit import RedisServer, ServiceLauncher, ValkeyCluster, running_cluster, running_server

pytestmark = pytest.mark.integration


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    marker = metafunc.definition.get_closest_marker("cluster")
    if marker and "redis_server" in metafunc.fixturenames:
        backends = ["cluster"] if marker.kwargs.get("only") else ["single", "cluster"]
        metafunc.parametrize("redis_server", backends, indirect=True, scope="module")


@pytest.fixture(scope="session")
def single_server() -> Iterator[RedisServer]:
    with running_server() as server:
        yield server


@pytest.fixture(scope="session")
def valkey_cluster() -> Iterator[ValkeyCluster]:
    with running_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="module")
def redis_server(request: pytest.FixtureRequest) -> RedisServer | ValkeyCluster:
    """The single server, or the cluster for the `cluster` half of a test marked so."""
    if getattr(request, "param", "single") == "cluster":
        cluster: ValkeyCluster = request.getfixturevalue("valkey_cluster")
        return cluster
    server: RedisServer = request.getfixturevalue("single_server")
    return server


@pytest.fixture
def admin(redis_server: RedisServer | ValkeyCluster) -> Iterator[redis.Redis]:
    """An all-powerful client on a freshly emptied server (every primary of a cluster)."""
    client = redis_server.admin()
    client.flushall()
    yield client  # type: ignore[misc]
    client.close()


@pytest.fixture
def launcher(redis_server: RedisServer | ValkeyCluster, admin: redis.Redis) -> Iterator[ServiceLauncher]:
    launcher = ServiceLauncher(redis_server)
    yield launcher
    launcher.stop_all()

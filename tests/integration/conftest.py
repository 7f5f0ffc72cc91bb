"""Integration tests: real processes against the embedded server, started on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import redis
from scripts.devkit import RedisServer, ServiceLauncher, running_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def admin(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """An all-powerful client on a freshly emptied server."""
    client = redis_server.admin()
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def launcher(redis_server: RedisServer, admin: redis.Redis) -> Iterator[ServiceLauncher]:
    launcher = ServiceLauncher(redis_server)
    yield launcher
    launcher.stop_all()

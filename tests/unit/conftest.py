"""Unit tests run on fakeredis: in-process, no server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import fakeredis
import pytest


@pytest.fixture
def fake_server() -> fakeredis.FakeServer:
    return fakeredis.FakeServer()


@pytest.fixture
async def redis(fake_server: fakeredis.FakeServer) -> AsyncIterator[fakeredis.FakeAsyncRedis]:
    client = fakeredis.FakeAsyncRedis(server=fake_server)
    yield client
    await client.aclose()


@pytest.fixture
def started():
    """Start an app (its before_serving hooks run) and give a test client; stop it after."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def run(app):
        async with app.test_app() as test_app:
            yield test_app.test_client()

    return run

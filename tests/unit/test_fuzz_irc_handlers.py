"""Every command handler fed random parameters over a real socket (Hypothesis): the gateway
never fails inside a handler, every line it sends back is one line of at most 512 bytes, and
the connection still answers a PING. The long run is `scripts/fuzz --target irc`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import fakeredis
import pytest
from hypothesis import HealthCheck, given, settings

from scripts.devkit.fuzz_irc import FuzzGateway, client_lines, exercise

_nicks = itertools.count()


@pytest.fixture(scope="module")
def gateway() -> Iterator[FuzzGateway]:
    server = fakeredis.FakeServer()
    with FuzzGateway(lambda: fakeredis.FakeAsyncRedis(server=server)) as running:
        yield running


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(lines=client_lines())
def test_random_commands_get_answers_never_a_failure_or_a_broken_line(gateway: FuzzGateway, lines):
    assert exercise(gateway.port, lines, f"fuzzer{next(_nicks)}") == []

"""The raw pub/sub baselines of scripts/bench-rally (scripts/devkit/raw_pubsub.py) on a real
server: two hops through one echo process, four hops through three, every shot back and every
echo process gone afterwards."""

from __future__ import annotations

import multiprocessing

import pytest

from scripts.devkit import RedisServer
from scripts.devkit.raw_pubsub import raw_round_trip

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("echoes", "label"), [(1, "raw pub/sub"), (3, "raw 4 hops")])
def test_every_shot_comes_back_through_the_echo_chain(single_server: RedisServer, echoes: int,
                                                      label: str) -> None:
    row = raw_round_trip(single_server.admin_url, shots=50, echoes=echoes)
    assert (row["transport"], row["shots"], row["misses"]) == (label, 50, 0)
    assert 0 < row["p50"] <= row["p99"]
    assert not multiprocessing.active_children()

"""The raw pub/sub baselines of scripts/bench-rally (scripts/devkit/raw_pubsub.py) on a real
server: two hops through one echo process, four hops through three, every shot back and every
echo process gone afterwards."""

from __future__ import annotations

import multiprocessing
import multiprocessing.synchronize
import time

import pytest

from scripts.devkit import RedisServer, raw_pubsub

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(("echoes", "label"), [(1, "raw pub/sub"), (3, "raw 4 hops")])
def test_every_shot_comes_back_through_the_echo_chain(single_server: RedisServer, echoes: int,
                                                      label: str) -> None:
    row = raw_pubsub.raw_round_trip(single_server.admin_url, shots=50, echoes=echoes)
    assert (row["transport"], row["shots"], row["misses"]) == (label, 50, 0)
    assert 0 < row["p50"] <= row["p99"]
    assert not multiprocessing.active_children()


def _mute_echo(url: str, listen: str, answer: str, ready: multiprocessing.synchronize.Event) -> None:
    ready.set()  # says it listens, and never answers
    time.sleep(1)


def test_a_lost_shot_ends_the_run_instead_of_a_wait_forever(single_server: RedisServer,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(raw_pubsub, "_echo", _mute_echo)
    with pytest.raises(RuntimeError, match="shot 0 not back through 1 echo"):
        raw_pubsub.raw_round_trip(single_server.admin_url, shots=5, lost_after=0.5)
    assert not multiprocessing.active_children()

"""The rally check of the compose smoke and the Swarm tests (scripts/devkit/routecheck.py)."""

from __future__ import annotations

import httpx

from scripts.devkit.routecheck import rally_advances


def scoreboard(totals: list[tuple[int, int]]) -> httpx.Client:
    """A gateway whose /rally gives each (ping, pong) of `totals` in turn, then the last."""
    answers = iter(totals)
    last = totals[-1]

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal last
        last = next(answers, last)
        players = {"ping": {"returned": last[0]}, "pong": {"returned": last[1]}}
        return httpx.Response(200, json={"players": players})

    return httpx.Client(base_url="http://gateway", transport=httpx.MockTransport(handler))


def test_a_rally_that_goes_on_advances_and_one_that_stalls_does_not():
    assert rally_advances(scoreboard([(100, 100), (101, 101), (103, 103)]), within=5)
    assert not rally_advances(scoreboard([(100, 100)]), within=1.2)


def test_a_restarted_player_counting_from_zero_is_seen_advancing_at_once():
    # pong restarted: its 400 shots are gone from the total, and the rally goes on from there.
    totals = [(400, 400), (401, 0), (403, 2), (405, 4)]
    assert rally_advances(scoreboard(totals), within=5)

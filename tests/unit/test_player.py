"""The player with a recording transport on fakeredis: what it sends, and that stop() ends it."""

from __future__ import annotations

from apps.kit.lifecycle import Runtime
from apps.player.links import SENT
from apps.player.player import Player
from apps.player.rally import Shot
from apps.player.settings import PlayerSettings
from scripts.devkit.clock import ManualClock, settle


class RecordingLink:
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[Shot] = []

    async def start(self, on_shot, on_lost) -> None:
        pass

    async def send(self, shot: Shot) -> str:
        self.sent.append(shot)
        return SENT

    async def stop(self) -> None:
        pass


def make_player(redis, think_time: float) -> tuple[Player, RecordingLink, ManualClock]:
    settings = PlayerSettings(service_name="ping", instance_id="ping", think_time=think_time,
                              transport="broker")
    link, clock = RecordingLink(), ManualClock()
    return Player(settings, Runtime(settings, redis), link=link, clock=clock), link, clock


async def test_a_shot_is_answered_after_the_think_time(redis):
    player, link, clock = make_player(redis, think_time=0.05)
    player.take(Shot(7, 1, "pong", "serve"))
    await clock.advance(0.049)
    assert link.sent == []  # still thinking
    await clock.advance(0.001)
    assert link.sent == [Shot(7, 2, "ping", "return")]
    await player.stop()


async def test_stop_cancels_an_answer_being_thought_about(redis):
    player, link, clock = make_player(redis, think_time=0.05)
    player.take(Shot(7, 1, "pong", "serve"))
    await settle()
    assert clock.sleeping >= 1  # the answer waits for its think time
    await player.stop()
    player.take(Shot(8, 1, "pong", "serve"))  # arriving late: not handled any more
    await clock.advance(1.0)
    assert link.sent == []
    assert clock.sleeping == 0  # nothing left waiting


async def test_no_answer_within_the_deadline_is_a_miss_and_the_rally_is_served_again(redis):
    player, link, clock = make_player(redis, think_time=0.0)
    player.take(Shot(7, 1, "pong", "serve"))
    await settle()
    assert link.sent == [Shot(7, 2, "ping", "return")]
    await clock.advance(player.settings.rally_deadline + 0.001)  # pong never answers
    assert (player.rally.score.misses_by_peer, player.rally.score.points) == (1, 1)
    assert await redis.hget("canaduck:rally", "ping:points") == b"1"
    await clock.advance(player.settings.serve_backoff_max)  # the next serve is due by then
    serve = link.sent[1]
    assert serve.kind == "serve" and serve.rally > 7  # a new rally, above every one seen
    await player.stop()


async def test_one_timer_follows_the_deadline_through_a_rally(redis):
    player, link, clock = make_player(redis, think_time=0.0)
    deadline = player.settings.rally_deadline
    timers = set()
    for hit in (1, 3, 5, 7):  # pong's shots, each answered at once, 0.1 s apart
        player.take(Shot(7, hit, "pong", "serve" if hit == 1 else "return"))
        await settle()
        timers.add(player._timer)
        assert clock.sleeping == 1
        await clock.advance(0.1)
    assert len(timers) == 1  # the timer is kept, not replaced, as the deadline moves on
    assert [shot.hit for shot in link.sent] == [2, 4, 6, 8]
    # Now 0.4 s in: the first answer's deadline is at 0.5 s, the last one's at 0.8 s.
    await clock.advance(deadline - 0.35)
    assert player.rally.score.misses_by_peer == 0 and clock.sleeping == 1  # woke early, set again
    await clock.advance(0.3)
    assert player.rally.score.misses_by_peer == 1
    await player.stop()

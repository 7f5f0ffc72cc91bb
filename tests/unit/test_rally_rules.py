"""The rally rules with a hand-moved clock: no Redis, no network, no sleeping."""

import pytest

from apps.player.rally import Rally, Shot
from scripts.devkit.clock import ManualClock


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def player(clock: ManualClock, me: str = "ping", peer: str = "pong", **kwargs) -> Rally:
    return Rally(me, peer, deadline=0.5, backoff=0.25, backoff_max=2.0, clock=clock, **kwargs)


def rally_of(ping: Rally, pong: Rally, rally_id: int = 1) -> Shot:
    """ping serves rally_id; returns the shot as it leaves."""
    serve = ping.serve(rally_id)
    ping.sent(serve)
    return serve


def test_a_served_shot_is_answered_with_the_next_hit(clock):
    ping, pong = player(clock), player(clock, "pong", "ping")
    serve = rally_of(ping, pong)
    verdict = pong.receive(serve)
    assert verdict.reply == Shot(1, 2, "pong", "return")
    pong.sent(verdict.reply)
    clock.jump(0.004)
    back = ping.receive(verdict.reply)
    assert back.reply == Shot(1, 3, "ping", "return")
    assert back.rtt == pytest.approx(0.004)
    assert ping.score.returned == 1 and ping.score.longest == 2


def test_an_answer_past_the_deadline_is_a_miss_and_a_point_for_the_waiting_player(clock):
    ping = player(clock)
    rally_of(ping, None)
    clock.jump(0.49)
    assert ping.expire() is None
    clock.jump(0.02)
    miss = ping.expire()
    assert miss is not None
    assert (miss.rally, miss.hit, miss.missed_by, miss.point_to) == (1, 2, "pong", "ping")
    assert miss.reason == "too late"
    assert ping.score.points == 1 and ping.score.misses_by_peer == 1
    # The shot reached the peer: a new rally is served at once.
    assert ping.serve_due_at() == clock.now()
    # The late answer is now stale: ignored, never answered.
    late = ping.receive(Shot(1, 2, "pong", "return"))
    assert late.reply is None and late.ignored == "stale rally"


def test_a_duplicate_shot_is_ignored_and_never_answered_twice(clock):
    pong = player(clock, "pong", "ping")
    serve = Shot(3, 1, "ping", "serve")
    first = pong.receive(serve)
    assert first.reply is not None
    pong.sent(first.reply)
    again = pong.receive(serve)
    assert again.reply is None and again.ignored == "duplicate"
    assert pong.score.ignored["duplicate"] == 1


def test_an_old_hit_of_the_current_rally_is_ignored(clock):
    pong = player(clock, "pong", "ping")
    pong.sent(pong.receive(Shot(3, 5, "ping", "return")).reply)
    assert pong.receive(Shot(3, 3, "ping", "return")).ignored == "duplicate"


def test_a_stale_rally_is_ignored_and_a_newer_one_is_adopted(clock):
    pong = player(clock, "pong", "ping")
    pong.sent(pong.receive(Shot(7, 1, "ping", "serve")).reply)
    stale = pong.receive(Shot(6, 9, "ping", "return"))
    assert stale.reply is None and stale.ignored == "stale rally"
    newer = pong.receive(Shot(8, 1, "ping", "serve"))
    assert newer.reply == Shot(8, 2, "pong", "return")
    assert pong.waiting is None  # the wait for rally 7 is abandoned: no miss for it
    clock.jump(5)
    assert pong.expire() is None


def test_an_answer_thought_about_during_a_newer_serve_is_not_sent(clock):
    pong = player(clock, "pong", "ping")
    old_reply = pong.receive(Shot(1, 1, "ping", "serve")).reply
    new_reply = pong.receive(Shot(2, 1, "ping", "serve")).reply
    assert not pong.still_current(old_reply)
    assert pong.still_current(new_reply)


def test_own_shots_are_ignored(clock):
    ping = player(clock)
    assert ping.receive(Shot(1, 1, "ping", "serve")).ignored == "own shot"


def test_an_absent_peer_is_served_with_growing_backoff_and_shown_as_a_stall(clock):
    ping = player(clock)
    delays = []
    for rally_id in range(1, 6):
        serve = rally_of(ping, None, rally_id)
        ping.undelivered(serve, "pong unreachable")
        assert ping.status == "stalled: pong unreachable"
        clock.jump(0.5)
        miss = ping.expire()
        assert miss is not None and miss.reason == "pong unreachable"
        delays.append(round(ping.serve_due_at() - clock.now(), 3))
        clock.jump(ping.serve_due_at() - clock.now())
    assert delays == [0.25, 0.5, 1.0, 2.0, 2.0]
    # The peer comes back: its shot clears the stall and the backoff.
    ping.receive(Shot(9, 1, "pong", "serve"))
    assert ping.status == "playing"


def test_an_idle_player_serves(clock):
    ping = player(clock, idle_after=2.0)
    assert ping.serve_due_at() == clock.now()  # at start, at once
    ping.sent(ping.serve(1))
    assert ping.serve_due_at() is None  # waiting for the answer


def test_shots_per_second(clock):
    ping = player(clock)
    for hit in range(1, 22, 2):
        ping.sent(Shot(1, hit, "ping", "return"))
        clock.jump(0.01)
    assert ping.shots_per_second() == pytest.approx(100, rel=0.01)
    clock.jump(10)
    assert ping.shots_per_second() == 0.0


@pytest.mark.parametrize("bad, field", [
    ({"rally": 0, "hit": 1, "sender": "ping", "kind": "serve"}, "rally"),
    ({"rally": 1, "hit": "2", "sender": "ping", "kind": "serve"}, "hit"),
    ({"rally": 1, "hit": 1, "sender": "", "kind": "serve"}, "sender"),
    ({"rally": 1, "hit": 1, "sender": "ping", "kind": "smash"}, "kind"),
    ([1, 2], "shot"),
])
def test_a_bad_shot_names_its_field(bad, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        Shot.from_dict(bad)


async def test_after_redis_lost_the_counter_a_new_serve_is_still_newer_than_any_seen(clock):
    import fakeredis

    from apps.player.scoreboard import Scoreboard

    ping, pong = player(clock), player(clock, "pong", "ping")
    serve = rally_of(ping, pong, rally_id=500)
    pong.receive(serve)
    clock.jump(1.0)
    assert ping.expire() is not None  # pong never answered: rally 500 is over for ping
    # Redis restarted (no persistence): the counter starts again from 0.
    board = Scoreboard(fakeredis.FakeAsyncRedis(), "canaduck:rally")
    rally_id = await board.next_rally_id(above=ping.newest_seen)
    assert rally_id == 501
    assert pong.receive(ping.serve(rally_id)).reply is not None  # not ignored as stale
    assert await board.next_rally_id(above=ping.newest_seen) == 502  # the counter moved on

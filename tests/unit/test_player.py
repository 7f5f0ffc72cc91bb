"""The player with a recording transport on fakeredis: what it sends, and that stop() ends it."""

from __future__ import annotations

import asyncio

from apps.kit.lifecycle import Runtime
from apps.player.links import SENT
from apps.player.player import Player
from apps.player.rally import Shot
from apps.player.settings import PlayerSettings


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


def make_player(redis, think_time: float) -> tuple[Player, RecordingLink]:
    settings = PlayerSettings(service_name="ping", instance_id="ping", think_time=think_time,
                              transport="broker")
    link = RecordingLink()
    return Player(settings, Runtime(settings, redis), link=link), link


async def test_a_shot_is_answered_after_the_think_time(redis):
    player, link = make_player(redis, think_time=0.05)
    player.take(Shot(7, 1, "pong", "serve"))
    await asyncio.sleep(0.01)
    assert link.sent == []  # still thinking
    await asyncio.sleep(0.1)
    assert link.sent == [Shot(7, 2, "ping", "return")]
    await player.stop()


async def test_stop_cancels_an_answer_being_thought_about(redis):
    player, link = make_player(redis, think_time=0.05)
    player.take(Shot(7, 1, "pong", "serve"))
    await asyncio.sleep(0.01)
    await player.stop()
    player.take(Shot(8, 1, "pong", "serve"))  # arriving late: not handled any more
    await asyncio.sleep(0.1)
    assert link.sent == []

"""The player: drives the pure rally rules (rally.py) with timers, a transport and Redis.

Every time it reads or waits on goes through its Clock (the system's by default), so tests
move time by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Coroutine
from typing import Any

from redis.exceptions import RedisError

from apps.kit.clock import SYSTEM_CLOCK, Clock
from apps.kit.lifecycle import Runtime
from apps.kit.tasks import cancel_and_wait
from apps.player.links import DELIVERED, SENT, Link, make_link
from apps.player.rally import Miss, Rally, Shot
from apps.player.scoreboard import Scoreboard
from apps.player.settings import PlayerSettings

log = logging.getLogger("canaduck.player")


class Player:
    """One player: answers shots after thinking, notices misses, serves, keeps the score."""

    def __init__(self, settings: PlayerSettings, runtime: Runtime, link: Link | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.settings = settings
        self.clock = clock
        self.me, self.peer = settings.service_name, settings.peer
        self.rally = Rally(
            self.me, self.peer, deadline=settings.rally_deadline, backoff=settings.serve_backoff,
            backoff_max=settings.serve_backoff_max, window=settings.rally_window,
            idle_after=max(2 * settings.rally_deadline, settings.serve_backoff_max),
            clock=self.clock,
        )
        self.link = link or make_link(settings, runtime)
        self.scoreboard = Scoreboard(runtime.redis, runtime.keys["rally"], self.clock)
        self._events = runtime.broker
        self._timer: asyncio.Task[None] | None = None
        self._timer_at = 0.0  # when the timer wakes (clock time)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._serving = False
        self._stopped = False
        self._shown_status = "playing"
        self._stalled_since = 0.0
        self._redis_failing = False

    # -- life -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start listening, then play: serve at once unless the peer serves first."""
        await self.link.start(self.on_shot, self.on_lost)
        self._spawn(self._publish_loop())
        self._reschedule()
        log.info("%s plays %s over %s (think %g s, deadline %g s)", self.me, self.peer,
                 self.link.name, self.settings.think_time, self.settings.rally_deadline)

    async def stop(self) -> None:
        """Stop the timers and the transport; write the state one last time."""
        self._stopped = True
        if self._timer:
            await cancel_and_wait(self._timer)
        for task in list(self._tasks):
            await cancel_and_wait(task)
        await self.link.stop()
        with contextlib.suppress(RedisError, OSError):
            await self._publish_state()

    # -- shots ----------------------------------------------------------------------------

    async def on_shot(self, shot: Shot) -> None:
        """A shot from the peer: answer it after the think time, unless it is stale."""
        verdict = self.rally.receive(shot)
        if verdict.reply is None:
            log.debug("ignored shot %s/%s from %s: %s", shot.rally, shot.hit, shot.sender,
                      verdict.ignored)
            return
        self._show_status()
        self._reschedule()
        delay = self.settings.think_time
        if self.settings.think_jitter:
            delay += random.uniform(0, self.settings.think_jitter)
        if delay <= 0:
            await self._send(verdict.reply)
        else:
            self._spawn(self._send_after(delay, verdict.reply))

    def take(self, shot: Shot) -> None:
        """Handle a shot in the background (a transport's request must not wait for it)."""
        self._spawn(self.on_shot(shot))

    def on_lost(self, shot: Shot, reason: str) -> None:
        """The transport learnt afterwards that `shot` never reached the peer."""
        self.rally.undelivered(shot, reason)
        self._show_status()

    async def _send_after(self, delay: float, shot: Shot) -> None:
        # A task, not a loop timer: stop() cancels it with the others, so no answer leaves
        # after the transport has closed.
        await self.clock.sleep(delay)
        await self._send(shot)

    async def _send(self, shot: Shot) -> None:
        if not self.rally.still_current(shot):
            return  # a newer rally started while we were thinking
        self.rally.sent(shot)
        self._reschedule()
        outcome = await self.link.send(shot)
        if outcome == DELIVERED:
            self.rally.delivered(shot)
        elif outcome != SENT:
            self.rally.undelivered(shot, outcome)
        self._show_status()

    # -- deadlines and serves ---------------------------------------------------------------

    def _reschedule(self) -> None:
        """Keep one timer for the next thing due: the deadline, or the next serve.

        Every shot pushes the deadline later, so the timer is replaced only when something is
        due sooner than it wakes; one that wakes early finds nothing due and is set again."""
        times = [t for t in (self.rally.deadline_at(), self.rally.serve_due_at()) if t is not None]
        if not times or self._stopped:
            return  # nothing due (an answer is being thought about): a timer left waking early is harmless
        due = min(times)
        if self._timer is not None and self._timer_at <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = due
        self._timer = asyncio.create_task(self._wake_at(due))

    async def _wake_at(self, due: float) -> None:
        await self.clock.sleep(max(0.0, due - self.clock.now()))
        self._timer = None  # it ends here: _on_wake's reschedule must not cancel this task
        self._spawn(self._on_wake())

    async def _on_wake(self) -> None:
        miss = self.rally.expire()
        if miss:
            await self._record_miss(miss)
        due = self.rally.serve_due_at()
        if due is not None and due <= self.clock.now() and not self._serving:
            await self._serve()
        self._reschedule()

    async def _serve(self) -> None:
        self._serving = True
        try:
            rally_id = await self.scoreboard.next_rally_id(above=self.rally.newest_seen)
            self._redis_ok()
        except (RedisError, OSError) as exc:
            self._redis_down(exc)
            self.rally.serve_failed("Redis unreachable")
            self._show_status()
            return
        finally:
            self._serving = False
        due = self.rally.serve_due_at()
        if due is None or due > self.clock.now():
            return  # the peer served meanwhile: play its rally
        shot = self.rally.serve(rally_id)
        if not self.rally.absent:
            log.debug("serving rally %d", rally_id)
        await self._send(shot)

    async def _record_miss(self, miss: Miss) -> None:
        # While the peer is away every serve ends in a miss: say it once (the stall), not each time.
        level = logging.DEBUG if self._shown_status != "playing" else logging.INFO
        log.log(level, "%s missed hit %d of rally %d (%s): point to %s", miss.missed_by, miss.hit,
                miss.rally, miss.reason, miss.point_to,
                extra={"fields": {"rally": miss.rally, "hit": miss.hit, "missed_by": miss.missed_by}})
        try:
            await self.scoreboard.point(miss.point_to, miss.missed_by)
            await self._events.event("miss", rally=miss.rally, hit=miss.hit, missed_by=miss.missed_by,
                                     point_to=miss.point_to, reason=miss.reason)
            self._redis_ok()
        except (RedisError, OSError) as exc:
            self._redis_down(exc)

    # -- what others see ----------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """This player's state as written to the scoreboard."""
        rally, score = self.rally, self.rally.score
        return {
            "status": rally.status, "rally": rally.rally, "hit": rally.hit,
            "longest": score.longest, "shots": score.shots, "returned": score.returned,
            "ignored": dict(score.ignored), "shots_per_s": round(rally.shots_per_second(), 1),
            "rtt_us": [round(x * 1e6) for x in rally.rtts],
            "think_time": self.settings.think_time, "deadline": self.settings.rally_deadline,
            "updated_at": self.clock.wall(),  # read by the other player and the dashboard
        }

    async def _publish_state(self) -> None:
        await self.scoreboard.publish_state(self.me, self.link.name, self.state())

    async def _publish_loop(self) -> None:
        while not self._stopped:
            try:
                await self._publish_state()
                self._redis_ok()
            except (RedisError, OSError) as exc:
                self._redis_down(exc)
            await self.clock.sleep(self.settings.scoreboard_interval)

    def _show_status(self) -> None:
        """Log a change of status once: a stall when it starts, and when it ends."""
        status = self.rally.status
        if status == self._shown_status:
            return
        now = self.clock.now()
        if status == "playing":
            log.info("%s is back: playing again after %.1f s", self.peer, now - self._stalled_since)
        elif self._shown_status == "playing":
            self._stalled_since = now
            log.warning("%s; serving again with backoff (up to every %g s)", status,
                        self.settings.serve_backoff_max)
        else:
            log.warning("%s", status)
        self._shown_status = status
        self._spawn(self._publish_event("stall" if status != "playing" else "resumed", status))

    async def _publish_event(self, kind: str, status: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._events.event(kind, status=status, peer=self.peer)

    def _redis_ok(self) -> None:
        if self._redis_failing:
            self._redis_failing = False
            log.info("scoreboard writes work again")

    def _redis_down(self, exc: Exception) -> None:
        if not self._redis_failing:
            self._redis_failing = True
            log.warning("scoreboard unreachable (%s); playing on, retrying", exc)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        if self._stopped:
            coro.close()
            return
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

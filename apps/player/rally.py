"""The rules of the rally, seen by one player: pure logic, no I/O, the clock injected.

The driver (apps/player/player.py) feeds it what happens (a shot received, a shot sent, a
shot that could not be delivered) and asks it what to do (answer, when the deadline falls,
when to serve). Everything here can be tested with a hand-moved clock.

Rules:
- A rally id comes from a counter shared by both players, so a newer rally always has a
  larger id: when both serve at once, both end up playing the newer one.
- A shot is taken only if it is newer than anything seen: a larger rally id, or the current
  rally with a larger hit number. Anything else (a duplicate, an old hit, an old rally, a
  rally already lost) is ignored and never answered.
- After sending a shot the player waits `deadline` seconds for the answer. Past it the peer
  has missed: the point goes to the waiting player, who serves a new rally, at once if the
  shot reached the peer, after an exponential backoff if it did not (peer or broker absent).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Literal

from apps.kit.clock import SYSTEM_CLOCK, Clock

ShotKind = Literal["serve", "return"]


@dataclass(frozen=True, slots=True)
class Shot:
    """One hit of one rally."""

    rally: int
    hit: int
    sender: str
    kind: ShotKind

    def to_dict(self) -> dict[str, Any]:
        return {"rally": self.rally, "hit": self.hit, "sender": self.sender, "kind": self.kind}

    @classmethod
    def from_dict(cls, data: Any) -> Shot:
        """Validate a shot received from the wire; ValueError naming the bad field."""
        if not isinstance(data, dict):
            raise ValueError("shot: expected an object")
        rally, hit = _count(data, "rally"), _count(data, "hit")
        sender, kind = data.get("sender"), data.get("kind")
        if not isinstance(sender, str) or not sender:
            raise ValueError("sender: expected a service name")
        if kind not in ("serve", "return"):
            raise ValueError("kind: expected 'serve' or 'return'")
        return cls(rally, hit, sender, kind)


def _count(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    # bool is an int subclass: True must not pass for hit 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name}: expected an integer >= 1")
    return value


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a received shot: `reply` to send after thinking, or `ignored` why."""

    reply: Shot | None = None
    ignored: str = ""
    rtt: float | None = None


@dataclass(frozen=True, slots=True)
class Miss:
    """The peer did not answer `hit` of `rally` in time: the point is ours."""

    rally: int
    hit: int
    missed_by: str
    point_to: str
    reason: str


@dataclass(slots=True)
class _Waiting:
    shot: Shot
    sent_at: float
    deadline_at: float
    undelivered: str = ""


@dataclass
class Score:
    """Counts a player keeps about the rallies it played."""

    shots: int = 0  # shots sent
    returned: int = 0  # shots of ours answered in time
    longest: int = 0  # the most hits seen in one rally
    points: int = 0
    misses_by_peer: int = 0
    ignored: Counter[str] = field(default_factory=Counter)


class Rally:
    """One player's view of the rally it plays with one peer."""

    def __init__(
        self, me: str, peer: str, *, deadline: float = 0.5, backoff: float = 0.25,
        backoff_max: float = 2.0, idle_after: float = 2.0, window: int = 1000,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.me, self.peer = me, peer
        self.deadline = deadline
        self.backoff, self.backoff_max = backoff, backoff_max
        self.idle_after = idle_after
        self._clock = clock
        self.rally = 0  # the rally being played (0: none yet)
        self.hit = 0  # the last hit of it seen or sent
        self.lost_upto = 0  # rallies up to this id are over: their shots are ignored
        self.waiting: _Waiting | None = None  # our shot, awaiting its answer
        self.pending: Shot | None = None  # our answer, being thought about
        self.serve_at: float | None = clock.now()  # serve once idle (at start: at once)
        self.last_activity = clock.now()
        self.absent = ""  # why the peer seems unreachable ("" if it answers)
        self._undelivered_in_a_row = 0
        self.score = Score()
        self.rtts: deque[float] = deque(maxlen=window)
        self.sends: deque[float] = deque(maxlen=window)

    # -- what happens ---------------------------------------------------------------------

    def serve(self, rally_id: int) -> Shot:
        """Start rally `rally_id` (newer than any seen) with hit 1; send it with `sent`."""
        self.rally, self.hit = rally_id, 0
        self.waiting = None
        self.serve_at = None
        shot = Shot(rally_id, 1, self.me, "serve")
        self.pending = shot
        return shot

    def receive(self, shot: Shot) -> Verdict:
        """Take a shot from the peer: the answer to send after thinking, or why it is ignored."""
        now = self._clock.now()
        if shot.sender == self.me:
            return self._ignore("own shot")
        if shot.rally <= self.lost_upto or shot.rally < self.rally:
            return self._ignore("stale rally")
        if shot.rally == self.rally and shot.hit <= self.hit:
            return self._ignore("duplicate")
        rtt = None
        waiting = self.waiting
        if waiting and waiting.shot.rally == shot.rally and shot.hit == waiting.shot.hit + 1:
            rtt = now - waiting.sent_at
            self.rtts.append(rtt)
            self.score.returned += 1
        self.rally, self.hit = shot.rally, shot.hit
        self.score.longest = max(self.score.longest, shot.hit)
        self.waiting = None
        self.serve_at = None
        self.last_activity = now
        self._peer_is_back()
        reply = Shot(shot.rally, shot.hit + 1, self.me, "return")
        self.pending = reply
        return Verdict(reply=reply, rtt=rtt)

    def still_current(self, shot: Shot) -> bool:
        """True if `shot` (a serve or answer we prepared) should still be sent now."""
        return self.pending == shot

    def sent(self, shot: Shot) -> None:
        """`shot` is leaving now: start waiting for its answer."""
        now = self._clock.now()
        self.pending = None
        self.hit = shot.hit
        self.waiting = _Waiting(shot, now, now + self.deadline)
        self.last_activity = now
        self.score.shots += 1
        self.sends.append(now)

    def delivered(self, shot: Shot) -> None:
        """The transport knows `shot` reached the peer (e.g. an HTTP 202)."""
        self._peer_is_back()

    def undelivered(self, shot: Shot, reason: str) -> None:
        """`shot` could not reach the peer (absent, broker down...): say so, back off later."""
        waiting = self.waiting
        if waiting and waiting.shot == shot:
            waiting.undelivered = reason
        self.absent = reason

    def serve_failed(self, reason: str) -> None:
        """A serve could not even start (e.g. no rally id): try again after the backoff."""
        self.absent = reason
        self.serve_at = self._clock.now() + self._next_backoff()

    def expire(self) -> Miss | None:
        """The miss, if the answer we wait for is past its deadline now; None otherwise."""
        waiting = self.waiting
        now = self._clock.now()
        if waiting is None or now < waiting.deadline_at:
            return None
        self.waiting = None
        self.lost_upto = max(self.lost_upto, waiting.shot.rally)
        self.score.points += 1
        self.score.misses_by_peer += 1
        if waiting.undelivered:
            delay = self._next_backoff()
        else:
            self._undelivered_in_a_row = 0
            delay = 0.0
        self.serve_at = now + delay
        return Miss(waiting.shot.rally, waiting.shot.hit + 1, self.peer, self.me,
                    waiting.undelivered or "too late")

    @property
    def newest_seen(self) -> int:
        """The largest rally id this player knows of: a new serve must be above it."""
        return max(self.rally, self.lost_upto)

    # -- what to do next ------------------------------------------------------------------

    def deadline_at(self) -> float | None:
        """When the answer we wait for is due (None: not waiting)."""
        return self.waiting.deadline_at if self.waiting else None

    def serve_due_at(self) -> float | None:
        """When to serve a new rally if nothing else happens (None: the ball is in play)."""
        if self.waiting or self.pending:
            return None
        if self.serve_at is not None:
            return self.serve_at
        return self.last_activity + self.idle_after

    # -- what to show ---------------------------------------------------------------------

    @property
    def status(self) -> str:
        """`playing`, or why not: the peer or the broker cannot be reached."""
        return f"stalled: {self.absent}" if self.absent else "playing"

    def shots_per_second(self, horizon: float = 5.0) -> float:
        """Our sending rate over the window, 0 if we sent nothing in the last `horizon` s."""
        sends = self.sends
        if len(sends) < 2 or self._clock.now() - sends[-1] > horizon:
            return 0.0
        span = sends[-1] - sends[0]
        return (len(sends) - 1) / span if span > 0 else 0.0

    def _ignore(self, why: str) -> Verdict:
        self.score.ignored[why] += 1
        return Verdict(ignored=why)

    def _next_backoff(self) -> float:
        self._undelivered_in_a_row += 1
        return min(self.backoff_max, self.backoff * 2 ** (self._undelivered_in_a_row - 1))

    def _peer_is_back(self) -> None:
        self.absent = ""
        self._undelivered_in_a_row = 0

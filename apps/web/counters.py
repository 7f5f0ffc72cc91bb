"""Totals and per-second rates from the counters instances publish on `canaduck:stats`.

Each instance publishes what its /metrics shows, as totals since it started
(`apps/kit/reporter.py`). Keeping each instance's recent snapshots turns two of them into a
rate; a total that goes down means the instance restarted, and counts from zero again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

Labels = dict[str, Any]
Where = Callable[[Labels], bool]


def everything(labels: Labels) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class Snapshot:
    at: float
    metrics: dict[str, list[Labels]]

    def total(self, family: str, where: Where) -> float:
        return sum(float(s.get("value", 0)) for s in self.metrics.get(family, ()) if where(s))


class Counters:
    """The last `window` seconds of snapshots of every instance (`<service>/<instance>`)."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._snapshots: dict[str, deque[Snapshot]] = {}

    def add(self, name: str, at: float, metrics: dict[str, list[Labels]]) -> None:
        """Record one instance's snapshot; an older one than the last is ignored."""
        kept = self._snapshots.setdefault(name, deque())
        if kept and at <= kept[-1].at:
            return
        kept.append(Snapshot(at, metrics))
        self._trim(kept, at)

    def _trim(self, kept: deque[Snapshot], now: float) -> None:
        # Keep one snapshot at least `window` old as the base of the rate.
        while len(kept) > 2 and kept[1].at <= now - self.window:
            kept.popleft()

    def prune(self, now: float, live: Iterable[str] = ()) -> None:
        """Forget instances that stopped reporting (and are not in `live`)."""
        keep = set(live)
        for name in [n for n, kept in self._snapshots.items()
                     if n not in keep and kept[-1].at < now - 2 * self.window]:
            del self._snapshots[name]

    def reporting(self, name: str, now: float) -> bool:
        """True if the instance published within the window."""
        kept = self._snapshots.get(name)
        return kept is not None and len(kept) > 0 and kept[-1].at >= now - self.window

    def total(self, name: str, family: str, where: Where = everything) -> float:
        """The latest total of the samples of `family` that `where` selects (0 if none)."""
        kept = self._snapshots.get(name)
        return kept[-1].total(family, where) if kept else 0.0

    def rate(self, name: str, family: str, now: float, where: Where = everything) -> float:
        """Per second over the window; 0 for an instance silent for longer than the window."""
        kept = self._snapshots.get(name)
        if not kept or len(kept) < 2 or kept[-1].at < now - self.window:
            return 0.0
        base, last = kept[0], kept[-1]  # base: the newest snapshot at least a window old
        seconds = last.at - base.at
        before, after = base.total(family, where), last.total(family, where)
        if after < before:  # restarted: it counts from zero again
            before = 0.0
        return (after - before) / seconds

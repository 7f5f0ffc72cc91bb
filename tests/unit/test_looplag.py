"""The event loop's lag: how much later than asked a timer runs, on /metrics."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import CollectorRegistry, Histogram

from apps.kit.looplag import LoopLagMonitor
from apps.kit.metrics import Metrics
from scripts.devkit.clock import ManualClock
from scripts.devkit.stats import histogram_buckets, histogram_quantile


def histogram() -> Histogram:
    return Histogram("lag", "lag", buckets=(0.01, 0.1, 1), registry=CollectorRegistry())


def count_at_most(h: Histogram, bound: float) -> float:
    return next(s.value for s in next(iter(h.collect())).samples
                if s.name == "lag_bucket" and float(s.labels["le"]) == bound)


def total(h: Histogram) -> float:
    """The lag recorded, all wake-ups together (seconds)."""
    return next(s.value for s in next(iter(h.collect())).samples if s.name == "lag_sum")


async def test_a_wake_up_later_than_asked_is_recorded_as_lag():
    clock, h = ManualClock(), histogram()
    monitor = LoopLagMonitor(h, 0.1, clock)
    await monitor.start()
    await clock.advance(0.1)  # on time
    await clock.advance(0.4)  # 0.3 s late: the loop was busy elsewhere
    await monitor.stop()
    assert count_at_most(h, 0.01) == 1 and count_at_most(h, 1) == 2
    assert abs(total(h) - 0.3) < 1e-9


async def test_blocking_the_loop_shows_as_lag_on_the_real_clock():
    h = histogram()
    monitor = LoopLagMonitor(h, 0.01)
    await monitor.start()
    await asyncio.sleep(0.02)
    asyncio.get_running_loop().call_soon(time.sleep, 0.2)  # a callback that does not yield
    await asyncio.sleep(0.3)
    await monitor.stop()
    assert total(h) >= 0.15


async def test_an_interval_of_zero_measures_nothing():
    h = histogram()
    monitor = LoopLagMonitor(h, 0)
    await monitor.start()
    await asyncio.sleep(0.02)
    await monitor.stop()
    assert count_at_most(h, 1) == 0


async def test_one_late_wake_up_is_not_sustained_lag_two_in_a_row_are():
    clock = ManualClock()
    monitor = LoopLagMonitor(histogram(), 0.1, clock)
    await monitor.start()
    await clock.advance(0.1)
    await clock.advance(0.6)  # 0.5 s late once: a collection, one big write
    assert monitor.sustained_lag() == 0
    await clock.advance(0.1)  # on time again
    assert monitor.sustained_lag() == 0
    await clock.advance(0.4)  # late...
    await clock.advance(0.4)  # ...and late again: the loop stays late
    assert abs(monitor.sustained_lag() - 0.3) < 1e-9
    await monitor.stop()


async def test_a_late_wake_up_followed_by_an_overdue_one_shows_before_it_runs():
    clock = ManualClock()
    monitor = LoopLagMonitor(histogram(), 0.1, clock)
    await monitor.start()
    await clock.advance(0.1)
    await clock.advance(0.5)  # 0.4 s late
    clock.jump(0.35)  # the next wake-up was due 0.1 s after the last: 0.25 s overdue, not run yet
    assert abs(monitor.sustained_lag() - 0.25) < 1e-9
    await monitor.stop()


def test_a_lag_just_past_the_gateways_target_reads_close_to_it_not_two_and_a_half_times_it():
    metrics = Metrics("ircd")
    before = histogram_buckets(metrics.render().decode(), "canaduck_event_loop_lag_seconds")
    for lag in [0.001] * 980 + [0.12] * 20:  # 2 % of the wake-ups 120 ms late
        metrics.loop_lag.observe(lag)
    after = histogram_buckets(metrics.render().decode(), "canaduck_event_loop_lag_seconds")
    assert histogram_quantile(before, after, 0.99) == 0.15

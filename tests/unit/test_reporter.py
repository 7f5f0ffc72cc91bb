"""The kit's stats reporter: what /metrics shows, published on canaduck:stats for the dashboard."""

import asyncio
import json

from apps.kit.metrics import Metrics
from apps.kit.names import Keys
from apps.kit.reporter import StatsReporter
from apps.kit.settings import KitSettings
from scripts.devkit.clock import ManualClock
from scripts.devkit.waiting import wait_until_async


def test_a_snapshot_holds_counters_and_gauges_but_no_histogram_or_created_time():
    metrics = Metrics("mult")
    metrics.observe("GET", "/mult", 200, 0.001)
    metrics.observe("GET", "/mult", 200, 0.002)
    metrics.expose_counts("canaduck_relay", "relays", lambda: {"relayed": 7})
    snapshot = metrics.snapshot()
    assert snapshot["http_requests"] == [{"method": "GET", "route": "/mult", "status": "200", "value": 2.0}]
    assert snapshot["canaduck_relay"] == [{"what": "relayed", "value": 7.0}]
    assert "http_request_duration_seconds" not in snapshot
    json.dumps(snapshot)  # published as JSON


async def test_the_reporter_publishes_who_when_and_the_counters(redis):
    pubsub = redis.pubsub()
    await pubsub.subscribe("canaduck:stats")
    reporter = StatsReporter(redis, "canaduck:stats", "mult", "mult-a", 0.01,
                             lambda: {"http_requests": [{"route": "/mult", "value": 3}]},
                             clock=ManualClock(wall=12.5))
    await reporter.start()
    try:
        messages = []

        async def one() -> bool:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if message:
                messages.append(json.loads(message["data"]))
            return bool(messages)

        for _ in range(100):
            if await one():
                break
    finally:
        await reporter.stop()
        await pubsub.aclose()
    assert messages[0] == {"service": "mult", "instance": "mult-a", "at": 12.5,
                           "metrics": {"http_requests": [{"route": "/mult", "value": 3}]}}


async def test_a_refused_publish_is_logged_once_and_the_reporter_keeps_going(redis, caplog):
    calls = []

    class Refusing:
        async def publish(self, channel, data):
            calls.append(channel)
            from redis.exceptions import NoPermissionError
            raise NoPermissionError("NOPERM no permissions to access the 'canaduck:stats' channel")

    reporter = StatsReporter(Refusing(), "canaduck:stats", "x", "x-1", 0.01, dict)  # type: ignore[arg-type]
    await reporter.start()
    await wait_until_async(lambda: len(calls) >= 3, timeout=2)
    await reporter.stop()
    assert sum("cannot publish stats" in r.getMessage() for r in caplog.records) == 1


async def test_zero_interval_publishes_nothing(redis):
    reporter = StatsReporter(redis, "canaduck:stats", "x", "x-1", 0, dict)
    await reporter.start()
    await asyncio.sleep(0.02)
    assert not reporter._task.running
    await reporter.stop()


def test_the_stats_channel_is_named_by_the_kit():
    assert Keys().stats == "canaduck:stats"
    assert KitSettings().stats_interval == 1.0

"""The web front on fakeredis: counters and rates, the dashboard's snapshot, the feed, routes."""

import asyncio
import json

import pytest

from apps.kit.directory import Directory, Entry, Listing
from apps.kit.names import Keys
from apps.web import view
from apps.web.app import create_app
from apps.web.counters import Counters
from apps.web.feed import sse
from apps.web.settings import WebSettings
from scripts.devkit.waiting import wait_until_async

KEYS = Keys()


def requests(route: str, n: float) -> dict:
    return {"http_requests": [{"method": "GET", "route": route, "status": "200", "value": n},
                              {"method": "GET", "route": "/health", "status": "200", "value": 1000}]}


def listing(service: str, instance: str, ttl: float | None = 9.5) -> Listing:
    return Listing(Entry(service=service, instance=instance, url=f"http://{instance}",
                         channel=KEYS.inbox(service)), ttl)


# --- counters -----------------------------------------------------------------------------

def test_a_rate_is_the_difference_over_the_window():
    counters = Counters(window=5)
    for second in range(11):
        counters.add("mult/a", 100.0 + second, requests("/mult", second * 3))
    assert counters.total("mult/a", "http_requests") == 1030
    assert counters.rate("mult/a", "http_requests", 110.0, lambda s: s["route"] == "/mult") == 3.0


def test_an_instance_that_restarted_counts_from_zero_and_a_silent_one_is_at_zero():
    counters = Counters(window=5)
    counters.add("mult/a", 100.0, requests("/mult", 500))
    counters.add("mult/a", 102.0, requests("/mult", 4))  # restarted
    assert counters.rate("mult/a", "http_requests", 102.0, lambda s: s["route"] == "/mult") == 2.0
    assert counters.rate("mult/a", "http_requests", 120.0) == 0.0
    assert not counters.reporting("mult/a", 120.0) and counters.reporting("mult/a", 103.0)


def test_an_old_snapshot_arriving_late_is_ignored_and_the_silent_are_forgotten():
    counters = Counters(window=5)
    counters.add("mult/a", 100.0, requests("/mult", 5))
    counters.add("mult/a", 99.0, requests("/mult", 1))
    assert counters.total("mult/a", "http_requests", lambda s: s["route"] == "/mult") == 5
    counters.prune(200.0)
    assert counters.total("mult/a", "http_requests") == 0


# --- the snapshot -------------------------------------------------------------------------

def mult_counters(a: float, b: float, backup: float) -> Counters:
    counters = Counters(window=5)
    for second in range(6):
        for name, per_s in (("a", a), ("b", b), ("backup", backup)):
            counters.add(f"mult/mult-{name}", 100.0 + second, requests("/mult", per_s * second))
    return counters


def test_the_mult_split_is_each_replicas_share_of_the_window():
    listings = [listing("mult", "mult-a"), listing("mult", "mult-b"), listing("mult", "mult-backup")]
    snapshot = view.build(listings, {}, mult_counters(30, 10, 0), 105.0)
    shares = {row["instance"]: (row["share"], row["per_s"]) for row in snapshot["mult"]["replicas"]}
    assert shares == {"mult-a": (0.75, 30.0), "mult-b": (0.25, 10.0), "mult-backup": (0.0, 0.0)}
    backup_only = view.build(listings, {}, mult_counters(0, 0, 8), 105.0)
    assert [r["share"] for r in backup_only["mult"]["replicas"]] == [0.0, 0.0, 1.0]
    idle = view.build(listings, {}, Counters(5), 105.0)
    assert [r["share"] for r in idle["mult"]["replicas"]] == [None, None, None]


def test_instances_show_their_ttl_and_requests_per_second_without_probes():
    counters = mult_counters(4, 0, 0)
    snapshot = view.build([listing("mult", "mult-a", 7.25), listing("directory", "static", None)],
                          {}, counters, 105.0)
    first, static = snapshot["instances"]
    assert (first["ttl"], first["requests_per_s"], first["reporting"]) == (7.25, 4.0, True)
    assert (static["ttl"], static["reporting"]) == (None, False)


def test_broker_cache_and_chat_figures_add_up_over_instances():
    counters = Counters(window=5)
    for second in (0, 4):
        counters.add("broker/b1", 100.0 + second, {"canaduck_relay": [
            {"what": "relayed", "value": 10 * second}, {"what": "undeliverable", "value": 1}]})
        counters.add("aggregator/g1", 100.0 + second, {"canaduck_aggregator": [
            {"what": "hit", "value": 9 * second}, {"what": "miss", "value": 4}]})
        for gateway, connections in (("ircd-1", 3), ("ircd-2", 5)):
            counters.add(f"ircd/{gateway}", 100.0 + second, {
                "canaduck_irc_connections": [{"value": connections}],
                "canaduck_irc": [{"what": "connections", "value": 100},
                                 {"what": "posted", "value": 2 * second},
                                 {"what": "messages", "value": 6 * second}]})
    listings = [listing("aggregator", "g1"), listing("broker", "b1"), listing("ircd", "ircd-1"),
                listing("ircd", "ircd-2")]
    snapshot = view.build(listings, {}, counters, 104.0)
    assert snapshot["broker"]["relayed"] == 40 and snapshot["broker"]["relayed_per_s"] == 10.0
    assert snapshot["broker"]["undeliverable"] == 1
    assert snapshot["cache"]["hit"] == 36 and snapshot["cache"]["miss"] == 4
    assert snapshot["cache"]["hit_ratio"] == 0.9 and snapshot["cache"]["hit_per_s"] == 9.0
    assert snapshot["chat"]["connections"] == 8 and snapshot["chat"]["messages_per_s"] == 4.0
    assert snapshot["chat"]["deliveries_per_s"] == 12.0
    assert [g["instance"] for g in snapshot["chat"]["gateways"]] == ["ircd-1", "ircd-2"]


def test_the_rally_is_the_players_scoreboard_summary():
    state = json.dumps({"status": "playing", "rally": 7, "hit": 12, "updated_at": 100.0,
                        "rtt_us": [1000, 3000], "shots_per_s": 4.0})
    rally = {b"rallies": b"7", b"transport": b"broker", b"ping:state": state.encode(),
             b"pong:misses": b"2"}
    summary = view.build([], rally, Counters(5), 101.0)["rally"]
    assert summary["current_rally"] == {"id": 7, "hits": 12}
    assert summary["round_trip_ms"]["p99"] == 3.0 and summary["players"]["pong"]["misses"] == 2


# --- the feed -----------------------------------------------------------------------------

@pytest.fixture
def app(redis):
    return create_app(WebSettings(instance_id="web-1", feed_interval=0.05, stats_interval=0), redis=redis)


def test_an_sse_message_is_one_event_and_one_data_line():
    assert sse("snapshot", {"a": 1}) == 'event: snapshot\ndata: {"a":1}\n\n'


async def test_a_killed_instance_is_reported_expired_and_a_withdrawn_one_is_not(app, redis, started):
    directory = Directory(redis, KEYS, 10)
    killed = Entry(service="calc", instance="calc-2", url="http://x", channel=KEYS.inbox("calc"))
    left = Entry(service="calc", instance="calc-3", url="http://y", channel=KEYS.inbox("calc"))
    feed = app.extensions["feed"]
    async with started(app):
        await directory.register(killed)
        await directory.register(left)
        await wait_until_async(lambda: feed.latest and len(feed.latest["instances"]) == 3, timeout=3)
        queue = feed.connect()
        await redis.hdel(KEYS.directory("calc"), killed.instance)  # what its TTL running out does
        await directory.deregister("calc", "calc-3")
        await redis.publish(KEYS.events, json.dumps(
            {"kind": "deregistered", "service": "calc", "instance": "calc-3", "at": 1.0}))
        await wait_until_async(lambda: any(e["kind"] == "expired" for e in feed.events), timeout=3)
        await asyncio.sleep(0.2)
        kinds = [(e["kind"], e.get("instance")) for e in feed.events]
        assert ("expired", "calc-2") in kinds and ("expired", "calc-3") not in kinds
        assert ("deregistered", "calc-3") in kinds
        assert [i["instance"] for i in feed.latest["instances"]] == ["web-1"]
        messages = [queue.get_nowait() for _ in range(queue.qsize())]
        assert any(m.startswith("event: event\n") and '"expired"' in m for m in messages)
        feed.disconnect(queue)


async def test_stats_reach_the_snapshot_and_junk_is_ignored(app, redis, started):
    feed = app.extensions["feed"]
    async with started(app):
        await wait_until_async(lambda: feed.latest is not None, timeout=3)
        for junk in (b"not json", b"[1]", b'{"service": "x"}', b'{"kind": 3}'):
            await feed.on_message(KEYS.stats, junk)
            await feed.on_message(KEYS.events, junk)
        for at, value in ((100.0, 0), (101.0, 5)):
            await feed.on_message(KEYS.stats, json.dumps(
                {"service": "web", "instance": "web-1", "at": at, "metrics": requests("/", value)}).encode())
        assert feed.counters.total("web/web-1", "http_requests", lambda s: s["route"] == "/") == 5
        assert list(feed.events) == []


async def test_a_slow_browser_keeps_only_the_newest_messages(app, started):
    feed = app.extensions["feed"]
    queue = feed.connect()
    for n in range(200):
        feed.broadcast("event", {"kind": "n", "n": n})
    assert queue.qsize() == app.settings.feed_queue
    last = [queue.get_nowait() for _ in range(queue.qsize())][-1]
    assert '"n":199' in last


async def test_the_feed_route_streams_server_sent_events(app, started):
    async with started(app) as client:
        feed = app.extensions["feed"]
        await wait_until_async(lambda: feed.latest is not None, timeout=3)
        async with client.request("/dashboard/feed") as connection:
            chunks = []
            while not any("event: snapshot" in c for c in chunks):
                chunks.append((await asyncio.wait_for(connection.receive(), 3)).decode())
            await connection.disconnect()
        assert chunks[0].startswith("retry: ")
        snapshot = next(c for c in chunks if "event: snapshot" in c)
        body = json.loads(snapshot.split("data: ", 1)[1])
        assert body["redis"] is True and body["instances"][0]["service"] == "web"


async def test_pages_are_served_with_a_strict_content_security_policy(app, started):
    async with started(app) as client:
        for path, marker in (("/", "chat.js"), ("/dashboard", "dashboard.js")):
            response = await client.get(path)
            assert response.status_code == 200
            assert marker in (await response.get_data(as_text=True))
            assert "script-src 'self'" in response.headers["Content-Security-Policy"]
        for asset in ("/static/dashboard.js", "/static/dom.js", "/static/site.css", "/static/chat.js",
                      "/static/irc.js"):
            assert (await client.get(asset)).status_code == 200
        missing = await client.get("/static/nope.js")
        assert missing.status_code == 404 and (await missing.get_json())["status"] == 404
        too_long = await client.get("/static/" + "x" * 300)  # more than a file name can be
        assert too_long.status_code == 404 and (await too_long.get_json())["status"] == 404

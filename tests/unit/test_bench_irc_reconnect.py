"""The reconnect scenario's parts that need no server: the backoff, the plans, how a roaming
client reads its lines and what it asks for, and the InspIRCd config it is measured against."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from scripts.devkit.inspircd import LINK_PASSWORD, Node, render_config
from scripts.devkit.ircroam import PER_SOURCE, Backoff, Roamer, RoamPlan, Tally, roam_plans, tag


def test_the_backoff_doubles_its_ceiling_up_to_the_cap_with_full_jitter():
    clients = [Backoff(1.0, 10.0, random.Random(seed)) for seed in range(200)]
    for attempt, ceiling in enumerate([1, 2, 4, 8, 10, 10]):
        waits = [client.delay() for client in clients]
        assert all(0 <= x <= ceiling for x in waits), attempt
        assert min(waits) < ceiling * 0.2 and max(waits) > ceiling * 0.8  # spread, not bunched


def test_tags_are_read_by_key():
    tags = b"@batch=7;msgid=1700000000000-3;time=2026-12-05T05:00:00.000Z"
    assert tag(tags, b"msgid") == b"1700000000000-3"
    assert tag(tags, b"time") == b"2026-12-05T05:00:00.000Z"
    assert tag(tags, b"account") == b""


def plan(count: int = 60) -> list[RoamPlan]:
    return roam_plans(count, 20, lambda i: [7000 + i % 2], 10, 3, 2)


def test_the_plans_split_clients_over_workers_in_rooms_with_one_schedule():
    plans = plan()
    assert sorted(i for p in plans for i in p.nicks) == list(range(60))
    assert set(plans[0].nicks) == set(range(0, 60, 2))
    assert {p.channels[i] for p in plans for i in p.channels} == {"#roam0", "#roam1", "#roam2"}
    assert plans[0].schedule == plans[1].schedule and len(plans[0].schedule) == 30
    for msg_id, _offset, sender, channel in plans[0].schedule:
        owner = next(p for p in plans if sender in p.channels)
        assert owner.channels[sender] == channel, msg_id


def test_a_source_address_serves_at_most_per_source_clients():
    plans = roam_plans(PER_SOURCE + 20, 20, lambda i: [7000], 1, 1, 2)
    sources = {p.sources[i] for p in plans for i in p.sources}
    assert sources == {"127.0.0.1", "127.0.0.2"}


class Wire:
    """A stand-in connection: what the roamer writes."""

    def __init__(self) -> None:
        self.out = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.out += data


def roamer() -> tuple[Roamer, Wire, Tally]:
    tally = Tally()
    r = Roamer(0, plan()[0], tally, random.Random(0))
    wire = Wire()
    r.link = wire  # type: ignore[assignment]
    return r, wire, tally


def feed(r: Roamer, raw: bytes) -> None:
    tags, _, line = raw.partition(b" ") if raw.startswith(b"@") else (b"", b"", raw)
    r.line(tags, line)


def test_it_asks_for_what_the_server_offers_of_what_it_wants():
    r, wire, _ = roamer()
    feed(r, b":srv CAP * LS * :message-tags server-time sasl=PLAIN")
    assert wire.out == b""  # more to come
    feed(r, b":srv CAP * LS :batch draft/chathistory away-notify")
    assert wire.out == b"CAP REQ :message-tags server-time batch draft/chathistory\r\nCAP END\r\n"


def test_a_nick_held_by_its_ghost_takes_an_alternate_one():
    async def scenario() -> None:
        r, wire, _ = roamer()
        r.registered = asyncio.get_running_loop().create_future()
        feed(r, b":srv 433 * rc0 :Nickname is already in use")
        assert wire.out == b"NICK rc0_1\r\n" and r.alternate_nicks == 1
        feed(r, b":srv 001 rc0_1 :Welcome")
        assert r.nick == "rc0_1" and r.registered.done()

    asyncio.run(scenario())


def test_deliveries_live_and_from_history_count_once_and_move_its_place():
    r, _, tally = roamer()
    line = b"@msgid=100-1;time=x :rc2!u@h PRIVMSG #roam0 :bench 5 1"
    feed(r, line)
    feed(r, b"@batch=b1;msgid=100-1 :rc2!u@h PRIVMSG #roam0 :bench 5 1")
    feed(r, b"@batch=b1;msgid=101-0 :rc4!u@h PRIVMSG #roam0 :bench 6 1")
    assert r.received == {5, 6} and r.recovered == {6}
    assert len(tally.latencies_ms) == 1  # history is not a live delivery
    assert r.ref == "msgid=100-1"
    feed(r, b"@msgid=102-0 :rc0!u@h PRIVMSG #roam0 :bench 7 1")  # its own, echoed: taken
    assert r.acked == {7} and 7 not in r.received and r.ref == "msgid=102-0"


def test_a_full_history_page_asks_for_the_next_one():
    async def scenario() -> None:
        r, wire, _ = roamer()
        r.plan.history_limit = 2
        r.caps = {"draft/chathistory"}
        r.ref = "msgid=1-0"
        r.dropped_at = 1.0
        r.joined = asyncio.get_running_loop().create_future()
        r.nick = "rc0_1"
        feed(r, b"@time=t :rc0_1!u@h JOIN #roam0")
        assert r.back_at and wire.out == b"CHATHISTORY AFTER #roam0 msgid=1-0 2\r\n"
        wire.out = b""
        feed(r, b":srv BATCH +b1 chathistory #roam0")
        feed(r, b"@batch=b1;msgid=2-0 :rc2!u@h PRIVMSG #roam0 :bench 1 1")
        feed(r, b"@batch=b1;msgid=3-0 :rc2!u@h PRIVMSG #roam0 :bench 2 1")
        feed(r, b":srv BATCH -b1")
        assert wire.out == b"CHATHISTORY AFTER #roam0 msgid=3-0 2\r\n" and not r.filled_at
        feed(r, b":srv BATCH +b2 chathistory #roam0")
        feed(r, b"@batch=b2;msgid=4-0 :rc2!u@h PRIVMSG #roam0 :bench 3 1")
        feed(r, b":srv BATCH -b2")
        assert r.filled_at and r.ref == "msgid=4-0" and r.recovered == {1, 2, 3}

    asyncio.run(scenario())


def test_the_inspircd_config_links_each_server_on_loopback_without_clone_limits(tmp_path: Path):
    hub, leaf = Node(1, 7001, 7101), Node(2, 7002, 7102)
    config = render_config(leaf, [hub], tmp_path, 19000)
    assert '<bind address="127.0.0.1" port="7002" type="clients">' in config
    assert '<bind address="127.0.0.1" port="7102" type="servers">' in config
    assert f'<link name="{hub.name}" ipaddr="127.0.0.1" port="7101" allowmask="127.0.0.0/8"' in config
    assert f'sendpass="{LINK_PASSWORD}" recvpass="{LINK_PASSWORD}"' in config
    assert f'<autoconnect period="1s" server="{hub.name}">' in config
    assert 'localmax="19000" globalmax="19000"' in config and 'softlimit="19000"' in config
    assert '<module name="spanningtree">' in config and 'id="2AA"' in config
    assert "autoconnect" not in render_config(hub, [leaf], tmp_path, 19000)  # one side dials


def test_a_history_refused_for_a_moment_is_asked_again_from_where_the_gap_starts():
    async def scenario() -> None:
        r, wire, tally = roamer()
        r.caps = {"draft/chathistory"}
        r.ref, r.dropped_at, r.nick = "msgid=1-0", 1.0, "rc0_1"
        r.joined = asyncio.get_running_loop().create_future()
        feed(r, b"@time=t :rc0_1!u@h JOIN #roam0")
        wire.out = b""
        feed(r, b":srv 400 rc0_1 CHATHISTORY :Server state unavailable; try again")
        feed(r, b"@msgid=9-0 :rc2!u@h PRIVMSG #roam0 :bench 9 1")  # live, past the gap
        assert wire.out == b"" and tally.retries == 1
        await asyncio.sleep(1.1)  # not from the live message: the gap is before it
        assert wire.out == b"CHATHISTORY AFTER #roam0 msgid=1-0 100\r\n"

    asyncio.run(scenario())


def test_live_messages_do_not_move_its_place_while_its_gap_is_open():
    async def scenario() -> None:
        r, _, _ = roamer()
        r.caps = {"draft/chathistory"}
        r.ref, r.dropped_at, r.nick = "msgid=1-0", 1.0, "rc0_1"
        r.joined = asyncio.get_running_loop().create_future()
        feed(r, b"@time=t :rc0_1!u@h JOIN #roam0")
        feed(r, b"@msgid=9-0 :rc2!u@h PRIVMSG #roam0 :bench 9 1")  # live, the gap not filled yet
        assert r.away and r.ref == "msgid=1-0"  # dropping again now must not skip the gap
        feed(r, b":srv BATCH +b1 chathistory #roam0")
        feed(r, b"@batch=b1;msgid=5-0 :rc2!u@h PRIVMSG #roam0 :bench 5 1")
        feed(r, b":srv BATCH -b1")
        assert not r.away and r.ref == "msgid=9-0" and r.received == {5, 9}

    asyncio.run(scenario())

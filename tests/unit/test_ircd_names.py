"""NAMES: members read a slice at a time (four fields of each user), one read shared by the NAMES
of a channel waiting for it and a bounded number of reads at once per replica, the same lines
as a reply built from whole records; and the IRCv3 no-implicit-names capability. On fakeredis
over loopback sockets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest

from apps.chat.casemap import casefold
from apps.chat.records import Channel, Status, User
from apps.ircd import names
from apps.ircd.client import Client
from apps.ircd.names import Member, MemberReads
from apps.ircd.operations import queries
from apps.ircd.protocol import MAX_LINE
from apps.ircd.server import IrcServer
from apps.ircd.store import Store
from apps.ircd.store import users as users_store
from tests.unit.ircd_support import AtOnce, commands, connect, running_gateway

#: Members of the large channel: several slices of the small chunk the tests set, not a multiple.
LARGE = 123
CHUNK = 10


@pytest.fixture
async def gateway() -> AsyncIterator[IrcServer]:
    async with running_gateway() as server:
        yield server


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(names, "NAMES_CHUNK", CHUNK)


def member(index: int) -> User:
    """A user with a long realname, an account and an away message: fields NAMES never shows."""
    return User(uid=f"u{index:03d}", nick=f"nick{index:03d}", username=f"user{index}",
                host=f"h{index}.example", realname="r" * 200, account=f"acct{index}", away="gone" * 20,
                modes="i" if index % 5 == 0 else "", instance="elsewhere", signon=1_800_000_000)


def status_of(index: int) -> Status:
    return Status(("ov", "o", "v", "", "")[index % 5])


async def seed(store: Store, cf: str, name: str, count: int, *, modes: str = "nt") -> list[User]:
    """A channel of `count` users written straight into Redis, as other replicas would have."""
    users = [member(i) for i in range(count)]
    for user in users:
        await store.register_user(user, "", casefold(user.nick))
    await store.redis.hset(store.keys.channel(cf), mapping=Channel(name, 1.0, modes=modes).to_redis())  # type: ignore[arg-type]
    await store.redis.hset(store.keys.channel_members(cf),
                           mapping={user.uid: status_of(i).to_redis()  # type: ignore[misc]
                                    for i, user in enumerate(users)})
    return users


def reference(server: str, nick: str, display: str, channel: Channel, seen: list[tuple[User, Status]],
              caps: set[str]) -> list[str]:
    """The 353 lines as NAMES built them from whole records, all at once, before slices."""
    every, hostmasks = "multi-prefix" in caps, "userhost-in-names" in caps
    entries = [status.symbols(every) + (user.prefix if hostmasks else user.nick) for user, status in seen]
    symbol = "@" if channel.hidden else "="
    overhead = len(f":{server} 353 {nick} {symbol} {display} :") + 2
    lines: list[str] = []
    line: list[str] = []
    for entry in entries:
        if line and overhead + len(" ".join([*line, entry]).encode()) > MAX_LINE:
            lines.append(f":{server} 353 {nick} {symbol} {display} :{' '.join(line)}")
            line = []
        line.append(entry)
    if line:
        lines.append(f":{server} 353 {nick} {symbol} {display} :{' '.join(line)}")
    return lines


def viewer(uid: str) -> Client:
    return cast(Client, SimpleNamespace(uid=uid))


async def members_seen(gateway: IrcServer, uid: str, channel: Channel) -> list[Member] | None:
    """The members `visible_members` gives a client of `uid` (None: nothing)."""
    roll = await queries.visible_members(gateway.ctx, viewer(uid), "#big", channel)
    return None if roll is None else roll.members


# -- the store -------------------------------------------------------------------------------------

@pytest.mark.parametrize("cluster", [False, True], ids=["one script", "a cluster's pipeline"])
async def test_names_users_reads_only_what_names_needs_and_none_for_a_user_gone(
        gateway: IrcServer, cluster: bool, monkeypatch: pytest.MonkeyPatch):
    # One Redis reads a slice in one script; a cluster, whose script keys must share a slot,
    # in a pipeline of HMGETs: the same answer either way.
    monkeypatch.setattr(users_store, "is_cluster", lambda redis: cluster)
    store = gateway.store
    users = await seed(store, "#big", "#Big", 3)
    found = await store.names_users(["u000", "nobody", "u002"])
    assert found[1] is None
    first = found[0]
    assert first is not None and (first.uid, first.nick, first.username, first.host, first.modes) == \
        ("u000", "nick000", "user0", "h0.example", "i")
    assert first.invisible and first.prefix == users[0].prefix
    assert (first.realname, first.account, first.away, first.instance) == ("", "", "", "")


async def test_member_statuses_are_the_raw_members_hash(gateway: IrcServer):
    await seed(gateway.store, "#big", "#Big", 4)
    statuses = await gateway.store.member_statuses("#big")
    assert statuses == {b"u000": b"ov", b"u001": b"o", b"u002": b"v", b"u003": b""}
    assert await gateway.store.member_statuses("#none") == {}


# -- the operation: slices, statuses, invisible members --------------------------------------------

async def test_a_channel_larger_than_a_slice_is_read_a_slice_at_a_time(gateway: IrcServer, small_chunks: None,
                                                                      monkeypatch: pytest.MonkeyPatch):
    store = gateway.store
    users = await seed(store, "#big", "#Big", LARGE)
    asked: list[int] = []
    names_users = store.names_users

    async def counted(uids: Any) -> list[User | None]:
        asked.append(len(uids))
        return await names_users(uids)

    monkeypatch.setattr(store, "names_users", counted)
    found = await members_seen(gateway, "u001", Channel("#Big"))
    assert found is not None and asked == [10] * 12 + [3]
    seen = {m.user.uid: m for m in found}
    assert len(seen) == LARGE  # a member: it sees the invisible ones too
    for i, user in enumerate(users):
        assert seen[user.uid].status == status_of(i) and seen[user.uid].user.nick == user.nick


async def test_an_outsider_sees_no_invisible_member_and_nothing_of_a_secret_channel(gateway: IrcServer,
                                                                                   small_chunks: None):
    store = gateway.store
    await seed(store, "#big", "#Big", LARGE)
    found = await members_seen(gateway, "outsider", Channel("#Big"))
    assert found is not None
    nicks = [m.user.nick for m in found]
    assert len(nicks) == LARGE - len(range(0, LARGE, 5)) and "nick000" not in nicks and "nick001" in nicks
    assert await members_seen(gateway, "outsider", Channel("#Big", modes="s")) is None


async def test_members_whose_record_is_gone_are_left_out(gateway: IrcServer, small_chunks: None):
    store = gateway.store
    users = await seed(store, "#big", "#Big", LARGE)
    await store.delete_user(users[12])
    found = await members_seen(gateway, "u001", Channel("#Big"))
    assert found is not None and len(found) == LARGE - 1 and users[12].uid not in {m.user.uid for m in found}


# -- on the wire: the same lines as before ---------------------------------------------------------

@pytest.mark.parametrize("caps", ["", "multi-prefix", "userhost-in-names", "multi-prefix userhost-in-names"])
async def test_names_lines_are_those_built_from_whole_records(gateway: IrcServer, small_chunks: None,
                                                              caps: str):
    store = gateway.store
    users = await seed(store, "#big", "#Big", LARGE)
    client = await connect(gateway)
    await client.register("carol", caps=caps)
    await client.send("NAMES #big")
    got = await client.sync()
    channel = Channel("#Big", modes="nt")
    order = [uid.decode() for uid in await store.member_statuses("#big")]
    by_uid = {user.uid: (user, status_of(i)) for i, user in enumerate(users)}
    visible = [by_uid[uid] for uid in order if not by_uid[uid][0].invisible]  # carol is outside
    expected = reference("irc.test", "carol", "#Big", channel, visible, set(caps.split()))
    assert [line for line in got if " 353 " in line] == expected
    assert len(expected) > 1 and all(len(line.encode()) + 2 <= MAX_LINE for line in expected)
    assert got[-1] == ":irc.test 366 carol #big :End of /NAMES list"
    await client.close()


async def test_the_implicit_names_of_a_join_shows_the_joiner_and_the_invisible_members(gateway: IrcServer,
                                                                                        small_chunks: None):
    store = gateway.store
    users = await seed(store, "#big", "#Big", LARGE)
    client = await connect(gateway)
    await client.register("carol", caps="multi-prefix")
    await client.send("JOIN #big")
    got = await client.sync()
    assert commands(got) == ["JOIN", *["353"] * (len(got) - 2), "366"]
    names = {word for line in got if " 353 " in line for word in line.split(" :", 1)[1].split()}
    assert names == {"carol"} | {status_of(i).symbols(True) + user.nick for i, user in enumerate(users)}
    await client.close()


async def test_a_secret_channel_shows_its_symbol_to_members_and_nothing_to_outsiders(gateway: IrcServer,
                                                                                     small_chunks: None):
    await seed(gateway.store, "#hide", "#Hide", LARGE, modes="nst")
    outsider = await connect(gateway)
    await outsider.register("dave")
    await outsider.send("NAMES #hide")
    assert commands(await outsider.sync()) == ["366"]
    await outsider.send("JOIN #hide")
    got = await outsider.sync()
    assert all(line.startswith(":irc.test 353 dave @ #Hide :") for line in got if " 353 " in line)
    assert sum(len(line.split(" :", 1)[1].split()) for line in got if " 353 " in line) == LARGE + 1
    await outsider.close()


# -- a storm of joins: one read for the NAMES waiting, a bounded number of reads at once ----------

async def test_the_names_of_a_channel_waiting_together_share_one_read(gateway: IrcServer,
                                                                     monkeypatch: pytest.MonkeyPatch):
    store = gateway.store
    await seed(store, "#big", "#Big", LARGE)
    reads = 0
    member_statuses = store.member_statuses

    async def counted(cf: str) -> dict[bytes, bytes]:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.05)
        return await member_statuses(cf)

    monkeypatch.setattr(store, "member_statuses", counted)
    clients = [await connect(gateway) for _ in range(6)]
    for i, client in enumerate(clients):
        await client.register(f"c{i}")
    await asyncio.gather(*(client.send("NAMES #big") for client in clients))
    for client in clients:
        got = await client.sync()
        assert commands(got)[-1] == "366" and "353" in commands(got)
    assert reads <= 2  # the first NAMES' read, then one for all that came during it
    for client in clients:
        await client.close()


async def test_a_read_starts_after_the_call_so_a_joiner_finds_itself(gateway: IrcServer):
    store = gateway.store
    await seed(store, "#big", "#Big", 3)
    reads = MemberReads(store, 2)
    first = asyncio.ensure_future(reads.members("#big"))
    await asyncio.sleep(0)  # the first read is under way
    await store.redis.hset(store.keys.channel_members("#big"), "u999", "")
    await store.register_user(member(999), "", "nick999")
    second = await reads.members("#big")
    assert "u999" in second.uids and len(second.members) == 4
    assert len((await first).members) in (3, 4)


async def test_reads_of_different_channels_are_bounded(gateway: IrcServer):
    store = gateway.store
    for i in range(5):
        await seed(store, f"#c{i}", f"#C{i}", 3)
    statuses = AtOnce(store, "member_statuses")
    reads = MemberReads(store, 2)
    rolls = await asyncio.gather(*(reads.members(f"#c{i}") for i in range(5)))
    assert statuses.most == 2 and all(len(roll.members) == 3 for roll in rolls)


async def test_a_failed_read_fails_its_names_and_the_next_one_reads_again(gateway: IrcServer,
                                                                          monkeypatch: pytest.MonkeyPatch):
    store = gateway.store
    await seed(store, "#big", "#Big", 3)
    reads = MemberReads(store, 2)
    member_statuses = store.member_statuses

    async def broken(cf: str) -> dict[bytes, bytes]:
        raise ConnectionError("Redis went away")

    monkeypatch.setattr(store, "member_statuses", broken)
    with pytest.raises(ConnectionError):
        await reads.members("#big")
    monkeypatch.setattr(store, "member_statuses", member_statuses)
    assert len((await reads.members("#big")).members) == 3


def test_a_rolls_texts_fill_each_line_and_are_made_once_for_every_names_it_serves():
    members = [Member(User(f"u{i}", f"nick{i:02}", "user", "host"), Status("ov" if i == 0 else ""))
               for i in range(30)]
    roll = names.Roll(members, frozenset(m.user.uid for m in members))
    texts = roll.texts(False, False, 40)
    assert texts[0] == "@nick00 nick01 nick02 nick03 nick04"  # 35 bytes: one more is 42
    assert " ".join(texts).split() == ["@nick00", *(f"nick{i:02}" for i in range(1, 30))]
    assert all(len(text) <= 40 for text in texts)
    assert roll.texts(False, False, 40) is texts  # the next joiner's reply: no new work
    assert roll.texts(True, True, 400)[0].startswith("@+nick00!user@host nick01!user@host")


# -- no-implicit-names (https://ircv3.net/specs/extensions/no-implicit-names) -----------------------

async def test_no_implicit_names_is_offered(gateway: IrcServer):
    client = await connect(gateway)
    await client.send("CAP LS 302")
    got = await client.sync()
    assert any(" LS " in line and "no-implicit-names" in line.split(" :", 1)[1].split() for line in got)
    await client.close()


async def test_no_implicit_names_drops_the_names_reply_of_a_join_not_of_names(gateway: IrcServer):
    """"When negotiated, servers MUST NOT send an implicit NAMES reply after sending a JOIN
    message. Servers MUST reply to explicit NAMES commands sent by the client as usual." """
    alice, bob = await connect(gateway), await connect(gateway)
    await alice.register("alice")
    assert "CAP" in commands(await bob.register("bob", caps="no-implicit-names"))
    await alice.send("JOIN #x", "TOPIC #x :hello")
    await alice.sync()
    await bob.send("JOIN #x")
    assert commands(await bob.sync()) == ["JOIN", "332", "333"]  # the topic still comes
    await bob.send("NAMES #x")
    got = await bob.sync()
    assert got == [":irc.test 353 bob = #x :@alice bob", ":irc.test 366 bob #x :End of /NAMES list"]
    await alice.sync()  # bob's JOIN
    await alice.send("JOIN #y")
    assert commands(await alice.sync()) == ["JOIN", "353", "366"]  # only who asked for it
    await bob.send("CAP REQ :-no-implicit-names", "JOIN #y")
    assert commands(await bob.sync()) == ["CAP", "JOIN", "353", "366"]
    await alice.close()
    await bob.close()

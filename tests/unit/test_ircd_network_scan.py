"""The two commands that read the whole network (apps/ircd/operations/queries.py), WHO with a
mask (every user) and LIST (every channel): read a slice at a time, one at a time on a replica
(another is told 263, try again), WHO answering at most WHO_LIMIT users (then 416), so that
one client cannot make a replica read every record over and over."""

from __future__ import annotations

import asyncio

import pytest

from apps.ircd.errors import TryAgain
from apps.ircd.scanturns import ScanTurns
from tests.unit.ircd_support import Clock, LineClient, commands, connect, running_gateway


async def registered(gateway: object, nick: str, *commands_first: str) -> LineClient:
    client = await connect(gateway)  # type: ignore[arg-type]
    await client.register(nick)
    if commands_first:
        await client.send(*commands_first)
    await client.sync()
    return client


def who_nicks(lines: list[str]) -> list[str]:
    """The nicks of the 352 replies, in their order."""
    return [line.split()[7] for line in lines if line.split()[1:2] == ["352"]]


async def test_a_mask_reads_every_slice_and_hides_the_invisible_it_does_not_share_a_channel_with() -> None:
    async with running_gateway(scan_slice=2) as gateway:
        clients = [await registered(gateway, "alice"), await registered(gateway, "bob"),
                   await registered(gateway, "carol", "MODE carol +i", "JOIN #c"),
                   await registered(gateway, "dave", "MODE dave +i", "JOIN #other")]
        eve = await registered(gateway, "eve", "JOIN #c")
        await eve.send("WHO *")
        replies = await eve.sync()
        assert sorted(who_nicks(replies)) == ["alice", "bob", "carol", "eve"]  # not dave
        assert commands(replies)[-1] == "315" and "416" not in commands(replies)
        await eve.send("WHO a*", "WHO *!~dave@*")
        replies = await eve.sync()
        assert who_nicks(replies) == ["alice"]
        assert commands(replies).count("315") == 2
        for client in [*clients, eve]:
            await client.close()


async def test_a_mask_matching_more_than_who_limit_answers_that_many_then_416() -> None:
    async with running_gateway(who_limit=3, scan_slice=2) as gateway:
        clients = [await registered(gateway, nick) for nick in ("a1", "a2", "a3", "a4", "b1", "b2", "b3")]
        asker = clients[0]
        await asker.send("WHO a*")
        replies = await asker.sync()
        assert len(who_nicks(replies)) == 3
        assert commands(replies)[-2:] == ["416", "315"]
        assert any(line.endswith(" 416 a1 WHO :Output too large, truncated") for line in replies)
        await asker.send("WHO b*")  # exactly as many as it may answer: all, and nothing said cut
        replies = await asker.sync()
        assert sorted(who_nicks(replies)) == ["b1", "b2", "b3"]
        assert "416" not in commands(replies)
        for client in clients:
            await client.close()


async def test_a_second_mask_while_one_reads_the_network_is_told_to_try_again() -> None:
    async with running_gateway() as gateway:
        bob = await registered(gateway, "bob")
        async with gateway.ctx.network_scans.turn("WHO"):  # another client's WHO * is reading
            await bob.send("WHO *", "WHO bob", "WHO #none")
            replies = await bob.sync()
        assert any(line.endswith(" 263 bob WHO :Please wait a while and try again.") for line in replies)
        assert "352" in commands(replies)  # WHO of a nick or a channel does not scan: answered
        await bob.send("WHO *")
        assert who_nicks(await bob.sync()) == ["bob"]
        await bob.close()


def listed(lines: list[str]) -> list[str]:
    """The channels of the 322 replies, in their order."""
    return [line.split()[3] for line in lines if line.split()[1:2] == ["322"]]


async def test_list_reads_every_slice_in_order_and_hides_a_secret_channel_from_outsiders() -> None:
    async with running_gateway(scan_slice=2) as gateway:
        owner = await registered(gateway, "owner", "JOIN #e,#b,#d,#a,#secret", "MODE #secret +s")
        bob = await registered(gateway, "bob", "JOIN #c")
        await bob.send("LIST")
        replies = await bob.sync()
        assert listed(replies) == ["#a", "#b", "#c", "#d", "#e"]
        assert commands(replies)[-1] == "323"
        await owner.send("LIST")
        assert "#secret" in listed(await owner.sync())
        await owner.close()
        await bob.close()


async def test_a_list_of_everything_while_a_scan_runs_is_told_to_try_again_a_named_one_is_not() -> None:
    async with running_gateway() as gateway:
        bob = await registered(gateway, "bob", "JOIN #c")
        async with gateway.ctx.network_scans.turn("WHO"):
            await bob.send("LIST", "LIST #c")
            replies = await bob.sync()
        assert any(line.endswith(" 263 bob LIST :Please wait a while and try again.") for line in replies)
        assert listed(replies) == ["#c"]
        await bob.close()


async def test_after_a_scan_the_next_waits_as_long_as_it_took_and_one_meanwhile_is_refused() -> None:
    # Scans back to back take at most half of a replica's time; a client's WHO and LIST sent
    # together both run, the second after the first one's rest.
    clock = Clock(100.0)
    turns = ScanTurns(clock)
    async with turns.turn("WHO"):
        clock.now += 0.2  # this scan took 0.2 s
    loop = asyncio.get_running_loop()
    asked = loop.time()
    async with turns.turn("LIST"):
        waited = loop.time() - asked
        with pytest.raises(TryAgain):
            async with turns.turn("WHO"):
                pass
    assert waited >= 0.19

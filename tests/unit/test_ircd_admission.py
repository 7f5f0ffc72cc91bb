"""Connections under load: registrations served a few at a time, oldest connection first
(apps/ircd/admission.py), and the door shut while the event loop lags (apps/ircd/listeners.py)."""

from __future__ import annotations

import asyncio
import resource

import pytest

from apps.ircd.admission import RegistrationTurns, connection_limit
from apps.ircd.server import IrcServer
from apps.ircd.settings import IrcdSettings
from apps.ircd.store.users import NickClaim
from tests.unit.ircd_support import commands, connect, running_gateway


async def test_a_free_turn_is_taken_at_once_and_a_turn_given_back_goes_to_the_oldest_connection() -> None:
    turns = RegistrationTurns(1)
    await turns.enter(since=50.0)  # free: no wait
    order: list[str] = []

    async def command(name: str, since: float) -> None:
        await turns.enter(since)
        order.append(name)
        turns.leave()

    newer = asyncio.create_task(command("newer", since=20.0))
    await asyncio.sleep(0)
    older = asyncio.create_task(command("older", since=10.0))  # asks second, connected first
    await asyncio.sleep(0)
    assert turns.waiting == 2 and not order
    turns.leave()
    await asyncio.gather(newer, older)
    assert order == ["older", "newer"]
    await turns.enter(since=60.0)  # every turn came back: free again
    turns.leave()


async def test_a_waiter_that_gave_up_is_passed_over_and_a_turn_handed_to_one_giving_up_is_passed_on():
    turns = RegistrationTurns(1)
    await turns.enter(since=1.0)
    gone = asyncio.create_task(turns.enter(since=2.0))
    await asyncio.sleep(0)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    handed = asyncio.create_task(turns.enter(since=3.0))
    last = asyncio.create_task(turns.enter(since=4.0))
    await asyncio.sleep(0)
    turns.leave()  # passes over the one gone, to `handed`...
    handed.cancel()  # ...which gives up in the same moment: the turn goes on to `last`
    with pytest.raises(asyncio.CancelledError):
        await handed
    await asyncio.wait_for(last, 1)
    assert turns.waiting == 0
    turns.leave()


class HeldClaim:
    """The gateway's nick claims, recorded; the claim of `nick` holds its command (and so its
    registration turn) until `release()`."""

    def __init__(self, gateway: IrcServer, nick: str = "first") -> None:
        self.claimed: list[str] = []
        self._holding, self._released = asyncio.Event(), asyncio.Event()
        claim_nick = gateway.store.claim_nick

        async def claim(nick_cf: str, uid: str) -> NickClaim:
            self.claimed.append(nick_cf)
            if nick_cf == nick:
                self._holding.set()
                await self._released.wait()
            return await claim_nick(nick_cf, uid)

        gateway.store.claim_nick = claim  # type: ignore[method-assign]

    async def holding(self) -> None:
        """Until the held claim has started."""
        await asyncio.wait_for(self._holding.wait(), 3)

    def release(self) -> None:
        self._released.set()


async def test_registrations_wait_their_turn_while_registered_clients_are_served():
    async with running_gateway(irc_registrations_at_once=1) as gateway:
        bob = await connect(gateway)
        await bob.register("bob")
        claims = HeldClaim(gateway)
        first, second = await connect(gateway), await connect(gateway)
        await first.send("NICK first", "USER first 0 * :First")
        await claims.holding()
        await second.send("NICK second", "USER second 0 * :Second")
        with pytest.raises(TimeoutError):  # its turn has not come: not even its PING is answered
            await second.sync(timeout=0.3)
        await bob.send("PING :still-here")
        assert commands(await bob.sync()) == ["PONG"]  # a registered client is not held up
        claims.release()
        assert "001" in commands(await first.sync())
        assert "001" in commands(await second.sync())
        for client in (bob, first, second):
            await client.close()


async def test_a_connection_gone_before_its_turn_costs_no_work():
    async with running_gateway(irc_registrations_at_once=1) as gateway:
        claims = HeldClaim(gateway)
        first, quitter = await connect(gateway), await connect(gateway)
        await first.send("NICK first", "USER first 0 * :First")
        await claims.holding()
        await quitter.send("NICK quitter", "USER quitter 0 * :Quitter")
        await asyncio.sleep(0.1)
        await quitter.close()  # gives up while waiting
        await asyncio.sleep(0.1)
        claims.release()
        assert "001" in commands(await first.sync())
        await asyncio.sleep(0.1)
        assert claims.claimed == ["first"]  # the quitter's NICK was never run
        await first.close()


async def test_while_the_loop_lags_past_the_limit_a_new_connection_is_asked_to_come_back_later():
    lag = 0.5
    async with running_gateway(irc_admission_lag=0.1, loop_lag=lambda: lag) as gateway:
        turned = await connect(gateway)
        assert await turned.sync_closed() == ["ERROR :Closing link: server busy, try again later"]
        assert gateway.counts["refused_busy"] == 1
        assert gateway.counts["connections"] == 0  # not counted against its address either
        lag = 0.05
        welcome = await connect(gateway)
        assert commands(await welcome.register("alice"))[0] == "001"
        await welcome.close()


async def test_an_admission_lag_of_zero_lets_every_connection_in():
    async with running_gateway(irc_admission_lag=0, loop_lag=lambda: 10.0) as gateway:
        client = await connect(gateway)
        assert commands(await client.register("alice"))[0] == "001"
        await client.close()


async def test_while_too_many_commands_wait_for_a_registration_turn_a_new_connection_is_turned_away():
    async with running_gateway(irc_registrations_at_once=1, irc_registrations_waiting=1) as gateway:
        claims = HeldClaim(gateway)
        first, second, third = await connect(gateway), await connect(gateway), await connect(gateway)
        await first.send("NICK first", "USER first 0 * :First")
        await claims.holding()
        await second.send("NICK second", "USER second 0 * :Second")
        await third.send("NICK third", "USER third 0 * :Third")  # two commands wait
        for _ in range(50):
            if gateway.registration_turns.waiting == 2:
                break
            await asyncio.sleep(0.01)
        turned = await connect(gateway)
        assert await turned.sync_closed() == ["ERROR :Closing link: server busy, try again later"]
        claims.release()
        for client in (first, second, third):
            assert "001" in commands(await client.sync())
        again = await connect(gateway)  # nothing waits now: in
        assert commands(await again.register("fourth"))[0] == "001"
        for client in (first, second, third, again):
            await client.close()


async def test_a_replica_holding_its_most_connections_turns_the_next_away():
    async with running_gateway(irc_max_connections=1) as gateway:
        alice = await connect(gateway)
        await alice.register("alice")
        turned = await connect(gateway)
        assert await turned.sync_closed() == ["ERROR :Closing link: server busy, try again later"]
        await alice.send("QUIT")
        await alice.sync_closed()
        for _ in range(50):
            if not gateway.roster.connections:
                break
            await asyncio.sleep(0.01)
        bob = await connect(gateway)  # room again
        assert commands(await bob.register("bob"))[0] == "001"
        await bob.close()


def test_the_connection_limit_is_the_open_file_limit_less_what_the_replica_keeps_for_itself():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert connection_limit(IrcdSettings(irc_files_kept=100)) == soft - 100
    assert connection_limit(IrcdSettings(irc_max_connections=5000)) == 5000

"""Who owns a nick, batched: a storm of registrations asks the users service once per batch,
a lone lookup goes at once, and a failure answers "cannot say" to its batch only."""

from __future__ import annotations

import asyncio

from apps.ircd.accounts import Batched


class UsersService:
    """A stand-in for the users service's owners route: the batches it was asked."""

    def __init__(self, accounts: dict[str, str]) -> None:
        self.accounts = accounts
        self.batches: list[list[str]] = []
        self.release = asyncio.Event()
        self.release.set()
        self.fail = False

    async def ask(self, nicks: list[str]) -> dict[str, str] | None:
        self.batches.append(nicks)
        await self.release.wait()
        if self.fail:
            raise OSError("connection refused")
        return {n: self.accounts[n.lower()] for n in nicks if n.lower() in self.accounts}


async def test_lookups_made_together_go_in_one_request():
    users = UsersService({"alice": "Alice"})
    owners = Batched(users.ask, 256)
    answers = await asyncio.gather(*(owners.owner_of(n) for n in ["ALICE", "bob", "carol", "alice"]))
    assert answers == ["Alice", None, None, "Alice"]
    assert users.batches == [["ALICE", "bob", "carol", "alice"]]


async def test_lookups_made_while_a_batch_is_out_wait_for_the_next_and_batches_are_bounded():
    users = UsersService({"n3": "N3"})
    owners = Batched(users.ask, 2)
    users.release.clear()
    first = asyncio.ensure_future(owners.owner_of("n0"))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert users.batches == [["n0"]]  # a lone lookup went at once
    later = [asyncio.ensure_future(owners.owner_of(f"n{i}")) for i in range(1, 6)]
    users.release.set()
    assert await first is None and await asyncio.gather(*later) == [None, None, "N3", None, None]
    assert users.batches == [["n0"], ["n1", "n2"], ["n3", "n4"], ["n5"]]


async def test_the_same_nick_asked_twice_in_a_batch_is_asked_once():
    users = UsersService({"alice": "Alice"})
    owners = Batched(users.ask, 256)
    assert await asyncio.gather(owners.owner_of("alice"), owners.owner_of("alice")) == ["Alice", "Alice"]
    assert users.batches == [["alice"]]


async def test_a_failed_batch_cannot_say_and_the_next_one_asks_again():
    users = UsersService({"alice": "Alice"})
    owners = Batched(users.ask, 256)
    users.fail = True
    assert await owners.owner_of("alice") is None
    users.fail = False
    assert await owners.owner_of("alice") == "Alice"


async def test_a_caller_gone_does_not_stop_its_batch():
    users = UsersService({"alice": "Alice", "bob": "Bob"})
    owners = Batched(users.ask, 256)
    users.release.clear()
    gone = asyncio.ensure_future(owners.owner_of("alice"))
    stays = asyncio.ensure_future(owners.owner_of("bob"))
    await asyncio.sleep(0)
    gone.cancel()
    users.release.set()
    assert await stays == "Bob" and gone.cancelled()

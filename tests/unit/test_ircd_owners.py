"""Whether a nick is an account's: the gateway reads it as it claims the nick, in one step on
the nick's slot, where the users service keeps its accounts, without asking the service."""

from __future__ import annotations

import fakeredis

from apps.chat.keys import ChatKeys
from apps.ircd.store import Store
from apps.users.accounts import AccountStore
from tests.unit.ircd_support import commands, connect, plain, running_gateway, serve_accounts

KEYS = ChatKeys()


async def test_a_claim_reads_whether_the_nick_is_an_accounts_claimed_or_not():
    redis = fakeredis.FakeAsyncRedis()
    accounts, store = AccountStore(redis, KEYS, 60), Store(redis)
    assert await accounts.create("Alice", "hash") is not None
    claim = await store.claim_nick("alice", "u1")
    assert (claim.claimed, claim.owned) == (True, True)
    claim = await store.claim_nick("alice", "u2")  # held now: not claimed, still told
    assert (claim.claimed, claim.owned) == (False, True)
    assert await store.uid_of("alice") == "u1"
    claim = await store.claim_nick("bob", "u2")
    assert (claim.claimed, claim.owned) == (True, False)
    assert await store.is_account("alice") and not await store.is_account("bob")
    await redis.aclose()


async def test_a_guest_cannot_register_or_change_to_an_accounts_nick_and_its_owner_can():
    async with running_gateway(users_url="http://users") as gateway:
        await serve_accounts(gateway, {"Alice": "sesame"})
        guest = await connect(gateway)
        assert commands(await guest.register("ALICE"))[0] == "433"
        assert await gateway.store.uid_of("alice") is None  # the claim was given back
        await guest.send("NICK guest", "USER g 0 * :G")
        assert commands(await guest.sync())[0] == "001"
        await guest.send("NICK alice")
        assert commands(await guest.sync()) == ["433"]
        assert await gateway.store.uid_of("alice") is None
        owner = await connect(gateway)
        await owner.send("CAP REQ sasl", "AUTHENTICATE PLAIN", f"AUTHENTICATE {plain('Alice', 'sesame')}",
                         "NICK alice", "USER a 0 * :A", "CAP END")
        assert "001" in commands(await owner.sync())
        await guest.close()
        await owner.close()


async def test_an_account_made_while_a_guest_holds_its_nick_keeps_the_guest_from_changing_its_case():
    async with running_gateway(users_url="http://users") as gateway:
        guest = await connect(gateway)
        assert commands(await guest.register("dave"))[0] == "001"
        holder = await gateway.store.uid_of("dave")
        await serve_accounts(gateway, {"Dave": "sesame"})  # made on the web page meanwhile
        await guest.send("NICK Dave")
        assert commands(await guest.sync()) == ["433"]
        assert await gateway.store.uid_of("dave") == holder  # still its nick, in its old case
        await guest.close()

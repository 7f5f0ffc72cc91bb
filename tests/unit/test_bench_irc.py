"""The IRC benchmark's client: when it counts a join as done, with and without
no-implicit-names."""

from __future__ import annotations

import asyncio

from scripts.bench_irc import BenchClient, Tally


async def joining(no_implicit_names: bool) -> tuple[BenchClient, asyncio.Future[None]]:
    client = BenchClient("b1", Tally(), no_implicit_names=no_implicit_names)
    done = client.joined[b"#bench0"] = asyncio.get_running_loop().create_future()
    return client, done


async def test_a_join_is_done_at_its_366_by_default():
    client, done = await joining(False)
    client.data_received(b":b1!~b1@127.0.0.1 JOIN #bench0\r\n")
    assert not done.done()
    client.data_received(b":irc.test 353 b1 = #bench0 :b1\r\n:irc.test 366 b1 #Bench0 :End\r\n")
    assert done.done()


async def test_with_no_implicit_names_a_join_is_done_when_its_own_join_comes_back():
    client, done = await joining(True)
    client.data_received(b":b10!~b10@127.0.0.1 JOIN #bench0\r\n:irc.test 366 b1 #bench0 :End\r\n")
    assert not done.done()  # another client's JOIN (a longer nick), and a 366, do not count
    client.data_received(b":b1!~b1@127.0.0.1 JOIN :#Bench0\r\n")
    assert done.done()

"""Commands packed by hiredis (apps/kit/respack.py): byte for byte what redis-py packs, its
errors for what cannot be sent, and the kit's clients using it on every kind of link."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import DataError

from apps.kit.linksub import LinkSubscriber
from apps.kit.pubsub import open_pubsub
from apps.kit.redisconn import connect
from apps.kit.respack import HiredisPacking, link_class, with_hiredis_packing

COMMANDS: list[tuple[Any, ...]] = [
    ("SET", "k", "v"),
    ("HSET", "{u}:user:1", "nick", "Zoë", "real", "", "away", "gone\r\nQUIT"),
    ("ZADD", "k", 1.5, "m", 0.1, "n", -0.0, "o", float("inf"), "p"),
    ("EXPIRE", "k", 2**70), ("X", -3, 1e20, 1 / 3),
    ("PUBLISH", "c", b"\x00\xff raw", memoryview(b"view")), ("SET", "k", bytearray(b"mutable")),
    ("CONFIG GET", "maxmemory"), (b"CLIENT SETNAME", b"ircd/1"),
    ("EVALSHA", "a" * 40, 2, "k1", "k2", "x" * 70_000),
]


def wire(chunks: list[Any]) -> bytes:
    return b"".join(bytes(chunk) for chunk in chunks)


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: str(args[0]))
def test_a_command_is_packed_as_redis_py_packs_it(args: tuple[Any, ...]):
    packed, python = with_hiredis_packing(Connection)(), Connection()
    assert wire(packed.pack_command(*args)) == wire(python.pack_command(*args))
    commands = [args, ("PING",)]
    assert wire(packed.pack_commands(commands)) == wire(python.pack_commands(commands))


@pytest.mark.parametrize("bad", [None, True, {"a": 1}, ["x"]], ids=repr)
def test_what_cannot_be_sent_is_a_data_error_as_redis_pys(bad: Any):
    with pytest.raises(DataError):
        with_hiredis_packing(Connection)().pack_command("SET", "k", bad)


def test_another_encoding_is_left_to_redis_py():
    latin = with_hiredis_packing(Connection)(encoding="latin-1")
    assert latin.pack_command("SET", "k", "é") == Connection(encoding="latin-1").pack_command("SET", "k", "é")


@pytest.mark.parametrize("kind", [Connection, SSLConnection, UnixDomainSocketConnection],
                         ids=lambda k: k.__name__)
def test_each_kind_of_link_keeps_its_class_and_packs_with_hiredis(kind: type[Any]):
    packed = with_hiredis_packing(kind)
    assert issubclass(packed, kind) and issubclass(packed, HiredisPacking)
    assert with_hiredis_packing(kind) is packed and with_hiredis_packing(packed) is packed
    assert link_class(packed) is kind and link_class(kind) is kind


@pytest.mark.parametrize(("url", "kind", "pool_size"), [
    ("redis://127.0.0.1:6399/0", Connection, 8), ("redis://127.0.0.1:6399/0", Connection, None),
    ("rediss://127.0.0.1:6399/0", SSLConnection, 8),
    ("unix:///tmp/none.sock", UnixDomainSocketConnection, 8)])
async def test_the_kits_clients_pack_with_hiredis_on_every_kind_of_link(url: str, kind: type[Any],
                                                                        pool_size: int | None):
    client = connect(url, client_name="test", pool_size=pool_size)
    try:
        pool_class = client.connection_pool.connection_class
        assert issubclass(pool_class, HiredisPacking) and link_class(pool_class) is kind
        # The subscriber still knows a plain TCP link for what it is.
        assert isinstance(open_pubsub(client), LinkSubscriber) is (kind is Connection)
    finally:
        await client.aclose()

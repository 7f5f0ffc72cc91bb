"""Commands packed into RESP by hiredis, in C.

redis-py's sync client packs with hiredis when it is installed (`HiredisRespSerializer`); its
asyncio connections always pack in Python: 5.2 us a command of the gateway's (an EVALSHA or an
HSET of a user's fields) against 0.9, and about 12 % of a gateway's CPU in a wave of
registrations (docs/ircd.md, "Registrations per second"). `with_hiredis_packing` gives a pool's
connections hiredis's packer; what goes on the wire is byte for byte the same. A cluster's
client (redis-py's RedisCluster) makes its nodes' connections itself, of its own class: they
still pack in Python.
"""

from __future__ import annotations

from typing import Any

import hiredis
from redis.asyncio.connection import AbstractConnection
from redis.connection import HiredisRespSerializer

#: redis-py's own hiredis packer (its sync client's): what the fast path leaves to it.
_REDIS_PY_PACKER = HiredisRespSerializer()


class HiredisPacking(AbstractConnection):
    """A connection whose commands hiredis packs (when its encoder is redis-py's default,
    UTF-8 and strict, the only encoding hiredis packs with)."""

    def pack_command(self, *args: Any) -> list[bytes]:
        encoder = self.encoder
        if encoder.encoding != "utf-8" or encoder.encoding_errors != "strict":
            return super().pack_command(*args)
        name = args[0]
        if isinstance(name, str) and " " not in name:  # a name of one word: packed as it is
            try:
                return [hiredis.pack_command(args)]
            except TypeError:
                pass  # a bytearray, or what redis-py refuses: its packer says which
        # redis-py's: a name of several words ("CONFIG GET") is several arguments, a bytearray
        # is bytes, and anything else it cannot send is its DataError.
        packed: list[bytes] = _REDIS_PY_PACKER.pack(*args)
        return packed


_PACKED: dict[type[AbstractConnection], type[AbstractConnection]] = {}


def with_hiredis_packing(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """`connection_class` (a pool's: plain TCP, TLS or a Unix socket) packing with hiredis."""
    if issubclass(connection_class, HiredisPacking):
        return connection_class
    packed = _PACKED.get(connection_class)
    if packed is None:
        packed = _PACKED[connection_class] = type(
            f"HiredisPacking{connection_class.__name__}", (HiredisPacking, connection_class),
            {"link_class": connection_class})
    return packed


def link_class(connection_class: type[AbstractConnection]) -> type[AbstractConnection]:
    """The redis-py class of a pool's links (plain TCP, TLS...), packing aside."""
    wrapped: type[AbstractConnection] = getattr(connection_class, "link_class", connection_class)
    return wrapped

"""Publish and subscribe the same way on one Redis or on a Redis Cluster: the one place that
knows the difference.

On one server this is plain pub/sub (`PUBLISH`, `SUBSCRIBE`). On a cluster (REDIS_CLUSTER)
it is sharded pub/sub (`SPUBLISH`, `SSUBSCRIBE`): a channel lives on the node that owns its
hash slot, like a key. Plain `PUBLISH` would still work there, but it is broadcast to every
node over the cluster bus and its receiver count is the publishing node's only, so "nobody
heard it" (the broker's undeliverable check) would be wrong; a sharded channel's count is
exact and its traffic stays on one shard (a primary and its replicas).

Services call `publish`, `publish_on` (in a pipeline) and `open_pubsub`, never the client's
own `publish` or `pubsub`, so they do not branch on the mode. A subscriber's messages look
the same either way (`type` "message", "subscribe", "unsubscribe").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.cluster import ClusterNode, ClusterPipeline, RedisCluster
from redis.asyncio.connection import Connection
from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.kit.linksub import LinkSubscriber, QueuedMessages
from apps.kit.respack import link_class

log = logging.getLogger("canaduck.pubsub")

#: What sharded messages are called once they reach a subscriber.
_PLAIN_TYPES = {"smessage": "message", "ssubscribe": "subscribe", "sunsubscribe": "unsubscribe"}


#: Client class -> whether it is a cluster's: asked on every publish, and `isinstance` against
#: the cluster classes takes typing's slow Protocol path for a plain client.
_cluster_by_class: dict[type, bool] = {}


def is_cluster(redis: Any) -> bool:
    """True for a Redis Cluster client (or one of its pipelines): sharded pub/sub is used."""
    kind = type(redis)
    known = _cluster_by_class.get(kind)
    if known is None:
        known = _cluster_by_class[kind] = isinstance(redis, RedisCluster | ClusterPipeline)
    return known


async def publish(redis: Redis, channel: str, message: str | bytes) -> int:
    """Publish `message` on `channel`; how many subscribers heard it (exact in both modes)."""
    if is_cluster(redis):
        return int(await redis.spublish(channel, message))  # type: ignore[attr-defined]
    return int(await redis.publish(channel, message))


def publish_on(pipe: Any, channel: str, message: str | bytes) -> None:
    """Queue a publication in a pipeline (its result, the receiver count, comes with the rest)."""
    if is_cluster(pipe):
        pipe.spublish(channel, message)
    else:
        pipe.publish(channel, message)


def publish_command(redis: Any) -> str:
    """The command a Lua script uses to publish: `PUBLISH`, or `SPUBLISH` on a cluster, where a
    script may only publish on channels in its keys' slot (see `same_slot`)."""
    return "SPUBLISH" if is_cluster(redis) else "PUBLISH"


def same_slot(key: str, channels: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split `channels` into those in `key`'s cluster slot and the others."""
    slot = key_slot(key.encode())
    here: list[str] = []
    elsewhere: list[str] = []
    for channel in channels:
        (here if key_slot(channel.encode()) == slot else elsewhere).append(channel)
    return here, elsewhere


class Subscriber(Protocol):
    """What `open_pubsub` returns: the subset of redis-py's PubSub the services use."""

    @property
    def subscribed(self) -> bool: ...

    async def subscribe(self, *channels: str) -> None: ...

    async def unsubscribe(self, *channels: str) -> None: ...

    async def get_message(self, ignore_subscribe_messages: bool = False,
                          timeout: float | None = 0.0) -> dict[str, Any] | None: ...

    def listen(self) -> AsyncIterator[dict[str, Any]]: ...

    async def aclose(self) -> None: ...


def open_pubsub(redis: Redis, *, ignore_subscribe_messages: bool = False) -> Subscriber:
    """A subscriber on `redis`: a LinkSubscriber on one server over plain TCP (apps/kit/linksub.py),
    redis-py's own PubSub over anything else, a ShardedSubscriber on a cluster.

    Either one raises ConnectionError when its link drops (on a cluster: a node's link, or a
    channel moved to another node by a failover); the caller then closes it and subscribes
    again on a new one, as it would after a server restart.
    """
    if is_cluster(redis):
        return ShardedSubscriber(redis, ignore_subscribe_messages=ignore_subscribe_messages)  # type: ignore[arg-type]
    pool = redis.connection_pool
    if link_class(pool.connection_class) is Connection:  # plain TCP (not TLS, a Unix socket or a double)
        return LinkSubscriber(pool.connection_kwargs, ignore_subscribe_messages=ignore_subscribe_messages)
    pubsub: PubSub = redis.pubsub(ignore_subscribe_messages=ignore_subscribe_messages)
    return pubsub  # type: ignore[return-value]


class ShardedSubscriber(QueuedMessages):
    """SSUBSCRIBE on a cluster: one connection per node owning a subscribed channel, read by
    one task each into one queue, so messages from every node come out of `get_message`.

    redis-py's ClusterPubSub polls its node connections one after the other; this reads all of
    them at once, so no message waits for another node's poll timeout.
    """

    def __init__(self, cluster: RedisCluster, *, ignore_subscribe_messages: bool = False) -> None:
        super().__init__(ignore_subscribe_messages=ignore_subscribe_messages)
        self._cluster = cluster
        self._nodes: dict[str, PubSub] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._where: dict[str, str] = {}  # channel -> node name
        self._leaving: set[str] = set()

    @property
    def subscribed(self) -> bool:
        return bool(self._where)

    async def subscribe(self, *channels: str) -> None:
        """SSUBSCRIBE each channel on the node owning its slot (one command per slot)."""
        by_slot: dict[int, list[str]] = defaultdict(list)
        for channel in channels:
            if channel not in self._where:
                by_slot[key_slot(channel.encode())].append(channel)
        try:
            await self._cluster.initialize()
            for slot_channels in by_slot.values():
                node = self._cluster.get_node_from_key(slot_channels[0])
                if node is None:
                    raise RedisConnectionError(f"no node serves {slot_channels[0]}'s slot yet")
                pubsub = self._node_pubsub(node)
                await pubsub.ssubscribe(*slot_channels)
                for channel in slot_channels:
                    self._where[channel] = node.name
                    self._leaving.discard(channel)
        except (RedisConnectionError, RedisTimeoutError, OSError):
            # The slot map may be stale (a failover): ask the cluster again next time.
            with contextlib.suppress(RedisError, OSError):
                await self._cluster.nodes_manager.initialize()
            raise

    async def unsubscribe(self, *channels: str) -> None:
        for channel in channels or list(self._where):
            name = self._where.pop(channel, None)
            if name is None or name not in self._nodes:
                continue
            self._leaving.add(channel)
            await self._nodes[name].sunsubscribe(channel)

    def _node_pubsub(self, node: ClusterNode) -> PubSub:
        pubsub = self._nodes.get(node.name)
        if pubsub is None:
            client = Redis(host=node.host, port=int(node.port), **_link_options(node))
            pubsub = client.pubsub()
            self._nodes[node.name] = pubsub
            self._readers[node.name] = asyncio.create_task(self._read(node.name, pubsub),
                                                           name=f"ssubscribe:{node.name}")
        return pubsub

    async def _read(self, name: str, pubsub: PubSub) -> None:
        try:
            while True:
                if not pubsub.subscribed:
                    await asyncio.sleep(0.05)  # the first SSUBSCRIBE is on its way
                    continue
                message = await pubsub.get_message(timeout=None)
                if message is None:
                    continue
                kind = _PLAIN_TYPES.get(str(message["type"]), str(message["type"]))
                channel = _text(message["channel"])
                if kind == "unsubscribe" and channel not in self._leaving:
                    # Not asked for: the node no longer owns the slot (a failover, a resharding).
                    raise RedisConnectionError(f"shard channel {channel} moved off {name}")
                if kind == "unsubscribe":
                    self._leaving.discard(channel)
                await self._messages.put({**message, "type": kind})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the reader of get_message, which reconnects
            await self._messages.put(exc)

    async def aclose(self) -> None:
        self._closed = True
        for task in self._readers.values():
            task.cancel()
        for task in self._readers.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for pubsub in self._nodes.values():
            with contextlib.suppress(Exception):
                await pubsub.aclose()
                await pubsub.connection_pool.disconnect()
        self._nodes.clear()
        self._readers.clear()
        self._where.clear()


def _link_options(node: ClusterNode) -> dict[str, Any]:
    """The node's login and timeouts, for a dedicated pub/sub connection."""
    kwargs = node.connection_kwargs
    keep = ("username", "password", "client_name", "socket_connect_timeout", "socket_keepalive",
            "ssl", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
    # No socket_timeout: a subscriber waits for messages as long as it takes.
    return {name: kwargs[name] for name in keep if name in kwargs}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)

"""The Redis connection every service opens, and the start-up checks made on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import (
    AuthenticationError,
    NoPermissionError,
    RedisClusterException,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from apps.kit.autopipeline import AutoPipelinedRedis
from apps.kit.redispool import FairBlockingPool
from apps.kit.respack import with_hiredis_packing

#: Commands the directory relies on; a server lacking them cannot expire a killed instance.
REQUIRED_COMMANDS = ("HPEXPIRE", "HPTTL")


class StartupError(RuntimeError):
    """A condition that makes a service refuse to start; its message is one line for humans."""


def connect(url: str, *, client_name: str, timeout: float = 2.0, username: str = "",
            password: str = "", pool_size: int | None = None, batch_size: int = 256,
            cluster: bool = False) -> Redis:
    """Open a pooled client with short timeouts and a few quick retries on dropped links.

    A command that times out is not retried: the server may have run it, and retries would
    multiply `timeout` past the gateway's own limit. Authentication errors are not retried
    either (redis-py would treat them as connection errors), so a wrong password fails in
    milliseconds instead of hanging. `username` and `password`, if given, are used as they
    are (REDIS_URL then carries none: the settings refuse both).

    `pool_size` bounds the connections with a blocking pool: a command past it waits its turn
    (up to `timeout`) for a free connection instead of failing, as redis-py's default pool
    (100 connections, then an error) would under a burst of many concurrent clients. Waiters
    are served in order (apps/kit/redispool.py). Such a client, shared by many concurrent
    clients, sends the commands of one event-loop turn as one pipeline of at most `batch_size`
    (apps/kit/autopipeline.py).

    `cluster` (REDIS_CLUSTER) opens redis-py's asyncio RedisCluster instead, found through the
    node of `url`: it routes each command to the node owning its key's slot and follows
    failovers. It answers the commands the services use as a Redis does (it is typed as one
    here so that no service branches on the mode); what differs is kept in the kit:
    pub/sub (apps/kit/pubsub.py) and reads of several keys (`get_many`).
    """
    options: dict[str, Any] = dict(
        username=username or None,
        password=password or None,
        client_name=client_name,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        health_check_interval=15,
        # The asyncio Retry: the sync one's loop never sees an awaited command fail, so it
        # would never retry (the first command on each pooled link after a Redis restart
        # would fail). Only dropped links are retried, not timeouts (see above).
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=2,
                    supported_errors=(RedisConnectionError,)),
        retry_on_error=[RedisConnectionError],
    )
    if cluster:
        # The cluster client retries a command on another try of the slot map after a
        # connection error (its node may have failed over); MOVED and ASK are followed too.
        # It also retries timeouts, which cannot be turned off apart (docs/cluster.md).
        options.pop("retry_on_error")
        options.pop("health_check_interval")
        options["retry"] = Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), retries=3)
        return cast(Redis, RedisCluster.from_url(url, max_connections=pool_size or 100, **options))
    if pool_size is None:
        client = Redis.from_url(url, **options)
        pool = client.connection_pool
    else:
        pool = FairBlockingPool.from_url(url, max_connections=pool_size, timeout=timeout, **options)
        client = AutoPipelinedRedis(connection_pool=pool, batch_size=batch_size)
    # The URL chose the kind of link (TCP, TLS, a Unix socket); its connections, made as they
    # are needed, pack their commands in C (apps/kit/respack.py).
    pool.connection_class = with_hiredis_packing(pool.connection_class)
    return client


async def wait_until_reachable(client: Redis, timeout: float) -> None:
    """Ping until the server answers, for at most `timeout` seconds.

    Raises StartupError at once on a refused login, and after `timeout` if nothing answers.
    """
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        try:
            if isinstance(client, RedisCluster):
                # Learn the slot map now, before any concurrency: redis-py's cluster client
                # fails commands sent all at once while it first connects.
                await client.initialize()
            await client.ping()
            return
        except AuthenticationError as exc:
            raise StartupError(
                f"Redis refused the login ({exc}): check REDIS_URL's user and password"
            ) from exc
        except NoPermissionError as exc:
            raise StartupError(f"Redis user may not run PING ({exc}): check redis/users.acl") from exc
        except (RedisConnectionError, RedisTimeoutError, RedisClusterException, OSError) as exc:
            # A cluster still forming answers with an error of its own (slots not covered).
            if time.monotonic() + delay > deadline:
                raise StartupError(
                    f"Redis did not answer within {timeout:g} s at {_safe_url(client)}: {exc}"
                ) from exc
        await asyncio.sleep(delay)
        delay = min(delay * 2, 1.0)


async def check_capabilities(client: Redis, probe_key: str) -> None:
    """Refuse a server without hash-field expiry (Redis < 7.4, Valkey < 9.0).

    The capability is probed by running the commands on a field that does not exist, which
    changes nothing, needs no extra ACL right and works on every server: version strings lie
    (Valkey 9 reports redis_version 7.2.4).
    """
    probe_field = "__capability-probe__"
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.execute_command("HPTTL", probe_key, "FIELDS", 1, probe_field)
            pipe.execute_command("HPEXPIRE", probe_key, 60_000, "FIELDS", 1, probe_field)
            await pipe.execute()
    except NoPermissionError:
        raise
    except ResponseError as exc:
        needed = " and ".join(REQUIRED_COMMANDS)
        raise StartupError(
            f"Redis at {_safe_url(client)} lacks hash-field expiry ({needed}): "
            f"canaduck needs Redis >= 7.4 or Valkey >= 9.0 ({exc})"
        ) from exc


async def get_many(redis: Redis, keys: Sequence[str]) -> list[Any]:
    """The values of `keys` (None for a missing one), in order: one MGET on one server; on a
    cluster one MGET per hash slot, pipelined (an MGET across slots is refused there)."""
    if isinstance(redis, RedisCluster):
        return cast(list[Any], await redis.mget_nonatomic(list(keys)))
    return cast(list[Any], await redis.mget(list(keys)))


def _safe_url(client: Redis) -> str:
    if isinstance(client, RedisCluster):
        nodes = list(client.nodes_manager.startup_nodes.values())
        return f"the cluster at {nodes[0].host}:{nodes[0].port}" if nodes else "the cluster"
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}"


__all__ = [
    "REQUIRED_COMMANDS",
    "RedisError",
    "StartupError",
    "check_capabilities",
    "connect",
    "get_many",
    "wait_until_reachable",
]

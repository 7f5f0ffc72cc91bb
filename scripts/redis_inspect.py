"""A small stand-in for redis-cli, for machines without it: one command, printed readably.

    scripts/inspect SMEMBERS canaduck:services
    scripts/inspect HGETALL canaduck:directory:calc
    scripts/inspect HTTL canaduck:directory:directory FIELDS 1 directory
    scripts/inspect SUBSCRIBE canaduck:events canaduck:inbox:pong
    scripts/inspect MONITOR

Connects as the read-only `inspector` user of the local stack unless REDIS_URL is set
(INSPECT_URL overrides both). With CANADUCK_CLUSTER=1 (`scripts/up --cluster`) it talks to the
cluster: each command goes to the node owning its key.
"""

from __future__ import annotations

import os
import sys

import redis

STREAMING = {"SUBSCRIBE", "PSUBSCRIBE", "MONITOR"}


def url() -> str:
    port = os.environ.get("CANADUCK_REDIS_PORT", "6379")
    default = f"redis://inspector:dev-only-inspector@127.0.0.1:{port}/0"
    return os.environ.get("INSPECT_URL") or os.environ.get("REDIS_URL") or default


def show(value: object, indent: str = "") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            print(f"{indent}{key}: {item}")
    elif isinstance(value, list | tuple):
        for number, item in enumerate(value, 1):
            print(f"{indent}{number}) {item}")
    else:
        print(f"{indent}{value}")


def stream(client: redis.Redis, command: str, args: list[str]) -> None:
    if command == "MONITOR":
        with client.monitor() as monitor:
            for event in monitor.listen():
                print(f"{event['time']:.6f} [{event['client_address']}] {event['command']}", flush=True)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    (pubsub.subscribe if command == "SUBSCRIBE" else pubsub.psubscribe)(*args)
    for message in pubsub.listen():
        print(f"{message['channel']}: {message['data']}", flush=True)


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__, file=sys.stderr)
        return 64
    command = argv[0].upper()
    if os.environ.get("CANADUCK_CLUSTER", "").lower() in ("1", "true", "yes") and command not in STREAMING:
        cluster = redis.RedisCluster.from_url(url(), decode_responses=True)
        try:
            show(cluster.execute_command(*argv))
        except redis.RedisError as exc:
            print(f"(error) {exc}", file=sys.stderr)
            return 1
        finally:
            cluster.close()
        return 0
    client = redis.Redis.from_url(url(), decode_responses=True)
    try:
        if command in STREAMING:
            stream(client, command, argv[1:])
        else:
            show(client.execute_command(*argv))
    except redis.RedisError as exc:
        print(f"(error) {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

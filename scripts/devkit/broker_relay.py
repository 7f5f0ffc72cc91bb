"""The broker alone: relayed messages per second, on one Redis or on a Valkey Cluster.

Sender processes pipeline envelopes to `canaduck:broker`; one subscriber drains the
recipient's inbox; the broker's own counters say when every message was handled. On a
cluster the broker publishes with SPUBLISH (see apps/kit/pubsub.py), so the senders and the
drain speak sharded pub/sub to the node that owns each channel's slot, as a service would.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.synchronize
import socket
import time
from typing import Any, NamedTuple

import redis
from scripts.devkit.redis_cluster import ValkeyCluster
from scripts.devkit.redis_server import ADMIN_PASSWORD, ADMIN_USER, RedisServer
from scripts.devkit.services import ServiceLauncher
from scripts.devkit.waiting import wait_until

BROKER_CHANNEL = "canaduck:broker"
SINK_INBOX = "canaduck:inbox:sink"


class Channel(NamedTuple):
    """Where a channel is published and subscribed: a node's port and the commands to use."""

    port: int
    publish: str
    subscribe: str


def channel_on(server: RedisServer | ValkeyCluster, name: str) -> Channel:
    """The node serving channel `name` (the one server, or the primary of its slot)."""
    if isinstance(server, ValkeyCluster):
        admin = server.admin()
        try:
            return Channel(int(admin.get_node_from_key(name).port), "SPUBLISH", "SSUBSCRIBE")
        finally:
            admin.close()
    return Channel(server.port, "PUBLISH", "SUBSCRIBE")


def subscribers(port: int, channel: str, sharded: bool) -> int:
    """How many clients of the node on `port` listen to `channel`."""
    with redis.Redis(host="127.0.0.1", port=port, username=ADMIN_USER, password=ADMIN_PASSWORD) as node:
        reply = node.execute_command("PUBSUB", "SHARDNUMSUB" if sharded else "NUMSUB", channel)
    return int(reply[1])


def _sender(port: int, command: str, count: int, index: int) -> None:
    client = redis.Redis(host="127.0.0.1", port=port, username=ADMIN_USER, password=ADMIN_PASSWORD)
    envelope: dict[str, Any] = {"id": "", "from": f"sender-{index}", "to": "sink", "kind": "bench",
                                "body": {"n": 0}, "sent_at": time.time(), "deadline": None}
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        envelope["id"] = f"{index:04x}{n:012x}"
        envelope["body"]["n"] = n
        pipe.execute_command(command, BROKER_CHANNEL, json.dumps(envelope))
        if len(pipe) >= 200:
            pipe.execute()
    pipe.execute()


def _drain(port: int, command: str, stop: multiprocessing.synchronize.Event) -> None:
    """A subscriber that reads and discards: the cheapest listener an inbox can have."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"AUTH {ADMIN_USER} {ADMIN_PASSWORD}\r\n{command} {SINK_INBOX}\r\n".encode())
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            if not sock.recv(1 << 20):
                return
        except TimeoutError:
            continue


def broker_alone(server: RedisServer | ValkeyCluster, senders: int, per_sender: int, batch: int) -> dict:
    """Relay `senders` x `per_sender` envelopes through one broker (RELAY_BATCH=`batch`);
    messages per second, and what was relayed, undeliverable or an error."""
    admin = server.admin()
    admin.flushall()
    entry = {"service": "sink", "instance": "bench", "url": "", "channel": SINK_INBOX,
             "started_at": 0, "version": "", "meta": {}}
    admin.hset("canaduck:directory:sink", "bench", json.dumps(entry))
    admin.close()
    sharded = isinstance(server, ValkeyCluster)
    inbox, broker_channel = channel_on(server, SINK_INBOX), channel_on(server, BROKER_CHANNEL)
    stop = multiprocessing.Event()
    drain = multiprocessing.Process(target=_drain, args=(inbox.port, inbox.subscribe, stop), daemon=True)
    drain.start()
    wait_until(lambda: subscribers(inbox.port, SINK_INBOX, sharded) == 1, timeout=10)
    launcher = ServiceLauncher(server)
    try:
        broker = launcher.start("apps.broker", "broker", LOG_LEVEL="WARNING", RELAY_BATCH=str(batch))
        wait_until(lambda: subscribers(broker_channel.port, BROKER_CHANNEL, sharded) >= 1, timeout=10)
        total = senders * per_sender
        started = time.perf_counter()
        procs = [multiprocessing.Process(target=_sender, args=(broker_channel.port, broker_channel.publish,
                                                               per_sender, i))
                 for i in range(senders)]
        for proc in procs:
            proc.start()

        def done() -> bool:
            stats = broker.get("/stats").json()
            return stats["relayed"] + stats["undeliverable"] + stats["errors"] >= total

        wait_until(done, timeout=300, interval=0.02)
        elapsed = time.perf_counter() - started
        for proc in procs:
            proc.join(10)
        stats = broker.get("/stats").json()
        return {"batch": batch, "senders": senders, "messages": total, "seconds": elapsed,
                "per_s": stats["relayed"] / elapsed, "relayed": stats["relayed"],
                "undeliverable": stats["undeliverable"], "errors": stats["errors"]}
    finally:
        launcher.stop_all()
        stop.set()
        drain.join(5)

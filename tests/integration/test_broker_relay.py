"""The broker relay benchmark's harness (scripts/bench-rally, scripts/bench-scale) on a real
server and on a cluster: every envelope is relayed to the sink's inbox, none lost, and on the
cluster the senders and the drain reach the right node with sharded pub/sub."""

from __future__ import annotations

import pytest

from scripts.devkit import RedisServer, ValkeyCluster
from scripts.devkit.broker_relay import SINK_INBOX, broker_alone, channel_on

Server = RedisServer | ValkeyCluster

pytestmark = [pytest.mark.integration, pytest.mark.cluster]


@pytest.mark.parametrize("batch", [1, 64])
def test_every_envelope_is_relayed_to_the_inbox(redis_server: Server, batch: int) -> None:
    relay = broker_alone(redis_server, senders=2, per_sender=300, batch=batch)
    assert (relay["relayed"], relay["undeliverable"], relay["errors"]) == (600, 0, 0)
    assert relay["per_s"] > 0


def test_a_channel_is_served_by_the_primary_of_its_slot(redis_server: Server) -> None:
    channel = channel_on(redis_server, SINK_INBOX)
    if isinstance(redis_server, ValkeyCluster):
        assert (channel.publish, channel.subscribe) == ("SPUBLISH", "SSUBSCRIBE")
        assert channel.port in redis_server.primary_ports()
    else:
        assert channel == (redis_server.port, "PUBLISH", "SUBSCRIBE")

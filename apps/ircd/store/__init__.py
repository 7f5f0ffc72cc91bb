"""The gateway's shared state in Redis, one part per subject: who is who (users.py), a user's
devices (devices.py), channels
(channels.py), the network as a whole (network.py) and read markers (markers.py); the scripts
that make a change one step are in scripts.py, and every key is spelled in apps/chat/keys.py.

Every key of one channel (or one user) carries the same cluster hash tag (`{#chan}`,
`{uid}`), so the scripts that change several of them run on one node.
"""

from __future__ import annotations

from redis.asyncio import Redis

from apps.chat.keys import ChatKeys
from apps.ircd.store.channels import ChannelState, Joined
from apps.ircd.store.devices import DeviceState
from apps.ircd.store.markers import MarkerState
from apps.ircd.store.network import Counts, NetworkState
from apps.ircd.store.users import UserState


class Store(UserState, DeviceState, ChannelState, NetworkState, MarkerState):
    """Typed access to the gateway's state: one object for every part."""

    def __init__(self, redis: Redis, keys: ChatKeys | None = None) -> None:
        super().__init__(redis, keys or ChatKeys())


__all__ = ["Counts", "Joined", "Store"]

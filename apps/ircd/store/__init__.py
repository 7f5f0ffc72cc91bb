"""The gateway's shared state in Redis, one part per subject: who is who (users.py), who was
and who watches whom (watch.py: WHOWAS, MONITOR), a user's devices (devices.py), channels
(channels.py), the network as a whole (network.py), all of it a slice at a time (scans.py)
and read markers (markers.py); the scripts that make a change one step are in scripts.py, and
every key is spelled in apps/chat/keys.py.

Every key of one channel (or one user) carries the same cluster hash tag (`{#chan}`,
`{uid}`), so the scripts that change several of them run on one node.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from apps.chat.keys import ChatKeys
from apps.chat.records import User
from apps.ircd.store.channels import Joined
from apps.ircd.store.devices import DeviceState
from apps.ircd.store.markers import MarkerState
from apps.ircd.store.network import Counts, NetworkState
from apps.ircd.store.scans import ScanState
from apps.ircd.store.watch import WatchState


@dataclass(frozen=True, slots=True)
class Registered:
    """What a registration's welcome needs, read with its user's record."""

    watchers: dict[str, str]  # who MONITORs its nick: uid -> replica (itself included)
    counts: Counts  # LUSERS', the new user counted


class Store(ScanState, WatchState, DeviceState, NetworkState, MarkerState):
    """Typed access to the gateway's state: one object for every part."""

    def __init__(self, redis: Redis, keys: ChatKeys | None = None) -> None:
        super().__init__(redis, keys or ChatKeys())

    async def register_user(self, user: User, device: str, nick_cf: str) -> Registered:
        """A new user (`queue_add_user`, `queue_count_new_user`), and in the same round trip
        the watchers of its nick (`nick_cf`) and LUSERS' counts: a storm of registrations goes
        as fast as the fewest round trips, and the fewest commands, each (docs/ircd.md,
        "Registrations per second")."""
        async with self.redis.pipeline(transaction=False) as pipe:
            self.queue_add_user(pipe, user, device)
            self.queue_watchers(pipe, nick_cf)
            self.queue_count_new_user(pipe, user.uid, user.instance)
            *_, watchers, counts = await pipe.execute()
        return Registered(self.watchers_from(watchers), self.counts_from(counts))


__all__ = ["Counts", "Joined", "Registered", "Store"]

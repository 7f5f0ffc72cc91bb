"""MONITOR: the nicks a client watches, and telling watchers when a nick comes and goes."""

from __future__ import annotations

from dataclasses import dataclass

from apps.chat import numerics as n
from apps.chat.events import Numeric
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.protocol import casefold, valid_nick

#: Longest nick MONITOR accepts to watch (longer than NICKLEN: another network's may be).
WATCHABLE_NICK = 64


@dataclass(frozen=True, slots=True)
class Watched:
    """What `MONITOR +` did: the nicks added, and those left out once the list was full."""

    added: list[str]
    left_out: list[str]


async def watch(ctx: Context, client: Client, nicks: list[str]) -> Watched:
    """Watch `nicks`, up to MAX_MONITOR in all."""
    added: list[str] = []
    for i, nick in enumerate(nicks):
        cf = casefold(nick)
        if cf in client.monitoring:
            continue
        if len(client.monitoring) >= ctx.settings.max_monitor:
            return Watched(added, nicks[i:])
        if not valid_nick(nick, WATCHABLE_NICK):
            continue
        if isinstance(client.monitoring, set):
            client.monitoring.add(cf)
        else:  # its first: most clients never watch anyone, and hold no set
            client.monitoring = {cf}
        await ctx.store.watch(cf, ctx.instance, client.uid)
        added.append(nick)
    return Watched(added, [])


async def unwatch(ctx: Context, client: Client, nicks: list[str] | None = None) -> None:
    """Stop watching `nicks` (every one when None)."""
    for cf in list(client.monitoring) if nicks is None else [casefold(nick) for nick in nicks]:
        if isinstance(client.monitoring, set) and cf in client.monitoring:
            client.monitoring.discard(cf)
            await ctx.store.unwatch(cf, ctx.instance, client.uid)


@dataclass(frozen=True, slots=True)
class Presence:
    online: list[str]  # nick!user@host of those online
    offline: list[str]  # the nicks as given


async def presence(ctx: Context, nicks: list[str]) -> Presence:
    """Which of `nicks` are online now."""
    online, offline = [], []
    for nick in nicks:
        user = await ctx.store.user_by_nick(casefold(nick))
        if user is not None:
            online.append(user.prefix)
        else:
            offline.append(nick)
    return Presence(online, offline)


async def watchers(ctx: Context, uid: str, nick_cf: str) -> dict[str, str]:
    """The clients MONITORing `nick_cf` but `uid` itself: uid -> replica."""
    return _others(await ctx.store.watchers(nick_cf), uid)


def _others(found: dict[str, str], uid: str) -> dict[str, str]:
    return {watcher: replica for watcher, replica in found.items() if watcher != uid}


async def tell_online(ctx: Context, uid: str, nick_cf: str, prefix: str,
                      found: dict[str, str] | None = None) -> None:
    """Tell the watchers of `nick_cf` that it came online as `prefix` (730); `found`: its
    watchers, when they were read already (a registration reads them with its record)."""
    targets = await watchers(ctx, uid, nick_cf) if found is None else _others(found, uid)
    if targets:
        await ctx.delivery.to_uids(targets, Numeric(n.RPL_MONONLINE, [prefix]))


async def tell_offline(ctx: Context, uid: str, nick_cf: str, nick: str) -> None:
    """Tell the watchers of `nick_cf` that `nick` went offline (731)."""
    targets = await watchers(ctx, uid, nick_cf)
    if targets:
        await ctx.delivery.to_uids(targets, Numeric(n.RPL_MONOFFLINE, [nick]))

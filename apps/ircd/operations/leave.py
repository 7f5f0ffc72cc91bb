"""A user leaves: the one path for QUIT, a lost connection, KILL (all three end a connection
here) and the users of a dead replica (apps/ircd/sweeper.py).

Whoever leaves, the same happens, in the same order: its nick is freed first, then its QUIT
goes to its channels and its watchers hear it go offline, then it leaves its channels, its
nick's last user is noted for WHOWAS, and its record goes with its indexes (the replica's,
the account's connections).
"""

from __future__ import annotations

import asyncio

from apps.chat.records import User, WhowasEntry
from apps.ircd.client import Client
from apps.ircd.context import Context, quietly
from apps.ircd.lines import user_line
from apps.ircd.operations import devices, monitor, playback
from apps.ircd.protocol import casefold


async def disconnect(ctx: Context, client: Client) -> None:
    """A connection of this replica is over (QUIT, lost, killed): undo what it leaves behind.
    Its user leaves with it unless it stays: other devices, or always-on
    (apps/ircd/operations/devices.py)."""
    ctx.roster.remove(client)
    await monitor.unwatch(ctx, client)
    if client.registered:
        if not await devices.detach(ctx, client):
            await leave(ctx, client.to_user(ctx.instance), client.quit_reason, client=client)
        return
    await quietly(ctx.store.unregistered(ctx.instance, -1))
    if client.nick_cf:
        await ctx.store.release_nick(client.nick_cf, client.uid)


async def leave(ctx: Context, user: User, reason: str, *, client: Client | None = None) -> None:
    """`user` leaves the network with `reason` as its QUIT; `client` is its connection when it
    is one of this replica's (None: a user of a dead replica, swept)."""
    store, nick_cf = ctx.store, casefold(user.nick)
    # The nick is free before anyone sees the QUIT: a client that reconnects as soon as it
    # sees its old link quit (the web page logging out and in) gets its nick back.
    await store.release_nick(nick_cf, user.uid)
    channels = await store.user_channels(user.uid) | (client.channels if client else set())
    line = user_line(user.prefix, user.account, "QUIT", [reason], ctx.clock(), id=ctx.new_id())
    ctx.delivery.seen(line).update({user.uid, client.device} if client else {user.uid})
    if channels:
        await ctx.delivery.to_channels(channels, line)
        # Kept before the leaves, the last of which deletes a secret channel's history.
        await playback.keep_in(ctx, sorted(channels), line)
    # Before the clean-up: a watcher must hear this offline before a newcomer's online.
    await monitor.tell_offline(ctx, user.uid, nick_cf, user.nick)
    await _leave_all(ctx, user, sorted(channels), client)
    entry = WhowasEntry.of(user, ctx.name, ctx.clock())
    await store.remember(nick_cf, entry, ctx.settings.whowas_length)
    await store.delete_user(user)
    if client is not None:
        await ctx.roster.unfollow_nick(client, user.nick)


async def _leave_all(ctx: Context, user: User, channels: list[str], client: Client | None) -> None:
    """`user` leaves `channels`, all at once: each is left on its own keys, so a user in twenty
    channels takes the round trips of one, not of twenty one after the other. A channel Redis
    did not take is raised once the others are left, for the caller to try again (a
    connection's clean-up does, apps/ircd/retry.py); those left are out of the client's."""
    leaving = (ctx.store.leave(cf, user.uid) for cf in channels)
    outcomes = await asyncio.gather(*leaving, return_exceptions=True)
    failed: BaseException | None = None
    for cf, outcome in zip(channels, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failed = failed or outcome
        elif client is not None:
            await ctx.roster.left(client, cf)
    if failed is not None:
        raise failed

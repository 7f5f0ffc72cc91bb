"""A user leaves: what a connection leaves behind is undone."""

from __future__ import annotations

from apps.chat.records import WhowasEntry
from apps.ircd.client import Client
from apps.ircd.context import Context, quietly
from apps.ircd.lines import client_line
from apps.ircd.operations import monitor
from apps.ircd.operations.lookup import channels_of


async def disconnect(ctx: Context, client: Client) -> None:
    """A connection is over (QUIT, lost, killed): QUIT to its channels, leave them, free the
    nick and the user."""
    store = ctx.store
    ctx.roster.clients.pop(client.uid, None)
    if not client.registered:
        await quietly(store.unregistered(ctx.instance, -1))
    await monitor.unwatch(ctx, client)
    # The nick is free before anyone sees the QUIT: a client that reconnects as soon as it
    # sees its old link quit (the web page logging out and in) gets its nick back.
    if client.nick_cf:
        await store.release_nick(client.nick_cf, client.uid)
    if not client.registered:
        return
    channels = await channels_of(ctx, client)
    line = client_line(client, "QUIT", [client.quit_reason], ctx.clock(), id=ctx.new_id())
    ctx.delivery.seen(line).add(client.uid)
    if channels:
        await ctx.delivery.to_channels(channels, line)
    # Before the clean-up: a watcher must hear this offline before a newcomer's online.
    await monitor.tell_offline(ctx, client.uid, client.nick_cf, client.nick)
    for cf in channels:
        await store.leave(cf, client.uid)
        await ctx.roster.left(client, cf)
    user = client.to_user(ctx.instance)
    entry = WhowasEntry.of(user, ctx.name, ctx.clock())
    await store.remember(client.nick_cf, entry, ctx.settings.whowas_length)
    await store.delete_user(user)
    await ctx.roster.unfollow_nick(client, client.nick)

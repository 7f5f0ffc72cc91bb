"""Telling a user's neighbours of a change about it: those sharing a channel with it and, with
extended-monitor, those MONITORing its nick."""

from __future__ import annotations

from dataclasses import replace

from apps.chat.events import Line
from apps.chat.records import User
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.operations import monitor
from apps.ircd.operations.lookup import channels_of
from apps.ircd.protocol import casefold


async def tell_neighbours(ctx: Context, client: Client, line: Line) -> None:
    """A change about `client` to everyone sharing a channel with it and, with extended-monitor,
    to every client MONITORing its nick: each gets it once (the line's id)."""
    if not line.id:
        line = replace(line, id=ctx.new_id())
    ctx.delivery.seen(line).add(client.device)  # the connection that made it: its command answers it
    await _tell(ctx, client.uid, client.nick_cf, await channels_of(ctx, client), line)


async def tell_neighbours_of(ctx: Context, user: User, line: Line) -> None:
    """A change made to `user` by someone else (an operator's CHGHOST), wherever its devices
    are: to its channels' members (its own devices among them, once each) and its watchers."""
    if not line.id:
        line = replace(line, id=ctx.new_id())
    await _tell(ctx, user.uid, casefold(user.nick), await ctx.store.user_channels(user.uid), line)


async def _tell(ctx: Context, uid: str, nick_cf: str, channels: set[str], line: Line) -> None:
    if channels:
        await ctx.delivery.to_channels(channels, line)
    watchers = await monitor.watchers(ctx, uid, nick_cf)
    if watchers:
        await ctx.delivery.to_uids(watchers, _for_watchers(line))


def _for_watchers(line: Line) -> Line:
    """The line as extended-monitor sends it: to watchers with that capability too, its
    alternative (if any: pre-away's `*` put in words) as well."""
    alt = None if line.alt is None else _for_watchers(line.alt)
    return replace(line, needs=(*line.needs, "extended-monitor"), alt=alt)

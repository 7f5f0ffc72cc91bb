"""Being in channels: JOIN, PART, TOPIC, KICK and INVITE."""

from __future__ import annotations

from dataclasses import dataclass, replace

from apps.chat.events import Line
from apps.chat.modes import OPERATOR
from apps.chat.records import Channel, User
from apps.ircd.client import Client
from apps.ircd.context import Context, StateError, quietly
from apps.ircd.errors import (
    CannotJoin,
    ChanOpPrivsNeeded,
    NoSuchChannel,
    NotOnChannel,
    TooManyChannels,
    UserNotInChannel,
    UserOnChannel,
)
from apps.ircd.lines import away_line, client_line
from apps.ircd.operations import devices, playback
from apps.ircd.operations.lookup import (
    ChannelView,
    channel_view,
    exempt,
    members_at_least,
    membership,
    refused_by_list,
    user_named,
)
from apps.ircd.protocol import casefold, valid_channel
from apps.ircd.store import Joined


async def join(ctx: Context, client: Client, name: str, key: str) -> ChannelView | None:
    """Join channel `name` (creating it, the client its operator), tell its members; the
    channel joined, None if the client is in it already. NoSuchChannel for an invalid name,
    TooManyChannels, CannotJoin (refused by a mode's rule)."""
    if not valid_channel(name, ctx.settings.channel_length):
        raise NoSuchChannel(name or "*")
    cf = casefold(name)
    if cf in client.channels:
        return None
    if len(client.channels) >= ctx.settings.max_channels_per_user:
        raise TooManyChannels(name)
    lists = await ctx.store.masks(cf)
    # Subscribed before being a member, and a local member as soon as the script answers:
    # what another replica publishes once the client is in reaches it (docs/ircd.md).
    await ctx.roster.expect(cf)
    try:
        outcome = await ctx.store.join(cf, name, client.uid, key=key, now=ctx.clock(),
                                       banned=refused_by_list(lists, "b", client.prefix),
                                       invex=exempt(lists, "i", client.prefix))
        if not isinstance(outcome, Joined):
            raise CannotJoin(name, outcome)
        await ctx.roster.joined(client, cf)  # subscribed already: no wait
    finally:
        await ctx.roster.unexpect(cf)
    try:
        channel = await ctx.store.channel(cf) or Channel(name)
        display = channel.name or name
        now = ctx.clock()
        plain = client_line(client, "JOIN", [display], now)
        extended = client_line(client, "JOIN", [display, client.account or "*", client.realname], now,
                               needs=("extended-join",), alt=plain)
        extended = await playback.keep(ctx, display, extended)
    except StateError:
        # Nobody has been told yet, the client included: the membership is undone, so that its
        # 400 means "not in the channel" and a JOIN again works (a JOIN of a channel the client
        # is in is ignored, and would never be answered).
        await quietly(ctx.store.leave(cf, client.uid))
        await ctx.roster.left(client, cf)
        raise
    await ctx.delivery.to_channels([cf], extended)
    await devices.sync(ctx, client, extended, joined=cf)
    if client.away:  # away-notify: members learn at once that the newcomer is away
        await ctx.delivery.to_channels([cf], away_line(client, now), exclude=client.device)
    return ChannelView(cf, display, channel, None)


async def part(ctx: Context, client: Client, name: str, reason: str) -> None:
    """Leave channel `name`; NoSuchChannel, NotOnChannel."""
    view, _ = await membership(ctx, client, name)
    await leave_channel(ctx, client, view.cf, view.display, reason)


async def part_all(ctx: Context, client: Client) -> None:
    """`JOIN 0`: leave every channel, the nick as the reason."""
    for cf in sorted(client.channels):
        channel = await ctx.store.channel(cf)
        await leave_channel(ctx, client, cf, channel.name if channel and channel.name else cf, client.nick)


async def leave_channel(ctx: Context, client: Client, cf: str, display: str, reason: str) -> None:
    params = [display, reason] if reason else [display]
    # Kept before the leave, which deletes a secret channel's history with its last member.
    line = await playback.keep(ctx, display, client_line(client, "PART", params, ctx.clock()))
    await ctx.delivery.to_channels([cf], line, leaves=client.uid)
    await ctx.store.leave(cf, client.uid)
    for device in list(ctx.roster.devices(client.uid)):  # the user's other devices here leave too
        await ctx.roster.left(device, cf)


async def topic_of(ctx: Context, client: Client, name: str) -> ChannelView:
    """Channel `name`, to read its topic; NoSuchChannel, NotOnChannel (a secret one's)."""
    view = await channel_view(ctx, client, name)
    if view.status is None and view.channel.hidden:
        raise NotOnChannel(view.display)
    return view


async def set_topic(ctx: Context, client: Client, name: str, text: str) -> None:
    """Set (or, empty, clear) channel `name`'s topic and tell its members; NoSuchChannel,
    NotOnChannel, ChanOpPrivsNeeded (+t)."""
    view, status = await membership(ctx, client, name)
    if view.channel.has("t") and not status.operator:
        raise ChanOpPrivsNeeded(view.display)
    text = text.encode()[:ctx.settings.topic_length].decode("utf-8", "ignore")
    now = ctx.clock()
    changed = replace(view.channel, topic=text, topic_by=client.prefix, topic_at=int(now))
    await ctx.store.set_topic(view.cf, changed)
    line = await playback.keep(ctx, view.display, client_line(client, "TOPIC", [view.display, text], now))
    await ctx.delivery.to_channels([view.cf], line)


async def kick(ctx: Context, client: Client, name: str, nick: str, reason: str) -> None:
    """Put `nick` out of channel `name`; NoSuchChannel, NotOnChannel, ChanOpPrivsNeeded,
    NoSuchNick, UserNotInChannel."""
    view, status = await membership(ctx, client, name)
    if not status.operator:
        raise ChanOpPrivsNeeded(view.display)
    user = await user_named(ctx, nick)
    if await ctx.store.status(view.cf, user.uid) is None:
        raise UserNotInChannel(user.nick, view.display)
    line = await playback.keep(ctx, view.display,
                               client_line(client, "KICK", [view.display, user.nick, reason], ctx.clock()))
    await ctx.delivery.to_channels([view.cf], line, leaves=user.uid)
    await ctx.store.leave(view.cf, user.uid)
    for kicked in list(ctx.roster.devices(user.uid)):
        await ctx.roster.left(kicked, view.cf)


@dataclass(frozen=True, slots=True)
class Invited:
    user: User
    channel: str  # as shown


async def invite(ctx: Context, client: Client, nick: str, name: str) -> Invited:
    """Invite `nick` to channel `name` (an invitation passes every JOIN rule once) and tell
    them; NoSuchNick, NoSuchChannel, NotOnChannel, ChanOpPrivsNeeded (+i), UserOnChannel."""
    user = await user_named(ctx, nick)
    view, status = await membership(ctx, client, name)
    if view.channel.has("i") and not status.at_least(OPERATOR):
        raise ChanOpPrivsNeeded(view.display)
    if await ctx.store.status(view.cf, user.uid) is not None:
        raise UserOnChannel(user.nick, view.display)
    await ctx.store.invite(view.cf, user.uid)
    line = client_line(client, "INVITE", [user.nick, view.display], ctx.clock())
    await ctx.delivery.to_uids({user.uid: user.instance}, line)
    await _tell_members(ctx, client, view, replace(line, needs=("invite-notify",)))
    return Invited(user, view.display)


async def _tell_members(ctx: Context, client: Client, view: ChannelView, line: Line) -> None:
    """IRCv3 invite-notify: the INVITE to the members who could have sent it themselves (the
    spec leaves who to the server, "only to clients that have the privilege to do an /INVITE
    on the channel themselves" among its examples): on an invite-only channel its operators,
    else every member; the inviter aside, and only those with the capability. Without it, "other
    channel members are not notified" (RFC 2812)."""
    if not view.channel.has("i"):
        await ctx.delivery.to_channels([view.cf], line, exclude=client.device)
    else:
        await ctx.delivery.to_uids(await members_at_least(ctx, view.cf, OPERATOR, but=client.uid), line)

"""Channel commands: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE."""

from __future__ import annotations

from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import NeedMoreParams, TooManyTargets
from apps.ircd.failures import answered
from apps.ircd.joinburst import after_join, names_reply, topic_reply
from apps.ircd.operations import channels
from apps.ircd.operations.queries import ListFilter, channel_named, channels_listed
from apps.ircd.protocol import KICK_LENGTH, Message
from apps.ircd.registry import command


@command("JOIN", params=1)
async def join(ctx: Context, client: Client, message: Message) -> None:
    if message.params[0] == "0":
        await channels.part_all(ctx, client)
        return
    keys = message.params[1].split(",") if len(message.params) > 1 else []
    for i, name in enumerate(message.params[0].split(",")):
        with answered(client):
            joined = await channels.join(ctx, client, name, keys[i] if i < len(keys) else "")
            if joined is not None:
                await after_join(ctx, client, joined.cf, joined.display, joined.channel)


@command("NAMES")
async def names(ctx: Context, client: Client, message: Message) -> None:
    if not message.params or not message.params[0]:
        client.reply(n.RPL_ENDOFNAMES, "*", "End of /NAMES list")
        return
    for name in message.params[0].split(","):
        found = await channel_named(ctx, name)
        if found is not None:
            cf, channel = found
            await names_reply(ctx, client, cf, channel.name or name, channel, end=False)
    client.reply(n.RPL_ENDOFNAMES, message.params[0], "End of /NAMES list")


@command("PART", params=1)
async def part(ctx: Context, client: Client, message: Message) -> None:
    reason = message.params[1] if len(message.params) > 1 else ""
    for name in message.params[0].split(","):
        with answered(client):
            await channels.part(ctx, client, name, reason)


@command("TOPIC", params=1)
async def topic(ctx: Context, client: Client, message: Message) -> None:
    if len(message.params) > 1:
        await channels.set_topic(ctx, client, message.params[0], message.params[1])
        return
    view = await channels.topic_of(ctx, client, message.params[0])
    if view.channel.topic:
        topic_reply(ctx, client, view.display, view.channel)
    else:
        client.reply(n.RPL_NOTOPIC, view.display, "No topic is set")


@command("LIST")
async def list_(ctx: Context, client: Client, message: Message) -> None:
    wanted = ListFilter.parse(message.params[0] if message.params else "")
    client.reply(n.RPL_LISTSTART, "Channel", "Users  Name")
    for channel, count in await channels_listed(ctx, client, wanted):
        client.reply(n.RPL_LIST, channel.name, str(count), channel.topic)
    client.reply(n.RPL_LISTEND, "End of /LIST")


@command("KICK", params=2)
async def kick(ctx: Context, client: Client, message: Message) -> None:
    """KICK #chan a,b (one channel, several users) or KICK #a,#b x,y (pairs, RFC 2812)."""
    reason = message.params[2] if len(message.params) > 2 and message.params[2] else client.nick
    names, nicks = message.params[0].split(","), message.params[1].split(",")
    if len(names) != 1 and len(names) != len(nicks):
        raise NeedMoreParams("KICK", "Give one channel, or one channel per user")
    if len(nicks) > ctx.settings.max_targets:
        raise TooManyTargets(message.params[1])
    for name, nick in zip(names * len(nicks) if len(names) == 1 else names, nicks, strict=True):
        with answered(client):
            await channels.kick(ctx, client, name, nick, reason[:KICK_LENGTH])


@command("INVITE", params=2)
async def invite(ctx: Context, client: Client, message: Message) -> None:
    invited = await channels.invite(ctx, client, message.params[0], message.params[1])
    client.reply(n.RPL_INVITING, invited.user.nick, invited.channel)
    if invited.user.away:
        client.reply_away(invited.user.nick, invited.user.away)

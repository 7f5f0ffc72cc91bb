"""Channel commands: JOIN, PART, TOPIC, NAMES, LIST, KICK, INVITE."""

from __future__ import annotations

from apps.chat import numerics as n
from apps.chat.records import Channel
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import NeedMoreParams, TooManyTargets
from apps.ircd.failures import answered
from apps.ircd.operations import channels
from apps.ircd.operations.markers import CAP as CAP_READ_MARKER
from apps.ircd.operations.markers import read_marker, send_marker
from apps.ircd.operations.queries import ListFilter, channel_named, channels_listed, visible_members
from apps.ircd.protocol import KICK_LENGTH, MAX_LINE, Message
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
                if joined.channel.topic:
                    topic_reply(ctx, client, joined.display, joined.channel, by_default=ctx.name)
                if CAP_READ_MARKER in client.caps:  # "MUST be sent before the RPL_ENDOFNAMES"
                    send_marker(ctx, client, joined.display, await read_marker(ctx, client, joined.display))
                if "no-implicit-names" not in client.caps:
                    await names_reply(ctx, client, joined.cf, joined.display, joined.channel)


def topic_reply(ctx: Context, client: Client, display: str, channel: Channel, *,
                by_default: str = "") -> None:
    client.reply(n.RPL_TOPIC, display, channel.topic)
    client.reply(n.RPL_TOPICWHOTIME, display, channel.topic_by or by_default, str(channel.topic_at))


async def names_reply(ctx: Context, client: Client, cf: str, display: str, channel: Channel, *,
                      end: bool = True) -> None:
    """353 lines (as many as 512 bytes need) and, unless `end` is False, 366 for one channel.
    The members come from a read shared with the other NAMES of the channel waiting for one
    (apps/ircd/names.py, docs/ircd.md "NAMES")."""
    members = await visible_members(ctx, client, cf, channel)
    if members is not None:
        every, hostmasks = "multi-prefix" in client.caps, "userhost-in-names" in client.caps
        symbol = "@" if channel.hidden else "="
        room = MAX_LINE - len(f":{ctx.name} 353 {client.nick} {symbol} {display} :") - 2
        line: list[str] = []
        size = 0  # bytes of " ".join(line)
        for member in members:
            user = member.user
            entry = member.status.symbols(every) + (user.prefix if hostmasks else user.nick)
            grown = size + len(entry.encode()) + (1 if line else 0)
            if line and grown > room:
                client.reply(n.RPL_NAMREPLY, symbol, display, " ".join(line))
                line, grown = [], len(entry.encode())
            line.append(entry)
            size = grown
        if line:
            client.reply(n.RPL_NAMREPLY, symbol, display, " ".join(line))
    if end:
        client.reply(n.RPL_ENDOFNAMES, display, "End of /NAMES list")


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

"""What a client is told when it is in a channel it was not in: the channel's topic, its read
marker and its members (NAMES), after the JOIN itself. A JOIN answers with it, and so does a
device of a user that joined elsewhere, or that comes back to its user's channels."""

from __future__ import annotations

from apps.chat import numerics as n
from apps.chat.records import Channel
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.operations.markers import CAP as CAP_READ_MARKER
from apps.ircd.operations.markers import read_marker, send_marker
from apps.ircd.operations.queries import visible_members
from apps.ircd.protocol import MAX_LINE


async def after_join(ctx: Context, client: Client, cf: str, display: str, channel: Channel) -> None:
    """The topic (if any), the read marker (draft/read-marker) and, unless the client asked for
    no-implicit-names, NAMES."""
    if channel.topic:
        topic_reply(ctx, client, display, channel, by_default=ctx.name)
    if CAP_READ_MARKER in client.caps:  # "MUST be sent before the RPL_ENDOFNAMES"
        send_marker(ctx, client, display, await read_marker(ctx, client, display))
    if "no-implicit-names" not in client.caps:
        await names_reply(ctx, client, cf, display, channel)


def topic_reply(ctx: Context, client: Client, display: str, channel: Channel, *,
                by_default: str = "") -> None:
    client.reply(n.RPL_TOPIC, display, channel.topic)
    client.reply(n.RPL_TOPICWHOTIME, display, channel.topic_by or by_default, str(channel.topic_at))


async def names_reply(ctx: Context, client: Client, cf: str, display: str, channel: Channel, *,
                      end: bool = True) -> None:
    """353 lines (as many as 512 bytes need) and, unless `end` is False, 366 for one channel.
    The members come from a read shared with the other NAMES of the channel waiting for one
    (apps/ircd/names.py, docs/ircd.md "NAMES")."""
    roll = await visible_members(ctx, client, cf, channel)
    if roll is not None:
        symbol = "@" if channel.hidden else "="
        room = MAX_LINE - len(f":{ctx.name} 353 {client.nick} {symbol} {display} :") - 2
        for text in roll.texts("multi-prefix" in client.caps, "userhost-in-names" in client.caps, room):
            client.reply(n.RPL_NAMREPLY, symbol, display, text)
    if end:
        client.reply(n.RPL_ENDOFNAMES, display, "End of /NAMES list")

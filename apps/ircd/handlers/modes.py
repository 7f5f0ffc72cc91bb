"""MODE: a user's own modes, a channel's modes and lists (apps/ircd/operations/modes.py)."""

from __future__ import annotations

from functools import partial

from apps.chat import numerics as n
from apps.chat.modes import CHANNEL_MODE, PARAMETERS, Kind
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import UnknownUserModeFlag
from apps.ircd.failures import reply_to
from apps.ircd.operations.lookup import ChannelView, channel_view
from apps.ircd.operations.modes import change_channel_modes, change_user_modes, list_entries, own_modes
from apps.ircd.protocol import Message, format_line, is_channel
from apps.ircd.registry import command

PARAMETER_LETTERS = frozenset(mode.letter for mode in PARAMETERS)


@command("MODE", params=1)
async def mode(ctx: Context, client: Client, message: Message) -> None:
    target = message.params[0]
    if not is_channel(target):
        await user_mode(ctx, client, target, message.params[1] if len(message.params) > 1 else None)
        return
    view = await channel_view(ctx, client, target)
    if len(message.params) == 1:
        channel_modes_reply(client, view)
        return
    letters, args = message.params[1], message.params[2:]
    asked = CHANNEL_MODE.get(letters.strip("+-") or "b")
    if asked is not None and asked.kind is Kind.LIST and not args:  # a list query: MODE #chan b
        await list_reply(ctx, client, view, asked.letter)
        return
    await change_channel_modes(ctx, client, view, letters, args, partial(reply_to, client))


async def user_mode(ctx: Context, client: Client, target: str, letters: str | None) -> None:
    if letters is None:
        await own_modes(ctx, client, target)
        client.reply(n.RPL_UMODEIS, "+" + client.modes)
        return
    changed = await change_user_modes(ctx, client, target, letters)
    if changed.unknown:
        reply_to(client, UnknownUserModeFlag())
    if changed.applied:
        client.send(format_line("MODE", [client.nick, changed.applied], source=client.prefix))


def channel_modes_reply(client: Client, view: ChannelView) -> None:
    """324: the channel's modes with their parameters (the key for members only), and 329."""
    channel = view.channel
    shown = "+" + "".join(letter for letter in channel.modes if letter not in PARAMETER_LETTERS)
    params = []
    for mode in PARAMETERS:
        value = channel.parameters.get(mode.letter)
        if value:
            shown += mode.letter
            hidden = mode.parameter is not None and mode.parameter.members_only and view.status is None
            params.append("*" if hidden else value)
    client.reply(n.RPL_CHANNELMODEIS, view.display, shown, *params)
    client.reply(n.RPL_CREATIONTIME, view.display, str(int(channel.created)))


async def list_reply(ctx: Context, client: Client, view: ChannelView, letter: str) -> None:
    """A channel list (+b, +e, +I) with its own numerics."""
    mask_list = CHANNEL_MODE[letter].mask_list
    assert mask_list is not None
    for entry in await list_entries(ctx, view, letter):
        client.reply(mask_list.entry_numeric, view.display, entry.mask, entry.setter, str(entry.at))
    client.reply(mask_list.end_numeric, view.display, mask_list.end_text)

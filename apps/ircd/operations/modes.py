"""MODE: a user's own modes, and a channel's, read from the mode table (apps/chat/modes.py).

A channel mode change is read letter by letter as the table describes each one: a flag, a
setting with a parameter, a mask list, or a member's status. A letter refused is answered and
the rest still applies, as IRC servers do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from apps.chat.modes import CHANNEL_MODE, MAX_PARAMETER_CHANGES, USER_MODE, ChannelMode, Kind, UserSetter
from apps.chat.records import Channel, ListEntry
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import (
    ChanOpPrivsNeeded,
    ChatError,
    InvalidModeParameter,
    ListFull,
    NeedMoreParams,
    NoSuchNick,
    UnknownMode,
    UserNotInChannel,
    UsersDontMatch,
)
from apps.ircd.lines import client_line, line
from apps.ircd.operations import devices, playback
from apps.ircd.operations.lookup import ChannelView
from apps.ircd.protocol import casefold, normalize_mask


@dataclass(frozen=True, slots=True)
class Change:
    """One mode change as applied: `+` or `-`, the mode, and the parameter shown."""

    sign: str
    mode: ChannelMode
    param: str = ""


@dataclass(frozen=True, slots=True)
class UserModeChange:
    applied: str  # `+i-w`...
    unknown: bool  # a letter that is no user mode was given


async def own_modes(ctx: Context, client: Client, target: str) -> None:
    """A user's modes are its own: UsersDontMatch for another user, NoSuchNick for nobody."""
    if casefold(target) != client.nick_cf:
        if await ctx.store.uid_of(casefold(target)) is None:
            raise NoSuchNick(target)
        raise UsersDontMatch()


async def change_user_modes(ctx: Context, client: Client, target: str, letters: str) -> UserModeChange:
    """MODE <nick> <changes> on oneself: i and w; o only through OPER (it may be taken off).
    UsersDontMatch, NoSuchNick (`own_modes`)."""
    await own_modes(ctx, client, target)
    adding, applied, unknown = True, "", False
    for letter in letters:
        if letter in "+-":
            adding = letter == "+"
            continue
        mode = USER_MODE.get(letter)
        if mode is None:
            unknown = True
            continue
        if (letter in client.modes) == adding or (adding and mode.set_by is UserSetter.OPER):
            continue
        client.set_mode(letter, adding)
        applied += ("+" if adding else "-") + letter
        await ctx.store.count_user_mode(letter, client.uid, adding)
    if applied:
        await ctx.store.update_user(client.to_user(ctx.instance), "modes")
        await devices.sync(ctx, client, line(client.prefix, "MODE", [client.nick, applied], ctx.clock(),
                                             id=ctx.new_id()))
    return UserModeChange(applied, unknown)


async def change_channel_modes(ctx: Context, client: Client, view: ChannelView, letters: str,
                               args: list[str], refuse: Callable[[ChatError], None]) -> list[Change]:
    """Apply `letters` (`+o-v+k`...) with their `args` to a channel and tell its members what
    changed (the changes applied). Each letter refused is given to `refuse` as it comes, and
    ChanOpPrivsNeeded once, at the end, for those the client may not set."""
    applied: list[Change] = []
    args = list(args)
    channel = replace(view.channel, parameters=dict(view.channel.parameters))
    flags = set(channel.modes) - {m.letter for m in CHANNEL_MODES_WITH_PARAMETER}
    adding, with_parameter, denied = True, 0, False
    for letter in letters:
        if letter in "+-":
            adding = letter == "+"
            continue
        mode = CHANNEL_MODE.get(letter)
        if mode is None:
            refuse(UnknownMode(letter))
            continue
        param = ""
        if _takes_parameter(mode, adding):
            if not args:
                if mode.kind is Kind.STATUS:
                    refuse(NeedMoreParams("MODE"))
                continue  # a setting or a list without one: nothing to do
            param = args.pop(0)
            with_parameter += 1
            if with_parameter > MAX_PARAMETER_CHANGES:
                continue
        elif mode.kind is Kind.PARAMETER and args:
            args.pop(0)  # -k takes the old key, which is not checked
        if mode.kind is Kind.LIST and not param:
            continue
        if view.status is None or not view.status.at_least(mode.set_by):
            denied = True
            continue
        try:
            change = await _apply(ctx, client, view, channel, flags, mode, adding, param)
        except ChatError as error:
            refuse(error)
            continue
        if change is not None:
            applied.append(change)
    if denied:
        refuse(ChanOpPrivsNeeded(view.display))
    channel.modes = "".join(sorted(flags | set(channel.parameters)))
    if channel.modes != view.channel.modes or channel.parameters != view.channel.parameters:
        await ctx.store.set_modes(view.cf, channel)
    if applied:
        line = client_line(client, "MODE", [view.display, *_mode_params(applied)], ctx.clock())
        line = await playback.keep(ctx, view.display, line)
        await ctx.delivery.to_channels([view.cf], line)
    return applied


CHANNEL_MODES_WITH_PARAMETER = tuple(m for m in CHANNEL_MODE.values() if m.parameter is not None)


def _takes_parameter(mode: ChannelMode, adding: bool) -> bool:
    return mode.kind in (Kind.STATUS, Kind.LIST) or (adding and mode.parameter is not None)


async def _apply(ctx: Context, client: Client, view: ChannelView, channel: Channel, flags: set[str],
                 mode: ChannelMode, adding: bool, param: str) -> Change | None:
    """One letter, as its kind says; the change made (None: nothing changed)."""
    sign = "+" if adding else "-"
    if mode.kind is Kind.FLAG:
        if (mode.letter in flags) == adding:
            return None
        (flags.add if adding else flags.discard)(mode.letter)
        return Change(sign, mode)
    if mode.parameter is not None:
        if adding:
            value = mode.parameter.normalize(param)
            if value is None:
                raise InvalidModeParameter(view.display, mode, param)
            channel.parameters[mode.letter] = value
            return Change(sign, mode, value)
        if channel.parameters.pop(mode.letter, None) is None:
            return None
        return Change(sign, mode, "*" if mode.kind is Kind.PARAMETER else "")
    if mode.kind is Kind.LIST:
        return await _change_list(ctx, client, view, mode, adding, param)
    return await _change_status(ctx, view, mode, adding, param)


async def _change_list(ctx: Context, client: Client, view: ChannelView, mode: ChannelMode, adding: bool,
                       param: str) -> Change | None:
    mask = normalize_mask(param)
    if adding:
        entry = ListEntry(mask, client.prefix, int(ctx.clock()))
        added = await ctx.store.add_mask(view.cf, mode.letter, entry, ctx.settings.max_list_entries)
        if added < 0:
            raise ListFull(view.display, mode.letter)
        return Change("+", mode, mask) if added else None
    return Change("-", mode, mask) if await ctx.store.remove_mask(view.cf, mode.letter, mask) else None


async def _change_status(ctx: Context, view: ChannelView, mode: ChannelMode, adding: bool,
                         nick: str) -> Change:
    user = await ctx.store.user_by_nick(casefold(nick))
    if user is None:
        raise NoSuchNick(nick)
    current = await ctx.store.status(view.cf, user.uid)
    if current is None:
        raise UserNotInChannel(user.nick, view.display)
    changed = current.changed(mode.letter, adding)
    if changed != current:
        await ctx.store.set_status(view.cf, user.uid, changed)
    return Change("+" if adding else "-", mode, user.nick)


async def list_entries(ctx: Context, view: ChannelView, letter: str) -> list[ListEntry]:
    """The masks of a channel's list `letter` (+b, +e, +I)."""
    return (await ctx.store.masks(view.cf, letter))[letter]


def _mode_params(applied: list[Change]) -> list[str]:
    """`+ov-k alice bob *`: the letters, signs only where they change, then the parameters."""
    text, params, last = "", [], ""
    for change in applied:
        if change.sign != last:
            text += change.sign
            last = change.sign
        text += change.mode.letter
        if change.param:
            params.append(change.param)
    return [text, *params]

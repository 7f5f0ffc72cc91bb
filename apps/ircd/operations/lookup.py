"""Finding what a command names: a channel and the client's status in it, a user by nick."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from apps.chat.modes import exempted_by
from apps.chat.records import Channel, ListEntry, Status, User
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import NoSuchChannel, NoSuchNick, NotOnChannel
from apps.ircd.protocol import casefold, mask_matches


@dataclass(frozen=True, slots=True)
class ChannelView:
    """A channel as one command sees it: its folded name, its name as shown, its record, and
    the client's status in it (None: not a member)."""

    cf: str
    display: str
    channel: Channel
    status: Status | None


async def channel_view(ctx: Context, client: Client, name: str) -> ChannelView:
    """The channel `name` and the client's status in it, in one round trip; NoSuchChannel."""
    cf = casefold(name)
    channel, status = await ctx.store.channel_and_status(cf, client.uid)
    if channel is None:
        raise NoSuchChannel(name)
    return ChannelView(cf, channel.name or name, channel, status)


async def membership(ctx: Context, client: Client, name: str) -> tuple[ChannelView, Status]:
    """The channel `name` and the client's status in it; NoSuchChannel, NotOnChannel."""
    view = await channel_view(ctx, client, name)
    if view.status is None:
        raise NotOnChannel(view.display)
    return view, view.status


async def user_named(ctx: Context, nick: str) -> User:
    """Whoever holds `nick` now; NoSuchNick."""
    user = await ctx.store.user_by_nick(casefold(nick))
    if user is None:
        raise NoSuchNick(nick)
    return user


async def channels_of(ctx: Context, client: Client) -> set[str]:
    """The channels a client is in: Redis's view joined with the replica's own."""
    return client.channels | await ctx.store.user_channels(client.uid)


async def members_at_least(ctx: Context, cf: str, letter: str, *, but: str = "") -> dict[str, str]:
    """The members of channel `cf` of status `letter` or above (`but` one uid), each with the
    replica holding it: what `Delivery.to_uids` takes."""
    wanted = [uid for uid, status in (await ctx.store.members(cf)).items()
              if uid != but and status.at_least(letter)]
    return {uid: user.instance for uid, user in (await ctx.store.users(wanted)).items()}


def matches(entries: Iterable[ListEntry], hostmask: str) -> bool:
    return any(mask_matches(entry.mask, hostmask) for entry in entries)


def refused_by_list(lists: dict[str, list[ListEntry]], letter: str, hostmask: str) -> bool:
    """`hostmask` matches list `letter` (bans) and none of the lists exempting from it."""
    return matches(lists.get(letter, ()), hostmask) and not exempt(lists, letter, hostmask)


def exempt(lists: dict[str, list[ListEntry]], letter: str, hostmask: str) -> bool:
    """`hostmask` matches a list exempting from mode `letter`'s refusal (+e for +b, +I for +i)."""
    return any(matches(lists.get(exception, ()), hostmask) for exception in exempted_by(letter))

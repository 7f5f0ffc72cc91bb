"""Who and what a client may see: NAMES, WHO, WHOIS, LIST, WHOWAS, ISON and USERHOST.

A secret channel (a mode that hides it: apps/chat/modes.py) and its members are seen by its
members only; an invisible user (+i) is seen by those who share a channel with it.
"""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import dataclass

from apps.chat.records import Channel, Status, User, WhowasEntry
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.names import Roll
from apps.ircd.operations.lookup import channels_of, user_named
from apps.ircd.protocol import casefold, is_channel, mask_matches
from apps.ircd.store import Counts


async def network_counts(ctx: Context) -> Counts:
    """What LUSERS tells."""
    return await ctx.store.counts()


async def channel_named(ctx: Context, name: str) -> tuple[str, Channel] | None:
    """Channel `name` (folded) and its record, if it exists."""
    cf = casefold(name)
    channel = await ctx.store.channel(cf)
    return None if channel is None else (cf, channel)


async def visible_members(ctx: Context, client: Client, cf: str, channel: Channel) -> Roll | None:
    """A channel's members as `client` may see them (NAMES); None for a secret channel it is
    not in. Each member's `user` holds only what NAMES shows (nick, user, host) and its modes;
    the read is shared with the other NAMES of the channel waiting for one (apps/ircd/names.py),
    and so, for its members, is the roll returned."""
    roll = await ctx.names.members(cf)
    inside = client.uid in roll.uids
    if not inside and channel.hidden:
        return None
    if inside:
        return roll
    seen = [member for member in roll.members if not member.user.invisible or member.user.uid == client.uid]
    return Roll(seen, frozenset(member.user.uid for member in seen))


@dataclass(frozen=True, slots=True)
class WhoRow:
    channel: str  # as shown, or `*`
    user: User
    status: Status
    idle: int  # seconds, for a client of this replica (others: 0, unknown)


@dataclass(frozen=True, slots=True)
class WhoAnswer:
    rows: list[WhoRow]
    truncated: bool = False  # a mask matched more than WHO_LIMIT users: the first ones


async def who(ctx: Context, client: Client, mask: str) -> WhoAnswer:
    """WHO: a channel's members, a nick, or the users whose nick or hostmask match a mask
    (TryAgain while this replica reads the whole network for another, or rests from it:
    apps/ircd/scanturns.py)."""
    store = ctx.store
    if is_channel(mask):
        cf = casefold(mask)
        channel = await store.channel(cf)
        if channel is None:
            return WhoAnswer([])
        members = await store.members(cf)
        if client.uid not in members and channel.hidden:
            return WhoAnswer([])
        users = await store.users(members)
        shown = channel.name or mask
        return WhoAnswer([_row(ctx, shown, users[uid], status)
                          for uid, status in members.items() if uid in users])
    if "*" not in mask and "?" not in mask:
        user = await store.user_by_nick(casefold(mask))
        return WhoAnswer([] if user is None else [_row(ctx, "*", user, Status())])
    async with ctx.network_scans.turn("WHO"):
        return await _who_network(ctx, client, mask)


async def _who_network(ctx: Context, client: Client, mask: str) -> WhoAnswer:
    """The users of the whole network `mask` matches, at most WHO_LIMIT of them; an invisible
    one only if it shares a channel with `client`. (One the scan gives twice is told twice:
    rare, and remembering every user seen would hold the whole network again.)"""
    shared = await channels_of(ctx, client)
    rows: list[WhoRow] = []
    async with aclosing(ctx.store.users_in_slices(ctx.settings.scan_slice)) as slices:
        async for users in slices:
            matching = [user for user in users
                        if mask == "*" or mask_matches(mask, user.nick) or mask_matches(mask, user.prefix)]
            invisible = [user.uid for user in matching if user.invisible and user.uid != client.uid]
            unseen = set(invisible)
            if invisible and shared:
                met = await ctx.store.channel_sets(invisible)
                unseen = {uid for uid, channels in zip(invisible, met, strict=True) if not shared & channels}
            for user in matching:
                if user.uid in unseen:
                    continue
                if len(rows) == ctx.settings.who_limit:  # one more than it answers: cut
                    return WhoAnswer(rows, truncated=True)
                rows.append(_row(ctx, "*", user, Status()))
    return WhoAnswer(rows)


def _row(ctx: Context, channel: str, user: User, status: Status) -> WhoRow:
    return WhoRow(channel, user, status, _idle(ctx, user.uid) or 0)


def _idle(ctx: Context, uid: str) -> int | None:
    """Seconds since a client of this replica last spoke; None for another replica's."""
    devices = ctx.roster.devices(uid)
    if not devices:
        return None
    return max(0, int(ctx.clock() - max(device.last_message for device in devices)))


@dataclass(frozen=True, slots=True)
class Whois:
    user: User
    channels: list[tuple[Status, str]]  # the channels `client` may see it in, as shown
    idle: int | None  # seconds, for a client of this replica (others: unknown)


async def whois(ctx: Context, client: Client, nick: str) -> Whois:
    """What WHOIS tells about `nick`; NoSuchNick."""
    store = ctx.store
    user = await user_named(ctx, nick)
    mine = await channels_of(ctx, client)
    channels = []
    for cf in sorted(await store.user_channels(user.uid)):
        channel, status = await store.channel_and_status(cf, user.uid)
        if channel is None or status is None or (channel.hidden and cf not in mine):
            continue
        channels.append((status, channel.name or cf))
    return Whois(user, channels, _idle(ctx, user.uid))


async def whowas(ctx: Context, nick: str, count: int) -> list[WhowasEntry]:
    """The last users of `nick`, newest first, at most `count` (all kept when 0 or less)."""
    keep = ctx.settings.whowas_length
    return await ctx.store.whowas(casefold(nick), count if count > 0 else keep)


async def users_named(ctx: Context, nicks: list[str]) -> list[User]:
    """The users holding `nicks` now (the others left out), in the order asked."""
    found = [await ctx.store.user_by_nick(casefold(nick)) for nick in nicks]
    return [user for user in found if user is not None]


async def channels_listed(ctx: Context, client: Client, wanted: ListFilter) -> list[tuple[Channel, int]]:
    """LIST: the channels `wanted` accepts, with their member counts, by name; a secret
    channel only for its members. Without names to look up, every channel of the network is
    read as WHO with a mask reads every user (apps/ircd/scanturns.py)."""
    now = ctx.clock()

    def shown(summaries: list[tuple[Channel, int]]) -> list[tuple[Channel, int]]:
        return [(channel, count) for channel, count in summaries
                if not (channel.hidden and casefold(channel.name) not in client.channels)
                and wanted.accepts(channel, count, now)]

    cfs = wanted.exact_names()
    if cfs is not None:
        return shown(await ctx.store.channel_summaries(cfs))
    listed: dict[str, tuple[Channel, int]] = {}  # by name: a channel SSCAN gives twice is listed once
    scan = ctx.store.channel_summaries_in_slices(ctx.settings.scan_slice)
    async with ctx.network_scans.turn("LIST"), aclosing(scan) as slices:
        async for summaries in slices:
            listed.update((casefold(channel.name), (channel, count)) for channel, count in shown(summaries))
    return [listed[cf] for cf in sorted(listed)]


@dataclass(frozen=True, slots=True)
class ListFilter:
    """LIST's parameter (ISUPPORT ELIST=CMNTU), comma-separated: channel names or masks
    (`#c*`), masks to leave out (`!*bots*`), member counts (`>5`, `<100`), and the minutes
    since a channel was created or its topic set (`C>60`, `T<10`)."""

    masks: list[str]
    exclude: list[str]
    conditions: list[tuple[str, str, int]]  # (what: users|C|T, "<" or ">", value)

    @classmethod
    def parse(cls, text: str) -> ListFilter:
        masks, exclude, conditions = [], [], []
        for item in (i for i in text.split(",") if i):
            what = item[0] if item[:1] in ("C", "T") and item[1:2] in ("<", ">") else "users"
            rest = item[1:] if what != "users" else item
            if rest[:1] in ("<", ">") and rest[1:].isdigit():
                conditions.append((what, rest[0], int(rest[1:])))
            elif item.startswith("!"):
                exclude.append(item[1:])
            else:
                masks.append(item)
        return cls(masks, exclude, conditions)

    def exact_names(self) -> list[str] | None:
        """The channels to look up by name, when only names were given (no scan needed)."""
        if self.masks and not any(c in m for m in self.masks for c in "*?"):
            return [casefold(m) for m in self.masks]
        return None

    def accepts(self, channel: Channel, count: int, now: float) -> bool:
        name = channel.name
        if self.masks and not any(mask_matches(mask, name) for mask in self.masks):
            return False
        if any(mask_matches(mask, name) for mask in self.exclude):
            return False
        for what, sign, value in self.conditions:
            if what == "users":
                got: float = count
            else:
                since = channel.created if what == "C" else channel.topic_at
                if not since:
                    return False
                got = (now - since) / 60
            if (sign == ">" and not got > value) or (sign == "<" and not got < value):
                return False
        return True

"""One account, many devices: connections that share one user (its nick, channels, away and
modes), wherever their replicas are, and an always-on user that stays while it has none.

A connection logged in to an account that asks for the nick its account's user holds becomes
one more device of that user when it registers (`attachable`, `attach`): it takes the user's
uid and is put in the user's channels. A change one device makes (NICK, JOIN, AWAY, SETNAME,
MODE) goes to the others (`sync`): on this replica at once, on the others through their own
event channels (a `Sync`); a change an operator makes to the user (CHGHOST) goes to all its
devices the same way (`impose`). When a device goes, its user leaves only with its last one,
and not even then if it is always-on (`detach`): it stays, away, until a device comes back or
it expires (apps/ircd/sweeper.py). docs/chat.md "One account, many devices" says it from a user's side.
"""

from __future__ import annotations

from dataclasses import replace

from apps.chat.casemap import casefold
from apps.chat.conversations import Ref, party
from apps.chat.events import DirectEvent, Line, Sync
from apps.chat.records import User
from apps.ircd.client import Client
from apps.ircd.context import Context, quietly
from apps.ircd.errors import NicknameInUse
from apps.ircd.joinburst import after_join
from apps.ircd.lines import away_line, client_line, record_line, user_line
from apps.ircd.operations.neighbours import tell_neighbours
from apps.ircd.render import deliver
from apps.kit.pubsub import publish


async def may_attach(ctx: Context, client: Client, holder_uid: str) -> bool:
    """Before registration, NICK for a nick someone holds: True if the holder is an account's
    user the client may become a device of once logged in (`client.attach_to` then names it)."""
    if not ctx.settings.multi_device or not (client.account or client.negotiating or "sasl" in client.caps):
        return False  # a client that cannot log in before registering cannot be the holder
    holder = await ctx.store.user(holder_uid)
    if holder is None or not holder.account:
        return False
    client.attach_to = holder.uid
    return True


async def attachable(ctx: Context, client: Client) -> User | None:
    """At registration, for a client that asked for a nick its account's user may hold
    (`client.attach_to`): that user, if the client is logged in to its account and it still
    holds the nick; None if the nick is free now (the client took it, and registers as a user
    of its own). NicknameInUse otherwise (the nick given back)."""
    uid, client.attach_to = client.attach_to, ""
    user = await ctx.store.user(uid)
    if (user is not None and client.account and casefold(user.account) == casefold(client.account)
            and casefold(user.nick) == client.nick_cf):
        return user
    claim = await ctx.store.claim_nick(client.nick_cf, client.uid)
    if claim.claimed:
        client.nick_reserved = claim.owned
        return None
    raise _refused(client)


async def attach(ctx: Context, client: Client, user: User) -> None:
    """Make the client a device of `user` (it is registered after this), in its channels.
    NicknameInUse (crowded) when the user has as many devices as it may."""
    store = ctx.store
    count = await store.attach(user.uid, client.device, ctx.instance, ctx.settings.device_limit)
    if count < 0:
        raise _refused(client, crowded=True)
    become(client, user)
    client.missed_since_ms = user.detached * 1000
    client.registered = True
    ctx.roster.add(client)
    await quietly(store.unregistered(ctx.instance, -1))
    await ctx.roster.follow_nick(client, client.nick)
    for cf in await store.user_channels(user.uid):
        await ctx.roster.joined(client, cf)
    ctx.counts["devices_attached"] += 1
    if user.detached and user.away == ctx.settings.always_on_away:
        # Back from always-on's absence: the away message it was given for it goes.
        client.away = ""
        await store.update_user(client.to_user(ctx.instance), "away")
        await tell_neighbours(ctx, client, away_line(client, ctx.clock()))
        await sync(ctx, client)


async def welcome_back(ctx: Context, client: Client) -> None:
    """After the welcome of a device that joined its user: each of the user's channels as a
    JOIN shows it, then what the device missed (`replay`)."""
    since_ms, client.missed_since_ms = client.missed_since_ms, 0
    for cf in sorted(client.channels):
        channel = await ctx.store.channel(cf)
        if channel is None:
            continue
        display = channel.name or cf
        now = ctx.clock()
        plain = client_line(client, "JOIN", [display], now)
        deliver(client, client_line(client, "JOIN", [display, client.account or "*", client.realname], now,
                                    needs=("extended-join",), alt=plain))
        await after_join(ctx, client, cf, display, channel)
        await replay(ctx, client, cf, display, since_ms)


async def replay(ctx: Context, client: Client, cf: str, display: str, since_ms: int) -> None:
    """The channel's messages a returning device missed: those after its account's read marker
    of the channel (draft/read-marker, shared by the account's devices), or, without one, after
    `since_ms` (when the user's last device went); at most REPLAY_LIMIT, in a `chathistory`
    batch with batch. A client with draft/chathistory asks for them itself, as it likes."""
    limit = ctx.settings.replay_limit
    if not limit or "draft/chathistory" in client.caps:
        return
    marker = await ctx.store.read_marker(party(client.uid, client.account), cf)
    after = marker if marker is not None else since_ms
    if not after:
        return
    chatlog = ctx.chatlog
    records = await chatlog.latest(chatlog.channel(display), limit, after=Ref.time(after))
    if not records:
        return
    batch = client.new_batch() if "batch" in client.caps else ""
    if batch:
        client.send(f":{ctx.name} BATCH +{batch} chathistory {display}")
    for record in records:
        line = record_line(record)
        deliver(client, replace(line, tags={**line.tags, "batch": batch}) if batch else line)
    if batch:
        client.send(f":{ctx.name} BATCH -{batch}")


async def detach(ctx: Context, client: Client) -> bool:
    """A registered connection is over: True if its user stays (other devices, or always-on),
    the connection's own state here undone; False if the user must leave with it."""
    store = ctx.store
    left = await store.detach(client.uid, ctx.instance, client.device)
    if left == 0 and (client.killed or not client.always_on):
        return False
    for cf in list(client.channels):
        await ctx.roster.left(client, cf)
    await ctx.roster.unfollow_nick(client, client.nick)
    if left == 0:  # always-on, and its last device went
        await keep(ctx, client.to_user(ctx.instance))
    return True


async def keep(ctx: Context, user: User) -> None:
    """An always-on user whose last device went (disconnected, or on a replica that died):
    kept, away (ALWAYS_ON_AWAY, unless it was away already), and listed for expiry."""
    now = ctx.clock()
    if not user.away:
        user.away = ctx.settings.always_on_away
        await ctx.store.update_user(user, "away")
        line = user_line(user.prefix, user.account, "AWAY", [user.away], now, needs=("away-notify",))
        channels = await ctx.store.user_channels(user.uid)
        if channels:
            await ctx.delivery.to_channels(channels, line)
    await ctx.store.mark_detached(user.uid, now)
    ctx.counts["always_on_kept"] += 1


async def sync(ctx: Context, client: Client, line: Line | None = None, *, joined: str = "",
               left: str = "") -> None:
    """The client's user changed through it: its other devices follow, here and on the other
    replicas holding one. `line`: what they are shown; `joined`, `left`: a channel (folded)."""
    user = client.to_user(ctx.instance)
    for device in ctx.roster.devices(client.uid):
        if device is not client:
            await follow(ctx, device, user, line, joined=joined, left=left)
    if client.account:  # a guest is one connection: no other replica holds a device of it
        await _to_other_replicas(ctx, user, line, joined=joined, left=left)


async def impose(ctx: Context, user: User, line: Line) -> None:
    """`user` was changed by someone else (an operator's CHGHOST; `user` is its record now):
    every device of it follows, here and on the other replicas, each shown `line` once."""
    for device in list(ctx.roster.devices(user.uid)):
        await follow(ctx, device, user, line)
    await _to_other_replicas(ctx, user, line)


async def _to_other_replicas(ctx: Context, user: User, line: Line | None, *, joined: str = "",
                             left: str = "") -> None:
    """A `Sync` with `user`'s record to the other replicas holding a device of it."""
    others = [instance for instance in await ctx.store.user_instances(user.uid) if instance != ctx.instance]
    if not others:
        return
    fields = user.to_redis()
    del fields["inst"]  # the devices' own to keep (apps/ircd/store/devices.py)
    event = DirectEvent(ctx.instance, (user.uid,), Sync(fields, joined, left, line)).to_json()
    for instance in others:
        await publish(ctx.store.redis, ctx.settings.chat_keys.replica_events(instance), event)


async def on_sync(ctx: Context, uid: str, change: Sync) -> None:
    """A `Sync` from another replica, for this replica's devices of user `uid`."""
    user = User.from_redis(change.user)
    devices = ctx.roster.devices(uid)
    if not devices or user.uid != uid:
        return
    if casefold(user.nick) != devices[0].nick_cf:
        await ctx.roster.rename(uid, devices[0].nick, user.nick)
    for device in list(devices):
        await follow(ctx, device, user, change.line, joined=change.joined, left=change.left)


async def follow(ctx: Context, device: Client, user: User, line: Line | None, *, joined: str = "",
                 left: str = "") -> None:
    """One device takes its user's change: the user's record, the line (once: it may have come
    through a channel too), the channel joined (with what a JOIN answers) or left."""
    become(device, user)
    if line is not None:
        seen = ctx.delivery.seen(line)
        if device.device not in seen:
            if line.id:
                seen.add(device.device)
            deliver(device, line)
    if joined and joined not in device.channels:
        await ctx.roster.joined(device, joined)
        channel = await ctx.store.channel(joined)
        if channel is not None:
            await after_join(ctx, device, joined, channel.name or joined, channel)
    if left and left in device.channels:
        await ctx.roster.left(device, left)


def become(client: Client, user: User) -> None:
    """The client is (or stays) a device of `user`: it takes its identity as every replica sees it."""
    client.uid = user.uid
    client.nick, client.nick_cf = user.nick, casefold(user.nick)
    client.username, client.host, client.realname = user.username, user.host, user.realname
    client.account, client.away, client.modes = user.account, user.away, user.modes
    client.always_on = user.always_on
    if user.signon:
        client.signon = user.signon


def _refused(client: Client, *, crowded: bool = False) -> NicknameInUse:
    nick, client.nick, client.nick_cf = client.nick, "*", ""
    return NicknameInUse(nick, crowded=crowded)

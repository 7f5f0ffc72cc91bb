"""Who a client is to others: its nick, its away message and its realname, and telling those
who share a channel with it (or MONITOR it) when they change."""

from __future__ import annotations

import enum
from dataclasses import replace

from apps.chat.records import WhowasEntry
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import ErroneousNickname, Fail, NicknameInUse, NoNicknameGiven
from apps.ircd.lines import away_line, client_line
from apps.ircd.operations import devices, monitor, playback
from apps.ircd.operations.lookup import channels_of
from apps.ircd.operations.neighbours import tell_neighbours
from apps.ircd.protocol import AWAY_LENGTH, REALNAME_LENGTH, casefold, valid_nick
from apps.ircd.render import deliver


class NickChange(enum.Enum):
    UNCHANGED = "unchanged"
    CHOSEN = "chosen"  # before registration
    CHANGED = "changed"  # announced to the client's channels and watchers


async def change_nick(ctx: Context, client: Client, wanted: str) -> NickChange:
    """Take nick `wanted`: NoNicknameGiven, ErroneousNickname, NicknameInUse (held, or reserved
    by an account the client is not logged in to)."""
    if not wanted:
        raise NoNicknameGiven()
    if not valid_nick(wanted, ctx.settings.nick_length):
        raise ErroneousNickname(wanted)
    if wanted == client.nick:
        return NickChange.UNCHANGED
    store = ctx.store
    wanted_cf = casefold(wanted)
    client.attach_to = ""
    if wanted_cf != client.nick_cf:
        claim = await store.claim_nick(wanted_cf, client.uid)  # whether it is reserved, with it
        owned = claim.owned
        if not claim.claimed:
            holder = await store.uid_of(wanted_cf)
            if client.registered or holder is None or not await devices.may_attach(ctx, client, holder):
                raise NicknameInUse(wanted)
    else:  # a change of case only: the nick is still ours
        owned = await store.is_account(wanted_cf)
    if client.registered and not may_use(client, wanted_cf, owned):
        if wanted_cf != client.nick_cf:
            await store.release_nick(wanted_cf, client.uid)
        raise NicknameInUse(wanted, reserved=True)
    old_nick, old_cf, old_prefix = client.nick, client.nick_cf, client.prefix
    if old_cf and old_cf != wanted_cf:
        await store.release_nick(old_cf, client.uid)
    client.nick, client.nick_cf, client.nick_reserved = wanted, wanted_cf, owned
    if not client.registered:
        return NickChange.CHOSEN
    before = client.to_user(ctx.instance)
    await store.update_user(before, "nick")
    await ctx.roster.rename(client.uid, old_nick, wanted)
    await store.remember(old_cf, WhowasEntry.of(replace(before, nick=old_nick), ctx.name, ctx.clock()),
                         ctx.settings.whowas_length)
    line = client_line(client, "NICK", [wanted], ctx.clock(), source=old_prefix, id=ctx.new_id())
    ctx.delivery.seen(line).add(client.device)
    deliver(client, line)
    channels = await channels_of(ctx, client)
    await ctx.delivery.to_channels(channels, line)
    await playback.keep_in(ctx, sorted(channels), line)
    await devices.sync(ctx, client, line)
    if old_cf != wanted_cf:
        await monitor.tell_offline(ctx, client.uid, old_cf, old_nick)
        await monitor.tell_online(ctx, client.uid, wanted_cf, client.prefix)
    return NickChange.CHANGED


def may_use(client: Client, nick_cf: str, reserved: bool) -> bool:
    """False if nick `nick_cf` is not the client's to use: it is an account's (`reserved`: an
    account has that name), and the client is not logged in to that account."""
    return not reserved or casefold(client.account) == nick_cf


async def set_away(ctx: Context, client: Client, text: str) -> str:
    """Mark the client away (empty: back), tell its neighbours (away-notify); the message kept.
    Before registration (draft/pre-away) the message is only kept: registering publishes it."""
    client.away = text.encode()[:AWAY_LENGTH].decode("utf-8", "ignore")
    if not client.registered:
        return client.away
    await ctx.store.update_user(client.to_user(ctx.instance), "away")
    await tell_neighbours(ctx, client, away_line(client, ctx.clock()))
    await devices.sync(ctx, client)
    return client.away


async def set_realname(ctx: Context, client: Client, text: str) -> None:
    """IRCv3 setname: a new realname, confirmed to the client and told to its neighbours, only to
    those with the `setname` capability. Fail INVALID_REALNAME when empty or too long."""
    if not text or len(text.encode()) > REALNAME_LENGTH:
        raise Fail("SETNAME", "INVALID_REALNAME", (), "Realname is empty or too long")
    client.realname = text
    await ctx.store.update_user(client.to_user(ctx.instance), "real")
    line = client_line(client, "SETNAME", [text], ctx.clock(), needs=("setname",), id=ctx.new_id())
    deliver(client, line)
    await tell_neighbours(ctx, client, line)
    await devices.sync(ctx, client, line)


async def tell_account(ctx: Context, client: Client) -> None:
    """IRCv3 account-notify: the client's account changed (a SASL login after registration):
    ACCOUNT <name>, or `*` once logged out, to the clients sharing a channel with it "including
    themselves", and with extended-monitor to its watchers; only to those with the capability."""
    line = client_line(client, "ACCOUNT", [client.account or "*"], ctx.clock(), needs=("account-notify",))
    deliver(client, line)
    await tell_neighbours(ctx, client, line)

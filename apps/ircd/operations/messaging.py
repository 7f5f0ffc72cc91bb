"""PRIVMSG, NOTICE and TAGMSG: to a channel, to its members of a rank (STATUSMSG), to a nick.

A channel's PRIVMSG and NOTICE are stored and published in one step by the chat log
(apps/chat/chatlog.py); the other replicas get them on the channel's live channel, and this one
delivers to its own members at once. A TAGMSG goes out on the gateways' own channel events,
kept in the history first when it carries a tag worth replaying (a reaction: see
apps/ircd/operations/playback.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from apps.chat.conversations import ChatMessage, MessageLine, party
from apps.chat.events import Line
from apps.chat.modes import CHANNEL_MODE, STATUSES, STATUSMSG, exempted_by
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import CannotSendToChannel, NoSuchChannel
from apps.ircd.lines import line, record_line
from apps.ircd.operations import playback
from apps.ircd.operations.lookup import members_at_least, refused_by_list, user_named
from apps.ircd.protocol import casefold, is_channel
from apps.ircd.render import deliver, deliver_unlabelled

#: STATUSMSG: `@#chan` reaches the channel's operators, `+#chan` its voiced members and above.
RANKS = {CHANNEL_MODE[letter].prefix: letter for letter in STATUSES}


@dataclass(frozen=True, slots=True)
class Sent:
    """A message sent: the line (its echo, with echo-message), and the away message of the
    user it went to, if any."""

    line: Line
    away: str = ""
    nick: str = ""


async def send(ctx: Context, client: Client, command: str, target: str, text: str,
               tags: dict[str, str], lines: tuple[MessageLine, ...] = ()) -> Sent:
    """Send to one target: a channel, `@#chan`/`+#chan`, or a nick. NoSuchChannel,
    CannotSendToChannel, NoSuchNick. `lines`: a multiline message's (draft/multiline), `text`
    being their joined value: one message, with the checks, the id and the history of one."""
    rank = target[:1] if target[:1] in STATUSMSG and is_channel(target[1:]) else ""
    if rank or is_channel(target):
        sent = await to_channel(ctx, client, command, target[len(rank):], text, tags, rank=rank, lines=lines)
    else:
        sent = await to_nick(ctx, client, command, target, text, tags, lines)
    ctx.counts["posted"] += 1
    return sent


def _with_account(client: Client, tags: dict[str, str], ctx: Context) -> dict[str, str]:
    """A message's tags: the client's own (`+...`), its account (account-tag), a new msgid."""
    out = dict(tags)
    if client.account:
        out["account"] = client.account
    out["msgid"] = ctx.new_id()
    return out


async def to_channel(ctx: Context, client: Client, command: str, target: str, text: str,
                     tags: dict[str, str], *, rank: str = "", lines: tuple[MessageLine, ...] = ()) -> Sent:
    """A message to a channel, or (`rank` "@" or "+", STATUSMSG) to its members of that rank."""
    cf = casefold(target)
    channel, status, lists = await ctx.store.channel_status_masks(cf, client.uid, "b" + exempted_by("b"))
    if channel is None:
        raise NoSuchChannel(target)
    display = channel.name or target
    voiced = status is not None and status.at_least(STATUSES[-1])
    if status is None and channel.has("n"):
        raise CannotSendToChannel(display, "Cannot send to channel (no external messages)")
    if channel.has("m") and not voiced:
        raise CannotSendToChannel(display, "Cannot send to channel (+m)")
    if not voiced and refused_by_list(lists, "b", client.prefix):
        raise CannotSendToChannel(display, "Cannot send to channel (+b)")
    client.last_message = ctx.clock()
    if rank:
        return Sent(await _to_rank(ctx, client, command, cf, rank + display, text, tags, rank, lines))
    if command == "TAGMSG":
        sent = line(client.prefix, command, [display], ctx.clock(), tags=_with_account(client, tags, ctx))
        sent = await playback.keep(ctx, display, sent, party(client.uid, client.account))
        await ctx.delivery.to_channels([cf], sent, exclude=client.device)
        return Sent(sent)
    # The sender's party is kept with the message: it tells its author (a guest is its very
    # connection) when someone would redact it.
    stored = await ctx.chatlog.append_channel(display, ChatMessage(
        command=command, source=client.prefix, target=display, text=text, account=client.account,
        tags=tags, party=party(client.uid, client.account), origin=ctx.instance, lines=lines))
    sent = record_line(stored)
    ctx.delivery.local([cf], sent, exclude=client.device)
    return Sent(sent)


async def _to_rank(ctx: Context, client: Client, command: str, cf: str, target: str, text: str,
                   tags: dict[str, str], rank: str, lines: tuple[MessageLine, ...]) -> Line:
    """A STATUSMSG: sent to each member of that rank by uid (on whichever replica holds it),
    not through the channel's events, and not kept in the channel's history, which every
    member may read."""
    members = await members_at_least(ctx, cf, RANKS[rank])
    params = [target] if command == "TAGMSG" else [target, text]
    sent = line(client.prefix, command, params, ctx.clock(), tags=_with_account(client, tags, ctx))
    if lines:
        sent = replace(sent, lines=lines)
    await ctx.delivery.to_uids(members, sent, exclude=client.device)
    return sent


async def to_nick(ctx: Context, client: Client, command: str, target: str, text: str,
                  tags: dict[str, str], lines: tuple[MessageLine, ...] = ()) -> Sent:
    """A private message: kept in the two parties' conversation (PRIVMSG, NOTICE), delivered to
    the recipient's devices here and published on its nick's live channel for those elsewhere.
    The sender's other devices get it too (they sent it), through its own nick's live channel
    where they are on other replicas."""
    user = await user_named(ctx, target)
    client.last_message = ctx.clock()
    if command == "TAGMSG":
        sent = line(client.prefix, command, [user.nick], ctx.clock(), tags=_with_account(client, tags, ctx))
        parties = party(client.uid, client.account), party(user.uid, user.account)
        sent = await playback.keep_private(ctx, *parties, sent)
        if user.uid == client.uid:
            deliver_unlabelled(client, sent)
        await ctx.delivery.to_uids({user.uid: user.instance}, sent, exclude=client.device)
        return Sent(sent, user.away, user.nick)
    live = []
    if any(instance != ctx.instance for instance in user.instances):
        live.append(ctx.chatlog.nick_live(user.nick))
    if client.account and user.uid != client.uid and any(
            instance != ctx.instance for instance in await ctx.store.user_instances(client.uid)):
        live.append(ctx.chatlog.nick_live(client.nick))
    sender = party(client.uid, client.account)
    stored = await ctx.chatlog.append_private(sender, party(user.uid, user.account), ChatMessage(
        command=command, source=client.prefix, target=user.nick, text=text, account=client.account,
        tags=tags, party=sender, origin=ctx.instance, lines=lines), live)
    sent = record_line(stored)
    recipients = ctx.roster.devices(user.uid)
    if user.uid != client.uid:
        recipients = recipients + [other for other in ctx.roster.devices(client.uid) if other is not client]
    for device in recipients:
        (deliver_unlabelled if device is client else deliver)(device, sent)
        ctx.counts["messages"] += 1
    return Sent(sent, user.away, user.nick)

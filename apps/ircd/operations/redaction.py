"""Message redaction (draft/message-redaction): a message taken back by its author, or out of
a channel by one of its operators; out of the history, and told to the recipients with the
capability."""

from __future__ import annotations

from dataclasses import dataclass

from apps.chat.conversations import ChatMessage, Conversation, InvalidRef, Ref, party
from apps.chat.events import Line
from apps.chat.modes import OPERATOR
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import Fail, NoSuchChannel, NoSuchNick
from apps.ircd.lines import client_line
from apps.ircd.operations.lookup import channel_view, user_named
from apps.ircd.protocol import casefold, is_channel
from apps.ircd.render import deliver

CAP = "draft/message-redaction"


@dataclass(frozen=True, slots=True)
class _Target:
    """What a REDACT names: the conversation, how recipients see the target, and whether the
    client may take others' messages out of it (a channel's operator)."""

    conversation: Conversation
    display: str
    moderator: bool
    channel: str = ""  # folded, for a channel
    recipient: tuple[str, str] | None = None  # uid and replica, for a nick


def _fail(code: str, *context: str, text: str) -> Fail:
    return Fail("REDACT", code, context, text)


async def _target(ctx: Context, client: Client, target: str) -> _Target:
    """The channel the client is in, or its private conversation with whoever holds the nick;
    INVALID_TARGET otherwise (a channel it is not in says nothing of its messages)."""
    invalid = _fail("INVALID_TARGET", target, text=f"You cannot delete messages from {target}")
    if is_channel(target):
        try:
            view = await channel_view(ctx, client, target)
        except NoSuchChannel:
            raise invalid from None
        if view.status is None:
            raise invalid
        return _Target(ctx.chatlog.channel(view.cf), view.display, view.status.at_least(OPERATOR),
                       channel=view.cf)
    try:
        user = await user_named(ctx, target)
    except NoSuchNick:
        raise invalid from None
    conversation = ctx.chatlog.private(party(client.uid, client.account), party(user.uid, user.account))
    return _Target(conversation, user.nick, False, recipient=(user.uid, user.instance))


def wrote(client: Client, message: ChatMessage) -> bool:
    """Whether `client` is the author of `message`: the same party (the account, or for a guest
    its very connection); a message stored without one, by the same account."""
    if message.party:
        return message.party == party(client.uid, client.account)
    return bool(message.account) and casefold(message.account) == casefold(client.account)


async def redact(ctx: Context, client: Client, target: str, msgid: str, reason: str) -> None:
    """REDACT: FAIL INVALID_TARGET, UNKNOWN_MSGID (not kept, or an event that is no message:
    a JOIN...; a kept TAGMSG, a reaction, may be), or REDACT_FORBIDDEN (not the author, nor an
    operator of the channel)."""
    where = await _target(ctx, client, target)
    unknown = _fail("UNKNOWN_MSGID", target, msgid, text="This message does not exist or is too old")
    try:
        ref = Ref.msgid(msgid)
    except InvalidRef:
        raise unknown from None
    message = await ctx.chatlog.message(where.conversation, ref)
    if message is None or (message.is_event and message.command != "TAGMSG"):
        raise unknown
    if not (wrote(client, message) or where.moderator):
        raise _fail("REDACT_FORBIDDEN", target, msgid, text="You are not authorised to delete this message")
    await ctx.chatlog.remove(where.conversation, message.id)
    line = client_line(client, "REDACT", [where.display, msgid, *([reason] if reason else [])], ctx.clock(),
                       needs=(CAP,))
    await _tell(ctx, client, where, line)


async def _tell(ctx: Context, client: Client, where: _Target, line: Line) -> None:
    """The REDACT to the message's recipients "in the same way as PRIVMSG messages", the
    redacting client among them; only to those with the capability ("MUST not forward this
    REDACT to target recipients that have not negotiated this capability")."""
    if where.channel:
        await ctx.delivery.to_channels([where.channel], line)
        return
    deliver(client, line)
    if where.recipient is not None and where.recipient[0] != client.uid:
        await ctx.delivery.to_uids(dict([where.recipient]), line)

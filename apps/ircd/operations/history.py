"""CHATHISTORY: which conversation a client may read, what a query returns, and the targets
with messages between two times."""

from __future__ import annotations

from apps.chat.conversations import ChatMessage, Conversation, Ref, party
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import Fail
from apps.ircd.operations.lookup import channels_of
from apps.ircd.protocol import casefold, is_channel

#: The queries a CHATHISTORY subcommand names (TARGETS aside).
QUERIES = ("LATEST", "BEFORE", "AFTER", "AROUND", "BETWEEN")


async def conversation_for(ctx: Context, client: Client, subcommand: str, target: str) -> Conversation:
    """The conversation `target` names for `client`: a channel under the one history rule
    (apps/chat/access.py), or its private conversation with whoever holds the nick (with the
    account of that name when nobody does). Fail INVALID_TARGET for a channel it may not read."""
    if is_channel(target):
        readers = await ctx.history_access.connections_of(client.account) if client.account else []
        if not await ctx.history_access.may_read_channel(target, [client.uid, *readers]):
            raise Fail("CHATHISTORY", "INVALID_TARGET", (subcommand, target), "No history for that target")
        return ctx.chatlog.channel(target)
    # A guest's conversations are its connection's, so they cannot be reached through a nick
    # it no longer holds.
    other = await ctx.store.user_by_nick(casefold(target))
    correspondent = party(other.uid, other.account) if other else casefold(target)
    return ctx.chatlog.private(party(client.uid, client.account), correspondent)


async def query(ctx: Context, conversation: Conversation, subcommand: str, first: Ref | None,
                second: Ref | None, limit: int, *, events: bool = False) -> list[ChatMessage]:
    """The messages a query returns, oldest first (`first` None: LATEST *); with `events`, the
    events kept among them (draft/event-playback)."""
    chatlog = ctx.chatlog
    if subcommand == "LATEST":
        return await chatlog.latest(conversation, limit, after=first, events=events)
    assert first is not None
    if subcommand == "BEFORE":
        return await chatlog.before(conversation, first, limit, events=events)
    if subcommand == "AFTER":
        return await chatlog.after(conversation, first, limit, events=events)
    if subcommand == "AROUND":
        return await chatlog.around(conversation, first, limit, events=events)
    assert second is not None
    return await chatlog.between(conversation, first, second, limit, events=events)


async def targets(ctx: Context, client: Client, low: int, high: int, limit: int) -> list[tuple[int, str]]:
    """The client's channels and private correspondents whose last message falls strictly
    between two times (unix ms), oldest first: (ms, name). A correspondent is named by its
    account, or for a guest by the nick it had in the last message."""
    chatlog = ctx.chatlog
    limit = min(limit, ctx.settings.chat_history_limit)
    found = [(ms, other) for other, ms in await chatlog.targets(party(client.uid, client.account),
                                                                 low, high, limit)]
    for cf in await channels_of(ctx, client):
        last = await chatlog.last_id(chatlog.channel(cf))
        ms = int(last.split("-", 1)[0]) if last else 0
        if low < ms < high:
            channel = await ctx.store.channel(cf)
            found.append((ms, channel.name if channel and channel.name else cf))
    return sorted(found)[:limit]

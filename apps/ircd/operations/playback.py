"""Channel events kept in the history, for the clients that negotiate draft/event-playback.

What HISTORY_EVENTS names (JOIN, PART, KICK, QUIT, NICK, MODE, TOPIC, and a TAGMSG carrying
one of HISTORY_TAGMSG_TAGS) goes into the conversation's stream beside its messages
(apps/chat/chatlog.py `append_events`). CHATHISTORY gives events only to a client with the
capability; every other reader (a client without it, the messages service, the replay to a
device that comes back) skips them (apps/chat/history.py).

An event in one channel is kept before it goes out, and goes out with the stored entry's
`msgid` and `time`: what a client saw live and what CHATHISTORY replays are one event, by one
id. A QUIT or a NICK is one entry in each channel of its user, so it keeps the one id it goes
out with and each entry has its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from apps.chat.conversations import ChatMessage
from apps.chat.events import Line
from apps.ircd.context import Context
from apps.ircd.lines import server_time_ms

#: The commands whose last parameter is free text (a reason, a topic): kept as the record's text.
_TEXT_LAST = frozenset({"PART", "KICK", "QUIT", "TOPIC"})


def kept(ctx: Context, line: Line) -> bool:
    """Whether `line` is an event this network keeps (HISTORY_EVENTS, and for a TAGMSG one of
    HISTORY_TAGMSG_TAGS among its tags)."""
    settings = ctx.settings
    if line.command not in settings.history_events:
        return False
    return line.command != "TAGMSG" or not settings.history_tagmsg_tags.isdisjoint(line.tags)


def record(line: Line, target: str, author: str = "") -> ChatMessage:
    """The history record of an event line in conversation `target`: its source, account,
    client-only tags and parameters; `author`, the sender's party, for what may be redacted
    (a TAGMSG)."""
    text = line.params[-1] if line.command in _TEXT_LAST and line.params else ""
    tags = {key: value for key, value in line.tags.items() if key.startswith("+")}
    return ChatMessage(command=line.command, source=line.source, target=target, text=text,
                       account=line.tags.get("account", ""), tags=tags, params=tuple(line.params),
                       party=author)


async def keep(ctx: Context, channel: str, line: Line, author: str = "") -> Line:
    """Keep an event of one channel (its display name), if this network keeps it; the line to
    deliver, carrying the stored entry's `msgid` and `time` (its `alt` too)."""
    if not kept(ctx, line):
        return line
    [stored] = await ctx.chatlog.append_events([channel], record(line, channel, author))
    return with_id(line, stored.id, stored.time_ms)


async def keep_in(ctx: Context, channels: Sequence[str], line: Line) -> None:
    """Keep an event of a user in each of its channels (a QUIT, a NICK), if this network keeps it."""
    if channels and kept(ctx, line):
        await ctx.chatlog.append_events(channels, record(line, ""))


async def keep_private(ctx: Context, sender: str, recipient: str, line: Line) -> Line:
    """Keep a private event (a TAGMSG) in the two parties' conversation, if this network keeps
    it; the line to deliver, with the stored entry's `msgid` and `time`."""
    if not kept(ctx, line):
        return line
    stored = await ctx.chatlog.append_private(sender, recipient, record(line, line.params[0], sender))
    return with_id(line, stored.id, stored.time_ms)


def with_id(line: Line, msgid: str, time_ms: int) -> Line:
    """`line` (and its `alt`) tagged with a history entry's id and time."""
    tags = {**line.tags, "time": server_time_ms(time_ms), "msgid": msgid}
    alt = None if line.alt is None else with_id(line.alt, msgid, time_ms)
    return replace(line, tags=tags, alt=alt)

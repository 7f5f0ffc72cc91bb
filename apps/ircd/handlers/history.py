"""CHATHISTORY (draft/chathistory): a conversation's messages, and the targets with messages
between two times (apps/ircd/operations/history.py)."""

from __future__ import annotations

from apps.chat.conversations import ChatMessage, InvalidRef, Ref
from apps.ircd.capabilities import EVENT_PLAYBACK
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import Fail
from apps.ircd.lines import parse_server_time, record_line, server_time_ms
from apps.ircd.operations import history
from apps.ircd.protocol import Message, format_line
from apps.ircd.registry import command
from apps.ircd.render import deliver


def _invalid(subcommand: str, why: str) -> Fail:
    return Fail("CHATHISTORY", "INVALID_PARAMS", (subcommand,), why)


def _ref(reference: str) -> Ref | None:
    """A message reference (msgid=... or timestamp=...); None if malformed."""
    kind, _, value = reference.partition("=")
    try:
        if kind == "msgid" and value:
            return Ref.msgid(value)
        ms = parse_server_time(value) if kind == "timestamp" and value else None
        if ms is not None:
            return Ref.time(ms)
    except InvalidRef:
        return None
    return None


@command("CHATHISTORY", params=1)
async def chathistory(ctx: Context, client: Client, message: Message) -> None:
    sub, params = message.params[0].upper(), message.params[1:]
    if sub == "TARGETS":
        await chathistory_targets(ctx, client, params)
        return
    if sub not in history.QUERIES:
        raise _invalid(sub, "Unknown subcommand")
    if len(params) < (4 if sub == "BETWEEN" else 3):
        raise _invalid(sub, "Not enough parameters")
    target = params[0]
    conversation = await history.conversation_for(ctx, client, sub, target)
    try:
        limit = int(params[-1])
    except ValueError:
        limit = 0
    if limit < 1:
        raise _invalid(sub, "Bad limit")
    latest_any = sub == "LATEST" and params[1] == "*"
    first = None if latest_any else _ref(params[1])
    second = _ref(params[2]) if sub == "BETWEEN" else None
    if (first is None and not latest_any) or (sub == "BETWEEN" and second is None):
        raise _invalid(sub, "Bad message reference")
    found = await history.query(ctx, conversation, sub, first, second, limit,
                                events=EVENT_PLAYBACK in client.caps)
    replay(ctx, client, target, found)


async def chathistory_targets(ctx: Context, client: Client, params: list[str]) -> None:
    """`CHATHISTORY TARGETS <timestamp> <timestamp> <limit>`, in a `draft/chathistory-targets`
    batch."""
    if len(params) < 3:
        raise _invalid("TARGETS", "Not enough parameters")
    bounds = [_ref(p) if p.startswith("timestamp=") else None for p in params[:2]]
    try:
        limit = int(params[2])
    except ValueError:
        limit = 0
    if bounds[0] is None or bounds[1] is None or limit < 1:
        raise _invalid("TARGETS", "Bad timestamp or limit")
    low, high = sorted((bounds[0].ms, bounds[1].ms))
    batch = client.new_batch() if "batch" in client.caps else ""
    if batch:
        client.send(format_line("BATCH", [f"+{batch}", "draft/chathistory-targets"], source=ctx.name))
    for ms, name in await history.targets(ctx, client, low, high, limit):
        client.send(format_line("CHATHISTORY", ["TARGETS", name, server_time_ms(ms)], source=ctx.name,
                                tags={"batch": batch} if batch else None))
    if batch:
        client.send(format_line("BATCH", [f"-{batch}"], source=ctx.name))


def replay(ctx: Context, client: Client, target: str, messages: list[ChatMessage]) -> None:
    """Send history in a `chathistory` batch, oldest first."""
    batch = client.new_batch() if "batch" in client.caps else ""
    if batch:
        client.send(format_line("BATCH", [f"+{batch}", "chathistory", target], source=ctx.name))
    for stored in messages:
        deliver(client, record_line(stored, batch=batch))
    if batch:
        client.send(format_line("BATCH", [f"-{batch}"], source=ctx.name))

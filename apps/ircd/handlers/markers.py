"""MARKREAD (draft/read-marker, apps/ircd/operations/markers.py)."""

from __future__ import annotations

from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import Fail
from apps.ircd.lines import parse_server_time
from apps.ircd.operations.markers import mark_read, read_marker, send_marker
from apps.ircd.protocol import Message, is_channel, valid_channel, valid_nick
from apps.ircd.registry import command


def _invalid(*context: str) -> Fail:
    return Fail("MARKREAD", "INVALID_PARAMS", context, "Invalid parameters")


@command("MARKREAD")
async def markread(ctx: Context, client: Client, message: Message) -> None:
    """`MARKREAD <target>` asks for the marker; `MARKREAD <target> timestamp=<time>` sets it;
    the answer is the marker as it is then. FAIL NEED_MORE_PARAMS without a target (not 461:
    "the NEED_MORE_PARAMS error code MUST be returned"), FAIL INVALID_PARAMS for a target that
    is no channel or nick name, or a timestamp that is not `timestamp=<server-time>` (a client
    "MUST NOT" set `*`)."""
    if not message.params or not message.params[0]:
        raise Fail("MARKREAD", "NEED_MORE_PARAMS", (), "Missing parameters")
    target = message.params[0]
    settings = ctx.settings
    if not (valid_channel(target, settings.channel_length) if is_channel(target)
            else valid_nick(target, settings.nick_length)):
        raise _invalid(target)
    if len(message.params) == 1:
        send_marker(ctx, client, target, await read_marker(ctx, client, target))
        return
    kind, _, value = message.params[1].partition("=")
    ms = parse_server_time(value) if kind == "timestamp" else None
    if ms is None or ms < 0:
        raise _invalid(target, message.params[1])
    send_marker(ctx, client, target, await mark_read(ctx, client, target, ms))

"""Read markers (draft/read-marker): where a user has read each channel or private
conversation up to, kept per account in Redis and told to every connection of the account.

A guest's markers are its connection's (its party, apps/chat/conversations.py), kept as long as
its private conversations are. Markers are never shown to anyone else: "Servers MUST NOT leak
read markers sent by a user to other users".
"""

from __future__ import annotations

from apps.chat.casemap import casefold
from apps.chat.conversations import is_guest, party
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.lines import line, server_time_ms
from apps.ircd.protocol import format_line

#: The capability whose clients are told of markers they did not ask about.
CAP = "draft/read-marker"


def marker_param(ms: int | None) -> str:
    """MARKREAD's timestamp parameter: `timestamp=...`, or `*` when there is no marker."""
    return "*" if ms is None else "timestamp=" + server_time_ms(ms)


def _party(client: Client) -> str:
    return party(client.uid, client.account)


async def read_marker(ctx: Context, client: Client, target: str) -> int | None:
    """The ms the client's user has read `target` up to; None if never said."""
    return await ctx.store.read_marker(_party(client), casefold(target))


async def mark_read(ctx: Context, client: Client, target: str, ms: int) -> int:
    """Move the user's marker of `target` to `ms` (no later than now): it only ever moves
    forward. When it moves, every other connection of the account with the capability is
    told (the other devices of its user, and its other users), on whichever replica; the
    marker now is returned (the caller answers with it)."""
    who = _party(client)
    ttl = int(ctx.settings.chat_guest_history_ttl * 1000) if is_guest(who) else 0
    now, moved = await ctx.store.mark_read(who, casefold(target), min(ms, int(ctx.clock() * 1000)), ttl)
    if moved and client.account:
        users = await ctx.store.users(await ctx.store.account_uids(casefold(client.account)) | {client.uid})
        told = line(ctx.name, "MARKREAD", [target, marker_param(now)], ctx.clock(), needs=(CAP,))
        await ctx.delivery.to_uids({uid: user.instance for uid, user in users.items()}, told,
                                   exclude=client.device)
    return now


def send_marker(ctx: Context, client: Client, target: str, ms: int | None) -> None:
    """MARKREAD <target> <timestamp or *> from the server to the client."""
    client.send(format_line("MARKREAD", [target, marker_param(ms)], source=ctx.name))

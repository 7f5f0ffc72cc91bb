"""AWAY and SETNAME (apps/ircd/operations/identity.py)."""

from __future__ import annotations

from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import NotRegistered
from apps.ircd.operations.identity import set_away, set_realname
from apps.ircd.protocol import Message
from apps.ircd.registry import command


@command("AWAY", registered=False)
async def away(ctx: Context, client: Client, message: Message) -> None:
    """AWAY; before registration only with draft/pre-away ("servers MUST accept the AWAY
    command before connection registration has completed")."""
    if not client.registered and "draft/pre-away" not in client.caps:
        raise NotRegistered()
    if await set_away(ctx, client, message.params[0] if message.params else ""):
        client.reply(n.RPL_NOWAWAY, "You have been marked as being away")
    else:
        client.reply(n.RPL_UNAWAY, "You are no longer marked as being away")


@command("SETNAME", params=1)
async def setname(ctx: Context, client: Client, message: Message) -> None:
    await set_realname(ctx, client, message.params[0])

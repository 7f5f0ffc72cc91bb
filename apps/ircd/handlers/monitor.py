"""MONITOR: + - C L S (apps/ircd/operations/monitor.py)."""

from __future__ import annotations

from apps.chat import numerics as n
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import MonitorListFull, NeedMoreParams
from apps.ircd.failures import reply_to
from apps.ircd.operations import monitor as watching
from apps.ircd.protocol import Message
from apps.ircd.registry import command


@command("MONITOR", params=1)
async def monitor(ctx: Context, client: Client, message: Message) -> None:
    sub = message.params[0]
    if sub in ("+", "-") and len(message.params) < 2:
        raise NeedMoreParams("MONITOR")
    if sub == "+":
        nicks = [nick for nick in message.params[1].split(",") if nick]
        watched = await watching.watch(ctx, client, nicks)
        if watched.left_out:
            reply_to(client, MonitorListFull(ctx.settings.max_monitor, ",".join(watched.left_out)))
        await presence_reply(ctx, client, watched.added)
    elif sub == "-":
        await watching.unwatch(ctx, client, message.params[1].split(","))
    elif sub.upper() == "C":
        await watching.unwatch(ctx, client)
    elif sub.upper() == "L":
        if client.monitoring:
            client.reply(n.RPL_MONLIST, ",".join(sorted(client.monitoring)))
        client.reply(n.RPL_ENDOFMONLIST, "End of MONITOR list")
    elif sub.upper() == "S":
        await presence_reply(ctx, client, sorted(client.monitoring))


async def presence_reply(ctx: Context, client: Client, nicks: list[str]) -> None:
    """730 for the nicks online (as nick!user@host), 731 for the others (as given)."""
    found = await watching.presence(ctx, nicks)
    if found.online:
        client.reply(n.RPL_MONONLINE, ",".join(found.online))
    if found.offline:
        client.reply(n.RPL_MONOFFLINE, ",".join(found.offline))

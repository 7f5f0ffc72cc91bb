"""IRC operators: OPER, and what only they may do (KILL, WALLOPS)."""

from __future__ import annotations

import hmac

from apps.chat.events import Kill
from apps.ircd.client import Client
from apps.ircd.context import Context
from apps.ircd.errors import NoOperHost, NoPrivileges, PasswordMismatch
from apps.ircd.lines import client_line, line
from apps.ircd.operations import devices
from apps.ircd.operations.leave import leave
from apps.ircd.operations.lookup import user_named
from apps.ircd.protocol import format_line


def _operators(ctx: Context) -> dict[str, str]:
    """IRC_OPERS: `name:password` pairs."""
    pairs = [p.split(":", 1) for p in ctx.settings.irc_opers.split(",") if ":" in p]
    return {name: password for name, password in pairs}


async def oper(ctx: Context, client: Client, name: str, password: str) -> None:
    """Become an IRC operator (user mode +o); NoOperHost, PasswordMismatch."""
    expected = _operators(ctx).get(name)
    if expected is None:
        raise NoOperHost()
    if not hmac.compare_digest(expected.encode(), password.encode()):
        raise PasswordMismatch()
    if not client.oper:
        client.set_mode("o", True)
        await ctx.store.count_user_mode("o", client.uid, True)
        await ctx.store.update_user(client.to_user(ctx.instance))
        client.send(format_line("MODE", [client.nick, "+o"], source=client.prefix))
        await devices.sync(ctx, client, line(client.prefix, "MODE", [client.nick, "+o"], ctx.clock(),
                                             id=ctx.new_id()))


def _operator_only(client: Client) -> None:
    if not client.oper:
        raise NoPrivileges()


async def kill(ctx: Context, client: Client, nick: str, reason: str) -> None:
    """Close `nick`'s connection, on whichever replica holds it; NoPrivileges, NoSuchNick."""
    _operator_only(client)
    user = await user_named(ctx, nick)
    reason = f"Killed ({client.nick} ({reason}))"
    if not user.instances:  # an always-on user with no device: nothing to close, it just goes
        await leave(ctx, user, reason)
        return
    await ctx.delivery.to_uids({user.uid: user.instance}, Kill(reason))


async def wallops(ctx: Context, client: Client, text: str) -> None:
    """A message to every client with user mode +w, on every replica; NoPrivileges."""
    _operator_only(client)
    await ctx.delivery.to_everyone(client_line(client, "WALLOPS", [text], ctx.clock(), umode="w"))
